"""A loopback Hugging Face Hub for tests: olah (read side) plus test-owned write routes, one server.

What it is
----------
:class:`LoopbackHub` starts, in a child process, ONE uvicorn server on ``127.0.0.1:<free port>`` that
speaks enough of the Hub HTTP protocol for the real client libraries (``huggingface_hub``,
``datasets``) to be pointed at it with ``HF_ENDPOINT``:

* Read side: `olah <https://pypi.org/project/olah/>`_'s FastAPI routes in offline mode, serving
  plain git repositories found under ``mirrors_path/<datasets|models|spaces>/<org>/<name>``
  (non-bare repos, branch ``main``; LFS files are git-lfs pointers whose content lives in
  ``<repo>/.git/lfs/objects/<oid[:2]>/<oid[2:4]>/<oid>``, which is where olah reads it from).
  olah serves repo info at a revision, ``tree`` (recursive), ``paths-info``, ``commits``, ``refs``
  and ``resolve`` (file download, including LFS content).
* Write side (this module): ``/api/repos/create``, ``/api/repos/delete``, ``preupload``, ``commit``
  (the ndjson payload: header, file, lfsFile, deletedFile, deletedFolder; ``create_pr=1`` makes
  ``refs/pr/N`` and answers ``pullRequestUrl``), the git-LFS batch API with a basic single-PUT
  transfer and ``verify``, ``/api/validate-yaml`` (only checks that the README front matter is a
  YAML mapping), ``/api/whoami-v2`` (a fixed fake user).
* Fault injection (:meth:`LoopbackHub.fail`): chosen requests answer 429 / 5xx, lose the
  connection mid-answer, happen but answer an error, or meet someone else's commit first.
* A few read routes are answered here before olah because olah's offline mode gets them wrong for
  local mirrors: repo info without a revision (olah only looks in its proxy cache), ``resolve`` of a
  missing file or revision (olah answers 401/500 instead of ``EntryNotFound``/``RevisionNotFound``),
  ``commits`` (olah puts the whole message in ``title``), and revisions such as ``refs%2Fpr%2F1``
  (rewritten to the commit sha they point at before olah sees them).

Clients must run in a subprocess started with :meth:`LoopbackHub.env` (``huggingface_hub`` reads
``HF_ENDPOINT`` at import time), with ``HF_HUB_DISABLE_XET=1`` so uploads take the LFS path.
Needs ``olah`` (which brings fastapi and uvicorn) and the ``git`` executable on PATH.

What it can NOT prove
---------------------
* Xet storage: uploads and downloads go through classic git-LFS (basic transfer) only; nothing about
  the Xet protocol, chunking or dedup is exercised.
* Auth and permissions: any token (or none) is accepted for everything; private repos are readable
  by anyone; gated repos, orgs, write scopes, resource groups do not exist.
* The real Hub's server-side checks: README/dataset-card YAML validation against the Hub's metadata
  schema, the dataset viewer / parquet conversion (``refs/convert/parquet``), file size and count
  limits, binary-file rejection in regular commits, gitattributes edits, rate limits, hooks,
  discussions (a PR is just a ``refs/pr/N`` ref: no discussion object, no merge), Spaces.
* Which files are LFS is decided here with a simple rule (an LFS pattern in the repo's
  ``.gitattributes``, non-UTF-8 content, or >= 10 MB); the real Hub's rule may differ.
"""


import argparse
import base64
import contextlib
import fcntl
import fnmatch
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote

FAKE_TOKEN = "hf_loopback_test_token"
FAKE_USER = "loopback-user"
DEFAULT_REVISION = "main"
LFS_THRESHOLD = 10 * 1024 * 1024  # regular files above this size must be LFS (as on the Hub)
REPO_TYPE_DIRS = {"dataset": "datasets", "model": "models", "space": "spaces"}
URL_PREFIXES = {"datasets": "datasets/", "models": "", "spaces": "spaces/"}
ZERO_SHA = "0" * 40

