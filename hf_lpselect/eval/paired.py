"""Paired per-row differences between models, with a bootstrap confidence interval: pure numpy/pandas.

Two models scored on the same reference rows (:func:`hf_lpselect.eval.reference.reference_nll`) are
compared row by row: the difference of their NLLs on each row, averaged. Pairing removes the
variation between rows (some answers are hard for every model), so a small difference can be told
apart from noise. The interval is the percentile bootstrap over rows: resample the rows with
replacement, average the differences, take the 2.5 % and 97.5 % quantiles of those averages.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def paired_differences(model: pd.Series, baselines: list[pd.Series]) -> pd.Series:
    """Per-row ``model - mean(baselines)``, on the rows every series scored (indexes are row ids).

    Args:
        model (`pd.Series`): the model's per-row values (e.g. NLL), indexed by row.
        baselines (`list[pd.Series]`): one or more baselines' per-row values (e.g. random seeds), indexed by row;
            their row-wise mean is subtracted.

    Returns:
        `pd.Series`: the differences, indexed by the rows where every value is a number, sorted by row.

    Example:

    ```python
    >>> paired_differences(pd.Series([1.0, 2.0, 4.0]), [pd.Series([1.0, 1.0, 1.0]), pd.Series([3.0, 3.0, 3.0])]).tolist()
    [-1.0, 0.0, 2.0]
    ```
    """
    if not baselines:
        raise ValueError("paired_differences needs at least one baseline series.")
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

    Example:

    ```python
    >>> bootstrap_ci(np.array([0.5, 0.5, 0.5]))
    (0.5, 0.5)
    ```
    """
    values = np.asarray(values, dtype=np.float64)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}.")
    if np.isnan(values).any():
        raise ValueError("bootstrap_ci got NaN values: drop the rows that were not scored first.")
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
        (``"lower"``, ``"higher"`` or ``"no difference"``); numbers are None where undefined (no common row).

    Example:

    ```python
    >>> compare_paired(pd.Series([1.0, 1.0]), [pd.Series([2.0, 2.0])])["reading"]
    'lower'
    ```
    """
    diff = paired_differences(model, baselines)
    low, high = bootstrap_ci(diff.to_numpy(), n_resamples=n_resamples, level=level, seed=seed)
    number = lambda x: None if math.isnan(x) else round(float(x), 6)  # noqa: E731  (valid JSON)
    reading = "lower" if high < 0 else "higher" if low > 0 else "no difference"
    return {"n_rows": int(len(diff)), "mean_diff": number(diff.mean()) if len(diff) else None,
            "ci_low": number(low), "ci_high": number(high), "level": level, "reading": reading}
