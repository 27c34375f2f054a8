"""Paired per-row differences between models, with a bootstrap confidence interval: pure numpy/pandas.

Two models scored on the same reference rows (:func:`hf_lpselect.eval.reference.reference_nll`) are
compared row by row: the difference of their NLLs on each row, averaged. Pairing removes the
variation between rows (some answers are hard for every model), so a small difference can be told
apart from noise. The interval is the percentile bootstrap over rows: resample the rows with
replacement, average the differences, take the 2.5 % and 97.5 % quantiles of those averages.

That interval treats each model's one training run as fixed, so it also calls ordinary run-to-run noise (another
seed, another random subset) a difference. :func:`random_null` measures that noise from the random baseline's
seeds, and :func:`compare_to_random` counts a model as better or worse only when its bootstrap interval excludes 0
AND its mean difference lies beyond what re-drawing the random subset changes (a prediction bound from the seeds).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..core.io import json_number
from ..errors import EvalError


def paired_differences(model: pd.Series, baselines: list[pd.Series]) -> pd.Series:
    """Per-row ``model - mean(baselines)``, on the rows every series scored (indexes are row ids).

    Args:
        model (`pd.Series`): the model's per-row values (e.g. NLL), indexed by row.
        baselines (`list[pd.Series]`): one or more baselines' per-row values (e.g. random seeds), indexed by row;
            their row-wise mean is subtracted.

    Returns:
        `pd.Series`: the differences, indexed by the rows where every value is a number, sorted by row.

    Raises:
        [`~hf_lpselect.errors.EvalError`]: no baseline series.

    Example:

    ```python
    >>> paired_differences(pd.Series([1.0, 2.0, 4.0]), [pd.Series([1.0, 1.0, 1.0]), pd.Series([3.0, 3.0, 3.0])]).tolist()
    [-1.0, 0.0, 2.0]
    ```
    """
    if not baselines:
        raise EvalError("paired_differences needs at least one baseline series.")
    baseline = pd.concat(baselines, axis=1).mean(axis=1, skipna=False)
    return (model - baseline).dropna().sort_index()


def bootstrap_ci(
    values: np.ndarray | pd.Series, *, n_resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``: resample with replacement, average, take quantiles.

    Args:
        values (`np.ndarray` or `pd.Series`): the per-row values (e.g. paired differences); NaN is not allowed.
        n_resamples (`int`, defaults to `2000`): bootstrap resamples.
        level (`float`, defaults to `0.95`): coverage of the interval, in (0, 1).
        seed (`int`, defaults to `0`): seed of ``numpy.random.default_rng``; the same seed gives the same interval.

    Returns:
        `tuple[float, float]`: the lower and upper bound (NaN, NaN for no values).

    Raises:
        [`~hf_lpselect.errors.EvalError`]: ``level`` outside (0, 1), or NaN values.

    Example:

    ```python
    >>> bootstrap_ci(np.array([0.5, 0.5, 0.5]))
    (0.5, 0.5)
    ```
    """
    values = np.asarray(values, dtype=np.float64)
    if not 0 < level < 1:
        raise EvalError(f"level must be in (0, 1), got {level!r}.")
    if np.isnan(values).any():
        raise EvalError("bootstrap_ci got NaN values: drop the rows that were not scored first.")
    if len(values) == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_resamples, len(values)))].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def compare_paired(
    model: pd.Series, baselines: list[pd.Series], *, n_resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Mean paired difference of ``model`` to the mean of ``baselines`` with its bootstrap interval.

    Lower NLL is better, so a whole interval below 0 reads "better than the baselines", above 0 "worse",
    and one that holds 0 "no difference".

    Args:
        model (`pd.Series`): the model's per-row values, indexed by row.
        baselines (`list[pd.Series]`): the baselines' per-row values, indexed by row.
        n_resamples (`int`, defaults to `2000`): bootstrap resamples.
        level (`float`, defaults to `0.95`): coverage of the interval.
        seed (`int`, defaults to `0`): bootstrap seed.

    Returns:
        `dict`: ``n_rows``, ``mean_diff``, ``ci_low``, ``ci_high``, ``level`` and ``reading``
        (``"lower"``, ``"higher"``, ``"no difference"``, or ``"not measured"`` when no row was scored by all);
        numbers are None where undefined.

    Example:

    ```python
    >>> compare_paired(pd.Series([1.0, 1.0]), [pd.Series([2.0, 2.0])])["reading"]
    'lower'
    ```
    """
    diff = paired_differences(model, baselines)
    low, high = bootstrap_ci(diff.to_numpy(), n_resamples=n_resamples, level=level, seed=seed)
    reading = "not measured" if len(diff) == 0 else "lower" if high < 0 else "higher" if low > 0 else "no difference"
    return {
        "n_rows": int(len(diff)),
        "mean_diff": json_number(diff.mean(), 6) if len(diff) else None,
        "ci_low": json_number(low, 6),
        "ci_high": json_number(high, 6),
        "level": level,
        "reading": reading,
    }


def random_null(randoms: list[pd.Series], *, level: float = 0.95) -> dict[str, Any]:
    """How much re-drawing the random subset moves the mean: the random seeds compared with each other.

    Each seed is compared with the mean of the other seeds (leave-one-out paired mean differences, ``loo_diffs``:
    their range is what random-vs-random looks like), and the seeds' mean values give the run-to-run spread
    ``spread`` (the sample standard deviation, on the rows every seed scored). A new run's difference to the mean
    of ``n`` baseline runs varies by ``spread * sqrt(1 + 1/n)``; with ``k`` seeds the two-sided ``level``
    prediction bound multiplies that by Student's t with ``k - 1`` degrees of freedom (``t``), which
    :func:`null_bound` applies.

    Args:
        randoms (`list[pd.Series]`): at least two random-subset runs' per-row values (e.g. NLL), indexed by row.
        level (`float`, defaults to `0.95`): coverage of the prediction bound.

    Returns:
        `dict`: ``n_seeds``, ``n_rows``, ``loo_diffs`` (one per seed, in order), ``spread``, ``t`` and ``level``.

    Raises:
        [`~hf_lpselect.errors.EvalError`]: fewer than two random seeds, or ``level`` outside (0, 1).

    Example:

    ```python
    >>> null = random_null([pd.Series([1.00, 1.00]), pd.Series([1.02, 1.02]), pd.Series([1.04, 1.04])])
    >>> null["loo_diffs"], null["spread"]
    ([-0.03, 0.0, 0.03], 0.02)
    ```
    """
    if len(randoms) < 2:
        raise EvalError(f"random_null needs at least two random seeds to measure their spread, got {len(randoms)}.")
    if not 0 < level < 1:
        raise EvalError(f"level must be in (0, 1), got {level!r}.")
    common = pd.concat(randoms, axis=1, keys=range(len(randoms))).dropna()  # keys: the series may share a name
    loo = [paired_differences(common[i], [common[j] for j in common.columns if j != i]).mean() for i in common.columns]
    k = len(randoms)
    return {
        "n_seeds": k,
        "n_rows": int(len(common)),
        "loo_diffs": [json_number(d, 6) for d in loo],
        "spread": json_number(common.mean().std(ddof=1), 6) if len(common) else None,
        "t": round(float(stats.t.ppf(1 - (1 - level) / 2, k - 1)), 6),
        "level": level,
    }


def null_bound(null: dict[str, Any], n_baseline: int) -> float | None:
    """The largest difference to the mean of ``n_baseline`` baseline runs that re-drawing the random subset explains:
    ``t * spread * sqrt(1 + 1 / n_baseline)`` from :func:`random_null`.

    Args:
        null (`dict`): :func:`random_null`'s result.
        n_baseline (`int`): how many runs the baseline mean averages (the random seeds: all of them; one
            ``clustered-random`` run: 1).

    Returns:
        `float` or `None`: the bound (None when the seeds shared no row).

    Example:

    ```python
    >>> round(null_bound({"spread": 0.02, "t": 4.302653}, 3), 4)  # 4.3027 * 0.02 * sqrt(4/3)
    0.0994
    ```
    """
    if null["spread"] is None:
        return None
    return round(null["t"] * null["spread"] * math.sqrt(1 + 1 / n_baseline), 6)


def compare_to_random(
    model: pd.Series, baselines: list[pd.Series], null: dict[str, Any], *, n_resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """:func:`compare_paired` with the random seeds as the null: a ``verdict`` that counts run-to-run noise.

    The rule: ``"lower"`` (better, for NLL) only if the bootstrap interval lies wholly below 0 AND the mean
    difference is below ``-null_bound``; ``"higher"`` likewise above; otherwise ``"no difference"`` (or
    ``"not measured"`` with no common row). The row bootstrap alone answers "would other test rows change this?";
    the bound answers "would re-drawing the random subset (another training run) change this?"; both must say no.

    Args:
        model (`pd.Series`): the model's per-row values, indexed by row.
        baselines (`list[pd.Series]`): the baseline runs (the random seeds, or one ``clustered-random`` run).
        null (`dict`): :func:`random_null` of the random seeds at the same fraction, on the same reference set.
        n_resamples (`int`, defaults to `2000`): bootstrap resamples.
        seed (`int`, defaults to `0`): bootstrap seed.

    Returns:
        `dict`: :func:`compare_paired`'s keys (its ``reading`` is the row bootstrap's alone) plus ``null_bound``
        and ``verdict``.

    Example:

    ```python
    >>> null = random_null([pd.Series([1.00, 1.00]), pd.Series([1.02, 1.02]), pd.Series([1.04, 1.04])])
    >>> compare_to_random(pd.Series([0.98, 0.98]), [pd.Series([1.02, 1.02])], null)["verdict"]  # -0.04, bound 0.12
    'no difference'
    ```
    """
    compared = compare_paired(model, baselines, n_resamples=n_resamples, level=null["level"], seed=seed)
    bound = null_bound(null, len(baselines))
    diff, reading = compared["mean_diff"], compared["reading"]
    beyond = bound is not None and diff is not None and abs(diff) > bound
    verdict = reading if reading == "not measured" or (reading in ("lower", "higher") and beyond) else "no difference"
    return compared | {"null_bound": bound, "verdict": verdict}
