"""A scorer run never writes into, or deletes, what it did not create; never mixes two runs; and a
broken run refuses with one sentence instead of finishing with wrong numbers."""

import json
import re
import shutil

import pandas as pd
import pytest
from conftest import FAST, make_tiny_model, write_jsonl
from filelock import FileLock
from transformers import TrainerCallback

from hf_lpselect.errors import ConfigError, ModelError, RunError
from hf_lpselect.record import RunRecord
from hf_lpselect.rundir import LOCK_NAME, RunDir
from hf_lpselect.scoring.demo_data import make_demo_rows
from hf_lpselect.scoring.scorer_run import score


@pytest.fixture()
def data(tmp_path):
    return write_jsonl(
        tmp_path / "d.jsonl",
        [{k: r[k] for k in ("instruction", "input", "output")} for r in make_demo_rows(8, seed=3)],
    )


def test_a_folder_of_the_users_files_is_refused_and_left_untouched(tmp_path, data, tiny_model_dir):
    out = tmp_path / "mine"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "weights.bin").write_bytes(b"precious")
    with pytest.raises(RunError, match="not an hf_lpselect run directory .*checkpoints"):
        score(data, out=out, model=str(tiny_model_dir), epochs=1, max_length=64, **FAST)
    assert (out / "checkpoints" / "weights.bin").read_bytes() == b"precious"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints"]


@pytest.mark.parametrize("content", ["", "{}", "[1, 2]"])
def test_a_damaged_or_foreign_run_json_is_refused(tmp_path, data, tiny_model_dir, content):
    out = tmp_path / "r"
    out.mkdir()
    (out / "run.json").write_text(content)
    with pytest.raises(RunError, match="run.json"):
        score(data, out=out, model=str(tiny_model_dir), epochs=0, max_length=64, **FAST)
    assert (out / "run.json").read_text() == content


def test_an_output_dir_under_a_regular_file_is_one_sentence(tmp_path, data, tiny_model_dir):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunError, match="is a file, not a folder"):
        score(data, out=tmp_path / "file" / "run", model=str(tiny_model_dir), epochs=0, **FAST)


def test_a_second_process_writing_to_the_same_run_is_refused(tmp_path, data, tiny_model_dir):
    out = tmp_path / "r"
    out.mkdir()
    with FileLock(str(out / LOCK_NAME)):  # what a running `lpselect score` holds
        with pytest.raises(RunError, match="Another lpselect process is writing"):
            score(data, out=out, model=str(tiny_model_dir), epochs=0, max_length=64, **FAST)
    score(data, out=out, model=str(tiny_model_dir), epochs=0, max_length=64, **FAST)  # free again: runs


class CrashAfterPassZero(TrainerCallback):
    def on_step_begin(self, args, state, control, **kwargs):
        raise KeyboardInterrupt("simulated kill after pass 0")


def test_other_weights_in_the_same_model_folder_are_not_mixed_into_a_run(tmp_path, data, tokenizer):
    model_dir = tmp_path / "model"
    make_tiny_model(len(tokenizer), seed=0).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    kwargs = dict(out=tmp_path / "r", model=str(model_dir), epochs=1, max_length=64, **FAST)
    with pytest.raises(KeyboardInterrupt):
        score(data, callbacks=[CrashAfterPassZero()], **kwargs)
    assert RunDir(tmp_path / "r").completed_passes() == [0]
    make_tiny_model(len(tokenizer), seed=1).save_pretrained(model_dir)  # other weights, same folder
    with pytest.raises(RunError, match="model_identity"):
        score(data, **kwargs)


def test_a_different_lora_rank_is_a_different_run(tmp_path, data, tiny_model_dir):
    kwargs = dict(out=tmp_path / "r", model=str(tiny_model_dir), epochs=0, max_length=64, lora=True, **FAST)
    score(data, lora_r=4, **kwargs)
    with pytest.raises(RunError, match="lora_r"):
        score(data, lora_r=64, **kwargs)


def test_a_diverged_run_refuses_and_says_so(tmp_path, data, tiny_model_dir):
    out = tmp_path / "r"
    with pytest.raises(
        RunError, match=r"Training diverged in epoch \d \(step \d+: .*non-finite.*--learning_rate \(now 1e\+30\)"
    ):
        score(data, out=out, model=str(tiny_model_dir), epochs=2, max_length=64, **{**FAST, "learning_rate": 1e30})
    assert not (out / "scores.parquet").exists()
    record = RunRecord.load(out)
    assert not record.complete
    diverged = record.diverged["epoch"]
    assert max(RunDir(out).completed_passes()) < diverged  # nothing scored from the broken weights
    saved = [
        json.loads((c / "trainer_state.json").read_text())["epoch"]
        for c in RunDir(out).checkpoint_dirs(complete=False)
    ]
    assert all(epoch < diverged for epoch in saved)  # and no checkpoint of them


