"""A whole scorer run on a tiny model: every input row accounted for, bad input handled, resume exact."""

import json

import pandas as pd
import pytest
from conftest import FAST, lpselect, write_jsonl
from transformers import TrainerCallback

from hf_lpselect.scoring.demo_data import make_demo_rows
from hf_lpselect.scoring.scorer_run import RunError, score


@pytest.fixture()
def messy_file(tmp_path):
    good = [{k: r[k] for k in ("instruction", "input", "output")} for r in make_demo_rows(12, seed=5)]
    bad = [
        {"instruction": "Say nothing.", "input": "", "output": ""},  # invalid: empty response
        {"instruction": "Count.", "input": "", "output": 7},  # invalid: not a string
        dict(good[0]),  # duplicate of row 0
        {"instruction": "word " * 200, "input": "", "output": "Too late."},  # excluded: prompt fills max_length
    ]
    return write_jsonl(tmp_path / "messy.jsonl", good + bad)


def test_every_input_row_appears_once_with_the_right_status(tmp_path, messy_file, tiny_model_dir):
    result = score(messy_file, out=tmp_path / "run", model=str(tiny_model_dir), epochs=2, max_length=96, **FAST)
    rows = pd.read_parquet(result.run_dir.rows)
    scores = pd.read_parquet(result.run_dir.scores)
    for table in (rows, scores):
        assert table["row"].tolist() == list(range(16))
    assert rows["status"].tolist() == ["ok"] * 12 + ["invalid", "invalid", "duplicate", "excluded"]
    assert rows.loc[12, "reason"] == "empty response"
    assert "not a string" in rows.loc[13, "reason"]
    assert rows.loc[14, "reason"] == "duplicate of row 0"
    assert "max_length=96" in rows.loc[15, "reason"]
    assert result.counts == {"ok": 12, "excluded": 1, "invalid": 2, "duplicate": 1, "truncated": 1}
    ok = scores["status"] == "ok"
    score_cols = ["nll_0", "nll_1", "nll_2", "ppl_0", "ppl_2", "lp_1", "lp_2", "lp1", "lp_app"]
    assert scores.loc[~ok, score_cols].isna().all().all()  # NaN, never 0, for rows not scored
    assert scores.loc[ok, ["nll_0", "nll_1", "nll_2"]].notna().all().all()
    for k in range(3):
        scored = pd.read_parquet(result.run_dir.pass_path(k))
        assert scored["row"].tolist() == list(range(12))
        assert (scored["n_tokens"] == rows.loc[:11, "n_response_tokens"]).all()
    losses = pd.read_parquet(result.run_dir.train_losses)
    assert sorted(losses.groupby("epoch")["row"].apply(sorted).tolist()) == [list(range(12))] * 2
    info = json.loads(result.run_dir.run_json.read_text())
    assert info["complete"] and info["counts"]["ok"] == 12
    assert not result.run_dir.checkpoints.exists()  # removed once the run is complete


