"""Each rule where hf_lpselect differs from the paper's official code, pinned on hand-made rows
(docs/method.md, "Where we differ from the official code"). Each test computes what the official code's
rule gives next to what we give, so the difference itself is what the test states."""

import math

import datasets
import numpy as np
import pandas as pd
import pytest

from hf_lpselect.errors import ConfigError
from hf_lpselect.ingest import canonicalize
from hf_lpselect.lp import NO_DROP_REASON, learning_percentages
from hf_lpselect.selection.arguments import SelectArguments, SubsetArguments
from hf_lpselect.selection.strategies import per_cluster_counts, select
from hf_lpselect.templates import prompt_text, tokenize_rows


NAN = float("nan")


def official_lp1(p0: float, p1: float, pn: float) -> float:
    """The official code's LP(1): the plain ratio, its 0/0 turned into 0."""
    return 0.0 if p0 - pn == 0 else (p0 - p1) / (p0 - pn)


def scores_table(lp1: list[float], status: list[str] | None = None) -> pd.DataFrame:
    n = len(lp1)
    return pd.DataFrame(
        {"row": range(n), "id": [f"r{i}" for i in range(n)], "status": status or ["ok"] * n, "lp1": lp1}
    )


def rows_of(records: list[dict]) -> datasets.Dataset:
    return canonicalize(datasets.Dataset.from_list(records))


# ---------------------------------------------------------------- a row with no scored token


def test_a_row_with_no_scored_token_is_excluded_not_ranked_hardest(tokenizer):
    # the prompt fills max_length: no response token is left
    rows = rows_of([{"instruction": "word " * 300, "input": "", "output": "Short answer."}])
    out = tokenize_rows(rows, tokenizer, template="alpaca", max_length=64)[0]
    assert out["status"] == "excluded" and out["n_response_tokens"] == 0
    # the official code: 0 loss over 0 tokens is perplexity 1.0 in every pass, and LP(1) = 0/0 -> 0, the hardest
    assert official_lp1(1.0, 1.0, 1.0) == 0.0
    # ours: not scored, so NaN, never 0
    assert math.isnan(learning_percentages(np.array([[NAN, NAN, NAN, NAN]]))["lp1"][0])
    # so the official code puts it first in every hard subset; we skip it and say so
    scores = scores_table([0.2, 0.5, 0.8, NAN], status=["ok", "ok", "ok", "excluded"])
    sel = select(scores, "lp1-hard", count=1)
    assert sel.rows == (0,) and sel.skipped == {"status excluded": 1}


# ---------------------------------------------------------------- P_0 < P_n


def test_a_row_that_ends_worse_than_it_started_gets_nan_not_a_negative_lp1():
    # P_0 = 4, P_1 = 3, P_2 = 4.5, P_3 = 5: better after epoch 1, worse at the end
    assert official_lp1(4, 3, 5) == -1.0  # (4 - 3) / (4 - 5): the official code's hardest kind of row
    lp = learning_percentages(np.array([[4.0, 3.0, 4.5, 5.0]]))
    assert math.isnan(lp["lp1"][0]) and lp["lp_reason"][0] == NO_DROP_REASON
    assert lp["lp_app"][0] == 0.25  # (4 - 3) / 4 needs no total drop: still defined
    sel = select(scores_table([0.3, float(lp["lp1"][0])]), "lp1-hard", count=1)
    assert sel.rows == (0,) and sel.skipped == {"lp1 is NaN": 1}


# ---------------------------------------------------------------- an empty output


