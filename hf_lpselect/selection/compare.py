"""``lpselect compare``: does hardness transfer from one scorer to another?

Reads only what the run contract guarantees (``scores.parquet`` with ``id`` and the score
columns), so runs made by other tools can be compared once converted to that contract. Writes
``compare.json`` (every number of :func:`~hf_lpselect.selection.agreement.agreement`) and ``scatter.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .agreement import agreement, match_by_id
from ..data import DataError
from ..core.io import write_json


def read_scores(run: str | Path) -> pd.DataFrame:
    """``scores.parquet`` of a run directory (or the Parquet file itself)."""
    path = Path(run)
    path = path / "scores.parquet" if path.is_dir() else path
    if not path.is_file():
        raise DataError(f"No scores table at {path}: give a finished run directory or a scores.parquet file.")
    return pd.read_parquet(path)


def scatter_figure(a: pd.DataFrame, b: pd.DataFrame, score: str, labels: tuple[str, str]):
    """Rank-vs-rank scatter (percentiles) of ``score`` over the rows both tables scored."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    both = match_by_id(a, b, [score])[0]
    fig, ax = plt.subplots(figsize=(5.5, 5.5), dpi=120)
    if len(both):
        x = both[f"{score}_a"].rank(pct=True) * 100
        y = both[f"{score}_b"].rank(pct=True) * 100
        ax.scatter(x, y, s=6, alpha=min(1.0, max(0.1, 300 / len(both))), linewidths=0)
    ax.plot([0, 100], [0, 100], color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"{score} percentile, {labels[0]}")
    ax.set_ylabel(f"{score} percentile, {labels[1]}")
    ax.set_title(f"{score}: {len(both)} rows scored by both")
    fig.tight_layout()
    return fig


def compare_runs(run_a: str | Path, run_b: str | Path, *, score: str = "lp1", out: str | Path | None = None) -> dict[str, Any]:
    """Agreement of two runs, written to ``out/compare.json`` and ``out/scatter.png``; returns the numbers."""
    a, b = read_scores(run_a), read_scores(run_b)
    for name, table in (("first", a), ("second", b)):
        if score not in table or "id" not in table:
            raise DataError(f"The {name} scores table has no {score!r} or 'id' column; columns: {', '.join(table.columns)}.")
    matched = len(match_by_id(a, b, [score])[0])
    if matched < 2:
        raise DataError(
            f"{run_a} and {run_b} have {matched} row(s) with {score} in both (rows are matched by content id), "
            "too few to compare: compare two runs over the same data."
        )
    reference = "ppl_0" if "ppl_0" in a and "ppl_0" in b and score != "ppl_0" else None
    try:
        result = agreement(a, b, score=score, reference=reference)
    except ValueError as err:
        raise DataError(str(err)) from err
    labels = (Path(run_a).name, Path(run_b).name)
    out = Path(out) if out is not None else Path(run_a) / f"compare-{labels[1]}"
    out.mkdir(parents=True, exist_ok=True)
    result["runs"] = [str(run_a), str(run_b)]
    result["files"] = [str(out / "compare.json"), str(out / "scatter.png")]
    write_json(result, out / "compare.json")
    fig = scatter_figure(a, b, score, labels)
    fig.savefig(out / "scatter.png")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return result
