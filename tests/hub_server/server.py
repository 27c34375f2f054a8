"""The server process: ``python -m hub_server.server --root ROOT --port-file FILE`` (started by
:meth:`~hub_server.client.LoopbackHub.start`). It binds a free port on 127.0.0.1, writes it to FILE,
and exits when the test process that started it is gone."""

import argparse
import os
import signal
import socket
import threading
import time
from pathlib import Path

from .app import create_app
from .faults import Faults


def serve(root: Path, port_file: Path, parent_pid: int) -> None:
    import uvicorn

    app = Faults(create_app(root / "mirrors", root / "olah-cache"), root)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(sock.getsockname()[1]))
    tmp.replace(port_file)

    def watchdog():  # never outlive the test process
        while True:
            time.sleep(1)
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watchdog, daemon=True).start()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="loopback Hub server (test helper)")
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--port-file", required=True, type=Path)
    parser.add_argument("--parent-pid", type=int, default=os.getppid())
    args = parser.parse_args()
    serve(args.root, args.port_file, args.parent_pid)
