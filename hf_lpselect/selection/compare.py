"""``lpselect compare``: does hardness transfer from one scorer to another?

Reads only what the run contract guarantees (``scores.parquet`` with ``id`` and the score
columns), so runs made by other tools can be compared once converted to that contract. Writes
``compare.json`` (every number of :func:`~hf_lpselect.selection.agreement.agreement`) and ``scatter.png``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..core.figures import new_figure
from ..core.io import write_json
from ..core.schema import display_name
from ..errors import DataError
from .agreement import agreement, match_by_id


if TYPE_CHECKING:
    from matplotlib.figure import Figure


def read_scores(run: str | Path) -> pd.DataFrame:
    """``scores.parquet`` of a run directory (or the Parquet file itself)."""
    path = Path(run)
    path = path / "scores.parquet" if path.is_dir() else path
    if not path.is_file():
        raise DataError(f"No scores table at {path}: give a finished run directory or a scores.parquet file.")
    return pd.read_parquet(path)


def scatter_figure(a: pd.DataFrame, b: pd.DataFrame, score: str, labels: tuple[str, str]) -> Figure:
    """Rank-vs-rank scatter (percentiles) of ``score`` over the rows both tables scored, on the Agg
    canvas (:func:`hf_lpselect.core.figures.new_figure`: no pyplot state, safe in the Space's threads)."""
    both = match_by_id(a, b, [score])[0]
    fig = new_figure(5.5, 5.5)
    ax = fig.add_subplot()
    if len(both):
        x = both[f"{score}_a"].rank(pct=True) * 100
        y = both[f"{score}_b"].rank(pct=True) * 100
        ax.scatter(x, y, s=6, alpha=min(1.0, max(0.1, 300 / len(both))), linewidths=0)
    ax.plot([0, 100], [0, 100], color="grey", lw=0.8, ls="--")
    name = display_name(score)
    ax.set_xlabel(f"{name} percentile, {labels[0]}")
    ax.set_ylabel(f"{name} percentile, {labels[1]}")
    ax.set_title(f"{name}: {len(both)} rows scored by both")
    return fig


@dataclass(frozen=True)
class TopOverlap:
    """How many of the hardest ``k`` rows by one run are among the hardest ``k`` by the other.

    Attributes:
        fraction (`float`): the share of the matched rows, ``k`` = :func:`~hf_lpselect.selection.strategies.global_count` of it.
        k (`int`): rows in each hardest set.
        n_common (`int`): rows in both.
        overlap (`float` or `None`): ``n_common / k`` (None when k is 0).
        expected_random (`float` or `None`): its value for two unrelated rankings, ``k / n_matched``.
    """

    fraction: float
    k: int
    n_common: int
    overlap: float | None
    expected_random: float | None


@dataclass(frozen=True)
class ScoreAgreement:
    """The agreement of one score between two runs (None where undefined: under 2 rows, a constant score).

    Attributes:
        hardest (`str`): which end of the score is hard, ``"low"`` or ``"high"``.
        spearman (`float` or `None`), spearman_p (`float` or `None`): Spearman's rho and its p-value.
        kendall_tau_b (`float` or `None`), kendall_p (`float` or `None`): Kendall's tau-b and its p-value.
        top (`tuple[TopOverlap, ...]`): overlap of the hardest sets, one per fraction.
    """

    hardest: str
    spearman: float | None
    spearman_p: float | None
    kendall_tau_b: float | None
    kendall_p: float | None
    top: tuple[TopOverlap, ...]

    def line(self, name: str) -> str:
        """One line: the correlations and the overlaps of the hardest sets."""
        fmt = lambda value: "n/a" if value is None else f"{value:.3f}"  # noqa: E731
        tops = ", ".join(f"{t.fraction:.0%}: {t.overlap:.2f}" for t in self.top if t.overlap is not None)
        return f"{name}: Spearman {fmt(self.spearman)}, Kendall tau-b {fmt(self.kendall_tau_b)}; overlap of the hardest {tops}"


@dataclass(frozen=True)
class CompareResult:
    """What :func:`compare_runs` measured and wrote (``compare.json`` holds :meth:`to_dict`).

    Attributes:
        score (`str`): the compared score; reference (`str` or `None`): the second score compared alongside (``ppl_0``).
        runs (`tuple[str, str]`): the two runs.
        n_a (`int`), n_b (`int`): rows of each scores table; n_matched (`int`): rows usable in both, matched by id.
        dropped (`dict[str, dict[str, int]]`): per run (``"a"``, ``"b"``), the rows not matched, by first reason.
        results (`dict[str, ScoreAgreement]`): the agreement of ``score`` (and of ``reference``).
        files (`tuple[Path, Path]`): ``compare.json`` and ``scatter.png``.

    Example:

    ```python
    >>> print(compare_runs("runs/small", "runs/large").summary())
    ```
    """

    score: str
    reference: str | None
    runs: tuple[str, str]
    n_a: int
    n_b: int
    n_matched: int
    dropped: dict[str, dict[str, int]]
    results: dict[str, ScoreAgreement]
    files: tuple[Path, Path]

    @property
    def n_dropped(self) -> dict[str, int]:
        """Rows of each run left unmatched."""
        return {side: sum(reasons.values()) for side, reasons in self.dropped.items()}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: :func:`~hf_lpselect.selection.agreement.agreement`'s keys plus ``runs`` and ``files``."""
        out = asdict(self)
        out.update(runs=list(self.runs), files=[str(path) for path in self.files], n_dropped=self.n_dropped)
        return out

    def summary(self) -> str:
        """What ``lpselect compare`` prints: the rows matched, each score's agreement, the files."""
        lines = [
            f"{self.n_matched} rows matched by id (dropped: {self.n_dropped['a']} from the first run, "
            f"{self.n_dropped['b']} from the second)"
        ]
        lines += [agreement.line(name) for name, agreement in self.results.items()]
        lines.append(f"written: {', '.join(str(path) for path in self.files)}")
        return "\n".join(lines)


def compare_runs(
    run_a: str | Path, run_b: str | Path, *, score: str = "lp1", out: str | Path | None = None
) -> CompareResult:
    """Agreement of two runs over the rows both scored, written to ``out/compare.json`` and ``out/scatter.png``.

    Args:
        run_a (`str` or `Path`): the first run directory, or a ``scores.parquet``.
        run_b (`str` or `Path`): the second.
        score (`str`, *optional*, defaults to `"lp1"`): the score to compare (``ppl_0`` is compared alongside
            when both have it).
        out (`str`, `Path` or `None`, *optional*, defaults to `None`): the folder to write to
            (default ``RUN_A/compare-NAME_B``).

    Returns:
        `CompareResult`: the numbers and the files; ``summary()`` prints them.

    Raises:
        [`~hf_lpselect.errors.RunError`]: a run directory that holds no complete scorer run.
        [`~hf_lpselect.errors.DataError`]: two runs with too few rows in common, or without the compared score.
        [`~hf_lpselect.errors.SelectionError`]: a top fraction outside (0, 1].

    Example:

    ```python
    >>> result = compare_runs("runs/smollm-135m", "runs/smollm-360m")
    >>> result.results["lp1"].spearman
    ```
    """
    a, b = read_scores(run_a), read_scores(run_b)
    for name, table in (("first", a), ("second", b)):
        if score not in table or "id" not in table:
            raise DataError(
                f"The {name} scores table has no {score!r} or 'id' column; columns: {', '.join(table.columns)}."
            )
    matched = len(match_by_id(a, b, [score])[0])
    if matched < 2:
        raise DataError(
            f"{run_a} and {run_b} have {matched} row(s) with {score} in both (rows are matched by content id), "
            "too few to compare: compare two runs over the same data."
        )
    reference = "ppl_0" if "ppl_0" in a and "ppl_0" in b and score != "ppl_0" else None
    numbers = agreement(a, b, score=score, reference=reference)
    labels = (Path(run_a).name, Path(run_b).name)
    out = Path(out) if out is not None else Path(run_a) / f"compare-{labels[1]}"
    out.mkdir(parents=True, exist_ok=True)
    result = CompareResult(
        score=numbers["score"],
        reference=numbers["reference"],
        runs=(str(run_a), str(run_b)),
        n_a=numbers["n_a"],
        n_b=numbers["n_b"],
        n_matched=numbers["n_matched"],
        dropped=numbers["dropped"],
        results={
            name: ScoreAgreement(**{**r, "top": tuple(TopOverlap(**t) for t in r["top"])})
            for name, r in numbers["results"].items()
        },
        files=(out / "compare.json", out / "scatter.png"),
    )
    write_json(result.to_dict(), result.files[0])
    scatter_figure(a, b, score, labels).savefig(result.files[1])
    return result
