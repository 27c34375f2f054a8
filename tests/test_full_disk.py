"""A full disk at any moment of a command: one sentence on a line of its own, no
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
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
        )
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
    return write_jsonl(
        tmp_path / "d.jsonl",
        [{k: r[k] for k in ("instruction", "input", "output")} for r in make_demo_rows(8, seed=3)],
    )


def lpselect(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hf_lpselect.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )


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


def test_score_a_disk_that_fills_early_says_so_on_a_line_of_its_own(small_disk, tmp_path, data, tiny_model_dir):
    """20 KiB: the disk fills while a progress bar is drawing. Before the fix the sentence was glued
    to the bar's line ("… 2/4 [00:00<00:00, 2.60it/s]Error: No space left …")."""
    disk = small_disk("20k")
    full = lpselect("score", data, "--model", tiny_model_dir, "--out", disk.path / "r", *SCORE_FLAGS)
    assert_one_sentence(full)
    assert "it/s]Error" not in full.stderr
    disk.grow()
    resumed = lpselect("score", data, "--model", tiny_model_dir, "--out", disk.path / "r", *SCORE_FLAGS)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    lpselect("score", data, "--model", tiny_model_dir, "--out", tmp_path / "straight", *SCORE_FLAGS)
    pd.testing.assert_frame_equal(
        pd.read_parquet(RunDir(disk.path / "r").scores), pd.read_parquet(RunDir(tmp_path / "straight").scores)
    )


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
    pd.testing.assert_frame_equal(
        pd.read_parquet(RunDir(disk.path / "r").scores), pd.read_parquet(RunDir(tmp_path / "straight").scores)
    )


def test_train_a_disk_that_fills_while_a_checkpoint_is_written(small_disk, tmp_path, tiny_model_dir):
    """`lpselect train` on 10 MiB: the tiny model's first checkpoint (weights + optimizer, ~19 MiB) does not fit."""
    import torch
    from safetensors.torch import load_file
    from test_train_resume import command

    data = write_jsonl(
        tmp_path / "t.jsonl",
        [{k: r[k] for k in ("instruction", "input", "output")} for r in make_demo_rows(16, seed=11)],
    )
    disk = small_disk("10m")
    full = lpselect(*command(data, tiny_model_dir, disk.path / "out"))
    assert_one_sentence(full)
    assert not half_written_checkpoints(disk.path), "a half-written checkpoint stayed behind"
    assert not (disk.path / "out" / "model.safetensors").exists()
    disk.grow()
    resumed = lpselect(*command(data, tiny_model_dir, disk.path / "out"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    straight = lpselect(*command(data, tiny_model_dir, tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr[-3000:]
    got, expected = (
        load_file(disk.path / "out" / "model.safetensors"),
        load_file(tmp_path / "straight" / "model.safetensors"),
    )
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, atol=1e-6, rtol=1e-5)
    assert (disk.path / "out" / "lpselect_train.json").read_text() == (
        tmp_path / "straight" / "lpselect_train.json"
    ).read_text()


def test_eval_a_disk_that_fills_while_results_are_written(small_disk, tmp_path, tokenizer):
    """`lpselect eval` on 16 KiB: the answers and replies fit, the figure does not."""
    from eval_models import ANY, bigram_model
    from judge_server import MisbehavingJudge

    yes = bigram_model(tokenizer, tmp_path / "yes", {ANY: "yes"})
    no = bigram_model(tokenizer, tmp_path / "no", {ANY: "no"})
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Question {i}?"}) + "\n" for i in range(4)))
    disk = small_disk("16k")
    with MisbehavingJudge() as judge:

        def run(eval_dir: Path) -> subprocess.CompletedProcess:
            return lpselect(
                "eval",
                "--models",
                f"yes={yes}",
                f"no={no}",
                "--test_sets",
                questions,
                "--eval_dir",
                eval_dir,
                "--max_new_tokens",
                "3",
                "--judge_base_url",
                judge.base_url,
                "--judge_model",
                "loopback-judge",
            )

        assert_one_sentence(run(disk.path / "eval"))
        asked = len(judge.asked)
        assert not (disk.path / "eval" / "results.json").exists() and not list(disk.path.glob("**/*.tmp"))
        disk.grow()
        resumed = run(disk.path / "eval")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert len(judge.asked) == asked  # every reply came from the file written before the disk filled
        straight = run(tmp_path / "straight")
        assert straight.returncode == 0, straight.stderr[-3000:]
    got, expected = (
        json.loads((folder / "results.json").read_text()) for folder in (disk.path / "eval", tmp_path / "straight")
    )
    assert got["pairwise"] == expected["pairwise"]
    assert [
        g["answer"] for g in map(json.loads, (disk.path / "eval" / "generations.jsonl").read_text().splitlines())
    ] == [g["answer"] for g in map(json.loads, (tmp_path / "straight" / "generations.jsonl").read_text().splitlines())]


def test_push_materialisation_on_a_full_disk_leaves_no_half_folder(small_disk, tmp_path, data, tiny_model_dir):
    """`lpselect push-scores --dry-run --local-dir` on 64 KiB: the shards fit, the figures do not. Before
    the fix the half-materialised folder stayed and the same command was refused ("not empty")."""
    from conftest import FAST

    from hf_lpselect.scoring.scorer_run import score

    score(data, out=tmp_path / "run", model=str(tiny_model_dir), epochs=2, max_length=64, **FAST)
    disk = small_disk("64k")

    def materialise(folder: Path) -> subprocess.CompletedProcess:
        return lpselect(
            "push-scores",
            "me/data",
            "--run",
            tmp_path / "run",
            "--subsets",
            "lp1_hard_50pct",
            "--dry-run",
            "--local-dir",
            folder,
        )

    assert_one_sentence(materialise(disk.path / "repo"))
    assert list(disk.path.iterdir()) == []  # neither a half folder nor the staging one
    disk.grow()
    resumed = materialise(disk.path / "repo")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert materialise(tmp_path / "straight").returncode == 0

    def files(root):
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in root.rglob("*")
            if p.is_file() and p.suffix == ".parquet"
        }

    assert files(disk.path / "repo") == files(tmp_path / "straight")
    assert sorted(p.relative_to(disk.path / "repo") for p in (disk.path / "repo").rglob("*")) == sorted(
        p.relative_to(tmp_path / "straight") for p in (tmp_path / "straight").rglob("*")
    )
