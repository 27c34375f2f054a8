"""Files written whole or not at all, and a full disk told apart from other failures.

Every writer goes through a temporary file in the same folder and a rename, so a crash never leaves
half a file and whatever a later run finds it can trust. A folder written file by file (a checkpoint,
a saved model) goes through :func:`saving_into`. Light: pandas only.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def json_number(value: float, digits: int | None = None) -> float | None:
    """``value`` as a JSON number (rounded to ``digits`` when given); None for NaN, which JSON cannot hold.

    Example:

    ```python
    >>> json_number(float("nan")), json_number(0.1234567, 3)
    (None, 0.123)
    ```
    """
    value = float(value)
    if math.isnan(value):
        return None
    return value if digits is None else round(value, digits)


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` to ``path`` as indented JSON, atomically."""
    write_text(json.dumps(obj, indent=2, default=str) + "\n", path)


FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def no_space_left(path: str | os.PathLike) -> bool:
    """Whether the filesystem that holds ``path`` is full: a 1 MiB write beside it fails (or is cut short).

    Asked where a native writer failed without saying why (torch's zip writer reports a full disk as
    ``RuntimeError: … unexpected pos``), before anything it left is removed: what it wrote still
    holds the space. The probe file is our temporary name, removed at once.
    """
    folder = Path(path)
    while not folder.is_dir():
        if folder.parent == folder:
            return False
        folder = folder.parent
    size = 1 << 20
    try:
        fd, name = tempfile.mkstemp(prefix=".lpselect-space-probe.", suffix=".tmp", dir=folder)
    except OSError as err:
        return err.errno in FULL_DISK_ERRNOS
    try:
        written = os.write(fd, b"\0" * size)
        os.fsync(fd)
        return written < size
    except OSError as err:
        return err.errno in FULL_DISK_ERRNOS
    finally:
        os.close(fd)
        os.unlink(name)


@contextmanager
def saving_into(folder: str | os.PathLike, *, remove: bool = True) -> Iterator[None]:
    """Write a folder of files (a checkpoint, a saved model) so that a failure leaves none of it behind.

    If the body fails, the folder is removed when this call created it (and ``remove``), and a failure
    on a full disk is raised as ``OSError(ENOSPC)`` from the original error, whatever the writer called
    it (torch's zip writer: ``RuntimeError: [enforce fail at inline_container.cc] … unexpected pos``).
    """
    folder = Path(folder)
    new = not folder.exists()
    try:
        yield
    except BaseException as err:
        full = isinstance(err, Exception) and not _says_disk_full(err) and no_space_left(folder)
        if new and remove:
            shutil.rmtree(folder, ignore_errors=True)
        if full:
            raise OSError(errno.ENOSPC, f"No space left on device while writing {folder}") from err
        raise


REFUSED_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)


def write_refusal(err: BaseException | None) -> str | None:
    """One sentence when ``err`` (or an error it was raised from) is a write the system refused: a
    read-only file system (``EROFS``) or no permission (``EACCES``, ``EPERM``, which a read can meet
    too, so its sentence names the file and both remedies); None for anything else.

    Every command's outputs reach the disk through many writers (ours, Arrow's, matplotlib's,
    ``save_to_disk``), so the refusal is recognised here, once, and the command line says it for all
    of them.

    Args:
        err (`BaseException` or `None`):
            The error a command failed with.

    Returns:
        `str` or `None`: the sentence, or None when ``err`` is no refused write.

    Example:

    ```python
    >>> write_refusal(OSError(errno.EROFS, "Read-only file system", "/mnt/ro/report"))
    'Cannot write into /mnt/ro: it is on a read-only file system; choose an output folder you can write to.'
    ```
    """
    while err is not None:
        if isinstance(err, OSError) and err.errno in REFUSED_ERRNOS:
            name = os.fsdecode(err.filename) if err.filename else None
            if err.errno != errno.EROFS:
                where = f" for {name}" if name else ""
                return f"Permission denied{where}; check its permissions, or choose an output folder you can write to."
            where = f" into {Path(name).parent}" if name else ""
            return f"Cannot write{where}: it is on a read-only file system; choose an output folder you can write to."
        if "Read-only file system" in str(err):  # a native writer (Arrow) that gives no errno
            return "Cannot write: the output is on a read-only file system; choose an output folder you can write to."
        err = err.__cause__ or err.__context__
    return None


def _says_disk_full(err: BaseException) -> bool:
    return isinstance(err, OSError) and err.errno in FULL_DISK_ERRNOS


def is_disk_full(err: BaseException | None) -> bool:
    """Whether ``err`` (or an error it was raised from) is a full disk, as Python (``OSError`` ENOSPC /
    EDQUOT) or a native writer (safetensors, Arrow: "No space left on device") reports it."""
    while err is not None:
        if _says_disk_full(err) or "No space left on device" in str(err) or "Disk quota exceeded" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False