# The start of the .gitattributes the Hub puts in every new repo (a subset of its patterns).
DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lz4",
        "*.mds", "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet",
        "*.pb", "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "saved_model/**/*",
        "*.tar.*", "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*",
        "*.mp3", "*.ogg", "*.wav", "*.flac", "*.jpg", "*.jpeg", "*.png", "*.webp", "*.gif",
    )
)


# ---------------------------------------------------------------------------------------------
# Git mirror: used by the server (write routes) and by LoopbackHub.seed (test process)
# ---------------------------------------------------------------------------------------------


class HubError(Exception):
    """An error answered to the client with the Hub's X-Error-Code / X-Error-Message headers."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def _type_dir(repo_type: str) -> str:
    """'dataset'/'datasets' -> 'datasets' (the folder name and URL segment olah uses)."""
    if repo_type in REPO_TYPE_DIRS:
        return REPO_TYPE_DIRS[repo_type]
    if repo_type in REPO_TYPE_DIRS.values():
        return repo_type
    raise HubError(400, f"invalid repo type {repo_type!r}")


def _lfs_pointer(oid: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


_POINTER_RE = re.compile(rb"version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize ([0-9]+)\n")


def _git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class MirrorRepo:
    """One non-bare git repo in the mirror; all writes go through git plumbing (no checkout)."""

    def __init__(self, mirrors_path: Path, repo_type: str, repo_id: str):
        if repo_id.count("/") != 1 or not all(repo_id.split("/")):
            raise HubError(400, f"repo id must be 'namespace/name', got {repo_id!r}")
        self.type_dir = _type_dir(repo_type)
        self.repo_id = repo_id
        self.path = Path(mirrors_path) / self.type_dir / repo_id
        self.git_dir = self.path / ".git"
        self.lfs_dir = self.git_dir / "lfs" / "objects"

    # -- plumbing -----------------------------------------------------------------------------
    def git(self, *args: str, input: bytes | None = None, env: dict | None = None, check: bool = True) -> bytes:
        full_env = {
            **os.environ,
            "GIT_AUTHOR_NAME": FAKE_USER,
            "GIT_AUTHOR_EMAIL": f"{FAKE_USER}@loopback.invalid",
            "GIT_COMMITTER_NAME": FAKE_USER,
            "GIT_COMMITTER_EMAIL": f"{FAKE_USER}@loopback.invalid",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            **(env or {}),
        }
        proc = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), *args], check=False, input=input, env=full_env, capture_output=True
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
        return proc.stdout

    @property
    def exists(self) -> bool:
        return self.git_dir.is_dir()

    @contextlib.contextmanager
    def locked(self):
        """Serialise writers (server threads and the test process) on one repo."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.parent / f".{self.path.name}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def settings(self) -> dict:
        try:
            return json.loads((self.git_dir / "loopback.json").read_text())
        except (OSError, ValueError):
            return {}

    def create(self, private: bool = False) -> None:
        """git init + the Hub's initial commit (a .gitattributes with the default LFS patterns)."""
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "-b", DEFAULT_REVISION, str(self.path)], check=True, capture_output=True)
        (self.git_dir / "loopback.json").write_text(json.dumps({"private": bool(private)}))
        self.lfs_dir.mkdir(parents=True, exist_ok=True)
        entries = {".gitattributes": ("100644", self.hash_blob(DEFAULT_GITATTRIBUTES.encode()))}
        sha = self.commit_tree(entries, parent=None, message="initial commit")
        self.git("update-ref", f"refs/heads/{DEFAULT_REVISION}", sha, ZERO_SHA)

    def resolve(self, revision: str) -> str | None:
        """A branch, tag, refs/... name or (short) sha -> full commit sha, or None."""
        for candidate in (f"refs/heads/{revision}", revision):
            out = self.git("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", check=False).strip()
            if out:
                return out.decode()
        return None

    def tree_entries(self, commit: str) -> dict[str, tuple[str, str]]:
        """path -> (mode, blob sha) for every file of the commit (recursive)."""
        out = self.git("ls-tree", "-r", "-z", "--full-tree", commit)
        entries = {}
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, path = record.split(b"\t", 1)
            mode, _type, sha = meta.decode().split(" ")
            entries[path.decode()] = (mode, sha)
        return entries

    def read_blob(self, sha: str) -> bytes:
        return self.git("cat-file", "blob", sha)

    def hash_blob(self, data: bytes) -> str:
        return self.git("hash-object", "-w", "--stdin", input=data).strip().decode()

    def commit_tree(self, entries: dict[str, tuple[str, str]], parent: str | None, message: str) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            info = b"".join(f"{mode} {sha}\t".encode() + path.encode() + b"\0" for path, (mode, sha) in entries.items())
            self.git("update-index", "-z", "--index-info", input=info, env=env)
            tree = self.git("write-tree", env=env).strip().decode()
        args = ["commit-tree", tree, "-F", "-"] + (["-p", parent] if parent else [])
        return self.git(*args, input=message.encode()).strip().decode()

    # -- LFS ----------------------------------------------------------------------------------
    def lfs_path(self, oid: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", oid):
            raise HubError(400, f"invalid LFS oid {oid!r}")
        return self.lfs_dir / oid[:2] / oid[2:4] / oid

    def has_lfs(self, oid: str, size: int | None = None) -> bool:
        path = self.lfs_path(oid)
        return path.is_file() and (size is None or path.stat().st_size == size)

    def store_lfs(self, data: bytes) -> tuple[str, int]:
        oid = hashlib.sha256(data).hexdigest()
        path = self.lfs_path(oid)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return oid, len(data)

    def file_bytes(self, blob_sha: str) -> bytes:
        """A file's content: the blob, or the LFS object its pointer names."""
        data = self.read_blob(blob_sha)
        match = _POINTER_RE.fullmatch(data) if len(data) < 200 else None
        return self.lfs_path(match.group(1).decode()).read_bytes() if match else data

    def lfs_patterns(self, commit: str | None) -> list[str]:
        if commit is None:
            return []
        entry = self.tree_entries(commit).get(".gitattributes")
        text = self.read_blob(entry[1]).decode(errors="replace") if entry else ""
        return [line.split()[0] for line in text.splitlines() if "filter=lfs" in line and line.split()]

    @staticmethod
    def wants_lfs(path: str, size: int, sample: bytes, patterns: list[str]) -> bool:
        name = path.rsplit("/", 1)[-1]
        if any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(path, p) for p in patterns):
            return True
        if size >= LFS_THRESHOLD or b"\0" in sample:
            return True
        try:
            sample.decode("utf-8")
        except UnicodeDecodeError as err:  # a multi-byte char cut at the sample end is still text
            return err.start < len(sample) - 4
        return False

    def remote_oid(self, entries: dict[str, tuple[str, str]], path: str) -> str | None:
        """What the client compares with its local oid: sha256 for LFS files, the git blob sha otherwise."""
        if path not in entries:
            return None
        sha = entries[path][1]
        if int(self.git("cat-file", "-s", sha)) < 200:
            match = _POINTER_RE.fullmatch(self.read_blob(sha))
            if match:
                return match.group(1).decode()
        return sha

    # -- commits ------------------------------------------------------------------------------
    def apply_commit(
        self,
        revision: str,
        operations: list[tuple[str, dict]],
        summary: str,
        description: str = "",
        parent_commit: str | None = None,
        create_pr: bool = False,
    ) -> tuple[str, int | None]:
        """Create ONE commit from Hub commit operations; returns (commit sha, PR number or None)."""
        if not self.exists:
            raise HubError(404, f"Repository {self.repo_id} not found", "RepoNotFound")
        if create_pr:
            base = self.resolve(parent_commit or revision)
            if base is None:
                raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            numbers = [int(r.rsplit("/", 1)[-1]) for r in self._refs("refs/pr/")]
            pr_num = max(numbers, default=0) + 1
            target_ref, old = f"refs/pr/{pr_num}", ZERO_SHA
        else:
            pr_num = None
            if revision.startswith("refs/"):
                target_ref = revision
            elif self.resolve(f"refs/heads/{revision}") is not None:
                target_ref = f"refs/heads/{revision}"
            else:
                raise HubError(404, f"Invalid rev id: {revision} (commits go to a branch or refs/pr/N)", "RevisionNotFound")
            base = self.resolve(target_ref)
            if base is None:
                raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            if parent_commit is not None and not base.startswith(parent_commit.lower()):
                raise HubError(412, f"A commit has happened since {parent_commit}; {revision} is at {base}")
            old = base

        entries = self.tree_entries(base)
        for key, value in operations:
            path = value.get("path", "").strip("/")
            if key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, f"unsupported encoding {value.get('encoding')!r}")
                entries[path] = ("100644", self.hash_blob(base64.b64decode(value["content"])))
            elif key == "lfsFile":
                oid = value["oid"]
                size = value.get("size")
                if not self.has_lfs(oid, size):
                    raise HubError(422, f"LFS object {oid} for {path} was not uploaded")
                size = self.lfs_path(oid).stat().st_size if size is None else int(size)
                entries[path] = ("100644", self.hash_blob(_lfs_pointer(oid, size)))
            elif key == "deletedFile":
                if path not in entries:
                    raise HubError(404, f"File not found: {path}", "EntryNotFound")
                del entries[path]
            elif key == "deletedFolder":
                inside = [p for p in entries if p.startswith(path + "/")]
                if not inside:
                    raise HubError(404, f"Folder not found: {path}", "EntryNotFound")
                for p in inside:
                    del entries[p]
            else:
                raise HubError(400, f"unsupported commit operation {key!r}")

        message = summary + (f"\n\n{description}" if description else "")
        sha = self.commit_tree(entries, parent=base, message=message)
        self.git("update-ref", target_ref, sha, old)  # compare-and-swap: fails if the ref moved
        return sha, pr_num

    def _refs(self, prefix: str) -> list[str]:
        out = self.git("for-each-ref", "--format=%(refname)", prefix).decode()
        return [line for line in out.splitlines() if line]

    def commits(self, revision: str) -> list[dict]:
        sha = self.resolve(revision)
        if sha is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        out = self.git("log", "-z", "--format=%H%x1f%an%x1f%ct%x1f%s%x1f%b", sha).decode()
        commits = []
        for record in out.split("\0"):
            if not record.strip():
                continue
            oid, author, stamp, title, body = record.strip("\n").split("\x1f")
            date = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(int(stamp)))
            commits.append({
                "id": oid,
                "title": title,
                "message": body.strip(),
                "authors": [{"user": author}],
                "date": date,
            })
        return commits

    def seed_folder(self, folder: Path, message: str) -> str:
        """Commit a local folder onto main (replacing the tree, keeping .gitattributes unless the folder has one)."""
        tip = self.resolve(DEFAULT_REVISION)
        patterns = self.lfs_patterns(tip)
        entries = {k: v for k, v in self.tree_entries(tip).items() if k == ".gitattributes"} if tip else {}
        for file in sorted(Path(folder).rglob("*")):
            if not file.is_file() or ".git" in file.relative_to(folder).parts:
                continue
            rel = file.relative_to(folder).as_posix()
            data = file.read_bytes()
            if self.wants_lfs(rel, len(data), data[:512], patterns):
                oid, size = self.store_lfs(data)
                data = _lfs_pointer(oid, size)
            entries[rel] = ("100644", self.hash_blob(data))
        sha = self.commit_tree(entries, parent=tip, message=message)
        self.git("update-ref", f"refs/heads/{DEFAULT_REVISION}", sha, tip or ZERO_SHA)
        return sha