def test_a_half_written_checkpoint_is_skipped_and_no_temporary_file_is_left(tmp_path, data, tiny_model_dir):
    kwargs = dict(model=str(tiny_model_dir), epochs=2, max_length=64, **FAST)
    straight = score(data, out=tmp_path / "straight", **kwargs)

    class CrashAtSecondSave(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            if round(state.epoch) == 2:
                raise KeyboardInterrupt("simulated kill while saving epoch 2")

    out = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        score(data, out=out, keep_checkpoints=True, callbacks=[CrashAtSecondSave()], **kwargs)
    first, second = RunDir(out).checkpoint_dirs()
    (second / "trainer_state.json").unlink()  # as if killed mid-save: transformers writes it last
    (out / ".scores.parquet.x1y2.tmp").write_text("half a file")  # an atomic write cut short
    assert RunDir(out).checkpoint_dirs() == [first]
    resumed = score(data, out=out, **kwargs)
    pd.testing.assert_frame_equal(resumed.scores, straight.scores)
    assert not list(out.glob("**/*.tmp"))


def test_only_checkpoint_folders_are_removed_when_a_run_completes(tmp_path, data, tiny_model_dir):
    result = score(data, out=tmp_path / "r", model=str(tiny_model_dir), epochs=1, max_length=64, **FAST)
    assert not result.run_dir.checkpoints.exists()
    assert sorted(p.name for p in result.run_dir.path.iterdir()) == [
        LOCK_NAME,
        "passes",
        "rows.parquet",
        "run.json",
        "scores.parquet",
        "train_losses.parquet",
    ]


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"limit": 0}, "--limit must be 1 or more"),
        ({"limit": -3}, "--limit must be 1 or more"),
        ({"per_device_train_batch_size": 0}, "--per_device_train_batch_size must be 1 or more"),
        ({"gradient_accumulation_steps": 0}, "--gradient_accumulation_steps must be 1 or more"),
        ({"score_batch_size": -1}, r"--score_batch_size must be 0 \(no cap\) or more"),
        ({"epochs": 1.5}, "whole number"),
        ({"epochs": -1}, "whole number"),
        ({"max_steps": 3}, "--max_steps is not supported"),
        # fields the method fixes: before, accepted and silently ignored (or, for packing, LP(1) moved)
        (
            {"completion_only_loss": False},
            "--completion_only_loss False cannot be used for a scorer run: .*response alone",
        ),
        ({"packing": True}, "--packing True cannot be used for a scorer run"),
        ({"truncation_mode": "keep_end"}, "--truncation_mode keep_end cannot be used for a scorer run"),
        ({"template": "fancy"}, "--template must be one of"),
        ({"no_such_option": 1}, "Unknown argument"),
    ],
)
def test_bad_arguments_are_one_sentence(tmp_path, data, bad, message):
    with pytest.raises(ConfigError, match=message):
        score(data, out=tmp_path / "r", **{**FAST, **bad})
    assert not (tmp_path / "r").exists()


def test_a_folder_without_a_model_is_one_sentence(tmp_path, data):
    (tmp_path / "empty_model").mkdir()
    with pytest.raises(ModelError, match="folder without a model"):
        score(data, out=tmp_path / "r", model=str(tmp_path / "empty_model"), **FAST)


def test_an_in_memory_dataset_is_stored_with_the_run_and_can_be_selected(tmp_path, tiny_model_dir):
    import datasets

    from hf_lpselect.selection.subsets import run_source, select_run, selected_dataset

    records = [{k: r[k] for k in ("instruction", "input", "output")} for r in make_demo_rows(8, seed=4)]
    for i, record in enumerate(records):  # extra columns whose types pandas would change (1 → 1.0, None → NaN)
        record["votes"] = None if i == 3 else i
        record["tags"] = ["a"] if i % 2 else []
    rows = datasets.Dataset.from_list(records)
    result = score(rows, out=tmp_path / "r", model=str(tiny_model_dir), epochs=1, max_length=64, **FAST)
    assert result.record.dataset.stored and result.run_dir.source.is_file()
    selection, scores = select_run(result.run_dir.path, "lp1-hard", fraction=0.5)
    subset = selected_dataset(run_source(result.run_dir), scores, selection)
    assert subset["output"] == [rows[r]["output"] for r in selection.rows]
    assert subset["votes"] == [rows[r]["votes"] for r in selection.rows]

    from hf_lpselect.hub.materialize import materialize  # and it can be pushed: every row, with its scores

    plan = materialize(result.run_dir, "me/mem", tmp_path / "repo", subsets=["lp1_hard_50pct"])
    pushed = pd.read_parquet(tmp_path / "repo" / plan.files[1])
    assert pushed["output"].tolist() == rows["output"] and pushed["votes"].isna().tolist() == [
        v is None for v in rows["votes"]
    ]
    assert plan.configs == {
        "default": 8,
        "lp1_hard_50pct": len(select_run(result.run_dir.path, "lp1-hard", fraction=0.5)[0].rows),
    }


