"""A full disk at any moment of a command (issue 20): one sentence on a line of its own, no
traceback, no half-written file a later run would trust, and once space is freed the SAME command
resumes to the result an uninterrupted run gives.

The disks are real: a tmpfs of a few MiB mounted for the test (needs root and mount rights, as in
CI; skipped elsewhere), then grown with ``mount -o remount,size=…`` to "free some space"."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import write_jsonl
from hf_lpselect.record import RunRecord
from hf_lpselect.rundir import RunDir
from hf_lpselect.scoring.demo_data import make_demo_rows

NO_SPACE = "Error: No space left on the device; free some space and re-run the same command to resume."
SCORE_FLAGS = ["--epochs", "2", "--max_length", "64", "--batch-size", "4", "--grad-accum", "1", "--bf16", "false"]


class SmallDisk:
    """A tmpfs of ``size`` mounted at ``path``; :meth:`grow` frees space as a user would."""

    def __init__(self, path: Path, size: str):
        self.path = path
        path.mkdir(parents=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()}): the full-disk tests need root")

    def grow(self, size: str = "300m") -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)

    def umount(self) -> None:
        subprocess.run(["umount", str(self.path)], check=False)


@pytest.fixture()
def small_disk(tmp_path):
    disks: list[SmallDisk] = []

    def make(size: str) -> SmallDisk:
        disks.append(SmallDisk(tmp_path / f"disk{len(disks)}", size))
        return disks[-1]

    yield make
    for disk in disks:
        disk.umount()


@pytest.fixture()
def data(tmp_path):
    return write_jsonl(tmp_path / "d.jsonl", [{k: r[k] for k in ("instruction", "input", "output")} for r in make_demo_rows(8, seed=3)])


def lpselect(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hf_lpselect.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def assert_one_sentence(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 2, done.stderr[-3000:]
    assert re.search(rf"(?m)^{re.escape(NO_SPACE)}$", done.stderr), done.stderr[-3000:]  # on a line of its own
    assert "Traceback" not in done.stderr


def half_written_checkpoints(folder: Path) -> list[Path]:
    """checkpoint-N folders whose trainer_state.json (written last) is missing or names another step."""
    found = []
    for checkpoint in folder.glob("**/checkpoint-*"):
        state = checkpoint / "trainer_state.json"
        step = int(checkpoint.name.split("-")[1])
        if not state.is_file() or json.loads(state.read_text()).get("global_step") != step:
            found.append(checkpoint)
    return found


def test_score_a_disk_that_fills_while_an_epoch_checkpoint_is_written(small_disk, tmp_path, data, tiny_model_dir):
    """10 MiB: the passes and the model's weights fit, the optimizer state (torch's zip writer) does not.
    Before the fix: exit 1 and "RuntimeError: … inline_container.cc … unexpected pos", and the
    half-written checkpoint folder stayed behind."""
    disk = small_disk("10m")
    full = lpselect("score", data, "--model", tiny_model_dir, "--out", disk.path / "r", *SCORE_FLAGS)
    assert_one_sentence(full)
    assert "unexpected pos" not in full.stderr
    assert not half_written_checkpoints(disk.path), "a half-written checkpoint stayed behind"
    assert not list(disk.path.glob("**/*.tmp"))
    disk.grow()
    resumed = lpselect("score", data, "--model", tiny_model_dir, "--out", disk.path / "r", *SCORE_FLAGS)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    straight = lpselect("score", data, "--model", tiny_model_dir, "--out", tmp_path / "straight", *SCORE_FLAGS)
    assert straight.returncode == 0, straight.stderr[-3000:]
    assert RunRecord.load(disk.path / "r").complete
    pd.testing.assert_frame_equal(pd.read_parquet(RunDir(disk.path / "r").scores), pd.read_parquet(RunDir(tmp_path / "straight").scores))
