"""Does hardness transfer? Agreement between two scores tables over the same rows: pure pandas/scipy.

:func:`agreement` matches two tables (e.g. a small and a large scorer on one dataset) by ``id`` and
reports rank correlations and the overlap of their hardest sets, for the ranking score (``lp1``)
and for a reference score (``ppl_0``), so one can see whether P_0 alone agrees more than LP does.
It needs only ``id``, the score columns and, when present, ``status`` and ``row``: tables made by
other tools can be compared once converted to that contract.

"Hardest" is the end :data:`hf_lpselect.selection.strategies.HARD_END` names (lowest lp1 / lp_app, highest
ppl_0): the same definition the hard selectors use. Top-k sizes use the global rounding of
:func:`hf_lpselect.selection.strategies.global_count`.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..core.io import json_number
from ..errors import DataError, SelectionError
from .strategies import End, global_count, hard_end


TOP = (0.01, 0.05, 0.10, 0.33)


def _usable(table: pd.DataFrame, columns: list[str], name: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Rows of ``table`` that can be matched, and the count of dropped rows by first reason.

    Order: status not ok; a later duplicate of an ``id`` among the ok rows (the first, by ``row``
    where the table has one, is kept); a NaN score.
    """
    missing = [c for c in ["id", *columns] if c not in table.columns]
    if missing:
        raise DataError(
            f"Table {name} has no column(s) {', '.join(missing)}; agreement needs id and the compared "
            "scores (pass reference=None to compare without a reference score)."
        )
    dropped: dict[str, int] = {}
    if "row" in table.columns:
        table = table.sort_values("row", kind="stable")
    if "status" in table.columns:
        status = table["status"].astype(str)
        for value, n in status[status != "ok"].value_counts().sort_index().items():
            dropped[f"status {value}"] = int(n)
        table = table[status == "ok"]
    duplicate = table["id"].duplicated(keep="first")
    if duplicate.any():
        dropped["duplicate id (later rows dropped)"] = int(duplicate.sum())
    table = table[~duplicate]
    for column in columns:
        nan = table[column].isna()
        if nan.any():
            dropped[f"{column} is NaN"] = int(nan.sum())
        table = table[~nan]
    return table, dropped


def match_by_id(
    a: pd.DataFrame, b: pd.DataFrame, columns: list[str]
) -> tuple[pd.DataFrame, dict[str, int], dict[str, int]]:
    """The rows usable in both tables, joined on ``id`` (columns ``X_a``, ``X_b``), and each table's drop counts.

    Usable: status ``ok`` (when the table has a status), first occurrence of its id, no NaN in
    ``columns``; the last drop reason is ``"no usable match in the other table"``.
    """
    used_a, dropped_a = _usable(a, columns, "a")
    used_b, dropped_b = _usable(b, columns, "b")
    keep = ["id", *columns]
    matched = used_a[keep].merge(used_b[keep], on="id", suffixes=("_a", "_b"))
    for dropped, used in ((dropped_a, used_a), (dropped_b, used_b)):
        unmatched = int((~used["id"].isin(matched["id"])).sum())
        if unmatched:
            dropped["no usable match in the other table"] = unmatched
    return matched, dropped_a, dropped_b


def _hardest(ids: pd.Series, values: np.ndarray, end: End, k: int) -> set:
    """The k ids at the hard end of ``values``, ties broken by id."""
    frame = pd.DataFrame({"id": ids.to_numpy(), "v": values}).sort_values("id", kind="stable")
    frame = frame.sort_values("v", ascending=(end == "low"), kind="stable")
    return set(frame["id"].iloc[:k])


def _compare(ids: pd.Series, x: np.ndarray, y: np.ndarray, end: End, top: tuple[float, ...]) -> dict[str, Any]:
    n = len(ids)
    out: dict[str, Any] = {"hardest": end}
    out.update(spearman=None, spearman_p=None, kendall_tau_b=None, kendall_p=None)
    if n >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant input: NaN, reported as None
            rho = stats.spearmanr(x, y)
            tau = stats.kendalltau(x, y, variant="b")
        out.update(
            spearman=json_number(rho.statistic),
            spearman_p=json_number(rho.pvalue),
            kendall_tau_b=json_number(tau.statistic),
            kendall_p=json_number(tau.pvalue),
        )
    out["top"] = []
    for fraction in top:
        k = global_count(fraction, n)
        common = len(_hardest(ids, x, end, k) & _hardest(ids, y, end, k)) if k else 0
        out["top"].append(
            {
                "fraction": float(fraction),
                "k": k,
                "n_common": common,
                "overlap": common / k if k else None,  # |A ∩ B| / k
                "expected_random": k / n if n else None,  # E[|A ∩ B|] / k for two independent random k-sets
            }
        )
    return out


def agreement(
    a: pd.DataFrame,
    b: pd.DataFrame,
    *,
    score: str = "lp1",
    reference: str | None = "ppl_0",
    top: tuple[float, ...] = TOP,
    hardest: End | None = None,
) -> dict[str, Any]:
    """Agreement of ``score`` (and of ``reference``) between two scores tables, matched by ``id``.

    Matched rows are those usable in both tables: status ``ok`` (when the table has a status),
    first occurrence of their id, and non-NaN ``score`` and ``reference``; both scores are
    compared on the same matched rows. Per table, ``dropped`` counts the other rows by first
    reason, the last being ``"no usable match in the other table"``.

    For each score: Spearman's rho and Kendall's tau-b (scipy, with p-values; None where undefined,
    e.g. fewer than 2 rows or a constant score) and, for each fraction in ``top``, the overlap
    ``|A ∩ B| / k`` of the two hardest-k sets (k = ``global_count(fraction, n_matched)``; ties by
    id) next to ``k / n_matched``, its expected value for random rankings (about the fraction).
    ``hardest`` overrides which end of ``score`` is hardest (default :func:`hard_end`).
    The result is plain JSON-serialisable data.

    Raises:
        [`~hf_lpselect.errors.DataError`]: a table without ``id`` or the compared scores.
        [`~hf_lpselect.errors.SelectionError`]: a top fraction outside (0, 1], or no known hard end for the score.
    """
    for fraction in top:
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise SelectionError(f"Every top fraction must be in (0, 1], got {fraction!r}.")
    if hardest is not None and hardest not in ("low", "high"):
        raise SelectionError(f"hardest must be 'low' or 'high', got {hardest!r}.")
    ends: dict[str, End] = {score: hardest or hard_end(score)}
    if reference is not None and reference != score:
        ends[reference] = hard_end(reference)
    columns = list(ends)
    matched, dropped_a, dropped_b = match_by_id(a, b, columns)
    results = {
        column: _compare(
            matched["id"],
            matched[f"{column}_a"].to_numpy(dtype=np.float64),
            matched[f"{column}_b"].to_numpy(dtype=np.float64),
            end,
            top,
        )
        for column, end in ends.items()
    }
    return {
        "score": score,
        "reference": reference,
        "n_a": int(len(a)),
        "n_b": int(len(b)),
        "n_matched": int(len(matched)),
        "n_dropped": {"a": int(sum(dropped_a.values())), "b": int(sum(dropped_b.values()))},
        "dropped": {"a": dropped_a, "b": dropped_b},
        "results": results,
    }