# ---------------------------------------------------------------------------------------------
# The server app (built in the child process)
# ---------------------------------------------------------------------------------------------


def create_app(mirrors_path: Path, repos_path: Path):
    """olah's routes behind ours, on one FastAPI app, reading/writing the git mirror."""
    import yaml
    from fastapi import APIRouter, FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from olah.configs import OlahConfig
    from olah.mirror.repos import LocalMirrorRepo
    from olah.server_routes import file_get_common, file_head_common, tree_proxy_common
    from olah.server_routes import router as olah_router

    config = OlahConfig()
    config.offline = True
    config.mirrors_path = [str(mirrors_path)]
    config.repos_path = str(repos_path)
    config.hf_scheme, config.hf_netloc, config.hf_lfs_netloc = "http", "127.0.0.1:9", "127.0.0.1:9"  # discard port
    config.metadata_cache_ttl = 0

    class _Settings:
        pass

    settings = _Settings()
    settings.config = config
    write_lock = threading.RLock()

    def error(status: int, message: str, code: str | None = None) -> Response:
        headers = {"x-error-message": message}
        if code:
            headers["x-error-code"] = code
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    def repo_of(repo_type: str, org: str, name: str) -> MirrorRepo:
        return MirrorRepo(mirrors_path, repo_type, f"{org}/{name}")

    def existing(repo_type: str, org: str, name: str) -> MirrorRepo:
        repo = repo_of(repo_type, org, name)
        if not repo.exists:
            raise HubError(404, f"Repository {org}/{name} not found", "RepoNotFound")
        return repo

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    router = APIRouter()

    @router.get("/api/loopback/health")
    async def health():
        return {"ok": True}

    @router.get("/api/whoami-v2")
    async def whoami():
        return {
            "type": "user", "id": "0" * 24, "name": FAKE_USER, "fullname": "Loopback Test User",
            "email": f"{FAKE_USER}@loopback.invalid", "emailVerified": True, "canPay": False,
            "isPro": False, "orgs": [],
            "auth": {"type": "access_token", "accessToken": {"displayName": "loopback", "role": "write"}},
        }

    @router.post("/api/validate-yaml")
    async def validate_yaml(request: Request):
        payload = await request.json()
        content = payload.get("content", "")
        match = re.match(r"^\s*---\s*\n(.*?)\n---\s*(\n|$)", content, flags=re.DOTALL)
        if not match:
            return {"errors": [], "warnings": [{"message": "empty or missing yaml metadata in repo card"}]}
        try:
            data = yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            return JSONResponse({"errors": [{"message": f"Invalid YAML: {exc}"}]}, status_code=400)
        if data is not None and not isinstance(data, dict):
            return JSONResponse({"errors": [{"message": "YAML metadata must be a mapping"}]}, status_code=400)
        return {"errors": [], "warnings": []}

    @router.post("/api/repos/create")
    async def create_repo(request: Request):
        payload = await request.json()
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or FAKE_USER}/{payload['name']}"
        repo = MirrorRepo(mirrors_path, repo_type, repo_id)
        url = f"{base_url(request)}/{URL_PREFIXES[repo.type_dir]}{repo_id}"
        with write_lock, repo.locked():
            if repo.exists:
                return JSONResponse({"error": "You already created this repo", "url": url}, status_code=409)
            private = payload.get("private", payload.get("visibility") == "private")
            repo.create(private=bool(private))
        return {"url": url, "name": repo_id, "id": repo_id}

    @router.delete("/api/repos/delete")
    async def delete_repo(request: Request):
        payload = await request.json()
        repo_id = f"{payload.get('organization') or FAKE_USER}/{payload['name']}"
        repo = MirrorRepo(mirrors_path, payload.get("type") or "model", repo_id)
        with write_lock, repo.locked():
            if not repo.exists:
                return error(404, f"Repository {repo_id} not found", "RepoNotFound")
            shutil.rmtree(repo.path)
        return Response(status_code=200)

    @router.head("/api/{repo_type}/{org}/{name}")
    @router.get("/api/{repo_type}/{org}/{name}")
    async def repo_info(repo_type: str, org: str, name: str):
        repo = existing(repo_type, org, name)
        meta = LocalMirrorRepo(str(repo.path), repo.type_dir, org, name).get_meta(DEFAULT_REVISION)
        meta["private"] = bool(repo.settings().get("private", False))
        return meta

    @router.head("/api/{repo_type}/{org}/{name}/commits/{revision:path}")
    @router.get("/api/{repo_type}/{org}/{name}/commits/{revision:path}")
    async def list_commits(repo_type: str, org: str, name: str, revision: str):
        return existing(repo_type, org, name).commits(revision)

    async def tree(repo_type: str, org: str, name: str, revision: str, path: str, request: Request):
        # olah answers 401 RepoNotFound for a missing folder or revision; the Hub says which is missing
        repo = existing(repo_type, org, name)
        sha = repo.resolve(revision)
        if sha is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        path = path.strip("/")
        if path and not any(p.startswith(path + "/") for p in repo.tree_entries(sha)):
            raise HubError(404, f"{path} does not exist on {revision!r}", "EntryNotFound")
        flag = lambda key: request.query_params.get(key, "false").lower() in ("1", "true")
        return await tree_proxy_common(
            request.app, repo.type_dir, org, name, sha, path, recursive=flag("recursive"), expand=flag("expand"),
            method=request.method.lower(), authorization=request.headers.get("authorization"),
        )

    @router.head("/api/{repo_type}/{org}/{name}/tree/{revision}")
    @router.get("/api/{repo_type}/{org}/{name}/tree/{revision}")
    async def tree_root(repo_type: str, org: str, name: str, revision: str, request: Request):
        return await tree(repo_type, org, name, revision, "", request)

    @router.head("/api/{repo_type}/{org}/{name}/tree/{revision}/{path:path}")
    @router.get("/api/{repo_type}/{org}/{name}/tree/{revision}/{path:path}")
    async def tree_path(repo_type: str, org: str, name: str, revision: str, path: str, request: Request):
        return await tree(repo_type, org, name, revision, path, request)

    @router.post("/api/{repo_type}/{org}/{name}/preupload/{revision:path}")
    async def preupload(repo_type: str, org: str, name: str, revision: str, request: Request):
        payload = await request.json()
        repo = existing(repo_type, org, name)
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        entries = repo.tree_entries(commit)
        patterns = repo.lfs_patterns(commit)
        files = []
        for item in payload.get("files", []):
            path = item["path"]
            sample = base64.b64decode(item.get("sample", ""))
            lfs = repo.wants_lfs(path, int(item.get("size", 0)), sample, patterns)
            files.append({
                "path": path,
                "uploadMode": "lfs" if lfs else "regular",
                "shouldIgnore": False,
                "oid": repo.remote_oid(entries, path),
            })
        return {"files": files, "commitOid": commit}

    @router.post("/api/{repo_type}/{org}/{name}/commit/{revision:path}")
    async def commit(repo_type: str, org: str, name: str, revision: str, request: Request):
        body = await request.body()
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "commit payload must start with a header line")
        header = lines[0]["value"]
        create_pr = request.query_params.get("create_pr") in ("1", "true", "True")
        repo = existing(repo_type, org, name)
        with write_lock, repo.locked():
            sha, pr_num = repo.apply_commit(
                revision,
                [(line["key"], line["value"]) for line in lines[1:]],
                summary=header.get("summary", ""),
                description=header.get("description", ""),
                parent_commit=header.get("parentCommit"),
                create_pr=create_pr,
            )
        repo_url = f"{base_url(request)}/{URL_PREFIXES[repo.type_dir]}{repo.repo_id}"
        answer = {"success": True, "commitOid": sha, "commitUrl": f"{repo_url}/commit/{sha}", "hookOutput": ""}
        if pr_num is not None:
            answer["pullRequestUrl"] = f"{repo_url}/discussions/{pr_num}"
        return answer

    def lfs_repo(prefix: str, org: str, name_git: str) -> MirrorRepo:
        return existing(prefix, org, name_git[: -len(".git")])

    async def lfs_batch(repo: MirrorRepo, request: Request):
        payload = await request.json()
        if payload.get("operation") != "upload":
            raise HubError(400, "only the upload operation is supported")
        base = f"{base_url(request)}/api/loopback/lfs/{repo.type_dir}/{repo.repo_id}"
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            entry = {"oid": oid, "size": size, "authenticated": True}
            if not repo.has_lfs(oid, size):
                entry["actions"] = {
                    "upload": {"href": f"{base}/{oid}", "header": {}},
                    "verify": {"href": f"{base}/{oid}/verify", "header": {}},
                }
            objects.append(entry)
        return JSONResponse({"transfer": "basic", "objects": objects}, media_type="application/vnd.git-lfs+json")

    @router.post("/{prefix}/{org}/{name_git}/info/lfs/objects/batch")
    async def lfs_batch_prefixed(prefix: str, org: str, name_git: str, request: Request):
        if prefix not in ("datasets", "spaces") or not name_git.endswith(".git"):
            raise HubError(404, "not found")
        return await lfs_batch(lfs_repo(prefix, org, name_git), request)

    @router.post("/{org}/{name_git}/info/lfs/objects/batch")
    async def lfs_batch_model(org: str, name_git: str, request: Request):
        if not name_git.endswith(".git"):
            raise HubError(404, "not found")
        return await lfs_batch(lfs_repo("models", org, name_git), request)

    @router.put("/api/loopback/lfs/{repo_type}/{org}/{name}/{oid}")
    async def lfs_upload(repo_type: str, org: str, name: str, oid: str, request: Request):
        repo = existing(repo_type, org, name)
        target = repo.lfs_path(oid)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                async for chunk in request.stream():
                    digest.update(chunk)
                    fh.write(chunk)
            if digest.hexdigest() != oid:
                raise HubError(400, f"content sha256 {digest.hexdigest()} does not match oid {oid}")
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return Response(status_code=200)

    @router.post("/api/loopback/lfs/{repo_type}/{org}/{name}/{oid}/verify")
    async def lfs_verify(repo_type: str, org: str, name: str, oid: str, request: Request):
        payload = await request.json()
        if not existing(repo_type, org, name).has_lfs(oid, int(payload.get("size", -1))):
            raise HubError(404, f"LFS object {oid} not found")
        return {"ok": True}

    async def resolve_file(repo_type: str, org: str, name: str, revision: str, path: str, request: Request):
        repo = existing(repo_type, org, name)
        sha = repo.resolve(revision)
        if sha is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        entries = repo.tree_entries(sha)
        if path.strip("/") not in entries:
            raise HubError(404, f"{path} does not exist on {revision!r}", "EntryNotFound")
        range_header = request.headers.get("range")
        if request.method == "GET" and range_header:  # olah's local-mirror route ignores Range
            data = repo.file_bytes(entries[path.strip("/")][1])
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
            if not match or match.groups() == ("", ""):
                raise HubError(416, f"unsupported range {range_header!r}")
            if match[1]:
                start, end = int(match[1]), min(int(match[2]) if match[2] else len(data) - 1, len(data) - 1)
            else:
                start, end = max(len(data) - int(match[2]), 0), len(data) - 1
            if start >= len(data) or start > end:
                return Response(status_code=416, headers={"content-range": f"bytes */{len(data)}"})
            return Response(
                data[start : end + 1], status_code=206,
                headers={"content-range": f"bytes {start}-{end}/{len(data)}", "accept-ranges": "bytes",
                         "x-repo-commit": sha},
            )
        common = file_head_common if request.method == "HEAD" else file_get_common
        response = await common(request.app, repo.type_dir, org, name, sha, path, request)
        response.headers["accept-ranges"] = "bytes"
        return response

    @router.head("/{prefix}/{org}/{name}/resolve/{revision}/{path:path}")
    @router.get("/{prefix}/{org}/{name}/resolve/{revision}/{path:path}")
    async def resolve_prefixed(prefix: str, org: str, name: str, revision: str, path: str, request: Request):
        if prefix not in ("datasets", "spaces"):
            raise HubError(404, "not found")
        return await resolve_file(prefix, org, name, revision, path, request)

    @router.head("/{org}/{name}/resolve/{revision}/{path:path}")
    @router.get("/{org}/{name}/resolve/{revision}/{path:path}")
    async def resolve_model(org: str, name: str, revision: str, path: str, request: Request):
        return await resolve_file("models", org, name, revision, path, request)

    app = FastAPI(debug=False)
    app.state.app_settings = settings
    app.state.logger = None
    app.state.templates = None

    @app.exception_handler(HubError)
    async def hub_error_handler(_request, exc: HubError):
        return error(exc.status, exc.message, exc.code)

    app.include_router(router)
    app.include_router(olah_router)
    return _RefRewrite(app, mirrors_path)


