"""Selection strategies on hand-made scores tables: exact rows expected (docs/method.md §3 and §4)."""

import json
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from hf_lpselect.selection.strategies import (
    HARD_END,
    STRATEGIES,
    cluster_step,
    global_count,
    hard_end,
    per_cluster_counts,
    select,
    selection_frame,
)


NAN = float("nan")


def table(status=None, **columns) -> pd.DataFrame:
    """A scores table with rows 0..n-1, ids "r<row>", status ok unless given, plus ``columns``."""
    n = len(next(iter(columns.values())))
    out = pd.DataFrame({"row": range(n), "id": [f"r{i}" for i in range(n)], "status": status or ["ok"] * n})
    for name, values in columns.items():
        out[name] = values
    return out


def with_probabilities(p: list[list[float]]) -> pd.DataFrame:
    """nll_K = -log p_K, so exp(-nll_K) is exactly the per-epoch probability p_K (K = 0..n)."""
    return table(**{f"nll_{k}": [-math.log(row[k]) for row in p] for k in range(len(p[0]))})


# ---------------------------------------------------------------- each strategy, exact rows

# row:        0    1    2    3    4    5      ascending: 4, 1, 5, 2, 3, 0
LP1 = [0.9, 0.2, 0.5, 0.7, 0.1, 0.4]


def test_lp1_hard_medium_easy():
    scores = table(lp1=LP1)
    assert select(scores, "lp1-hard", count=2).rows == (4, 1)
    assert select(scores, "lp1-easy", count=2).rows == (0, 3)
    # middle: ascending order, window of k starting at floor((6 - 2) / 2) = 2 -> rows 5, 2
    assert select(scores, "lp1-medium", count=2).rows == (5, 2)
    # k = 1 cannot be centred among 6: floor(5 / 2) = 2 leans to the low end -> row 5 (0.4)
    assert select(scores, "lp1-medium", count=1).rows == (5,)
    # fraction 0.5 of 6 eligible = 3 rows
    sel = select(scores, "lp1-hard", fraction=0.5)
    assert sel.rows == (4, 1, 5)
    assert sel.values == (0.1, 0.2, 0.4)
    assert sel.score == "lp1"


def test_middle_third_is_the_middle_of_three_thirds():
    scores = table(lp1=[i / 10 for i in range(9)])
    assert select(scores, "lp1-hard", fraction=1 / 3).rows == (0, 1, 2)
    assert select(scores, "lp1-medium", fraction=1 / 3).rows == (3, 4, 5)
    assert select(scores, "lp1-easy", fraction=1 / 3).rows == (8, 7, 6)


def test_lp_app_hard():
    scores = table(lp_app=[0.3, -0.1, 0.8, 0.05])
    assert select(scores, "lp-app-hard", count=2).rows == (1, 3)


def test_longest_ties_by_row():
    scores = table(n_response_tokens=[10, 50, 30, 50, 5, 20])
    assert select(scores, "longest", count=3).rows == (1, 3, 2)  # rows 1 and 3 tie at 50: row 1 first


def test_perplexity_bands():
    # row:                 0  1  2  3  4   5     ascending P_0: 2, 0, 4, 3, 1, 5
    scores = table(ppl_0=[3, 9, 1, 7, 5, 11])
    assert select(scores, "ppl-low", count=2).rows == (2, 0)
    assert select(scores, "ppl-mid", count=2).rows == (4, 3)  # window starts at floor((6 - 2) / 2) = 2
    assert select(scores, "ppl-high", count=2).rows == (5, 1)


@pytest.mark.parametrize("variant", ["ifd-nll", "ifd-ppl"])
def test_ifd_keeps_only_below_1_and_takes_the_highest(variant):
    column = variant.replace("-", "_")
    scores = table(**{column: [0.5, 0.99, 1.0, 1.3, NAN, 0.7]})
    sel = select(scores, variant, count=10)  # a count caps at the 3 eligible rows
    assert sel.rows == (1, 5, 0)
    assert sel.skipped == {f"{column} is NaN": 1, f"{column} >= 1": 2}
    assert sel.n_eligible == 3
    assert select(scores, variant, fraction=0.5).rows == (1, 5)  # 0.5 x 3 = 1.5 rounds up to 2


