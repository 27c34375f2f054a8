"""Scores as dataset columns, and named subsets: pure pandas, no torch, no I/O.

A scores table (``scores.parquet``) becomes columns added to the source rows when it is pushed to
the Hub (:func:`hub_columns`), and the pushed columns turn back into a scores table that
:func:`hf_lpselect.selection.strategies.select` reads (:func:`scores_from_columns`), so ``load_scored`` selects
with exactly the code ``lpselect select`` uses.

Pushed columns (one value per source row; null where a score does not apply):

- ``lp1``, ``lp_app``: LP(1) and its one-epoch approximation (low = learned slowly = hard);
- ``ppl_e0`` … ``ppl_eN``: response perplexity before training (e0) and after each epoch;
- ``lp1_rank``: 1 = the hardest row (lowest LP(1), ties by row), 2 = the next, …, as ``selection_rank``;
- ``ifd_nll``, ``ifd_ppl``: the IFD scores, when the run has them;
- ``lpselect_status`` (ok / excluded / invalid / duplicate / unscored), ``lpselect_reason``,
  ``lpselect_id`` (the row's content id) and ``lpselect_response_tokens``.

A subset is named ``<strategy>_<percent>pct`` with the strategy's dashes as underscores:
``lp1_hard_5pct`` is strategy ``lp1-hard`` at fraction 0.05; ``2p5pct`` is 2.5 %.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError, SelectionError
from ..selection.strategies import STRATEGIES, Selection, default_mirror, nll_columns, select


# Configs pushed when --subsets is not given (for a run with LP(1)): the paper's hard sets, each with the
# random baseline of its size.
DEFAULT_SIZES_PCT = (5, 10, 33)
DEFAULT_SUBSETS = tuple(f"{strategy}_{pct}pct" for strategy in ("lp1_hard", "random") for pct in DEFAULT_SIZES_PCT)
UNSCORED = "unscored"  # status of source rows beyond the rows the run scored (a run with --limit)

_SUBSET = re.compile(r"^(?P<strategy>[a-z0-9_]+?)_(?P<whole>\d+)(?:p(?P<part>\d+))?pct$")
# strategies a subset config can use: not clustered-random (it needs a clustering of the rows)
SUBSET_STRATEGIES = tuple(name for name in STRATEGIES if name != "clustered-random")


@dataclass(frozen=True)
class SubsetSpec:
    """One named subset: a strategy at a fraction of its eligible rows."""

    name: str
    strategy: str
    fraction: float


def parse_subset(name: str) -> SubsetSpec:
    """``"lp1_hard_5pct"`` → SubsetSpec("lp1_hard_5pct", "lp1-hard", 0.05).

    Raises:
        [`~hf_lpselect.errors.ConfigError`]: a name that is not STRATEGY_Npct with a percentage in (0, 100].
    """
    match = _SUBSET.match(name)
    strategy = match["strategy"].replace("_", "-") if match else None
    if strategy not in SUBSET_STRATEGIES:
        choices = ", ".join(s.replace("-", "_") for s in SUBSET_STRATEGIES)
        raise ConfigError(
            f"Bad subset name {name!r}: write STRATEGY_Npct, e.g. lp1_hard_5pct or random_2p5pct, "
            f"with STRATEGY one of: {choices}."
        )
    percent = float(f"{match['whole']}.{match['part'] or 0}")
    if not 0 < percent <= 100:
        raise ConfigError(f"Bad subset name {name!r}: the percentage must be in (0, 100].")
    return SubsetSpec(name=name, strategy=strategy, fraction=round(percent / 100, 6))


def subset_name(strategy: str, fraction: float) -> str:
    """The inverse of :func:`parse_subset`: ("lp1-hard", 0.05) → "lp1_hard_5pct"."""
    percent = f"{round(fraction * 100, 4):g}".replace(".", "p")
    return f"{strategy.replace('-', '_')}_{percent}pct"


def select_scored(
    scores: pd.DataFrame, strategy: str, *, fraction: float | None = None, count: int | None = None, seed: int = 42
) -> Selection:
    """:func:`~hf_lpselect.selection.strategies.select` as pushed subsets and ``load_scored`` use it: global, and
    random draws from the rows LP(1) could select (:func:`~hf_lpselect.selection.strategies.default_mirror`).

    Raises:
        [`~hf_lpselect.errors.SelectionError`]: a strategy that cannot run on score columns, or a selection that cannot
            be made as asked.
    """
    if strategy not in SUBSET_STRATEGIES:
        raise SelectionError(
            f"{strategy!r} cannot be selected from score columns; choose one of: {', '.join(SUBSET_STRATEGIES)}."
        )
    return select(
        scores, strategy, fraction=fraction, count=count, selection_seed=seed, mirror=default_mirror(strategy, scores)
    )


def lp1_rank(scores: pd.DataFrame) -> pd.Series:
    """1 = hardest: the rank of each row in the ``lp1-hard`` order (lowest LP(1), ties by row), on the same base as
    ``selection_rank``; <NA> for rows that strategy cannot select."""
    rank = pd.Series(pd.NA, index=scores.index, dtype="Int64")
    if "lp1" not in scores:
        return rank
    order = select(scores, "lp1-hard", fraction=1.0)
    positions = pd.Series(np.arange(1, len(order.rows) + 1), index=list(order.rows))
    return scores["row"].map(positions).astype("Int64").set_axis(scores.index)


def hub_columns(scores: pd.DataFrame, n_source_rows: int) -> pd.DataFrame:
    """The pushed score columns for ``n_source_rows`` source rows, in source order.

    ``scores`` has one row per input row ``0..len(scores) - 1``; source rows beyond it (a run
    scored with ``--limit``) are kept with status ``unscored`` and null scores.

    Raises:
        [`~hf_lpselect.errors.DataError`]: the source has fewer rows than the run scored, or the scores are not rows
            0..n-1 in order.
    """
    if n_source_rows < len(scores):
        raise DataError(f"The source has {n_source_rows} rows but the run scored {len(scores)}; it changed since.")
    if not np.array_equal(scores["row"].to_numpy(), np.arange(len(scores))):
        raise DataError("The scores table must hold rows 0..n-1 in order, one per input row.")
    out = pd.DataFrame(index=pd.RangeIndex(len(scores)))
    for column in ("lp1", "lp_app"):
        if column in scores:
            out[column] = scores[column].astype("float64")
    for k, column in enumerate(nll_columns(scores)):
        out[f"ppl_e{k}"] = np.exp(scores[column].astype("float64"))
    if "lp1" in scores:
        out["lp1_rank"] = lp1_rank(scores)
    for column in ("ifd_nll", "ifd_ppl"):
        if column in scores:
            out[column] = scores[column].astype("float64")
    out["lpselect_status"] = scores["status"].astype(str)
    reason = scores["reason"].fillna("").astype(str)
    if "lp_reason" in scores:  # an ok row without an LP(1) says why
        reason = reason.where(reason != "", scores["lp_reason"].fillna("").astype(str))
    out["lpselect_reason"] = reason
    out["lpselect_id"] = scores["id"].astype(str)
    out["lpselect_response_tokens"] = scores["n_response_tokens"].astype("Int64")
    missing = n_source_rows - len(scores)
    if missing:
        extra = pd.DataFrame(index=pd.RangeIndex(len(scores), n_source_rows), columns=out.columns).astype(out.dtypes)
        extra["lpselect_status"] = UNSCORED
        extra["lpselect_reason"] = f"not in the scorer run (it scored the first {len(scores)} rows)"
        extra["lpselect_id"] = ""
        out = pd.concat([out, extra])
    return out


def scores_from_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A scores table (row, id, status, reason, n_response_tokens, nll_K, ppl_K, lp1, …) from pushed
    columns, so :func:`hf_lpselect.selection.strategies.select` can run on a dataset loaded from the Hub.

    Raises:
        [`~hf_lpselect.errors.DataError`]: ``frame`` has no ``lpselect_status`` column (not pushed by ``lpselect
            push-scores``).
    """
    if "lpselect_status" not in frame:
        raise DataError("This dataset has no lpselect_status column: it was not pushed by `lpselect push-scores`.")
    out = pd.DataFrame(
        {
            "row": np.arange(len(frame), dtype="int64"),
            "id": frame["lpselect_id"].astype(str) if "lpselect_id" in frame else "",
            "status": frame["lpselect_status"].astype(str),
            "reason": frame["lpselect_reason"].fillna("").astype(str) if "lpselect_reason" in frame else "",
        }
    )
    if "lpselect_response_tokens" in frame:
        out["n_response_tokens"] = frame["lpselect_response_tokens"].astype("float64").to_numpy()
    k = 0
    while f"ppl_e{k}" in frame:
        ppl = frame[f"ppl_e{k}"].astype("float64").to_numpy()
        out[f"nll_{k}"] = np.log(ppl)
        out[f"ppl_{k}"] = ppl
        k += 1
    for column in ("lp1", "lp_app", "ifd_nll", "ifd_ppl"):
        if column in frame:
            out[column] = frame[column].astype("float64").to_numpy()
    return out