# /api/<type>/<org>/<name>/(revision|tree|paths-info)/<rev>... and /[datasets|spaces/]<org>/<name>/resolve/<rev>/...
_REV_IN_PATH = re.compile(
    r"^(?:(?P<api>/api/(?P<t1>models|datasets|spaces)/(?P<o1>[^/]+)/(?P<n1>[^/]+)/(?:revision|tree|paths-info)/)"
    r"|(?P<res>/(?:(?P<t2>datasets|spaces)/)?(?P<o2>[^/]+)/(?P<n2>[^/]+)/resolve/))"
    r"(?P<rev>[^/]+)(?P<rest>.*)$"
)


class _RefRewrite:
    """ASGI middleware: olah routes take the revision as one path segment, so a quoted ref such as
    ``refs%2Fpr%2F1`` (decoded to several segments) is replaced by the commit sha it points at."""

    def __init__(self, app, mirrors_path: Path):
        self.app, self.mirrors_path = app, mirrors_path

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            raw = scope.get("raw_path") or scope["path"].encode()
            match = _REV_IN_PATH.match(raw.decode("latin-1"))
            if match and "%" in match["rev"]:
                repo_type = match["t1"] or match["t2"] or "models"
                repo_id = f"{match['o1'] or match['o2']}/{match['n1'] or match['n2']}"
                with contextlib.suppress(HubError, RuntimeError):
                    sha = MirrorRepo(self.mirrors_path, repo_type, repo_id).resolve(unquote(match["rev"]))
                    if sha:
                        new_raw = (match["api"] or match["res"]) + sha + match["rest"]
                        scope = {**scope, "raw_path": new_raw.encode("latin-1"), "path": unquote(new_raw)}
        await self.app(scope, receive, send)


