"""Scores as Hub dataset columns: the pushed columns, the subset names, the materialised repo folder
(read back with the real `datasets.load_dataset(folder, config)`), the card, `load_scored`, and the
command line up to the network (`--dry-run`). The push itself, over HTTP, is in test_hub_push.py."""

import json
import math

import datasets
import numpy as np
import pandas as pd
import pytest
from huggingface_hub import DatasetCard, DatasetCardData
from typer.testing import CliRunner

from hf_lpselect.cli import app
from hf_lpselect.columns import (
    DEFAULT_SUBSETS,
    SUBSET_STRATEGIES,
    hub_columns,
    lp1_rank,
    parse_subset,
    scores_from_columns,
    select_scored,
    subset_name,
)
from hf_lpselect.demo_data import make_demo_rows
from hf_lpselect.hub import load_scored, materialize
from hf_lpselect.run import score
from hf_lpselect.select import select

FAST = {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 1, "learning_rate": 1e-3, "bf16": False}
RECORDS = [{"instruction": r["instruction"], "input": r["input"], "output": r["output"], "family": r["family"]}
           for r in make_demo_rows(40, seed=3)]
RECORDS.append({"instruction": "Say nothing.", "input": "", "output": "", "family": "bad"})  # invalid
RECORDS.append(dict(RECORDS[0]))  # duplicate of row 0
SOURCE_COLUMNS = ["instruction", "input", "output", "family"]
OURS = ["lp1", "lp_app", "ppl_e0", "ppl_e1", "ppl_e2", "lp1_rank", "ifd_nll", "ifd_ppl",
        "lpselect_status", "lpselect_reason", "lpselect_id", "lpselect_response_tokens"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir):
    base = tmp_path_factory.mktemp("hub")
    data = base / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return score(str(data), out=base / "run", model=str(tiny_model_dir), epochs=2, max_length=128, ifd=True, **FAST)


