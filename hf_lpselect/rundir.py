"""The run directory: the on-disk contract between stages (docs/architecture.md), written atomically.

    run.json, rows.parquet, passes/epoch_K.parquet, train_losses.parquet, scores.parquet

Every file is written to a temporary name in the same directory and renamed, so a crash never
leaves half a file, and a re-run can trust whatever it finds.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from .compat.transformers import CheckpointSaveHook
from .core.io import saving_into
from .errors import RunError
from .record import RunRecord


_PASS_RE = re.compile(r"^epoch_(\d+)\.parquet$")
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
_TMP_RE = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")  # what atomic_write names its temporary files
LOCK_NAME = ".lpselect.lock"


class SafeCheckpointMixin(CheckpointSaveHook):
    """A ``Trainer`` mixin: a checkpoint save that fails leaves no half-written ``checkpoint-N`` folder,
    and a full disk is said as one.

    transformers writes a checkpoint file by file into ``checkpoint-N`` (weights, optimizer, scheduler,
    RNG states, ``trainer_state.json`` last). When a save fails part-way (a full disk, an interrupt), the
    folder this save created is removed, so no later run or person finds half a checkpoint. A failure
    while the disk is full is raised as ``OSError(ENOSPC)`` from the original error, whatever the writer
    called it (torch's zip writer: ``RuntimeError: [enforce fail at inline_container.cc] … unexpected pos``),
    so ``lpselect`` says "No space left" in one sentence. A folder that existed before the save is
    left alone; runs resume only from checkpoints saved whole (:meth:`RunDir.checkpoint_dirs`).
    """

    def checkpoint_saving(self, folder: Path) -> AbstractContextManager:
        return saving_into(folder, remove=self.args.should_save)


@dataclass(frozen=True)
class RunDir:
    """Paths of one scorer run. ``RunDir("runs/alpaca").scores`` etc."""

    path: Path

    def __init__(self, path: str | os.PathLike):
        object.__setattr__(self, "path", Path(path))

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def rows(self) -> Path:
        return self.path / "rows.parquet"

    @property
    def passes_dir(self) -> Path:
        return self.path / "passes"

    def pass_path(self, epoch: int, kind: str = "epoch") -> Path:
        return self.passes_dir / f"{kind}_{epoch}.parquet"

    @property
    def train_losses(self) -> Path:
        return self.path / "train_losses.parquet"

    @property
    def scores(self) -> Path:
        return self.path / "scores.parquet"

    @property
    def clusters_dir(self) -> Path:
        return self.path / "clusters"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def source(self) -> Path:
        """The source rows, stored here when a run was given an in-memory dataset."""
        return self.path / "source.parquet"

    def checkpoint_dirs(self, *, complete: bool = True) -> list[Path]:
        """``checkpoints/checkpoint-N`` folders by step; with ``complete``, only those a run can resume from.

        transformers writes ``trainer_state.json`` last when it saves a checkpoint, so a folder whose
        state file is missing, cut short, or names another step was not saved whole (a kill or a full
        disk mid-save) and is skipped: the run resumes from the previous complete one.
        """
        return checkpoint_dirs(self.checkpoints, complete=complete)

    def completed_passes(self) -> list[int]:
        """Epoch indices K whose ``passes/epoch_K.parquet`` exists, ascending."""
        if not self.passes_dir.is_dir():
            return []
        found = (_PASS_RE.match(p.name) for p in self.passes_dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete the temporary files a killed process left behind (our ``.NAME.XXXX.tmp`` names only)."""
        removed = []
        for folder in (self.path, self.passes_dir, self.clusters_dir):
            if folder.is_dir():
                for p in folder.iterdir():
                    if p.is_file() and _TMP_RE.match(p.name):
                        p.unlink(missing_ok=True)
                        removed.append(p)
        return removed


def checkpoint_dirs(folder: str | os.PathLike, *, complete: bool = True) -> list[Path]:
    """The ``checkpoint-N`` folders of a trainer's ``output_dir``, by step; with ``complete``, only those
    saved whole (``trainer_state.json``, written last, is there and names step N)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _CHECKPOINT_RE.match(p.name)) and p.is_dir()]
    return [p for step, p in sorted(found) if not complete or _saved_whole(p, step)]


def _saved_whole(checkpoint: Path, step: int) -> bool:
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(state, dict) and state.get("global_step") == step


def check_run_dir(path: str | os.PathLike) -> None:
    """Refuse, with one sentence, an output directory that is not ours to write into.

    A run may write into a directory that does not exist yet, an empty one, or one holding an
    hf_lpselect run (``run.json``, checked by :meth:`~hf_lpselect.record.RunRecord.load`). Anything
    else, a folder of the user's files or a path under a regular file, is refused: a run never
    writes into, or cleans up, what it did not create.
    """
    path = Path(path)
    for parent in (path, *path.parents):
        if parent.exists() and not parent.is_dir():
            raise RunError(f"Cannot use {path} as the output directory: {parent} is a file, not a folder.")
        if parent.is_dir():
            break
    if not path.is_dir():
        return
    content = sorted(p.name for p in path.iterdir() if p.name != LOCK_NAME)
    if not content:
        return
    if (path / "run.json").exists():
        RunRecord.load(path)  # raises for an empty, damaged or foreign run.json
        return
    shown = ", ".join(content[:3]) + (f" and {len(content) - 3} more" if len(content) > 3 else "")
    raise RunError(
        f"{path} is not an hf_lpselect run directory (it holds {shown}); "
        "pass a new or empty --output_dir so nothing of yours is overwritten."
    )


@contextmanager
def run_lock(path: str | os.PathLike, *, flag: str = "--output_dir", name: str = LOCK_NAME) -> Iterator[None]:
    """Hold an output folder's lock while a command writes into it; a second process is refused.

    ``lpselect score`` holds it on its run directory, ``lpselect train`` on its ``--output_dir`` and
    ``lpselect eval`` on its ``--eval_dir``. The lock is an OS file lock: a crashed or killed process
    releases it, so it never stays stuck.

    Args:
        path (`str` or `os.PathLike`):
            The folder, created if missing.
        flag (`str`, defaults to `"--output_dir"`):
            The option that names the folder, for the sentence a second process gets.
        name (`str`, defaults to `LOCK_NAME`):
            The lock file's name inside the folder.

    Raises:
        [`RunError`]: another process holds the lock.

    Example:

    ```python
    >>> with run_lock("evals/hard", flag="--eval_dir"):
    ...     ...  # a second `lpselect eval --eval_dir evals/hard` is refused meanwhile
    ```
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path / name), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RunError(
            f"Another lpselect process is writing to {path}; wait for it to finish or pass another {flag}."
        ) from None
    try:
        yield
    finally:
        lock.release()
