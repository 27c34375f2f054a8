"""Fault injection: a Hub that fails on purpose (:meth:`~hub_server.client.LoopbackHub.fail` writes the rules)."""

import base64
import fcntl
import json
import re
from pathlib import Path

from .mirror import DEFAULT_REVISION, MirrorRepo


FAULTS_FILE = "faults.json"


class Faults:
    """ASGI middleware: a Hub that fails on purpose. The rules live in ``ROOT/faults.json`` (written by
    :meth:`LoopbackHub.fail`), read on every request; the first rule whose ``method`` and ``path``
    (a regex searched in the URL path) match and whose ``times`` is not used up is applied and counted:

    * ``status``: answer HTTP ``status`` (429, 500, 503 …; ``retry_after`` seconds if given) and do nothing;
    * ``drop``: start an answer, then cut the connection mid-body (the client sees the connection reset);
    * ``after-status``: do the request, then answer ``status`` instead (it happened; the client cannot know);
    * ``commit-first``: commit ``path_in_repo`` to the repo's ``main`` first, as someone else's push, then do
      the request (a commit whose parent was read before it then conflicts).
    """

    def __init__(self, app, root: Path):
        self.app, self.root = app, root

    def _take(self, method: str, path: str) -> dict | None:
        rules_path = self.root / FAULTS_FILE
        if not rules_path.is_file():
            return None
        with open(self.root / ".faults.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            rules = json.loads(rules_path.read_text())
            for rule in rules:
                if rule["times"] > 0 and rule["method"] == method and re.search(rule["path"], path):
                    rule["times"] -= 1
                    rule["used"] = rule.get("used", 0) + 1
                    tmp = rules_path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(rules))
                    tmp.replace(rules_path)
                    return rule
        return None

    async def _answer(self, send, status: int, retry_after: int | None = None) -> None:
        headers = [(b"content-type", b"application/json"), (b"x-error-message", b"injected fault")]
        if retry_after is not None:
            headers.append((b"retry-after", str(retry_after).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps({"error": "injected fault"}).encode()})

    async def __call__(self, scope, receive, send):
        rule = self._take(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if rule is None:
            return await self.app(scope, receive, send)
        action = rule["action"]
        if action == "status":
            return await self._answer(send, rule["status"], rule.get("retry_after"))
        if action == "drop":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"partial', "more_body": True})
            raise ConnectionAbortedError("loopback hub: connection dropped on purpose")  # uvicorn closes it
        if action == "after-status":

            async def swallow(message):
                pass

            await self.app(scope, receive, swallow)
            return await self._answer(send, rule["status"])
        if action == "commit-first":
            repo = MirrorRepo(self.root / "mirrors", rule.get("repo_type", "dataset"), rule["repo_id"])
            content = base64.b64encode(b"Someone else's change.\n").decode()
            with repo.locked():
                repo.apply_commit(
                    DEFAULT_REVISION,
                    [("file", {"path": rule["path_in_repo"], "content": content})],
                    summary="Someone else's push",
                )
            return await self.app(scope, receive, send)
        raise ValueError(f"unknown fault action {action!r}")
