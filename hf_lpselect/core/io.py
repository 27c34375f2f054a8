"""Files written whole or not at all: every writer goes through a temporary file in the same folder and a rename.

A crash never leaves half a file, so whatever a later run finds it can trust. Light: pandas only.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import pandas as pd


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the final file gets the usual permissions
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 hex digest of a file's bytes, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def write_parquet(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` to ``path`` as Parquet, atomically."""
    atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def write_text(text: str, path: str | os.PathLike) -> None:
    """Write ``text`` to ``path`` as UTF-8, atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` to ``path`` as indented JSON, atomically."""
    write_text(json.dumps(obj, indent=2, default=str) + "\n", path)