def test_an_empty_output_is_invalid_not_its_eos_scored_alone(tokenizer):
    rows = rows_of([{"instruction": "Say nothing.", "input": "", "output": ""}])
    assert rows[0]["status"] == "invalid" and rows[0]["reason"] == "empty response"
    out = tokenize_rows(rows, tokenizer, template="alpaca", max_length=512)[0]
    assert out["status"] == "invalid" and out["n_response_tokens"] == 0
    # the official code scores the target "" + EOS: one token, the EOS alone
    prompt = prompt_text("Say nothing.", "", "alpaca")
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    joint = tokenizer(prompt + "" + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    assert joint[n_prompt:] == [tokenizer.eos_token_id]


# ---------------------------------------------------------------- per-cluster counts


def two_clusters() -> tuple[pd.DataFrame, pd.Series]:
    """Cluster A: rows 0..39, all eligible. Cluster B: rows 40..80, row 80's LP(1) NaN (40 eligible of 41)."""
    rows = np.arange(81)
    lp1 = np.where(rows < 40, 1 - rows / 100, rows / 1000)
    lp1[80] = NAN
    return scores_table(lp1.tolist()), pd.Series(np.where(rows < 40, "A", "B"), index=rows)


def test_per_cluster_counts_take_eligible_rows_by_default_and_all_rows_as_the_official_code():
    scores, clusters = two_clusters()
    # 5 %: round(1 / 0.05) = 20. Ours: ceil(40 / 20) = 2 from A, ceil(40 eligible / 20) = 2 from B
    ours = select(scores, "lp1-hard", fraction=0.05, clusters=clusters)
    assert ours.rows == (40, 41, 39, 38) and ours.cluster_rows == "eligible"
    # the official code: ceil(41 / 20) = 3 from B, row 80 counted though it cannot be taken
    paper = select(scores, "lp1-hard", fraction=0.05, clusters=clusters, cluster_rows="all")
    assert paper.rows == (40, 41, 42, 39, 38) and paper.cluster_rows == "all" and paper.n_short == 0
    assert paper.summary()["cluster_rows"] == "all"
    assert per_cluster_counts({"A": 40, "B": 41}, 0.05).sum() == len(paper.rows) == 5
    # clustered-random takes the same counts
    drawn = select(scores, "clustered-random", fraction=0.05, clusters=clusters, cluster_rows="all", mirror="lp1-hard")
    assert sorted(drawn.groups) == ["A", "A", "B", "B", "B"]


def test_all_rows_counts_never_take_a_row_that_is_not_eligible():
    # cluster C: 3 rows, 2 of them NaN: its count ceil(3 / 20) = 1 is its one eligible row;
    # cluster D: 2 rows, both excluded: its count 1 cannot be met and is reported short
    scores = scores_table([0.5, NAN, NAN, NAN, NAN], status=["ok", "ok", "ok", "excluded", "excluded"])
    clusters = pd.Series(["C", "C", "C", "D", "D"], index=range(5))
    sel = select(scores, "lp1-hard", fraction=0.05, clusters=clusters, cluster_rows="all")
    assert sel.rows == (0,) and sel.n_short == 1
    assert sel.skipped == {"status excluded": 2, "lp1 is NaN": 2}


def test_cluster_rows_is_a_per_cluster_option_named_once():
    with pytest.raises(ValueError, match="per-cluster"):
        select(scores_table([0.1, 0.2]), "lp1-hard", fraction=0.5, cluster_rows="all")
    with pytest.raises(ValueError, match="eligible, all"):
        select(scores_table([0.1]), "lp1-hard", fraction=0.5, clusters=pd.Series([0]), cluster_rows="some")
    assert SubsetArguments(per_cluster=1000, cluster_rows="all").cluster_rows == "all"
    assert SelectArguments(run="r", strategy="lp1-hard", clusters="c.csv", cluster_rows="all").selects_per_cluster
    with pytest.raises(ConfigError, match="add --per_cluster K"):
        SubsetArguments(cluster_rows="all")
    with pytest.raises(ConfigError, match="eligible, all"):
        SubsetArguments(per_cluster=3, cluster_rows="paper")


# ---------------------------------------------------------------- prompt and response tokenised apart


@pytest.mark.parametrize(
    ("output", "merged"),
    [('"A stitch in time saves nine."', ':"'), ("- one\n- two", ":-"), (": x", "::")],
)
def test_prompt_and_response_are_tokenised_apart_so_the_first_response_token_never_merges(tokenizer, output, merged):
    prompt = prompt_text("Quote a proverb.", "", "alpaca")  # ends "### Response:"
    ours = tokenize_rows(
        rows_of([{"instruction": "Quote a proverb.", "input": "", "output": output}]),
        tokenizer,
        template="alpaca",
        max_length=512,
    )[0]
    n_prompt = ours["n_prompt_tokens"]
    # ours: the prompt's tokens, then the output's own tokens and EOS, all of them scored
    assert ours["input_ids"][n_prompt:] == tokenizer(output, add_special_tokens=False)["input_ids"] + [
        tokenizer.eos_token_id
    ]
    assert tokenizer.convert_ids_to_tokens(ours["input_ids"][n_prompt - 1 : n_prompt + 1])[0] == ":"
    # the official code tokenises prompt + output as one string: the prompt's final ":" and the output's
    # first character become one token, counted as prompt, so the scored tokens start one character later
    joint = tokenizer(prompt + output + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(joint[n_prompt - 1]) == merged
    assert joint[n_prompt:] == ours["input_ids"][n_prompt + 1 :]


def test_an_output_starting_with_a_letter_tokenises_the_same_both_ways(tokenizer):
    prompt = prompt_text("Name a primary colour.", "", "alpaca")
    ours = tokenize_rows(
        rows_of([{"instruction": "Name a primary colour.", "input": "", "output": "Red."}]),
        tokenizer,
        template="alpaca",
        max_length=512,
    )[0]
    assert ours["input_ids"] == tokenizer(prompt + "Red." + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
