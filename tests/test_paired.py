"""Paired differences, the bootstrap interval and the random seeds as the null, on arrays small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hf_lpselect.eval.paired import (
    bootstrap_ci,
    compare_paired,
    compare_to_random,
    null_bound,
    paired_differences,
    random_null,
)


def test_paired_difference_subtracts_the_mean_of_the_baselines_row_by_row():
    # baselines' mean is [2, 2, 2]; the model minus it is [-1, 0, 2], whose mean is 1/3
    model = pd.Series([1.0, 2.0, 4.0])
    diff = paired_differences(model, [pd.Series([1.0, 1.0, 1.0]), pd.Series([3.0, 3.0, 3.0])])
    assert diff.tolist() == [-1.0, 0.0, 2.0]
    assert diff.mean() == pytest.approx(1 / 3)


def test_paired_difference_pairs_by_row_and_drops_rows_any_series_lacks():
    model = pd.Series({10: 1.0, 11: 5.0, 12: 3.0})
    baseline = pd.Series({12: 1.0, 10: 2.0, 13: 9.0, 11: np.nan})  # other order, an extra row, a NaN
    assert paired_differences(model, [baseline]).to_dict() == {10: -1.0, 12: 2.0}


def test_paired_difference_needs_a_baseline():
    with pytest.raises(ValueError, match="at least one baseline"):
        paired_differences(pd.Series([1.0]), [])


def test_bootstrap_of_a_constant_is_that_constant():
    assert bootstrap_ci(np.array([0.5, 0.5, 0.5])) == (0.5, 0.5)


def test_bootstrap_of_two_values_spans_both():
    # resampling [0, 1] twice gives a mean of 0 (1/4), 0.5 (1/2) or 1 (1/4): both 2.5 % tails lie at 0 and 1
    low, high = bootstrap_ci(np.array([0.0, 1.0]), n_resamples=4000, seed=3)
    assert (low, high) == (0.0, 1.0)


def test_bootstrap_of_a_narrow_sample_is_narrow_and_holds_its_mean():
    values = np.array([-1.0, -1.1, -0.9, -1.0])  # mean -1.0; every resample mean lies in [-1.1, -0.9]
    low, high = bootstrap_ci(values)
    assert -1.1 <= low < -1.0 < high <= -0.9


def test_bootstrap_is_repeatable_and_refuses_nan():
    values = np.random.default_rng(1).normal(size=50)
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_ci(np.array([1.0, np.nan]))
    assert all(np.isnan(bootstrap_ci(np.array([]))))


def test_compare_paired_reads_the_interval():
    lower = compare_paired(pd.Series([1.0, 1.0, 1.0]), [pd.Series([2.0, 2.0, 2.0])])
    assert lower == {
        "n_rows": 3,
        "mean_diff": -1.0,
        "ci_low": -1.0,
        "ci_high": -1.0,
        "level": 0.95,
        "reading": "lower",
    }
    assert compare_paired(pd.Series([3.0, 3.0]), [pd.Series([2.0, 2.0])])["reading"] == "higher"
    assert compare_paired(pd.Series([1.0, 3.0]), [pd.Series([2.0, 2.0])])["reading"] == "no difference"


def test_compare_paired_with_no_common_row_is_not_measured_rather_than_no_difference():
    nothing = compare_paired(pd.Series({1: 1.0}), [pd.Series({2: 1.0})])
    assert nothing["n_rows"] == 0 and nothing["mean_diff"] is None and nothing["ci_low"] is None
    assert nothing["reading"] == "not measured"


def seeds(*means: float, rows: int = 2) -> list[pd.Series]:
    """Random-subset runs that differ only by a run-level offset: each scores ``mean`` on every row (all named "nll",
    as the kit's tables are)."""
    return [pd.Series([m] * rows, name="nll") for m in means]


def test_random_null_is_each_seed_against_the_others_and_their_spread():
    # seed means 1.00, 1.02, 1.04: each minus the mean of the other two is -0.03, 0, +0.03; their sd is 0.02
    null = random_null(seeds(1.00, 1.02, 1.04))
    assert null["loo_diffs"] == [-0.03, 0.0, 0.03] and null["spread"] == 0.02
    assert (null["n_seeds"], null["n_rows"], null["level"]) == (3, 2, 0.95)
    assert null["t"] == pytest.approx(4.302653)  # Student's t, 2 degrees of freedom, 97.5 %
    with pytest.raises(ValueError, match="at least two random seeds"):
        random_null(seeds(1.0))


def test_null_bound_is_a_prediction_bound_for_one_more_run():
    # a new run minus the mean of n baseline runs varies by spread * sqrt(1 + 1/n); times t for 95 %
    null = {"spread": 0.02, "t": 4.302653}
    assert null_bound(null, 3) == pytest.approx(4.302653 * 0.02 * (4 / 3) ** 0.5, abs=1e-6)  # 0.0994: vs the 3 seeds
    assert null_bound(null, 1) == pytest.approx(
        4.302653 * 0.02 * 2**0.5, abs=1e-6
    )  # 0.1217: vs one clustered-random run
    assert null_bound({"spread": None, "t": 4.3}, 3) is None


def test_an_arm_beats_random_only_beyond_what_redrawing_the_random_subset_changes():
    null = random_null(seeds(1.00, 1.02, 1.04))  # bound vs their mean (1.02): 0.0994
    inside = compare_to_random(
        pd.Series([0.95, 0.95]), seeds(1.00, 1.02, 1.04), null
    )  # -0.07: the rows agree, the runs do not
    assert (inside["reading"], inside["null_bound"], inside["verdict"]) == ("lower", 0.099366, "no difference")
    beyond = compare_to_random(pd.Series([0.90, 0.90]), seeds(1.00, 1.02, 1.04), null)  # -0.12
    assert beyond["verdict"] == "lower"
    worse = compare_to_random(pd.Series([1.20, 1.20]), seeds(1.00, 1.02, 1.04), null)  # +0.18
    assert worse["verdict"] == "higher"
    noisy = compare_to_random(pd.Series([0.0, 1.6]), seeds(1.00, 1.02, 1.04), null)  # -0.22 but the rows disagree
    assert (noisy["reading"], noisy["verdict"]) == ("no difference", "no difference")
    gone = compare_to_random(pd.Series({9: 1.0}), seeds(1.00, 1.02, 1.04), null)
    assert gone["verdict"] == "not measured"


def test_run_to_run_noise_is_not_a_difference_the_reviewers_simulation():
    # 4 arms that differ only by a run-level offset (sd 0.02) on 1,000 shared rows, each against the other three,
    # drawn 25 times: the row bootstrap alone calls nearly every arm different; with the seeds as the null, about 1 in 20
    rng = np.random.default_rng(0)
    row_only = with_null = 0
    for _ in range(25):
        rows = rng.normal(2.0, 0.5, size=1000)
        arms = [pd.Series(rows + offset + rng.normal(0, 0.01, size=1000)) for offset in rng.normal(0, 0.02, size=4)]
        for i, arm in enumerate(arms):
            others = arms[:i] + arms[i + 1 :]
            compared = compare_to_random(arm, others, random_null(others), n_resamples=500)
            row_only += compared["reading"] != "no difference"
            with_null += compared["verdict"] != "no difference"
    assert row_only >= 90 and with_null <= 10  # of 100 comparisons


def test_the_null_bound_lets_through_about_one_run_in_twenty_that_differs_only_by_chance():
    rng = np.random.default_rng(1)
    offsets = rng.normal(0, 0.02, size=(2000, 4))
    beyond = [abs(o[0] - o[1:].mean()) > null_bound(random_null(seeds(*o[1:])), 3) for o in offsets]
    assert 0.03 < np.mean(beyond) < 0.07
