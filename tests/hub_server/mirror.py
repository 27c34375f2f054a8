"""The loopback Hub's storage: one plain git repository per Hub repo, written through git plumbing.

``mirrors_path/<datasets|models|spaces>/<org>/<name>`` is a non-bare repo (branch ``main``) that
olah's offline mode serves as-is. LFS files are git-lfs pointers whose content lives in
``<repo>/.git/lfs/objects/<oid[:2]>/<oid[2:4]>/<oid>``, which is where olah reads it from.
Used by the server's routes and by :class:`~hub_server.client.LoopbackHub` (test setup and assertions).
"""

import base64
import contextlib
import fcntl
import fnmatch
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path


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
        "*.7z",
        "*.arrow",
        "*.bin",
        "*.bz2",
        "*.ckpt",
        "*.ftz",
        "*.gz",
        "*.h5",
        "*.joblib",
        "*.lz4",
        "*.mds",
        "*.mlmodel",
        "*.model",
        "*.msgpack",
        "*.npy",
        "*.npz",
        "*.onnx",
        "*.ot",
        "*.parquet",
        "*.pb",
        "*.pickle",
        "*.pkl",
        "*.pt",
        "*.pth",
        "*.rar",
        "*.safetensors",
        "saved_model/**/*",
        "*.tar.*",
        "*.tar",
        "*.tflite",
        "*.tgz",
        "*.wasm",
        "*.xz",
        "*.zip",
        "*.zst",
        "*tfevents*",
        "*.mp3",
        "*.ogg",
        "*.wav",
        "*.flac",
        "*.jpg",
        "*.jpeg",
        "*.png",
        "*.webp",
        "*.gif",
    )
)


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


def lfs_pointer(oid: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


_POINTER_RE = re.compile(rb"version https://git-lfs\.github\.com/spec/v1\noid sha256:([0-9a-f]{64})\nsize ([0-9]+)\n")


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
        """What the Hub keeps beside the files: ``private``, and a Space's ``hardware`` once asked for."""
        try:
            return json.loads((self.git_dir / "loopback.json").read_text())
        except (OSError, ValueError):
            return {}

    def update_settings(self, **changes) -> dict:
        settings = {**self.settings(), **changes}
        tmp = self.git_dir / "loopback.json.tmp"
        tmp.write_text(json.dumps(settings))
        tmp.replace(self.git_dir / "loopback.json")
        return settings

    def create(self, private: bool = False, **settings) -> None:
        """git init + the Hub's initial commit (a .gitattributes with the default LFS patterns)."""
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "-b", DEFAULT_REVISION, str(self.path)], check=True, capture_output=True)
        self.update_settings(private=bool(private), **settings)
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
            info = b"".join(
                f"{mode} {sha}\t".encode() + path.encode() + b"\0" for path, (mode, sha) in entries.items()
            )
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

    def lfs_oid(self, blob_sha: str) -> str | None:
        """The LFS object a blob points to (its sha256), or None when the blob is not an LFS pointer."""
        if int(self.git("cat-file", "-s", blob_sha)) >= 200:
            return None
        match = _POINTER_RE.fullmatch(self.read_blob(blob_sha))
        return match.group(1).decode() if match else None

    def file_bytes(self, blob_sha: str) -> bytes:
        """A file's content: the blob, or the LFS object its pointer names."""
        oid = self.lfs_oid(blob_sha)
        return self.lfs_path(oid).read_bytes() if oid else self.read_blob(blob_sha)

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
        return self.lfs_oid(sha) or sha

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
                raise HubError(
                    404, f"Invalid rev id: {revision} (commits go to a branch or refs/pr/N)", "RevisionNotFound"
                )
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
                entries[path] = ("100644", self.hash_blob(lfs_pointer(oid, size)))
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
            commits.append(
                {
                    "id": oid,
                    "title": title,
                    "message": body.strip(),
                    "authors": [{"user": author}],
                    "date": date,
                }
            )
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
                data = lfs_pointer(oid, size)
            entries[rel] = ("100644", self.hash_blob(data))
        sha = self.commit_tree(entries, parent=tip, message=message)
        self.git("update-ref", f"refs/heads/{DEFAULT_REVISION}", sha, tip or ZERO_SHA)
        return sha


def existing(mirrors_path: Path, repo_type: str, org: str, name: str) -> MirrorRepo:
    """The repo ``org/name`` of that type, or the Hub's 404 ``RepoNotFound``."""
    repo = MirrorRepo(mirrors_path, repo_type, f"{org}/{name}")
    if not repo.exists:
        raise HubError(404, f"Repository {org}/{name} not found", "RepoNotFound")
    return repo
