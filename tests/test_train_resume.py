"""`lpselect train` killed with SIGKILL (mid-epoch, while a checkpoint is written, while the final
model is saved) or stopped by a full disk: the SAME command resumes and ends with the weights an
uninterrupted run gets, and the record of what was trained on is the same.

The kill is real: a small driver runs the real `lpselect train` command in a subprocess and sends
itself SIGKILL at the chosen moment (a trainer callback, or inside the file write being made). The
re-run is the plain command, without the driver. Tolerance: fp32 weights equal within 1e-6 (on this
CPU they come out bitwise equal)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import write_jsonl
from safetensors.torch import load_file

from hf_lpselect.rundir import checkpoint_dirs
from hf_lpselect.scoring.demo_data import make_demo_rows
from hf_lpselect.training.train_record import RECORD_FILE


# 16 rows, 4 a step: 4 optimizer steps an epoch, 8 in all, a checkpoint every 2 steps
RECIPE = {
    "num_train_epochs": 2,
    "per_device_train_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "learning_rate": 1e-3,
    "warmup_steps": 0,
    "bf16": "false",
    "max_length": 96,
    "save_strategy": "steps",
    "save_steps": 2,
}
ATOL, RTOL = 1e-6, 1e-5

DRIVER = r"""
import os, signal, sys
moment, value, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
if moment == "step":  # SIGKILL right after optimizer step N
    from transformers import TrainerCallback
    from hf_lpselect.training import training_run as train_run

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == int(value):
                os.kill(os.getpid(), signal.SIGKILL)

    init = train_run.TargetTrainer.__init__
    def patched_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.add_callback(Kill())
    train_run.TargetTrainer.__init__ = patched_init
else:  # SIGKILL in the middle of writing the file whose path ends with `value` (half of it on disk)
    import torch
    save = torch.save
    def patched_save(obj, f, *args, **kwargs):
        if str(f).endswith(value):
            with open(f, "wb") as handle:
                handle.write(b"PK\x03\x04 half a file")
                handle.flush()
                os.fsync(handle.fileno())
            os.kill(os.getpid(), signal.SIGKILL)
        return save(obj, f, *args, **kwargs)
    torch.save = patched_save
sys.argv = ["lpselect", *argv]
from hf_lpselect.cli import main
main()
"""


def command(data: Path, model: Path, out: Path, **changes) -> list[str]:
    args = {"model_name_or_path": model, "dataset_name": data, "output_dir": out, **RECIPE, **changes}
    return ["train", *[a for k, v in args.items() for a in (f"--{k}", str(v))]]


def lpselect(args: list[str], driver: tuple[str, str] | None = None) -> subprocess.CompletedProcess:
    head = [sys.executable, "-c", DRIVER, *driver] if driver else [sys.executable, "-m", "hf_lpselect.cli"]
    return subprocess.run([*head, *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("train_data")
    return write_jsonl(
        base / "d.jsonl", [{k: r[k] for k in ("instruction", "input", "output")} for r in make_demo_rows(16, seed=11)]
    )


@pytest.fixture(scope="module")
def straight(tmp_path_factory, data, tiny_model_dir) -> Path:
    """The uninterrupted run."""
    out = tmp_path_factory.mktemp("straight") / "out"
    done = lpselect(command(data, tiny_model_dir, out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def assert_same_weights(out: Path, straight: Path) -> None:
    got, expected = load_file(out / "model.safetensors"), load_file(straight / "model.safetensors")
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        torch.testing.assert_close(got[key], value, atol=ATOL, rtol=RTOL)


def record(out: Path) -> dict:
    return json.loads((out / RECORD_FILE).read_text())


@pytest.mark.parametrize(
    "moment, value",
    [
        ("step", "7"),  # mid-epoch 2, after checkpoint-6
        ("save", "checkpoint-4/optimizer.pt"),  # while checkpoint-4 is written (its weights already are)
        ("save", "_lpselect_final_model.tmp/training_args.bin"),  # while the final model is saved
    ],
)
def test_a_killed_training_resumes_with_the_same_command_to_the_same_weights(
    tmp_path, data, tiny_model_dir, straight, moment, value
):
    out = tmp_path / "out"
    killed = lpselect(command(data, tiny_model_dir, out), driver=(moment, value))
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert not (out / "model.safetensors").exists()  # no half model for `lpselect eval` to load
    resumed = lpselect(command(data, tiny_model_dir, out))  # the same command, as a user re-runs it
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_weights(out, straight)
    assert record(out) == record(straight)  # what was trained on, unchanged
    assert not (out / "_lpselect_final_model.tmp").exists()
    state = json.loads((checkpoint_dirs(out)[-1] / "trainer_state.json").read_text())
    assert state["global_step"] == 8


def test_a_finished_run_re_run_gives_the_same_weights(tmp_path, data, tiny_model_dir, straight):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(straight, out)
    done = lpselect(command(data, tiny_model_dir, out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_weights(out, straight)


def test_a_changed_selection_or_source_is_refused_in_one_sentence(tmp_path, data, tiny_model_dir):
    out = tmp_path / "out"
    killed = lpselect(command(data, tiny_model_dir, out), driver=("step", "3"))
    assert killed.returncode == -9
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}, (out / RECORD_FILE).read_text()
    source = tmp_path / "d.jsonl"  # the same rows but one, edited
    lines = data.read_text().splitlines()
    edited = json.loads(lines[5])
    edited["output"] += " (edited)"
    source.write_text("\n".join(lines[:5] + [json.dumps(edited)] + lines[6:]) + "\n")
    for changes, named in (({"learning_rate": 5e-4}, "recipe"), ({"dataset_name": source}, "rows")):
        again = lpselect(command(data, tiny_model_dir, out, **changes))
        assert again.returncode == 2, again.stderr[-3000:]
        assert re.search(
            rf"(?m)^Error: {re.escape(str(out))} holds a training run with another [^\n]*{named}[^\n]*re-run that run's command",
            again.stderr,
        ), again.stderr[-3000:]
        assert "Traceback" not in again.stderr
        assert (
            {p.name: p.stat().st_mtime_ns for p in out.iterdir()},
            (out / RECORD_FILE).read_text(),
        ) == before  # nothing touched
    resumed = lpselect(command(data, tiny_model_dir, out))  # and the run's own command still resumes it
    assert resumed.returncode == 0, resumed.stderr[-3000:]


def test_a_folder_of_the_users_files_is_refused_untouched(tmp_path, data, tiny_model_dir):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    done = lpselect(command(data, tiny_model_dir, out))
    assert done.returncode == 2 and "holds no lpselect training run (it holds notes.txt)" in done.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
