"""A loopback OpenAI-compatible judge that misbehaves on purpose (tests only).

:class:`MisbehavingJudge` serves ``POST /v1/chat/completions`` on ``127.0.0.1:<free port>`` from a thread
of the test process (stdlib ``http.server``; real HTTP, real ``openai`` client on the other side). Each
request takes the next behaviour of its ``script`` (then ``default``):

* ``ok``: a chat completion whose content is ``reply`` ("9 2": prefers the answer shown first);
* ``unparseable``: a chat completion whose content is prose with no scores;
* ``empty-content``: a chat completion whose content is empty;
* ``429`` / ``500`` / ``503``: that status (429 with ``retry-after-ms: 10``, so the client waits little);
* ``slow``: answer ``ok`` after ``slow_seconds`` (longer than the client's timeout);
* ``garbage``: HTTP 200 whose body is not JSON; ``empty``: HTTP 200 with an empty body;
* ``die``: the server stops listening (a judge that dies mid-run): this and every later request is refused.

``asked`` lists the prompts it received (every attempt), ``answered`` those it answered with a completion.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class MisbehavingJudge:
    def __init__(
        self,
        script: list[str] | None = None,
        *,
        default: str = "ok",
        reply: str = "9 2",
        slow_seconds: float = 5.0,
        port: int = 0,
    ):
        self.script, self.default, self.reply, self.slow_seconds = list(script or []), default, reply, slow_seconds
        self.port = port  # 0: a free one; a judge restarted on its old port is the same judge to the cache
        self.asked: list[str] = []
        self.answered: list[str] = []
        self.arrived = threading.Event()  # set at each request (for tests that act mid-run)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def _next(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    def start(self) -> MisbehavingJudge:
        judge = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(
                self, status: int, body: bytes, content_type: str = "application/json", headers: dict | None = None
            ):
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _completion(self, content: str, prompt: str) -> None:
                with judge._lock:
                    judge.answered.append(prompt)
                self._send(
                    200,
                    json.dumps(
                        {
                            "id": "chatcmpl-loopback",
                            "object": "chat.completion",
                            "created": int(time.time()),
                            "model": "loopback-judge",
                            "choices": [
                                {
                                    "index": 0,
                                    "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content},
                                }
                            ],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                        }
                    ).encode(),
                )

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, b'{"error": {"message": "not found"}}')
                prompt = json.loads(body)["messages"][-1]["content"]
                behaviour = judge._next()
                with judge._lock:
                    judge.asked.append(prompt)
                judge.arrived.set()
                if behaviour == "die":
                    threading.Thread(target=judge.stop, daemon=True).start()
                    self.close_connection = True
                    return  # no answer at all
                if behaviour in ("429", "500", "503"):
                    headers = {"retry-after-ms": "10"} if behaviour == "429" else {}
                    return self._send(
                        int(behaviour),
                        json.dumps({"error": {"message": f"loopback {behaviour}"}}).encode(),
                        headers=headers,
                    )
                if behaviour == "garbage":
                    return self._send(
                        200, b"<html>502 Bad Gateway from a proxy</html>", content_type="application/json"
                    )
                if behaviour == "empty":
                    return self._send(200, b"")
                if behaviour == "slow":
                    time.sleep(judge.slow_seconds)
                    return self._completion(judge.reply, prompt)
                if behaviour == "unparseable":
                    return self._completion("Both answers have merits; I cannot decide.", prompt)
                if behaviour == "empty-content":
                    return self._completion("", prompt)
                return self._completion(judge.reply, prompt)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> MisbehavingJudge:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