def test_confidence_and_variability():
    # per-epoch probabilities exp(-nll_K); K = 0 (before training) is not used
    #        p_0  p_1  p_2     confidence = mean(p_1, p_2)   variability = std(p_1, p_2), ddof 0
    p = [
        [0.1, 0.5, 0.5],  # row 0: 0.5                        0.0
        [0.1, 0.2, 0.4],  # row 1: 0.3                        0.1
        [0.1, 0.9, 0.9],  # row 2: 0.9                        0.0
        [0.1, 0.3, 0.9],  # row 3: 0.6                        0.3
    ]
    scores = with_probabilities(p)
    sel = select(scores, "confidence", count=2)
    assert sel.rows == (1, 0)  # lowest confidence: cartography's hard-to-learn
    assert sel.values == pytest.approx((0.3, 0.5))
    sel = select(scores, "variability", count=3)
    assert sel.rows == (3, 1, 0)  # highest variability: ambiguous; rows 0 and 2 tie at 0 -> row 0
    assert sel.values == pytest.approx((0.3, 0.1, 0.0))


def test_variability_needs_two_epochs_and_confidence_one():
    one_epoch = with_probabilities([[0.1, 0.5], [0.1, 0.2]])
    assert select(one_epoch, "confidence", count=1).rows == (1,)
    with pytest.raises(ValueError, match="nll_1..nll_2"):
        select(one_epoch, "variability", count=1)


def test_random_is_a_seeded_uniform_draw_over_rows_sorted_by_row():
    scores = table(status=["ok"] * 18 + ["invalid", "excluded"], lp1=np.linspace(0, 1, 20))
    sel = select(scores, "random", count=5, selection_seed=7)
    expected = np.arange(18)[np.random.default_rng(7).permutation(18)[:5]]
    assert sel.rows == tuple(expected)
    assert sel.skipped == {"status excluded": 1, "status invalid": 1}
    assert sel.score is None and sel.values is None
    # input order does not matter
    assert select(scores.sample(frac=1, random_state=0), "random", count=5, selection_seed=7).rows == sel.rows


def test_determinism_with_seed():
    scores = table(lp1=np.linspace(0, 1, 100))
    assert select(scores, "random", fraction=0.1, selection_seed=1) == select(
        scores, "random", fraction=0.1, selection_seed=1
    )
    assert set(select(scores, "random", fraction=0.1, selection_seed=1).rows) != set(
        select(scores, "random", fraction=0.1, selection_seed=2).rows
    )


# ---------------------------------------------------------------- s2l


def s2l_table() -> pd.DataFrame:
    """Three obvious loss-trajectory shapes: A (2 rows) fast learners, B (4 rows) slow, C (10 rows) flat."""
    shapes = {"A": [5.0, 1.0, 0.5, 0.2], "B": [5.0, 4.0, 3.0, 2.0], "C": [2.0, 2.0, 2.0, 2.0]}
    members = ["A"] * 2 + ["B"] * 4 + ["C"] * 10
    rng = np.random.default_rng(0)
    traj = np.array([shapes[m] for m in members]) + rng.uniform(-0.01, 0.01, (len(members), 4))
    scores = table(**{f"nll_{k}": traj[:, k] for k in range(4)})
    scores["shape"] = members
    return scores


def test_s2l_covers_trajectory_clusters_evenly():
    scores = s2l_table()
    shape = dict(zip(scores["row"], scores["shape"]))
    # budget 6 over 3 clusters, smallest first: A gets 6 // 3 = 2 (all of it), B 4 // 2 = 2, C 2 // 1 = 2
    sel = select(scores, "s2l", count=6, trajectory_clusters=3)
    assert Counter(shape[r] for r in sel.rows) == {"A": 2, "B": 2, "C": 2}
    assert {r for r in sel.rows if shape[r] == "A"} == {0, 1}
    assert sel.n_clusters == 3 and sel.n_clusters_covered == 3
    assert sel.groups == (0, 0, 1, 1, 2, 2)  # trajectory clusters numbered from the smallest
    # budget 3 (default K = min(100, 3) = 3): one row from each shape
    assert Counter(shape[r] for r in select(scores, "s2l", count=3).rows) == {"A": 1, "B": 1, "C": 1}
    # budget 12: A is used up (2), B too (10 // 2 = 5 > 4), the rest comes from C
    sel = select(scores, "s2l", count=12, trajectory_clusters=3)
    assert Counter(shape[r] for r in sel.rows) == {"A": 2, "B": 4, "C": 6}
    assert select(scores, "s2l", count=6, trajectory_clusters=3, selection_seed=3) == select(
        scores, "s2l", count=6, trajectory_clusters=3, selection_seed=3
    )


