"""Scores as Hub dataset columns: the pushed columns, the subset names, the materialised repo folder
(read back with the real `datasets.load_dataset(folder, config)`), the card, `load_scored`, and the
command line up to the network (`--dry-run`). The push itself, over HTTP, is in test_hub_push.py."""

import json
import math
import re
import shutil

import datasets
import numpy as np
import pandas as pd
import pytest
from conftest import FAST, lpselect
from huggingface_hub import DatasetCard, DatasetCardData

from hf_lpselect.errors import DataError
from hf_lpselect.hub.columns import (
    DEFAULT_SUBSETS,
    SUBSET_STRATEGIES,
    hub_columns,
    lp1_rank,
    parse_subset,
    scores_from_columns,
    select_scored,
    subset_name,
)
from hf_lpselect.hub.load import load_provenance, load_scored
from hf_lpselect.hub.materialize import materialize
from hf_lpselect.hub.provenance import CardProvenance
from hf_lpselect.scoring.demo_data import make_demo_rows
from hf_lpselect.scoring.scorer_run import score
from hf_lpselect.selection.strategies import select


RECORDS = [
    {"instruction": r["instruction"], "input": r["input"], "output": r["output"], "family": r["family"]}
    for r in make_demo_rows(40, seed=3)
]
RECORDS.append({"instruction": "Say nothing.", "input": "", "output": "", "family": "bad"})  # invalid
RECORDS.append(dict(RECORDS[0]))  # duplicate of row 0
SOURCE_COLUMNS = ["instruction", "input", "output", "family"]
OURS = [
    "lp1",
    "lp_app",
    "ppl_e0",
    "ppl_e1",
    "ppl_e2",
    "lp1_rank",
    "ifd_nll",
    "ifd_ppl",
    "lpselect_status",
    "lpselect_reason",
    "lpselect_id",
    "lpselect_response_tokens",
]


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
    out = pd.DataFrame(
        {
            "row": range(n),
            "id": [f"id{i}" for i in range(n)],
            "status": status or ["ok"] * n,
            "reason": [""] * n,
            "n_response_tokens": range(10, 10 + n),
        }
    )
    for k, values in enumerate(nll or [[1.0] * n, [0.5] * n]):
        out[f"nll_{k}"] = values
        out[f"ppl_{k}"] = np.exp(values)
    out["lp1"] = lp1
    return out


def test_lp1_rank_is_one_for_the_hardest_as_selection_rank_is_and_ties_go_by_row():
    scores = table([0.5, 0.2, float("nan"), 0.2, 0.9], status=["ok", "ok", "ok", "ok", "invalid"])
    assert lp1_rank(scores).tolist() == [3, 1, pd.NA, 2, pd.NA]  # before: 0-based, while selection_rank is 1-based


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


def test_a_random_subset_draws_from_the_rows_lp1_could_select():
    lp1 = [0.5, float("nan"), 0.2, float("nan"), 0.9, 0.1, 0.3, 0.7, float("nan"), 0.4]
    scores = table(lp1)
    for seed in range(5):
        drawn = select_scored(scores, "random", fraction=0.5, seed=seed).rows
        assert len(drawn) == 4 and not {1, 3, 8} & set(drawn)  # 50 % of the 7 rows with an LP(1), none without


def test_an_ok_row_without_lp1_says_why():
    scores = table([0.5, float("nan")])
    scores["lp_reason"] = ["", "no perplexity drop (P_0 <= P_n)"]
    assert hub_columns(scores, 2)["lpselect_reason"].tolist() == ["", "no perplexity drop (P_0 <= P_n)"]


@pytest.mark.parametrize(
    ("name", "strategy", "fraction"),
    [
        ("lp1_hard_5pct", "lp1-hard", 0.05),
        ("random_2p5pct", "random", 0.025),
        ("ppl_high_100pct", "ppl-high", 1.0),
        ("lp_app_hard_33pct", "lp-app-hard", 0.33),
    ],
)
def test_subset_names(name, strategy, fraction):
    spec = parse_subset(name)
    assert (spec.strategy, spec.fraction) == (strategy, fraction)
    assert subset_name(strategy, fraction) == name


@pytest.mark.parametrize(
    "name", ["lp1-hard-5", "lp1_hard_5", "clustered_random_5pct", "lp1_hard_0pct", "nope_5pct", "lp1_hard_101pct"]
)
def test_bad_subset_names_say_how_to_write_one(name):
    with pytest.raises(ValueError, match="STRATEGY_Npct|percentage"):
        parse_subset(name)


