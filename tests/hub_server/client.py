"""The test process's side: :class:`LoopbackHub` starts and stops the server, builds a client's
environment, injects faults, and reads and seeds the git mirror directly."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .faults import FAULTS_FILE
from .mirror import DEFAULT_REVISION, FAKE_TOKEN, MirrorRepo


PACKAGE_PARENT = (
    Path(__file__).resolve().parent.parent
)  # tests/: where `python -m hub_server.server` finds this package


class LoopbackHub:
    """Start/stop the loopback Hub in a child process; seed repos; build the client environment.

    >>> with LoopbackHub(tmp_path) as hub:
    ...     subprocess.run([sys.executable, "-c", CODE], env=hub.env(), check=True)
    """

    def __init__(self, root: str | os.PathLike, startup_timeout: float = 30.0):
        self.root = Path(root)
        self.mirrors_path = self.root / "mirrors"
        self.hf_home = self.root / "hf_home"
        self.log_path = self.root / "server.log"
        self.startup_timeout = startup_timeout
        self.endpoint: str | None = None
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None
        self._log = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> "LoopbackHub":
        for d in (self.mirrors_path, self.hf_home, self.root / "olah-cache"):
            d.mkdir(parents=True, exist_ok=True)
        port_file = self.root / "server.port"
        port_file.unlink(missing_ok=True)
        self._log = open(self.log_path, "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), os.environ.get("PYTHONPATH")]))
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hub_server.server",
                "--root",
                str(self.root),
                "--port-file",
                str(port_file),
                "--parent-pid",
                str(os.getpid()),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if port_file.exists() and self.endpoint is None:
                self.port = int(port_file.read_text())
                self.endpoint = f"http://127.0.0.1:{self.port}"
            if self.endpoint is not None and self._answers():
                return self
            time.sleep(0.05)
        log = self.log_path.read_text(errors="replace")[-4000:]
        self.stop()
        raise RuntimeError(f"loopback hub did not start (exit code {self._proc.returncode}); log:\n{log}")

    def _answers(self) -> bool:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"{self.endpoint}/api/loopback/health", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "LoopbackHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- client side --------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        """A complete environment for a client subprocess: os.environ without any HF_*/HUGGINGFACE_*
        variable (so no real cache, token or offline switch leaks in), plus the loopback settings.
        hf_lpselect's own cache stays the test's isolated one (``HF_LPSELECT_CACHE``), or one beside
        this Hub's ``HF_HOME``: never ``~/.cache/hf_lpselect``."""
        if self.endpoint is None:
            raise RuntimeError("LoopbackHub is not started")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
        env.update(
            {
                "HF_ENDPOINT": self.endpoint,
                "HF_HUB_DISABLE_XET": "1",
                "HF_TOKEN": FAKE_TOKEN,
                "HF_HOME": str(self.hf_home),
                "HF_LPSELECT_CACHE": os.environ.get("HF_LPSELECT_CACHE", str(self.hf_home / "hf_lpselect")),
                "HF_HUB_OFFLINE": "0",
                "HF_DATASETS_OFFLINE": "0",
                "HF_HUB_DISABLE_TELEMETRY": "1",
                "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
                "NO_PROXY": no_proxy,
                "no_proxy": no_proxy,
                **extra,
            }
        )
        return env

    # -- fault injection (see faults.Faults) ---------------------------------------------------------
    def fail(self, method: str, path: str, action: str = "status", *, times: int = 1, **details) -> None:
        """Make the next ``times`` requests ``method path`` (a regex searched in the URL path) fail:
        ``fail("POST", "/commit/", status=500, times=2)``, ``fail("POST", "/commit/", "drop")``,
        ``fail("POST", "/commit/", "commit-first", repo_id="org/x", path_in_repo="OTHER.md")``."""
        if action in ("status", "after-status") and "status" not in details:
            raise ValueError(f"fault {action!r} needs status=")
        rules = self.faults()
        rules.append({"method": method, "path": path, "action": action, "times": times, **details})
        tmp = self.root / (FAULTS_FILE + ".tmp")
        tmp.write_text(json.dumps(rules))
        tmp.replace(self.root / FAULTS_FILE)

    def faults(self) -> list[dict]:
        """The fault rules with how often each was ``used``."""
        path = self.root / FAULTS_FILE
        return json.loads(path.read_text()) if path.is_file() else []

    def clear_faults(self) -> None:
        (self.root / FAULTS_FILE).unlink(missing_ok=True)

    # -- direct access to the git mirror (test setup and assertions) ----------------------------
    def repo(self, repo_id: str, repo_type: str = "dataset") -> MirrorRepo:
        return MirrorRepo(self.mirrors_path, repo_type, repo_id)

    def seed(
        self,
        repo_id: str,
        folder: str | os.PathLike,
        repo_type: str = "dataset",
        message: str = "seed",
        private: bool = False,
    ) -> str:
        """Simulate an existing Hub repo: create it (if needed) and commit ``folder`` onto ``main``
        as one commit, binary / LFS-pattern files stored as LFS. Returns the commit sha."""
        repo = self.repo(repo_id, repo_type)
        with repo.locked():
            if not repo.exists:
                repo.create(private=private)
            return repo.seed_folder(Path(folder), message)

    def git(self, repo_id: str, *args: str, repo_type: str = "dataset") -> str:
        """Run a git command in the mirror repo (e.g. ``hub.git(rid, "log", "--format=%s", "main")``)."""
        return self.repo(repo_id, repo_type).git(*args).decode()

    def files(self, repo_id: str, revision: str = DEFAULT_REVISION, repo_type: str = "dataset") -> list[str]:
        repo = self.repo(repo_id, repo_type)
        sha = repo.resolve(revision)
        if sha is None:
            raise KeyError(f"{repo_id}@{revision} does not exist")
        return sorted(repo.tree_entries(sha))

    def read(self, repo_id: str, path: str, revision: str = DEFAULT_REVISION, repo_type: str = "dataset") -> bytes:
        """File content at a revision, LFS pointers resolved to the stored object."""
        repo = self.repo(repo_id, repo_type)
        return repo.file_bytes(repo.tree_entries(repo.resolve(revision))[path][1])

    def is_lfs(self, repo_id: str, path: str, revision: str = DEFAULT_REVISION, repo_type: str = "dataset") -> bool:
        repo = self.repo(repo_id, repo_type)
        entries = repo.tree_entries(repo.resolve(revision))
        return repo.lfs_oid(entries[path][1]) is not None

    def commit_messages(self, repo_id: str, revision: str = DEFAULT_REVISION, repo_type: str = "dataset") -> list[str]:
        """Commit summaries, newest first."""
        return [c["title"] for c in self.repo(repo_id, repo_type).commits(revision)]
