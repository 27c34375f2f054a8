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
from typing import Any

import pandas as pd

_PASS_RE = re.compile(r"^epoch_(\d+)\.parquet$")


def _atomic_target(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def write_parquet(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` to ``path`` as Parquet, atomically."""
    path = Path(path)
    tmp = _atomic_target(path)
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` to ``path`` as indented JSON, atomically."""
    path = Path(path)
    tmp = _atomic_target(path)
    try:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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