def test_s2l_skips_rows_with_an_incomplete_trajectory():
    scores = s2l_table()
    scores.loc[3, "nll_2"] = NAN
    sel = select(scores, "s2l", fraction=1.0, trajectory_clusters=3)
    assert 3 not in sel.rows and len(sel.rows) == 15
    assert sel.skipped == {"nll_0..nll_3 has a NaN": 1}


# ---------------------------------------------------------------- eligibility


def full_table() -> pd.DataFrame:
    """Eight rows with every score column. Rows 4..7 must never be selected: invalid, excluded,
    duplicate (each with the most extreme scores, as the reference code's 0/0 bug would give) and
    an ok row whose every score is NaN."""
    status = ["ok"] * 4 + ["invalid", "excluded", "duplicate", "ok"]
    low, high = -100.0, 100.0
    scores = table(
        status=status,
        lp1=[0.5, 0.6, 0.7, 0.8, low, 0.0, low, NAN],
        lp_app=[0.5, 0.6, 0.7, 0.8, low, low, low, NAN],
        ppl_0=[2.0, 3.0, 4.0, 5.0, high, 1.0, high, NAN],
        n_response_tokens=[10, 20, 30, 40, 999, 0, 999, NAN],
        ifd_nll=[0.5, 0.6, 0.7, 0.8, 0.99, 0.99, 0.99, NAN],
        ifd_ppl=[0.5, 0.6, 0.7, 0.8, 0.99, 0.99, 0.99, NAN],
    )
    for k, shift in enumerate([3.0, 2.0, 1.5, 1.0]):
        scores[f"nll_{k}"] = [shift + i * 0.1 for i in range(7)] + [NAN]
    return scores


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_non_ok_and_nan_rows_are_never_selected(strategy):
    scores = full_table()
    clusters = pd.Series([0, 0, 1, 1, 0, 1, 0, 1], index=scores["row"]) if strategy == "clustered-random" else None
    sel = select(scores, strategy, fraction=1.0, clusters=clusters)
    statuses = {"status duplicate": 1, "status excluded": 1, "status invalid": 1}
    assert dict(list(sel.skipped.items())[:3]) == statuses  # status reasons come first
    if STRATEGIES[strategy].order == "random":
        # the random baselines have no score: every ok row is eligible (mirror= narrows the pool)
        assert sorted(sel.rows) == [0, 1, 2, 3, 7]
        assert sel.skipped == statuses
        mirrored = select(scores, strategy, fraction=1.0, clusters=clusters, mirror="lp1-hard")
        assert sorted(mirrored.rows) == [0, 1, 2, 3]
        assert mirrored.skipped == {**statuses, "lp1 is NaN": 1}
    else:
        assert sorted(sel.rows) == [0, 1, 2, 3]
        assert sum(sel.skipped.values()) == 4  # row 7 is counted once, under its score's NaN reason
        assert sel.n_eligible == 4 and sel.real_fraction == 1.0 and sel.real_fraction_of_input == 0.5


def test_skipped_reasons_for_lp1():
    sel = select(full_table(), "lp1-hard", count=2)
    assert sel.rows == (0, 1)
    assert sel.skipped == {"status duplicate": 1, "status excluded": 1, "status invalid": 1, "lp1 is NaN": 1}


def test_ties_broken_by_row_whatever_the_input_order():
    scores = table(lp1=[0.5] * 5)
    shuffled = scores.sample(frac=1, random_state=1)
    for strategy in ("lp1-hard", "lp1-easy"):
        assert select(scores, strategy, count=3).rows == (0, 1, 2)
        assert select(shuffled, strategy, count=3).rows == (0, 1, 2)
    assert select(shuffled, "lp1-medium", count=3).rows == (1, 2, 3)  # window starts at floor(2 / 2) = 1


# ---------------------------------------------------------------- sizes


def test_global_rounding():
    assert global_count(0.05, 30) == 2  # 1.5 rounds half up
    assert global_count(0.1, 25) == 3  # 2.5 rounds half up
    assert global_count(0.1, 24) == 2  # 2.4
    assert global_count(0.29, 50) == 15  # 14.5 (14.499999999999998 in floating point)
    assert global_count(0.01, 20) == 1  # 0.2, but a positive fraction of a non-empty pool takes a row
    assert global_count(0.5, 0) == 0