# ---------------------------------------------------------------- the materialised repo


def test_every_default_hard_subset_has_a_random_baseline_of_its_size():
    """Before: lp1_hard_10pct and lp1_hard_33pct were pushed with only random_5pct beside them."""
    sizes = {
        strategy: {parse_subset(n).fraction for n in DEFAULT_SUBSETS if parse_subset(n).strategy == strategy}
        for strategy in ("lp1-hard", "random")
    }
    assert sizes["lp1-hard"] == sizes["random"] == {0.05, 0.10, 0.33}


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
    assert hard["lp1_rank"] == list(range(1, len(hard) + 1))  # hardest first
    assert hard["lp1"] == sorted(hard["lp1"])


def test_the_card_parses_and_declares_each_config(repo):
    card = DatasetCard.load(repo.local_dir / "README.md")
    configs = {c["config_name"]: c["data_files"][0]["path"] for c in card.data.configs}
    assert set(configs) == set(repo.configs)
    assert re.fullmatch(r"data/train-00000-of-00001-[0-9a-f]{16}\.parquet", configs["default"])  # named by content
    assert {"lpselect", "data-selection"} <= set(card.data.tags)
    assert card.data.task_categories == ["text-generation"]
    text = card.text
    for name in repo.configs:
        assert f'"org/alpaca-scored", "{name}"' in text or name == "default"
    assert "Low = learned slowly = hard" in text and "Spearman ρ" in text and "@inproceedings" in text
    for figure in ("lpselect/figures/lp1_histogram.png", "lpselect/figures/lp1_vs_length.png"):
        assert figure in text and (repo.local_dir / figure).read_bytes()[:4] == b"\x89PNG"
    assert sorted(repo.files) == sorted(
        str(p.relative_to(repo.local_dir)) for p in repo.local_dir.rglob("*") if p.is_file()
    )


def test_an_existing_card_keeps_its_metadata_configs_and_text(run, tmp_path):
    existing = DatasetCard(
        "---\n"
        + DatasetCardData(
            license="cc-by-nc-4.0",
            language=["en"],
            tags=["instruction"],
            configs=[
                {
                    "config_name": "default",
                    "data_files": [
                        {"split": "train", "path": "data/train-*"},
                        {"split": "test", "path": "data/test-*"},
                    ],
                },
                {"config_name": "raw", "data_files": "raw/*.json", "default": True},
            ],
            dataset_info={"features": [{"name": "instruction", "dtype": "string"}]},
        ).to_yaml()
        + "\n---\n# Alpaca\n\nThe original card text.\n"
    )
    first = materialize(
        run.run_dir, "org/alpaca", tmp_path / "one", existing_card=existing, subsets=["lp1_hard_10pct"]
    )
    card = DatasetCard.load(first.local_dir / "README.md")
    assert card.data.license == "cc-by-nc-4.0" and card.data.language == ["en"]
    assert card.data.tags == ["instruction", "lpselect", "data-selection"]
    configs = {c["config_name"]: c for c in card.data.configs}
    assert list(configs) == ["default", "lp1_hard_10pct", "raw"]
    assert [name for name, c in configs.items() if c.get("default")] == ["default"]  # one default only
    assert "dataset_info" not in card.data.to_dict()  # its features predate our columns
    assert {f["split"] for f in configs["default"]["data_files"]} == {"train", "test"}
    assert card.text.count("The original card text.") == 1
    # pushing again over our own card replaces our section and the subsets we made, nothing else
    second = materialize(run.run_dir, "org/alpaca", tmp_path / "two", existing_card=card, subsets=["random_5pct"])
    again = DatasetCard.load(second.local_dir / "README.md")
    assert again.text.count("<!-- lpselect:begin") == 1 and again.text.count("The original card text.") == 1
    assert [c["config_name"] for c in again.data.configs] == ["default", "random_5pct", "raw"]
    assert again.data["lpselect"]["subsets"] == {"random_5pct": {"strategy": "random", "fraction": 0.05}}


# ---------------------------------------------------------------- the card's provenance block


