"""Paired differences and the bootstrap interval, on arrays small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hf_lpselect.eval.paired import bootstrap_ci, compare_paired, paired_differences


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
    assert lower == {"n_rows": 3, "mean_diff": -1.0, "ci_low": -1.0, "ci_high": -1.0, "level": 0.95, "reading": "lower"}
    assert compare_paired(pd.Series([3.0, 3.0]), [pd.Series([2.0, 2.0])])["reading"] == "higher"
    assert compare_paired(pd.Series([1.0, 3.0]), [pd.Series([2.0, 2.0])])["reading"] == "no difference"
    nothing = compare_paired(pd.Series({1: 1.0}), [pd.Series({2: 1.0})])
    assert nothing["n_rows"] == 0 and nothing["mean_diff"] is None and nothing["ci_low"] is None