@pytest.fixture(scope="module")
def repo(run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("repo") / "alpaca-scored"
    return materialize(run.run_dir, "org/alpaca-scored", folder)


# ---------------------------------------------------------------- columns (pure)


def table(lp1, status=None, nll=None):
    n = len(lp1)
    out = pd.DataFrame({"row": range(n), "id": [f"id{i}" for i in range(n)], "status": status or ["ok"] * n,
                        "reason": [""] * n, "n_response_tokens": range(10, 10 + n)})
    for k, values in enumerate(nll or [[1.0] * n, [0.5] * n]):
        out[f"nll_{k}"] = values
        out[f"ppl_{k}"] = np.exp(values)
    out["lp1"] = lp1
    return out


def test_lp1_rank_is_zero_for_the_hardest_and_ties_go_by_row():
    scores = table([0.5, 0.2, float("nan"), 0.2, 0.9], status=["ok", "ok", "ok", "ok", "invalid"])
    assert lp1_rank(scores).tolist() == [2, 0, pd.NA, 1, pd.NA]


def test_hub_columns_hold_perplexities_and_account_for_unscored_rows():
    scores = table([0.5, 0.2], nll=[[math.log(4.0), math.log(9.0)], [math.log(2.0), math.log(3.0)]])
    cols = hub_columns(scores, n_source_rows=3)  # the run scored 2 of 3 source rows (--limit 2)
    assert cols["ppl_e0"].tolist()[:2] == pytest.approx([4.0, 9.0])
    assert cols["ppl_e1"].tolist()[:2] == pytest.approx([2.0, 3.0])
    assert cols["lpselect_status"].tolist() == ["ok", "ok", "unscored"]
    assert "first 2 rows" in cols["lpselect_reason"][2]
    assert pd.isna(cols["lp1"][2]) and pd.isna(cols["lp1_rank"][2])
    with pytest.raises(ValueError, match="changed since"):
        hub_columns(scores, n_source_rows=1)


@pytest.mark.parametrize("strategy", SUBSET_STRATEGIES)
def test_selecting_from_pushed_columns_equals_selecting_from_the_run(run, strategy):
    """load_scored's path (scores -> columns -> scores -> select) picks exactly the run's rows."""
    scores = run.scores
    back = scores_from_columns(hub_columns(scores, len(scores)))
    kwargs = {"fraction": 0.25, "seed": 7}
    assert select_scored(back, strategy, **kwargs).rows == select_scored(scores, strategy, **kwargs).rows


def test_a_random_subset_is_the_same_size_as_the_lp_subset(run):
    hard = select(run.scores, "lp1-hard", fraction=0.1)
    assert len(select_scored(run.scores, "random", fraction=0.1).rows) == len(hard.rows)


@pytest.mark.parametrize(("name", "strategy", "fraction"), [
    ("lp1_hard_5pct", "lp1-hard", 0.05), ("random_2p5pct", "random", 0.025),
    ("ppl_high_100pct", "ppl-high", 1.0), ("lp_app_hard_33pct", "lp-app-hard", 0.33),
])
def test_subset_names(name, strategy, fraction):
    spec = parse_subset(name)
    assert (spec.strategy, spec.fraction) == (strategy, fraction)
    assert subset_name(strategy, fraction) == name


@pytest.mark.parametrize("name", ["lp1-hard-5", "lp1_hard_5", "clustered_random_5pct", "lp1_hard_0pct", "nope_5pct", "lp1_hard_101pct"])
def test_bad_subset_names_say_how_to_write_one(name):
    with pytest.raises(ValueError, match="STRATEGY_Npct|percentage"):
        parse_subset(name)


# ---------------------------------------------------------------- the materialised repo


def test_every_config_loads_with_datasets_with_the_expected_rows(run, repo):
    default = datasets.load_dataset(str(repo.local_dir), "default", split="train")
    assert default.column_names == SOURCE_COLUMNS + OURS
    assert len(default) == len(RECORDS)  # every input row, invalid and duplicate included
    assert default["output"] == [r["output"] for r in RECORDS]
    assert default["lpselect_status"][-2:] == ["invalid", "duplicate"]
    assert all(default["lpselect_reason"][-2:])
    assert set(repo.configs) == {"default", *DEFAULT_SUBSETS}
    for name, spec in ((n, parse_subset(n)) for n in DEFAULT_SUBSETS):
        subset = datasets.load_dataset(str(repo.local_dir), name, split="train")
        expected = select_scored(run.scores, spec.strategy, fraction=spec.fraction)
        assert len(subset) == len(expected.rows) == repo.configs[name]
        assert subset["output"] == [RECORDS[r]["output"] for r in expected.rows]
        assert subset.column_names == default.column_names
    hard = datasets.load_dataset(str(repo.local_dir), "lp1_hard_33pct", split="train")
    assert hard["lp1_rank"] == list(range(len(hard)))  # hardest first
    assert hard["lp1"] == sorted(hard["lp1"])


def test_the_card_parses_and_declares_each_config(repo):
    card = DatasetCard.load(repo.local_dir / "README.md")
    configs = {c["config_name"]: c["data_files"][0]["path"] for c in card.data.configs}
    assert set(configs) == set(repo.configs)
    assert configs["default"] == "data/train-*"
    assert {"lpselect", "data-selection"} <= set(card.data.tags)
    assert card.data.task_categories == ["text-generation"]
    text = card.text
    for name in repo.configs:
        assert f'"org/alpaca-scored", "{name}"' in text or name == "default"
    assert "Low = learned slowly = hard" in text and "Spearman ρ" in text and "@inproceedings" in text
    for figure in ("lpselect/figures/lp1_histogram.png", "lpselect/figures/lp1_vs_length.png"):
        assert figure in text and (repo.local_dir / figure).read_bytes()[:4] == b"\x89PNG"
    assert sorted(repo.files) == sorted(str(p.relative_to(repo.local_dir)) for p in repo.local_dir.rglob("*") if p.is_file())


def test_an_existing_card_keeps_its_metadata_configs_and_text(run, tmp_path):
    existing = DatasetCard(
        "---\n" + DatasetCardData(license="cc-by-nc-4.0", language=["en"], tags=["instruction"], configs=[
            {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"},
                                                      {"split": "test", "path": "data/test-*"}]},
            {"config_name": "raw", "data_files": "raw/*.json"},
        ]).to_yaml() + "\n---\n# Alpaca\n\nThe original card text.\n"
    )
    first = materialize(run.run_dir, "org/alpaca", tmp_path / "one", existing_card=existing, subsets=["lp1_hard_10pct"])
    card = DatasetCard.load(first.local_dir / "README.md")
    assert card.data.license == "cc-by-nc-4.0" and card.data.language == ["en"]
    assert card.data.tags == ["instruction", "lpselect", "data-selection"]
    configs = {c["config_name"]: c for c in card.data.configs}
    assert list(configs) == ["default", "lp1_hard_10pct", "raw"]
    assert {f["split"] for f in configs["default"]["data_files"]} == {"train", "test"}
    assert card.text.count("The original card text.") == 1
    # pushing again over our own card replaces our section and the subsets we made, nothing else
    second = materialize(run.run_dir, "org/alpaca", tmp_path / "two", existing_card=card, subsets=["random_5pct"])
    again = DatasetCard.load(second.local_dir / "README.md")
    assert again.text.count("<!-- lpselect:begin") == 1 and again.text.count("The original card text.") == 1
    assert [c["config_name"] for c in again.data.configs] == ["default", "random_5pct", "raw"]


