"""Selection strategies over a scores table: pure pandas/numpy/scikit-learn, no torch, no I/O.

One registry, :data:`STRATEGIES`, holds every selector and every baseline of docs/method.md §4.
A strategy is declarative: the score it orders rows by and which end it keeps. :func:`select`
applies it to a scores table (``scores.parquet``: row, id, status, nll_K, ppl_K, lp1, ...) with a
seed, globally or per cluster, and returns a :class:`Selection`.

Rules shared by every strategy:

- Only ``status == "ok"`` rows with a non-NaN score are eligible (for the IFD strategies also
  ``IFD < 1``). Every other row is counted in ``Selection.skipped`` under its first reason, in this
  order: ``"status <status>"``, ``"<score> is NaN"``, ``"<score> >= 1"``, ``"no cluster id"``.
- Ties are broken by ``row`` (lower row first), so every selection is deterministic; random draws
  use ``numpy.random.default_rng(seed)`` over rows sorted by ``row``.
- Global size: ``count`` rows (capped at the eligible rows), or ``fraction`` x eligible rounded
  half up, at least 1 row when any row is eligible (:func:`global_count`).
- Per cluster (docs/method.md §3): each cluster gives ``ceil(n_c / round(1 / fraction))`` rows
  (:func:`per_cluster_counts`), so a nominal 5 % is more than 5 % overall. ``n_c`` is the cluster's
  ELIGIBLE rows by default (``cluster_rows="eligible"``); ``cluster_rows="all"`` counts every row
  the clustering gives that cluster, eligible or not, as the paper's code does (with the paper's
  clustering: its subset sizes), and takes at most the cluster's eligible rows. A count cannot be
  split that way: per-cluster selection takes ``fraction`` only.

Ends and bands:

- ``low`` / ``high``: the lowest / highest scores first.
- ``middle`` (``lp1-medium``, ``ppl-mid``): sort ascending (ties by row) and take the window of k
  rows starting at ``floor((n - k) / 2)``; when it cannot be exactly centred it leans to the low
  end. ``fraction=1/3`` gives the middle third (the paper's hard / medium / easy thirds).
- ``random``: a seeded uniform draw.
- ``s2l``: k-means on loss trajectories, then balanced sampling across trajectory clusters.
- ``confidence`` keeps the LOWEST confidence (cartography's "hard-to-learn", the analogue of LP's
  hard end); ``variability`` keeps the HIGHEST variability ("ambiguous"), the region Swayamdipta et
  al. (2020) recommend training on (their hard-to-learn region also holds most mislabelled rows).

Which end is "hard" is defined once, in :data:`HARD_END`; the hard strategies and
:mod:`hf_lpselect.selection.agreement` both read it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..core.deprecation import renamed_keyword
from ..errors import SelectionError


End = Literal["low", "high"]
Order = Literal["low", "high", "middle", "random", "s2l"]

# The end of each score that a selector keeps as "hard" (for variability: "ambiguous").
HARD_END: dict[str, End] = {
    "lp1": "low",  # little of the total perplexity drop happened in epoch 1: learned slowly (docs/method.md §2)
    "lp_app": "low",  # same reading, one-epoch approximation
    "ppl_0": "high",  # surprising to the model before training
    "nll_0": "high",
    "ifd_nll": "high",  # the prompt helps least (Cherry LLM / Superfiltering keep the highest IFD < 1)
    "ifd_ppl": "high",
    "confidence": "low",  # cartography "hard-to-learn"
    "variability": "high",  # cartography "ambiguous"
    "n_response_tokens": "high",
}
_PASS_SCORE = re.compile(r"^(nll|ppl)_\d+$")

# What n_c of a per-cluster count ceil(n_c / round(1 / fraction)) counts: the cluster's eligible rows, or all of
# its rows (the paper's code, which has no ineligible rows).
CLUSTER_ROWS = ("eligible", "all")

# s2l's k-means K (the S2L setting). By default capped at the number of rows to select, so that every
# trajectory cluster gets a row (with K > k the balanced quota floor(k / K) is 0 for the smallest
# clusters); always capped at the number of distinct trajectories.
S2L_CLUSTERS = 100

_FROM_TRAINING = "`lpselect score` writes it when the run trains at least one epoch (--epochs 1 or more)"
_FROM_IFD = "score the run with `lpselect score --ifd` (`lpselect score --epochs 0 --ifd` needs no training)"
_HOW_TO_GET = {
    "lp1": _FROM_TRAINING,
    "lp_app": _FROM_TRAINING,
    "ppl_0": "`lpselect score` writes it from the pass before training",
    "n_response_tokens": "`lpselect score` writes it for every row",
    "ifd_nll": _FROM_IFD,
    "ifd_ppl": _FROM_IFD,
}


def hard_end(score: str) -> End:
    """Which end of ``score`` is hard: ``"low"`` or ``"high"`` (:data:`HARD_END`; any nll_K / ppl_K is high).

    Raises:
        [`~hf_lpselect.errors.SelectionError`]: no known hard end for ``score``.
    """
    if score in HARD_END:
        return HARD_END[score]
    if _PASS_SCORE.match(score):
        return "high"
    raise SelectionError(
        f"No known hard end for score {score!r} (known: {', '.join(HARD_END)}, nll_K, ppl_K); "
        "say which end is hardest explicitly ('low' or 'high')."
    )


def _flip(end: End) -> End:
    return "high" if end == "low" else "low"


@dataclass(frozen=True)
class Strategy:
    """One selector: the score it orders eligible rows by (None: no score) and which end it keeps."""

    name: str
    order: Order
    score: str | None
    description: str
    below: float | None = None  # rows whose score is >= this are not eligible (IFD < 1)


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("lp1-hard", HARD_END["lp1"], "lp1", "lowest LP(1): learned least in epoch 1 (the paper's selector)"),
        Strategy("lp1-medium", "middle", "lp1", "middle of the LP(1) ordering (centred window)"),
        Strategy("lp1-easy", _flip(HARD_END["lp1"]), "lp1", "highest LP(1)"),
        Strategy("lp-app-hard", HARD_END["lp_app"], "lp_app", "lowest LP_app = (P_0 - P_1) / P_0"),
        Strategy("random", "random", None, "uniform over all eligible rows (global only)"),
        Strategy("clustered-random", "random", None, "per cluster, the LP selection's counts drawn at random"),
        Strategy("longest", "high", "n_response_tokens", "most response tokens (the length baseline)"),
        Strategy("ppl-low", "low", "ppl_0", "lowest perplexity before training (Ankner et al. 2024)"),
        Strategy("ppl-mid", "middle", "ppl_0", "middle of the P_0 ordering (centred window)"),
        Strategy("ppl-high", "high", "ppl_0", "highest perplexity before training"),
        Strategy(
            "ifd-nll", HARD_END["ifd_nll"], "ifd_nll", "highest IFD < 1, IFD = mean NLL(A|Q) / mean NLL(A)", below=1.0
        ),
        Strategy("ifd-ppl", HARD_END["ifd_ppl"], "ifd_ppl", "highest IFD < 1, IFD = PPL(A|Q) / PPL(A)", below=1.0),
        Strategy(
            "s2l",
            "s2l",
            None,
            "k-means on loss trajectories nll_0..nll_n, sampled evenly across clusters (Yang et al. 2024)",
        ),
        Strategy(
            "confidence",
            HARD_END["confidence"],
            "confidence",
            "lowest mean over epochs 1..n of exp(-nll_K) (cartography hard-to-learn)",
        ),
        Strategy(
            "variability",
            HARD_END["variability"],
            "variability",
            "highest std over epochs 1..n of exp(-nll_K) (cartography ambiguous)",
        ),
    )
}


def default_mirror(strategy: str, scores: pd.DataFrame) -> str | None:
    """The random baselines (``random``, ``clustered-random``) draw from the rows ``lp1-hard`` could
    select when the table has LP(1), so that they match the LP selection's size (and, per cluster,
    its counts); None otherwise. ``lpselect select``, pushed subsets and ``load_scored`` all use it."""
    return "lp1-hard" if get_strategy(strategy).order == "random" and "lp1" in scores else None


def get_strategy(name: str) -> Strategy:
    """The registered strategy ``name``.

    Raises:
        [`~hf_lpselect.errors.SelectionError`]: ``name`` is not a registered strategy.
    """
    if name not in STRATEGIES:
        raise SelectionError(f"Unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}.")
    return STRATEGIES[name]


# ---------------------------------------------------------------- scores


def nll_columns(scores: pd.DataFrame) -> list[str]:
    """The pass columns ``nll_0, nll_1, ...`` (consecutive from 0) of a scores table."""
    columns = []
    while f"nll_{len(columns)}" in scores.columns:
        columns.append(f"nll_{len(columns)}")
    return columns


def _epoch_probabilities(scores: pd.DataFrame, score: str, min_epochs: int) -> np.ndarray:
    """exp(-nll_K) for K = 1..n: each pass's per-row geometric-mean response-token probability."""
    after = nll_columns(scores)[1:]
    if len(after) < min_epochs:
        raise SelectionError(
            f"Strategy score {score!r} needs the passes after at least {min_epochs} epoch(s) "
            f"(columns nll_1..nll_{min_epochs}); this table has {len(after)}. "
            f"Score with `lpselect score --epochs {max(min_epochs, 2)}` or more."
        )
    return np.exp(-scores[after].to_numpy(dtype=np.float64))