def test_real_fraction_has_two_denominators():
    scores = table(status=["ok"] * 8 + ["invalid"] * 2, lp1=np.linspace(0, 1, 10))
    sel = select(scores, "lp1-hard", fraction=0.25)
    assert sel.rows == (0, 1)  # 0.25 x 8 eligible
    assert (sel.n_input, sel.n_eligible) == (10, 8)
    assert sel.real_fraction == 0.25 and sel.real_fraction_of_input == 0.2
    assert select(scores, "lp1-hard", count=100).rows == tuple(range(8))  # a count caps at the eligible rows


def test_paper_cluster_arithmetic():
    counts = per_cluster_counts({"a": 40, "b": 41, "c": 1, "d": 0}, 0.05)
    assert counts.to_dict() == {"a": 2, "b": 3, "c": 1, "d": 0}  # ceil(n_c / 20)
    assert cluster_step(0.05) == 20 and cluster_step(0.1) == 10 and cluster_step(0.33) == 3
    assert cluster_step(1 / 3) == 3
    assert cluster_step(0.4) == 2  # round(2.5) == 2: Python's round, as the paper's round(100 / pct)
    assert cluster_step(0.7) == 1  # round(1.43): every eligible row
    assert per_cluster_counts([39, 40, 41], 0.1).tolist() == [4, 4, 5]


def two_clusters() -> tuple[pd.DataFrame, pd.Series]:
    """Cluster A: rows 0..39, lp1 = 1 - row / 100 (hardest: 39, 38). Cluster B: rows 40..80,
    lp1 = row / 1000 (hardest: 40, 41, 42)."""
    rows = np.arange(81)
    scores = table(lp1=np.where(rows < 40, 1 - rows / 100, rows / 1000))
    return scores, pd.Series(np.where(rows < 40, "A", "B"), index=rows)


def test_per_cluster_selection_takes_the_papers_counts():
    scores, clusters = two_clusters()
    sel = select(scores, "lp1-hard", fraction=0.05, clusters=clusters)
    # 2 of A's 40 and 3 of B's 41, in LP(1) order over both clusters
    assert sel.rows == (40, 41, 42, 39, 38)
    assert sel.groups == ("B", "B", "B", "A", "A")
    assert sel.per_cluster and sel.n_clusters == 2 and sel.n_clusters_covered == 2
    assert sel.real_fraction == pytest.approx(5 / 81)  # a nominal 5 % is 6.2 % of the rows
    assert sel.real_fraction > 0.05


def test_per_cluster_counts_use_eligible_rows_only():
    scores, clusters = two_clusters()
    scores.loc[80, "lp1"] = NAN  # B now has 40 eligible rows: 2, not 3
    sel = select(scores, "lp1-hard", fraction=0.05, clusters=clusters)
    assert Counter(sel.groups) == {"A": 2, "B": 2}
    assert sel.skipped == {"lp1 is NaN": 1}


def test_rows_without_a_cluster_id_are_skipped():
    scores, clusters = two_clusters()
    sel = select(scores, "lp1-hard", fraction=0.05, clusters=clusters.drop(index=[40, 41]))
    assert sel.rows == (42, 43, 39, 38)
    assert sel.skipped == {"no cluster id": 2}


def test_per_cluster_medium_is_centred_in_each_cluster():
    scores, clusters = two_clusters()
    sel = select(scores, "lp1-medium", fraction=0.05, clusters=clusters)
    # A ascending is rows 39..0: window of 2 starts at 19 -> rows 20, 19; B (41 rows, 3) starts at 19 -> 59, 60, 61
    assert sorted(sel.rows) == [19, 20, 59, 60, 61]


def test_clustered_random_matches_the_per_cluster_counts_of_lp1_hard():
    scores, clusters = two_clusters()
    hard = select(scores, "lp1-hard", fraction=0.05, clusters=clusters)
    rand = select(scores, "clustered-random", fraction=0.05, clusters=clusters, selection_seed=0)
    assert Counter(rand.groups) == Counter(hard.groups) == {"A": 2, "B": 3}
    assert all(clusters[r] == g for r, g in zip(rand.rows, rand.groups))
    assert rand.rows == tuple(sorted(rand.rows))  # per-cluster random rows are listed by row
    assert rand == select(scores, "clustered-random", fraction=0.05, clusters=clusters, selection_seed=0)