class CrashAfterFirstCheckpoint(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if round(state.epoch) == 1:
            raise KeyboardInterrupt("simulated crash after epoch 1")


def test_resume_after_a_crash_gives_identical_scores(tmp_path, tiny_model_dir):
    data = write_jsonl(
        tmp_path / "d.jsonl",
        [{k: r[k] for k in ("instruction", "input", "output")} for r in make_demo_rows(16, seed=2)],
    )
    kwargs = dict(model=str(tiny_model_dir), epochs=2, max_length=96, **FAST)
    straight = score(data, out=tmp_path / "straight", **kwargs)

    with pytest.raises(KeyboardInterrupt):
        score(data, out=tmp_path / "crashed", callbacks=[CrashAfterFirstCheckpoint()], **kwargs)
    crashed = tmp_path / "crashed"
    assert sorted(p.name for p in (crashed / "passes").iterdir()) == ["epoch_0.parquet", "epoch_1.parquet"]
    assert not (crashed / "scores.parquet").exists()
    resumed = score(data, out=crashed, **kwargs)

    pd.testing.assert_frame_equal(resumed.scores, straight.scores)
    pd.testing.assert_frame_equal(
        pd.read_parquet(resumed.run_dir.train_losses), pd.read_parquet(straight.run_dir.train_losses)
    )


def test_a_finished_run_is_not_redone_and_a_different_one_is_refused(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "d.jsonl", make_demo_rows(6, seed=1))
    first = score(data, out=tmp_path / "r", model=str(tiny_model_dir), epochs=0, max_length=64, **FAST)
    ok = first.scores["status"] == "ok"
    assert "lp1" not in first.scores and first.scores.loc[ok, "ppl_0"].notna().all()  # epochs=0: one pass only
    mtime = first.run_dir.pass_path(0).stat().st_mtime_ns
    again = score(data, out=tmp_path / "r", model=str(tiny_model_dir), epochs=0, max_length=64, **FAST)
    assert first.run_dir.pass_path(0).stat().st_mtime_ns == mtime
    pd.testing.assert_frame_equal(again.scores, first.scores)
    assert not first.already_complete and again.already_complete
    argv = [
        "score",
        str(data),
        "--out",
        str(tmp_path / "cli"),
        "--model",
        str(tiny_model_dir),
        "--epochs",
        "0",
        "--max_length",
        "64",
        "--bf16",
        "false",
    ]
    said = [lpselect(*argv) for _ in range(2)]
    assert [r.exit_code for r in said] == [0, 0]
    assert "Already complete:" not in said[0].output
    assert "Already complete:" in said[1].output  # before: the summary again, as if just scored
    with pytest.raises(RunError, match="max_length"):
        score(data, out=tmp_path / "r", model=str(tiny_model_dir), epochs=0, max_length=32, **FAST)


def test_how_a_pass_is_batched_is_not_part_of_a_runs_identity(tmp_path, tiny_model_dir):
    """A finished run is resumed, not refused, with another token budget or row cap, or from a
    record written when the row cap still counted (its identity held score_batch_size)."""
    data = write_jsonl(tmp_path / "d.jsonl", make_demo_rows(6, seed=1))
    kwargs = dict(out=tmp_path / "r", model=str(tiny_model_dir), epochs=0, max_length=64, **FAST)
    first = score(data, **kwargs)
    again = score(data, **{**kwargs, "score_token_budget": 32, "score_batch_size": 2})
    pd.testing.assert_frame_equal(again.scores, first.scores)
    record = json.loads(first.run_dir.run_json.read_text())
    record["identity"]["score_batch_size"] = 8  # as a record of hf_lpselect before token budgets held it
    first.run_dir.run_json.write_text(json.dumps(record))
    pd.testing.assert_frame_equal(score(data, **kwargs).scores, first.scores)


def test_cli_bad_input_is_one_clear_sentence(tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"instruction": "a", "output": "b"}\n{"instruction": \n')
    result = lpselect("score", str(broken), "--out", str(tmp_path / "r"))
    assert result.exit_code == 2
    assert "broken.jsonl line 2" in result.output
    assert "Traceback" not in result.output


def test_lora_scorer_run_records_every_pass(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "d.jsonl", make_demo_rows(8, seed=6))
    result = score(
        data, out=tmp_path / "lora", model=str(tiny_model_dir), epochs=2, max_length=96, lora=True, lora_r=4, **FAST
    )
    ok = result.scores["status"] == "ok"
    assert result.scores.loc[ok, ["nll_0", "nll_1", "nll_2"]].notna().all().all()
    assert (result.scores.loc[ok, "nll_2"] != result.scores.loc[ok, "nll_0"]).all()  # the adapters trained
    losses = pd.read_parquet(result.run_dir.train_losses)
    assert sorted(losses.loc[losses["epoch"] == 2, "row"]) == sorted(result.scores.loc[ok, "row"])
    identity = json.loads(result.run_dir.run_json.read_text())["identity"]
    assert identity["use_peft"] is True and identity["lora_r"] == 4


def test_columns_of_no_known_format_are_mapped_and_select_reads_the_source_the_same_way(tmp_path, tiny_model_dir):
    """Before: question/answer rows were refused with "pass --format", and no format fits them."""
    records = [{"question": r["instruction"], "answer": r["output"]} for r in make_demo_rows(8, seed=2)]
    data = write_jsonl(tmp_path / "qa.jsonl", records)
    out = tmp_path / "r"
    refused = lpselect("score", str(data), "--out", str(out), "--model", str(tiny_model_dir))
    assert refused.exit_code == 2 and "--columns question=instruction,answer=output" in refused.output
    result = score(
        data,
        out=out,
        model=str(tiny_model_dir),
        epochs=2,
        max_length=96,
        columns="question=instruction,answer=output",
        **FAST,
    )
    assert (result.scores["status"] == "ok").all() and result.record.dataset.columns == {
        "question": "instruction",
        "answer": "output",
    }
    picked = lpselect(
        "select",
        str(out),
        "--strategy",
        "lp1-hard",
        "--fraction",
        "0.25",
        "--out",
        str(tmp_path / "hard.jsonl"),
    )
    assert picked.exit_code == 0, picked.output
    rows = [json.loads(line) for line in (tmp_path / "hard.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and {"question", "answer", "lp1"} <= set(rows[0])  # the user's own columns, as they are