def test_the_card_metadata_records_the_scorer_and_subsets_for_train(run, repo):
    provenance = CardProvenance.from_card(DatasetCard.load(repo.local_dir / "README.md"), where="org/alpaca-scored")
    assert provenance == load_provenance(str(repo.local_dir))
    assert provenance.scorer == run.record.model_name.rstrip("/").split("/")[-1] + " (local)"  # no local path
    assert (provenance.template, provenance.epochs, provenance.max_length) == (run.record.template, 2, 128)
    assert provenance.recipe == run.record.recipe and provenance.recipe["learning_rate"] == 1e-3
    assert provenance.recipe["use_peft"] is False and not {"lora_r", "lora_alpha", "lora_dropout"} & set(
        provenance.recipe
    )  # before: the card's recipe table listed LoRA settings for a run without LoRA
    card = (repo.local_dir / "README.md").read_text()
    assert "| use_peft | `False` |" in card and "| lora_r |" not in card
    assert provenance.source == "data.jsonl (local)" and provenance.source_split == "train"
    assert provenance.subsets == {
        n: {"strategy": parse_subset(n).strategy, "fraction": parse_subset(n).fraction} for n in DEFAULT_SUBSETS
    }
    assert provenance.selection_seed == 42


def test_keys_a_newer_version_adds_to_the_block_are_ignored():
    block = {"scorer": "org/scorer", "template": "chat", "scored_with_gpu": "H200", "subsets": {}}
    assert CardProvenance.from_dict(block, where="org/a") == CardProvenance(scorer="org/scorer", template="chat")


@pytest.mark.parametrize(
    ("block", "why"),
    [
        (["org/scorer"], "it is a list, not a mapping"),
        ({"template": "chat"}, "it names no scorer"),
        ({"scorer": "org/scorer", "epochs": "two"}, "epochs is 'two'"),
        (
            {"scorer": "org/scorer", "subsets": {"lp1_hard_5pct": "lp1-hard"}},
            "subset lp1_hard_5pct is 'lp1-hard', not a strategy and a fraction",
        ),
    ],
)
def test_a_malformed_block_is_one_sentence_naming_the_repo(block, why):
    card = DatasetCard("---\n" + DatasetCardData(lpselect=block).to_yaml() + "\n---\n")
    with pytest.raises(
        DataError,
        match=rf"^The `lpselect:` block of the dataset card of org/a is malformed \({re.escape(why)}\); push",
    ):
        CardProvenance.from_card(card, where="org/a")


def test_a_card_that_is_not_ours_has_no_provenance():
    assert CardProvenance.from_card(DatasetCard("---\nlicense: mit\n---\n# Alpaca\n"), where="org/a") is None


def test_the_card_reports_measured_agreement_with_another_scorer(run, tmp_path):
    import shutil

    from hf_lpselect.selection.compare import compare_runs

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


# ---------------------------------------------------------------- offline mode (--dry-run)


@pytest.fixture
def online(monkeypatch):
    """huggingface_hub's and datasets' offline flags, both off (the tests run with HF_HUB_OFFLINE=1)."""
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    return lambda: (hub_constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE)


def test_offline_sets_the_flags_back_when_the_last_overlapping_block_ends(online):
    from hf_lpselect.core.hub import offline

    first, second = offline(), offline()  # two threads' blocks: the first ends while the second is inside
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert online() == (True, True)
    second.__exit__(None, None, None)
    assert online() == (False, False)


def test_offline_sets_the_flags_back_after_an_error(online):
    from hf_lpselect.core.hub import offline

    with pytest.raises(RuntimeError), offline():
        assert online() == (True, True)
        raise RuntimeError("materialising failed")
    assert online() == (False, False)


# ---------------------------------------------------------------- command line, up to the network


def test_dry_run_materialises_without_a_token_or_network(run, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no stored token either
    out = tmp_path / "dry"
    result = lpselect(
        "push-scores",
        "org/alpaca",
        "--run",
        str(run.run_dir.path),
        "--dry-run",
        "--local-dir",
        str(out),
        "--subsets",
        "lp1_hard_10pct,ppl_high_10pct",
    )
    assert result.exit_code == 0, result.output
    assert "config lp1_hard_10pct: 4 rows" in result.output and "dry run: nothing was sent" in result.output
    assert len(datasets.load_dataset(str(out), "ppl_high_10pct", split="train")) == 4


def test_push_without_a_token_is_one_sentence(run, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    result = lpselect("push-scores", "org/alpaca", "--run", str(run.run_dir.path))
    assert result.exit_code == 2 and "No Hugging Face token" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--subsets", "lp1-hard-5"], "STRATEGY_Npct"),
        (["--subsets", "lp1_hard_5pct,lp1_hard_5pct"], "twice"),
    ],
)
def test_bad_push_requests_fail_before_any_network_call(run, args, message, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)  # without a token, any later check would say so instead
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    result = lpselect("push-scores", "org/alpaca", "--run", str(run.run_dir.path), *args)
    assert result.exit_code == 2 and message in result.output