def test_an_output_dir_with_braces_is_a_plain_path(tmp_path, data, tiny_model_dir):
    result = score(
        data,
        out=str(tmp_path / "runs" / "{exp}-{dataset}"),
        model=str(tiny_model_dir),
        epochs=0,
        max_length=64,
        **FAST,
    )
    assert result.run_dir.path == tmp_path / "runs" / "{exp}-d"


def test_a_changed_tokenizer_in_the_model_folder_is_another_run(tmp_path, data, tokenizer):
    model_dir = tmp_path / "model"
    make_tiny_model(len(tokenizer)).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    kwargs = dict(out=tmp_path / "r", model=str(model_dir), epochs=1, max_length=64, **FAST)
    with pytest.raises(KeyboardInterrupt):
        score(data, callbacks=[CrashAfterPassZero()], **kwargs)
    config = json.loads((model_dir / "tokenizer_config.json").read_text())
    config["model_max_length"] = 77
    (model_dir / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match="model_identity"):
        score(data, **kwargs)


def test_select_refuses_a_source_that_was_reordered_since_the_run(tmp_path, data, tiny_model_dir):
    from hf_lpselect.errors import DataError
    from hf_lpselect.selection.subsets import run_source

    result = score(data, out=tmp_path / "r", model=str(tiny_model_dir), epochs=0, max_length=64, **FAST)
    lines = (tmp_path / "d.jsonl").read_text().splitlines()
    (tmp_path / "d.jsonl").write_text("\n".join(lines[1:] + lines[:1]) + "\n")  # the same rows, re-ordered
    with pytest.raises(DataError, match="no longer holds the rows .* in the same order"):
        run_source(result.run_dir)


def test_a_copied_run_keeps_working_but_a_moved_source_is_one_sentence(tmp_path, data, tiny_model_dir):
    from hf_lpselect.errors import DataError
    from hf_lpselect.selection.subsets import run_source

    result = score(data, out=tmp_path / "r", model=str(tiny_model_dir), epochs=0, max_length=64, **FAST)
    shutil.copytree(result.run_dir.path, tmp_path / "copy")
    assert len(run_source(RunDir(tmp_path / "copy"))) == 8
    (tmp_path / "d.jsonl").unlink()
    with pytest.raises(DataError, match="No such file"):
        run_source(RunDir(tmp_path / "copy"))


@pytest.fixture()
def small_disk(tmp_path):
    """A real 700 KiB tmpfs (needs root and mount rights, as in CI; skipped elsewhere)."""
    import subprocess

    mount = tmp_path / "small_disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=700k", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()}): the full-disk test needs root")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_is_one_sentence_and_the_same_command_resumes(small_disk, tmp_path, data, tiny_model_dir):
    import subprocess
    import sys

    command = [
        sys.executable,
        "-m",
        "hf_lpselect.cli",
        "score",
        data,
        "--model",
        str(tiny_model_dir),
        "--out",
        str(small_disk / "r"),
        "--epochs",
        "2",
        "--max_length",
        "64",
        "--batch-size",
        "4",
        "--grad-accum",
        "1",
        "--bf16",
        "false",
    ]
    full = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert full.returncode == 2, full.stderr[-3000:]
    # on a line of its own, not glued to the interrupted progress bar
    assert re.search(
        r"(?m)^Error: No space left on the device; free some space and re-run the same command to resume\.$",
        full.stderr,
    ), full.stderr[-2000:]
    assert "Traceback" not in full.stderr
    subprocess.run(["mount", "-o", "remount,size=200m", str(small_disk)], check=True)
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert RunRecord.load(small_disk / "r").complete
    assert not list(small_disk.glob("**/*.tmp"))


def test_a_path_object_is_a_source_like_its_string(tmp_path, data, tiny_model_dir):
    """``score(Path(...))`` used to fail with "Cannot score a PosixPath"."""
    result = score(data, out=tmp_path / "r", model=str(tiny_model_dir), epochs=0, max_length=64, **FAST)
    assert isinstance(data, type(tmp_path)) and result.record.dataset.source == str(data.resolve())