FAULTS_FILE = "faults.json"


class _Faults:
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
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")]})
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
                repo.apply_commit(DEFAULT_REVISION, [("file", {"path": rule["path_in_repo"], "content": content})],
                                  summary="Someone else's push")
            return await self.app(scope, receive, send)
        raise ValueError(f"unknown fault action {action!r}")


def _serve(root: Path, port_file: Path, parent_pid: int) -> None:
    import uvicorn

    app = _Faults(create_app(root / "mirrors", root / "olah-cache"), root)
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


# ---------------------------------------------------------------------------------------------
# Test-process side
# ---------------------------------------------------------------------------------------------


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
        self._proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--root", str(self.root),
             "--port-file", str(port_file), "--parent-pid", str(os.getpid())],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
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
        env.update({
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
        })
        return env

    # -- fault injection (see _Faults) ---------------------------------------------------------
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

    def seed(self, repo_id: str, folder: str | os.PathLike, repo_type: str = "dataset",
             message: str = "seed", private: bool = False) -> str:
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
        return _POINTER_RE.fullmatch(repo.read_blob(entries[path][1])) is not None

    def commit_messages(self, repo_id: str, revision: str = DEFAULT_REVISION, repo_type: str = "dataset") -> list[str]:
        """Commit summaries, newest first."""
        return [c["title"] for c in self.repo(repo_id, repo_type).commits(revision)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="loopback Hub server (test helper)")
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--port-file", required=True, type=Path)
    parser.add_argument("--parent-pid", type=int, default=os.getppid())
    args = parser.parse_args()
    _serve(args.root, args.port_file, args.parent_pid)