def test_push_finds_the_latest_run_of_the_dataset_or_says_how(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = lpselect("push-scores", "org/never-scored", "--dry-run")
    assert result.exit_code == 2 and "pass --run" in result.output


def test_a_non_empty_local_dir_is_refused(run, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        materialize(run.run_dir, "org/a", tmp_path / "full")


def test_a_card_without_configs_keeps_the_splits_datasets_detects(run, tmp_path):
    existing = DatasetCard("# Alpaca\n\nNo YAML at all.\n")
    detected = [
        {
            "config_name": "default",
            "data_files": [{"split": "train", "path": ["data/train-*"]}, {"split": "test", "path": ["data/test-*"]}],
        }
    ]
    plan = materialize(
        run.run_dir, "org/alpaca", tmp_path / "repo", existing_card=existing, detected_configs=detected, subsets=[]
    )
    card = DatasetCard.load(plan.local_dir / "README.md")
    assert card.data.configs[0]["data_files"] == [
        {"split": "train", "path": plan.files[1]},
        {"split": "test", "path": ["data/test-*"]},
    ]
    assert "No YAML at all." in card.text


def edited_run(run, tmp_path, **dataset):
    """A copy of the run directory whose run.json dataset block is edited."""
    import shutil

    copy = tmp_path / "edited"
    shutil.copytree(run.run_dir.path, copy)
    info = json.loads((copy / "run.json").read_text())
    info["dataset"].update(dataset)
    (copy / "run.json").write_text(json.dumps(info))
    return copy


def test_a_source_that_changed_since_the_run_is_refused(run, tmp_path):
    changed = [dict(r) for r in RECORDS]
    changed[3]["output"] += " (edited later)"
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in changed))
    with pytest.raises(ValueError, match="no longer holds the rows"):
        materialize(edited_run(run, tmp_path, source=str(data)), "org/a", tmp_path / "repo")


def test_a_split_slice_cannot_be_pushed(run, tmp_path):
    with pytest.raises(ValueError, match="not a whole split.*--limit N"):
        materialize(edited_run(run, tmp_path, split="train[:10]"), "org/a", tmp_path / "repo")


@pytest.fixture(scope="module")
def short_runs(tmp_path_factory, tiny_model_dir):
    """The same data scored with 0 epochs, and with 1 epoch on the first 30 rows only (--limit)."""
    base = tmp_path_factory.mktemp("short")
    data = base / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    kwargs = dict(model=str(tiny_model_dir), max_length=128, **FAST)
    return {
        0: score(str(data), out=base / "e0", epochs=0, **kwargs),
        1: score(str(data), out=base / "e1", epochs=1, limit=30, **kwargs),
    }


def test_a_folder_made_again_under_an_earlier_folders_name_loads_its_own_rows(short_runs, tmp_path):
    """datasets caches a local folder by its name and its card's configs (one cache for the whole
    test, as for a user): two `repo` folders with the same configs must not read each other's rows."""
    first = materialize(short_runs[0].run_dir, "org/a", tmp_path / "first" / "repo")  # 0 epochs: ppl_e0 only
    assert "ppl_e1" not in datasets.load_dataset(str(first.local_dir), "default", split="train").column_names
    second = materialize(short_runs[1].run_dir, "org/a", tmp_path / "second" / "repo")  # 1 epoch, first 30 rows
    statuses = datasets.load_dataset(str(second.local_dir), "default", split="train")["lpselect_status"]
    assert list(statuses).count("unscored") == len(RECORDS) - 30
    shutil.rmtree(first.local_dir)  # the same path made again
    again = materialize(short_runs[1].run_dir, "org/a", first.local_dir)
    assert "ppl_e1" in datasets.load_dataset(str(again.local_dir), "default", split="train").column_names


def test_the_same_rows_give_the_same_file_names(run, tmp_path):
    one = materialize(run.run_dir, "org/a", tmp_path / "one", subsets=["lp1_hard_10pct"])
    two = materialize(run.run_dir, "org/a", tmp_path / "two", subsets=["lp1_hard_10pct"])
    assert [f for f in one.files if f.endswith(".parquet")] == [f for f in two.files if f.endswith(".parquet")]
    assert not list(one.local_dir.rglob("*.tmp"))