def score_values(scores: pd.DataFrame, score: str) -> pd.Series:
    """Per-row values of ``score``, aligned with ``scores``: a column, or a derived cartography score.

    ``confidence`` = mean over K = 1..n of exp(-nll_K); ``variability`` = their population std
    (ddof=0, as in the cartography code; needs n >= 2). exp(-nll_K) is the row's geometric-mean
    response-token probability after epoch K. The pass before training (K = 0) is not used: the
    cartography statistics are taken over training epochs.
    """
    if score == "confidence":
        return pd.Series(_epoch_probabilities(scores, score, 1).mean(axis=1), index=scores.index, name=score)
    if score == "variability":
        return pd.Series(_epoch_probabilities(scores, score, 2).std(axis=1, ddof=0), index=scores.index, name=score)
    if score not in scores.columns:
        how = _HOW_TO_GET.get(score, "add it to the scores table")
        raise SelectionError(f"The scores table has no column {score!r}: {how}.")
    return scores[score].astype("float64")


def _trajectories(scores: pd.DataFrame) -> np.ndarray:
    columns = nll_columns(scores)
    if len(columns) < 2:
        raise SelectionError(
            "Strategy 's2l' needs loss trajectories (columns nll_0..nll_n, n >= 1); this table has "
            f"{columns or 'none'}. Score with `lpselect score --epochs 1` or more."
        )
    return scores[columns].to_numpy(dtype=np.float64)