def test_the_card_reports_measured_agreement_with_another_scorer(run, tmp_path):
    import shutil

    from hf_lpselect.compare import compare_runs

    copy = tmp_path / "run"
    shutil.copytree(run.run_dir.path, copy)
    compare_runs(copy, run.run_dir.path, out=copy / "compare-other")
    plan = materialize(copy, "org/a", tmp_path / "repo", subsets=[])
    text = (plan.local_dir / "README.md").read_text()
    assert "lp1 Spearman 1.000" in text and "overlap of the hardest" in text
    assert "No agreement with another scorer was measured" not in text
    assert set(plan.configs) == {"default"}


def test_load_scored_builds_any_subset_with_the_selection_code(run, repo):
    subset = load_scored(str(repo.local_dir), "lp1-hard", fraction=0.07)
    expected = select(run.scores, "lp1-hard", fraction=0.07)
    assert subset["output"] == [RECORDS[r]["output"] for r in expected.rows]
    assert subset["selection_rank"] == list(range(1, len(expected.rows) + 1))
    longest = load_scored(str(repo.local_dir), "longest", count=3)
    assert longest["lpselect_response_tokens"] == sorted(longest["lpselect_response_tokens"], reverse=True)


def test_load_scored_refuses_a_dataset_without_scores(tmp_path):
    datasets.Dataset.from_dict({"instruction": ["a"], "output": ["b"]}).to_parquet(str(tmp_path / "train.parquet"))
    with pytest.raises(ValueError, match="not pushed by `lpselect push-scores`"):
        load_scored(str(tmp_path), "lp1-hard", fraction=0.1)


# ---------------------------------------------------------------- command line, up to the network


def test_dry_run_materialises_without_a_token_or_network(run, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no stored token either
    out = tmp_path / "dry"
    result = CliRunner().invoke(app, ["push-scores", "org/alpaca", "--run", str(run.run_dir.path), "--dry-run",
                                      "--local-dir", str(out), "--subsets", "lp1_hard_10pct,ppl_high_10pct"])
    assert result.exit_code == 0, result.output
    assert "config lp1_hard_10pct: 4 rows" in result.output and "dry run: nothing was sent" in result.output
    assert len(datasets.load_dataset(str(out), "ppl_high_10pct", split="train")) == 4


def test_push_without_a_token_is_one_sentence(run, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    result = CliRunner().invoke(app, ["push-scores", "org/alpaca", "--run", str(run.run_dir.path)])
    assert result.exit_code == 2 and "No Hugging Face token" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--subsets", "lp1-hard-5"], "STRATEGY_Npct"),
    (["--subsets", "lp1_hard_5pct,lp1_hard_5pct"], "twice"),
])
def test_bad_push_requests_fail_before_any_network_call(run, args, message):
    result = CliRunner().invoke(app, ["push-scores", "org/alpaca", "--run", str(run.run_dir.path), *args])
    assert result.exit_code == 2 and message in result.output


def test_push_finds_the_latest_run_of_the_dataset_or_says_how(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["push-scores", "org/never-scored", "--dry-run"])
    assert result.exit_code == 2 and "pass --run" in result.output


def test_a_non_empty_local_dir_is_refused(run, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        materialize(run.run_dir, "org/a", tmp_path / "full")


def test_find_run_picks_the_finished_run_of_that_source(run):
    from hf_lpselect.hub import find_run

    source = run.info["dataset"]["source"]
    assert find_run(source, runs_dir=run.run_dir.path.parent).path == run.run_dir.path