def test_a_run_without_training_pushes_perplexities_and_says_so(short_runs, tmp_path):
    plan = materialize(short_runs[0].run_dir, "org/a", tmp_path / "repo")
    assert set(plan.configs) == {"default"} and "no LP(1) (0 epochs)" in plan.notes[0]
    assert plan.commit_message.startswith("Add perplexity scores from tiny_model")
    text = (plan.local_dir / "README.md").read_text()
    assert "The model was not trained" in text and "`ppl_e0` | the response's perplexity under the scorer" in text
    assert "learning-percentage" not in text and "fine-tuned" not in text and "random_*" not in text
    default = datasets.load_dataset(str(plan.local_dir), "default", split="train")
    assert (
        "ppl_e0" in default.column_names and "lp1" not in default.column_names and "ppl_e1" not in default.column_names
    )


def test_a_one_epoch_limited_run_accounts_for_every_source_row(short_runs, tmp_path):
    plan = materialize(short_runs[1].run_dir, "org/a", tmp_path / "repo")
    assert set(plan.configs) == {"default"} and "lp_app_hard_5pct" in plan.notes[0]
    text = (plan.local_dir / "README.md").read_text()
    assert "of which the first 30 were in the scorer run" in text and "rank by `lp_app` instead" in text
    default = datasets.load_dataset(str(plan.local_dir), "default", split="train")
    assert len(default) == len(RECORDS)
    statuses = list(default["lpselect_status"])
    assert statuses[30:] == ["unscored"] * (len(RECORDS) - 30) and "unscored" not in statuses[:30]
    named = materialize(short_runs[1].run_dir, "org/a", tmp_path / "named", subsets=["lp_app_hard_10pct"])
    assert named.configs["lp_app_hard_10pct"] == 3  # 10 % of the 30 scored rows


def test_an_empty_subset_is_a_config_with_no_rows(run, tmp_path):
    plan = materialize(run.run_dir, "org/a", tmp_path / "repo", subsets=["ifd_nll_5pct"])
    if plan.configs["ifd_nll_5pct"] == 0:  # every IFD >= 1 with this tiny random model
        assert "| `ifd_nll_5pct` |" in (plan.local_dir / "README.md").read_text()
    assert (
        len(datasets.load_dataset(str(plan.local_dir), "ifd_nll_5pct", split="train")) == plan.configs["ifd_nll_5pct"]
    )


def test_bad_repo_ids_are_one_sentence(run):
    result = lpselect("push-scores", "https://huggingface.co/datasets/org/a", "--run", str(run.run_dir.path))
    assert result.exit_code == 2 and "Bad repo id" in result.output and "Traceback" not in result.output


def test_find_run_takes_the_latest_and_refuses_to_guess_between_splits(run, tmp_path):
    import os
    import shutil

    from hf_lpselect.hub.materialize import find_run

    for name, mtime in (("old", 1_000_000), ("new", 2_000_000)):
        shutil.copytree(run.run_dir.path, tmp_path / name)
        os.utime(tmp_path / name / "scores.parquet", (mtime, mtime))
    source = run.record.dataset.source
    assert find_run(source, runs_dir=tmp_path).path == tmp_path / "new"
    info = json.loads((tmp_path / "old" / "run.json").read_text())
    info["dataset"]["split"] = "test"
    (tmp_path / "old" / "run.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="Several splits or configs"):
        find_run(source, runs_dir=tmp_path)


def test_pushes_that_would_overwrite_other_data_are_refused(run):
    from hf_lpselect.hub.push import Target, _check_target

    source = run.record.dataset.source
    foreign = Target(exists=True, sha="0" * 40, detected_configs=[{"config_name": "default", "data_files": "x/*"}])
    with pytest.raises(ValueError, match="already holds another dataset"):
        _check_target(foreign, "org/other", run.record.dataset)
    _check_target(Target(exists=False), "org/new", run.record.dataset)  # a new repo is fine
    _check_target(foreign, source, run.record.dataset)  # the scored dataset itself is fine
    ours = Target(exists=True, sha="0" * 40, card=DatasetCard("---\ntags:\n- lpselect\n---\n"))
    _check_target(ours, "org/other", run.record.dataset)  # an earlier push of ours is fine