# ---------------------------------------------------------------- sizes


def global_count(fraction: float, n: int) -> int:
    """Rows a global ``fraction`` of ``n`` eligible rows takes: round half up, at least 1 if n > 0."""
    if n <= 0:
        return 0
    return max(1, math.floor(round(fraction * n, 9) + 0.5))


def cluster_step(fraction: float) -> int:
    """``round(1 / fraction)`` with Python's round, as the paper's ``round(100 / pct)`` (5 % -> 20)."""
    return max(1, round(1 / fraction))


def per_cluster_counts(cluster_sizes: pd.Series | dict | list, fraction: float) -> pd.Series:
    """Rows taken from each cluster: ``ceil(n_c / round(1 / fraction))`` (the paper's arithmetic).

    ``cluster_sizes`` maps a cluster id to its ``n_c`` (its eligible rows, or all its rows for
    ``cluster_rows="all"``). 5 % of a 40-row cluster is 2 rows, of a 41-row cluster 3; an empty
    cluster gives 0.
    """
    _check_fraction(fraction)
    sizes = pd.Series(cluster_sizes, dtype="int64")
    step = cluster_step(fraction)
    return (-(-sizes // step)).astype("int64")


# ---------------------------------------------------------------- ordering


def _ordered(order: Order, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Positions of ``rows`` in the strategy's order, ties by row (``rows`` need not be sorted)."""
    if order == "high":
        return np.lexsort((rows, -values))
    if order in ("low", "middle"):
        return np.lexsort((rows, values))
    return np.argsort(rows, kind="stable")


def _take(order: Order, rows: np.ndarray, values: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions of the k rows a strategy takes from one group, in selection order (rows sorted by row)."""
    if order == "random":
        return rng.permutation(len(rows))[:k]
    ranked = _ordered(order, rows, values)
    if order == "middle":
        start = (len(rows) - k) // 2
        return ranked[start : start + k]
    return ranked[:k]


def _s2l(
    rows: np.ndarray, trajectories: np.ndarray, k: int, n_clusters: int, seed: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """S2L balanced sampling (Yang et al. 2024): positions taken, their trajectory cluster, clusters found.

    k-means (scikit-learn, ``random_state=seed``, ``n_init=10``) on the raw trajectories; visit
    clusters from the smallest (ties: lowest first row); each gets ``remaining // clusters_left``
    rows, all of a cluster that has no more than that, otherwise a seeded uniform draw. Unused
    quota of small clusters flows to the larger ones, so exactly ``min(k, n)`` rows are taken.
    """
    from sklearn.cluster import KMeans  # scikit-learn loads only for s2l: the other strategies are pandas and numpy

    n_found = min(n_clusters, len(np.unique(trajectories, axis=0)))
    labels = KMeans(n_clusters=n_found, random_state=seed, n_init=10).fit_predict(trajectories)
    groups = [np.flatnonzero(labels == label) for label in np.unique(labels)]  # positions, row order
    groups.sort(key=lambda g: (len(g), rows[g[0]]))
    rng = np.random.default_rng(seed)
    taken, cluster = [], []
    remaining = k
    for i, members in enumerate(groups):
        quota = remaining // (len(groups) - i)
        pick = members if len(members) <= quota else members[rng.permutation(len(members))[:quota]]
        taken.append(pick)
        cluster.append(np.full(len(pick), i))
        remaining -= len(pick)
    return np.concatenate(taken), np.concatenate(cluster), len(groups)


# ---------------------------------------------------------------- selection


@dataclass(frozen=True)
class Selection:
    """What a strategy selected, and how much of the table that is.

    ``rows`` are input ``row`` ids in selection order: hardest (or the strategy's end) first, ties
    by row; a random draw in draw order; ``middle`` ascending; per cluster, all selected rows in
    the strategy's order (clustered-random: by row); s2l cluster by cluster, smallest cluster first.
    ``values[i]`` is the score ``rows[i]`` was ordered by (``values`` is None for random and s2l);
    ``groups[i]`` its cluster (the given cluster id; for s2l the trajectory cluster, numbered from
    the smallest), None without clusters.
    """

    strategy: str
    rows: tuple[int, ...]
    requested: float | int  # the fraction (float) or count (int) asked for
    per_cluster: bool
    n_input: int  # all rows of the scores table
    n_eligible: int  # rows the strategy could select
    real_fraction: float  # len(rows) / n_eligible
    real_fraction_of_input: float  # len(rows) / n_input
    skipped: dict[str, int]  # reason -> rows not eligible
    score: str | None  # the score rows were ordered by
    values: tuple[float, ...] | None
    groups: tuple[Hashable, ...] | None
    n_clusters: int | None  # clusters holding an eligible row (given clusters, or s2l's)
    n_clusters_covered: int | None  # of those, clusters with a selected row
    seed: int
    mirror: str | None = None  # random strategies: the strategy whose eligible rows were drawn from
    cluster_rows: str | None = None  # per cluster: what n_c counted ("eligible" or "all"); None without clusters
    n_short: int = 0  # per cluster: rows the counts asked for that the clusters' eligible rows could not give

    def summary(self) -> dict[str, Any]:
        """Everything but the per-row tuples, as plain JSON-serialisable data."""
        # not asdict(): it deep-copies the per-row tuples only to drop them (25 ms for a 17k-row selection)
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("rows", "values", "groups")}
        out["skipped"] = dict(self.skipped)
        out["n_selected"] = len(self.rows)
        return out


def selection_frame(selection: Selection) -> pd.DataFrame:
    """Per-selected-row columns to add to the output: row, selection_rank (1 = first), selection_score
    (when the strategy has a score) and selection_cluster (when it used clusters), one row per
    selected row, in selection order."""
    out = pd.DataFrame(
        {
            "row": np.asarray(selection.rows, dtype="int64"),
            "selection_rank": np.arange(1, len(selection.rows) + 1, dtype="int64"),
        }
    )
    if selection.values is not None:
        out["selection_score"] = np.asarray(selection.values, dtype="float64")
    if selection.groups is not None:
        out["selection_cluster"] = list(selection.groups)
    return out


def _check_fraction(fraction: float) -> None:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise SelectionError(f"fraction must be a number in (0, 1], got {fraction!r}.")


def _check_request(fraction: float | None, count: int | None) -> None:
    if (fraction is None) == (count is None):
        raise SelectionError(
            "Pass exactly one of fraction (a share of the eligible rows) or count (a number of rows)."
        )
    if fraction is not None:
        _check_fraction(fraction)
    elif isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise SelectionError(f"count must be a whole number of rows, 1 or more, got {count!r}.")


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _sorted_ids(ids: list) -> list:
    try:
        return sorted(ids)
    except TypeError:
        return sorted(ids, key=repr)


def _eligibility(scores: pd.DataFrame, spec: Strategy) -> tuple[np.ndarray, list[tuple[str, np.ndarray]]]:
    """Eligible mask and (reason, mask) pairs in precedence order. The score is read for every row,
    so a missing column is an error even on a table with no ok row."""
    n = len(scores)
    checks: list[tuple[str, np.ndarray]] = []
    status = scores["status"].astype(str).to_numpy()
    for value in sorted(set(status) - {"ok"}):
        checks.append((f"status {value}", status == value))
    if spec.order == "s2l":
        trajectories = _trajectories(scores)
        checks.append((f"nll_0..nll_{trajectories.shape[1] - 1} has a NaN", np.isnan(trajectories).any(axis=1)))
    elif spec.score is not None:
        values = score_values(scores, spec.score).to_numpy()
        checks.append((f"{spec.score} is NaN", np.isnan(values)))
        if spec.below is not None:
            with np.errstate(invalid="ignore"):
                checks.append((f"{spec.score} >= {spec.below:g}", values >= spec.below))
    eligible = np.ones(n, dtype=bool)
    for _, mask in checks:
        eligible &= ~mask
    return eligible, checks


def _skipped(checks: list[tuple[str, np.ndarray]], n: int) -> dict[str, int]:
    """Each non-eligible row counted once, under its first reason."""
    out: dict[str, int] = {}
    claimed = np.zeros(n, dtype=bool)
    for reason, mask in checks:
        mine = mask & ~claimed
        if mine.any():
            out[reason] = int(mine.sum())
        claimed |= mask
    return out


def select(
    scores: pd.DataFrame,
    strategy: str,
    *,
    fraction: float | None = None,
    count: int | None = None,
    clusters: pd.Series | None = None,
    selection_seed: int = 42,
    mirror: str | None = None,
    trajectory_clusters: int | None = None,
    cluster_rows: str = "eligible",
    seed: int | None = None,
) -> Selection:
    """Apply ``strategy`` to a scores table.

    Exactly one of ``fraction`` (in (0, 1], of the eligible rows) or ``count``. ``clusters`` (a
    Series indexed by ``row`` giving a cluster id) switches to the paper's per-cluster selection
    (fraction only); ``clustered-random`` requires it, ``random`` and ``s2l`` refuse it.
    ``cluster_rows`` (with ``clusters`` only): a cluster's count is ``ceil(n_c / round(1 / fraction))``
    of its ``"eligible"`` rows, or of ``"all"`` its rows in the scores table (the paper's count; at
    most its eligible rows are taken, the rest is counted in ``Selection.n_short``).
    ``mirror`` (random strategies only): draw from the rows that strategy could select, so that
    sizes and per-cluster counts equal that strategy's exactly (e.g. ``mirror="lp1-hard"``).
    ``trajectory_clusters``: s2l's k-means K (default ``min(S2L_CLUSTERS, rows to select)``).
    ``selection_seed`` seeds the random draws (``seed``: its deprecated name).

    Raises:
        [`~hf_lpselect.errors.SelectionError`]: an unknown strategy, a size outside its range, options that do not go
            together, or a scores table without the columns the strategy needs.
    """
    seed = renamed_keyword("select", "seed", "selection_seed", seed, selection_seed)
    spec = get_strategy(strategy)
    _check_request(fraction, count)
    if cluster_rows not in CLUSTER_ROWS:
        raise SelectionError(f"cluster_rows must be one of {', '.join(CLUSTER_ROWS)}, got {cluster_rows!r}.")
    if clusters is None and cluster_rows != "eligible":
        raise SelectionError(
            f"cluster_rows={cluster_rows!r} sets the per-cluster counts; it needs per-cluster selection (clusters)."
        )
    if clusters is not None:
        if count is not None:
            raise SelectionError(
                "Per-cluster selection takes a fraction, not a count: each cluster gives "
                "ceil(n_c / round(1 / fraction)) rows (the paper's rule), which a count does not define."
            )
        if spec.name == "random":
            raise SelectionError("'random' is a global uniform draw; use 'clustered-random' with clusters.")
        if spec.order == "s2l":
            raise SelectionError(
                "'s2l' spreads the selection over its own loss-trajectory clusters; it takes no clusters."
            )
    elif spec.name == "clustered-random":
        raise SelectionError(
            "'clustered-random' needs clusters (a Series mapping row to cluster id); use 'random' without."
        )
    if mirror is not None and spec.order != "random":
        raise SelectionError(f"mirror applies to the random strategies only, not {strategy!r}.")
    if trajectory_clusters is not None:
        if spec.order != "s2l":
            raise SelectionError(f"trajectory_clusters applies to 's2l' only, not {strategy!r}.")
        if (
            not isinstance(trajectory_clusters, (int, np.integer))
            or isinstance(trajectory_clusters, bool)
            or trajectory_clusters < 1
        ):
            raise SelectionError(
                f"trajectory_clusters must be a whole number, 1 or more, got {trajectory_clusters!r}."
            )
    missing = [c for c in ("row", "status") if c not in scores.columns]
    if missing:
        raise SelectionError(f"Not a scores table: no column(s) {', '.join(missing)}.")
    if scores["row"].duplicated().any():
        raise SelectionError("The scores table has duplicate `row` values; each input row must appear once.")

    n = len(scores)
    eligible, checks = _eligibility(scores, get_strategy(mirror) if mirror is not None else spec)
    cluster_ids = None
    if clusters is not None:
        if clusters.index.duplicated().any():
            raise SelectionError("clusters gives more than one cluster id for some row; index it by `row`, once each.")
        cluster_ids = scores["row"].map(clusters)
        checks.append(("no cluster id", cluster_ids.isna().to_numpy()))
        eligible &= cluster_ids.notna().to_numpy()
    skipped = _skipped(checks, n)

    pool = scores.loc[eligible]
    order = np.argsort(pool["row"].to_numpy(), kind="stable")  # everything below works on rows sorted by row
    pool = pool.iloc[order]
    rows = pool["row"].to_numpy(dtype=np.int64)
    values = score_values(pool, spec.score).to_numpy() if spec.score is not None else np.full(len(pool), np.nan)
    rng = np.random.default_rng(seed)
    groups: np.ndarray | None = None
    n_clusters = covered = None
    n_short = 0

    if cluster_ids is not None:
        pool_clusters = pool["row"].map(clusters).to_numpy()  # every pool row has one: keeps the ids' dtype
        ids = _sorted_ids(list(pd.unique(pool_clusters)))
        members_of = {cid: np.flatnonzero(pool_clusters == cid) for cid in ids}
        eligible_sizes = [len(members_of[cid]) for cid in ids]
        if cluster_rows == "all":
            clustered = scores.loc[cluster_ids.notna().to_numpy(), "row"].map(clusters)  # every row with an id
            asked = per_cluster_counts(clustered.value_counts().to_dict(), fraction)
            counts = [min(int(asked[cid]), size) for cid, size in zip(ids, eligible_sizes)]
            n_short = int(asked.sum()) - sum(counts)  # includes clusters with no eligible row at all
        else:
            counts = per_cluster_counts(eligible_sizes, fraction).tolist()
        picked = []
        for cid, c in zip(ids, counts):
            members = members_of[cid]
            picked.append(members[_take(spec.order, rows[members], values[members], c, rng)])
        taken = np.concatenate(picked) if picked else np.array([], dtype=np.int64)
        taken = taken[_ordered(spec.order, rows[taken], values[taken])]
        groups = pool_clusters[taken]
        n_clusters, covered = len(ids), len(pd.unique(groups))
    else:
        k = min(count, len(pool)) if count is not None else global_count(fraction, len(pool))
        if spec.order == "s2l":
            if len(pool):
                n_trajectory_clusters = trajectory_clusters or min(S2L_CLUSTERS, k)
                taken, groups, n_clusters = _s2l(rows, _trajectories(pool), k, n_trajectory_clusters, seed)
            else:
                taken, groups, n_clusters = np.array([], dtype=np.int64), np.array([], dtype=np.int64), 0
            covered = len(np.unique(groups))
        else:
            taken = _take(spec.order, rows, values, k, rng)

    selected = rows[taken]
    return Selection(
        strategy=spec.name,
        rows=tuple(int(r) for r in selected),
        requested=float(fraction) if fraction is not None else int(count),
        per_cluster=clusters is not None,
        n_input=n,
        n_eligible=len(pool),
        real_fraction=len(selected) / len(pool) if len(pool) else 0.0,
        real_fraction_of_input=len(selected) / n if n else 0.0,
        skipped=skipped,
        score=spec.score,
        values=tuple(float(v) for v in values[taken]) if spec.score is not None else None,
        groups=tuple(_python(g) for g in groups) if groups is not None else None,
        n_clusters=n_clusters,
        n_clusters_covered=covered,
        seed=seed,
        mirror=mirror,
        cluster_rows=cluster_rows if clusters is not None else None,
        n_short=n_short,
    )