def test_clustered_random_mirror_draws_from_the_mirrored_pool():
    scores, clusters = two_clusters()
    scores.loc[80, "lp1"] = NAN
    hard = select(scores, "lp1-hard", fraction=0.05, clusters=clusters)
    plain = select(scores, "clustered-random", fraction=0.05, clusters=clusters)
    assert Counter(plain.groups) == {"A": 2, "B": 3}  # all 41 ok rows of B: not the LP counts
    for seed in range(5):
        mirrored = select(
            scores, "clustered-random", fraction=0.05, clusters=clusters, mirror="lp1-hard", selection_seed=seed
        )
        assert Counter(mirrored.groups) == Counter(hard.groups) == {"A": 2, "B": 2}
        assert 80 not in mirrored.rows
        assert mirrored.skipped == hard.skipped and mirrored.mirror == "lp1-hard"


# ---------------------------------------------------------------- errors and outputs


def test_request_errors():
    scores = table(lp1=LP1)
    with pytest.raises(ValueError, match="exactly one of fraction"):
        select(scores, "lp1-hard")
    with pytest.raises(ValueError, match="exactly one of fraction"):
        select(scores, "lp1-hard", fraction=0.1, count=2)
    for bad in (0, 1.5, -0.1):
        with pytest.raises(ValueError, match="fraction must be"):
            select(scores, "lp1-hard", fraction=bad)
    with pytest.raises(ValueError, match="count must be"):
        select(scores, "lp1-hard", count=0)
    with pytest.raises(ValueError, match="lp1-hard, lp1-medium.*variability"):
        select(scores, "hardest", count=1)


def test_strategy_option_errors():
    scores, clusters = two_clusters()
    with pytest.raises(ValueError, match="takes a fraction, not a count"):
        select(scores, "lp1-hard", count=5, clusters=clusters)
    with pytest.raises(ValueError, match="clustered-random"):
        select(scores, "random", fraction=0.1, clusters=clusters)
    with pytest.raises(ValueError, match="needs clusters"):
        select(scores, "clustered-random", fraction=0.1)
    with pytest.raises(ValueError, match="own loss-trajectory clusters"):
        select(s2l_table(), "s2l", fraction=0.1, clusters=clusters)
    with pytest.raises(ValueError, match="random strategies only"):
        select(scores, "lp1-hard", fraction=0.1, mirror="lp1-easy")


def test_missing_columns_say_how_to_get_them():
    scores = table(lp1=LP1)
    with pytest.raises(ValueError, match=r"ifd_nll.*lpselect score --ifd"):
        select(scores, "ifd-nll", count=1)
    with pytest.raises(ValueError, match=r"lp_app.*--epochs 1"):
        select(scores, "lp-app-hard", count=1)
    with pytest.raises(ValueError, match="s2l.*nll_0..nll_n"):
        select(scores, "s2l", count=1)
    with pytest.raises(ValueError, match="duplicate `row`"):
        select(pd.concat([scores, scores]), "lp1-hard", count=1)


def test_hard_end_is_one_table():
    assert STRATEGIES["lp1-hard"].order == hard_end("lp1") == "low"
    assert STRATEGIES["lp1-easy"].order == "high"
    assert STRATEGIES["lp-app-hard"].order == HARD_END["lp_app"] == "low"
    assert STRATEGIES["confidence"].order == "low" and STRATEGIES["variability"].order == "high"
    assert hard_end("ppl_0") == hard_end("ppl_3") == hard_end("nll_2") == "high"
    with pytest.raises(ValueError, match="hard end"):
        hard_end("rouge")


def test_selection_frame_and_summary():
    sel = select(table(lp1=LP1), "lp1-hard", count=3)
    frame = selection_frame(sel)
    assert frame["row"].tolist() == [4, 1, 5]
    assert frame["selection_rank"].tolist() == [1, 2, 3]
    assert frame["selection_score"].tolist() == [0.1, 0.2, 0.4]
    assert "selection_cluster" not in frame
    scores, clusters = two_clusters()
    frame = selection_frame(select(scores, "lp1-hard", fraction=0.05, clusters=clusters))
    assert frame["selection_cluster"].tolist() == ["B", "B", "B", "A", "A"]
    summary = select(scores, "lp1-hard", fraction=0.05, clusters=clusters).summary()
    assert json.loads(json.dumps(summary))["n_selected"] == 5
    assert "rows" not in summary
