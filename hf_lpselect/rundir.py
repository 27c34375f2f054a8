"""The run directory: the on-disk contract between stages (DESIGN.md), written atomically.

    run.json, rows.parquet, passes/epoch_K.parquet, train_losses.parquet, scores.parquet

Every file is written to a temporary name in the same directory and renamed, so a crash never
leaves half a file, and a re-run can trust whatever it finds.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

# every input row ends with exactly one of these in rows.parquet and scores.parquet
STATUSES = ("ok", "excluded", "invalid", "duplicate")
_PASS_RE = re.compile(r"^epoch_(\d+)\.parquet$")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` to ``path`` as Parquet, atomically."""
    atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def write_text(text: str, path: str | os.PathLike) -> None:
    """Write ``text`` to ``path`` as UTF-8, atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` to ``path`` as indented JSON, atomically."""
    write_text(json.dumps(obj, indent=2, default=str) + "\n", path)


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

    def completed_passes(self) -> list[int]:
        """Epoch indices K whose ``passes/epoch_K.parquet`` exists, ascending."""
        if not self.passes_dir.is_dir():
            return []
        found = (_PASS_RE.match(p.name) for p in self.passes_dir.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def read_json(self) -> dict[str, Any]:
        return json.loads(self.run_json.read_text(encoding="utf-8"))
