"""Figures and a short Markdown report of a scorer run: what a person would rather look at than read.

Each figure function takes a scores table (``scores.parquet``, see
:func:`hf_lpselect.scoring.scorer_run.build_scores`) and returns a :class:`matplotlib.figure.Figure` drawn on the
Agg canvas (no pyplot, no global state: safe in a Gradio Space or a notebook). :func:`make_report`
reads a run directory, saves the figures that make sense for it as PNG files and writes
``report.md`` embedding them. A run with ``--epochs 0`` has no LP(1): it gets the status counts,
the P_0 histogram, P_0 against length and the highest / lowest P_0 rows.


"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np
import pandas as pd

from ..core.figures import DPI, new_figure
from ..core.io import atomic_write, write_text
from ..core.schema import STATUSES, display_name
from ..errors import DataError, RunError
from ..record import RunRecord
from ..rundir import RunDir
from ..scoring.summary import display_texts
from .arguments import ReportArguments
from .strategies import HARD_END
from .subsets import run_rows


if TYPE_CHECKING:
    from matplotlib.figure import Figure

TERTILES = ("hard", "medium", "easy")
_TERTILE_COLORS = {"hard": "#c0392b", "medium": "#7f8c8d", "easy": "#2471a3"}
_STATUS_COLORS = {"ok": "#27ae60", "excluded": "#e67e22", "invalid": "#c0392b", "duplicate": "#7f8c8d"}
_PPL_PASS = re.compile(r"^ppl_(\d+)$")
# Every figure make_report may write; old copies of those it does not write this time are removed.
FIGURE_FILES = {
    "status_counts": "status_counts.png",
    "lp1_histogram": "lp1_histogram.png",
    "p0_histogram": "p0_histogram.png",
    "trajectory": "ppl_trajectory_by_tertile.png",
    "lp1_vs_length": "lp1_vs_length.png",
    "p0_vs_length": "p0_vs_length.png",
}


def _plain_log_ticks(axis) -> None:
    """Log-axis tick labels as plain numbers (20, 50, 100), not 2×10^1."""
    from matplotlib.ticker import LogFormatter  # matplotlib loads with the first figure (core/figures.py)

    axis.set_major_formatter(LogFormatter())
    axis.set_minor_formatter(LogFormatter(minor_thresholds=(2, 0.5)))


def pass_columns(scores: pd.DataFrame) -> list[str]:
    """``ppl_0 .. ppl_n`` of the table, by pass number (``ppl_alone`` is not a pass)."""
    found = [(int(m.group(1)), c) for c in scores.columns if (m := _PPL_PASS.match(str(c)))]
    return [c for _, c in sorted(found)]


def _finite(values: pd.Series) -> pd.Series:
    values = pd.to_numeric(values, errors="coerce").astype("float64")
    return values[np.isfinite(values)]


def _has(scores: pd.DataFrame, column: str, at_least: int = 1) -> bool:
    return column in scores.columns and len(_finite(scores[column])) >= at_least


def lp_display_range(values: pd.Series) -> tuple[float, float]:
    """The x range of an LP plot: [0, 1] widened to the 0.5 % / 99.5 % quantiles, never beyond [-0.5, 1.5]."""
    values = _finite(values)
    if values.empty:
        return 0.0, 1.0
    lo = min(0.0, np.floor(values.quantile(0.005) * 10) / 10)
    hi = max(1.0, np.ceil(values.quantile(0.995) * 10) / 10)
    return max(lo, -0.5), min(hi, 1.5)


def _no_data(what: str) -> ValueError:
    return ValueError(f"No finite {what} values to plot.")


# ----------------------------------------------------------------------------- figures


def lp1_histogram(scores: pd.DataFrame, bins: int = 40) -> Figure:
    """Histogram of LP(1) with its median; values outside the plotted range are drawn in the edge bins
    and counted in the title, the LP < 0 and LP > 1 regions are shaded and counted in the legend."""
    values = _finite(scores["lp1"]) if "lp1" in scores else pd.Series(dtype="float64")
    if values.empty:
        raise _no_data("LP(1)")
    lo, hi = lp_display_range(values)
    outside = int(((values < lo) | (values > hi)).sum())
    fig = new_figure()
    ax = fig.add_subplot()
    ax.hist(values.clip(lo, hi), bins=np.linspace(lo, hi, bins + 1), color="#5b7db1", edgecolor="white", linewidth=0.5)
    below, above = int((values < 0).sum()), int((values > 1).sum())
    if lo < 0:
        ax.axvspan(lo, 0, color="#c0392b", alpha=0.08, label=f"LP(1) < 0: {below} rows")
    if hi > 1:
        ax.axvspan(1, hi, color="#e67e22", alpha=0.10, label=f"LP(1) > 1: {above} rows")
    median = float(values.median())
    ax.axvline(median, color="black", linestyle="--", linewidth=1.2, label=f"median {median:.3f}")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("LP(1) = (P_0 − P_1) / (P_0 − P_n)    ← hard (learned slowly)   easy →")
    ax.set_ylabel("rows")
    title = f"LP(1) of {len(values):,} scored rows: {below:,} below 0, {above:,} above 1"
    if outside:
        title += f"\n{outside} value(s) outside [{lo:g}, {hi:g}] drawn in the edge bins"
    ax.set_title(title)
    ax.legend(loc="upper left", frameon=False)
    return fig


def p0_histogram(scores: pd.DataFrame, bins: int = 40) -> Figure:
    """Histogram of the perplexity before training, P_0, on log-spaced bins."""
    values = _finite(scores["ppl_0"]) if "ppl_0" in scores else pd.Series(dtype="float64")
    values = values[values > 0]
    if values.empty:
        raise _no_data("P_0")
    lo, hi = float(values.min()), float(values.max())
    edges = np.geomspace(lo, hi if hi > lo else lo * 1.01, bins + 1)
    fig = new_figure()
    ax = fig.add_subplot()
    ax.hist(values, bins=edges, color="#5b7db1", edgecolor="white", linewidth=0.5)
    median = float(values.median())
    ax.axvline(median, color="black", linestyle="--", linewidth=1.2, label=f"median {median:.2f}")
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis)
    ax.set_xlabel("P_0: response perplexity before training (log scale)")
    ax.set_ylabel("rows")
    ax.set_title(f"Perplexity before training of {len(values):,} scored rows")
    ax.legend(loc="upper right", frameon=False)
    return fig


def lp1_tertiles(scores: pd.DataFrame) -> pd.Series:
    """ "hard" / "medium" / "easy" by LP(1) thirds (rank-based, ties by row) for rows with a finite
    LP(1); NaN elsewhere. Indexed like ``scores``."""
    values = pd.to_numeric(scores["lp1"], errors="coerce").astype("float64")
    keep = np.isfinite(values)
    out = pd.Series(np.nan, index=scores.index, dtype=object)
    if keep.sum() < 3:
        return out
    frame = pd.DataFrame({"lp1": values[keep], "row": scores.loc[keep, "row"]})
    ranks = frame.sort_values(["lp1", "row"]).assign(rank=np.arange(1, len(frame) + 1))["rank"]
    out.loc[ranks.index] = pd.qcut(ranks, 3, labels=list(TERTILES)).astype(str)
    return out


def trajectory_by_tertile(scores: pd.DataFrame) -> Figure:
    """Mean perplexity P_0..P_n of the hard / medium / easy LP(1) thirds (log y)."""
    columns = pass_columns(scores)
    if len(columns) < 2 or not _has(scores, "lp1", 3):
        raise DataError("The trajectory needs at least one training epoch and 3 rows with an LP(1).")
    thirds = lp1_tertiles(scores)
    fig = new_figure()
    ax = fig.add_subplot()
    x = np.arange(len(columns))
    for name in TERTILES:
        members = scores.loc[thirds == name]
        lp = members["lp1"]
        means = members[columns].mean()
        ax.plot(
            x,
            means.to_numpy(),
            marker="o",
            color=_TERTILE_COLORS[name],
            linewidth=2,
            label=f"{name}: {len(members):,} rows, LP(1) {lp.min():.2f} to {lp.max():.2f}",
        )
    ax.set_yscale("log")
    _plain_log_ticks(ax.yaxis)
    ax.set_xticks(x, [f"P_{c.split('_')[1]}" for c in columns])
    ax.set_xlabel("pass (P_0 before training, P_K after epoch K)")
    ax.set_ylabel("mean response perplexity (log scale)")
    ax.set_title("Perplexity trajectory by LP(1) third")
    ax.legend(frameon=False)
    ax.grid(True, which="major", axis="y", alpha=0.3)
    return fig


def spearman(scores: pd.DataFrame, score: str = "lp1", length: str = "n_response_tokens") -> tuple[float, int]:
    """Spearman correlation of ``score`` with response length over rows where both are finite, and n."""
    from scipy.stats import spearmanr  # scipy.stats takes ~0.3 s to import; the Space's pages need it only here

    both = scores[[score, length]].apply(pd.to_numeric, errors="coerce").astype("float64")
    both = both[np.isfinite(both).all(axis=1)]
    if len(both) < 2 or both[score].nunique() < 2 or both[length].nunique() < 2:
        return float("nan"), len(both)
    return float(spearmanr(both[score], both[length]).statistic), len(both)


def score_vs_length(scores: pd.DataFrame, score: str = "lp1") -> Figure:
    """``score`` (LP(1), or P_0 for a run without training) against response tokens (log x), with
    the median per length bin and the Spearman correlation in the title: the length-bias caveat."""
    if score not in scores or "n_response_tokens" not in scores:
        raise DataError(f"The scores table needs columns {score} and n_response_tokens.")
    frame = scores[[score, "n_response_tokens"]].apply(pd.to_numeric, errors="coerce").astype("float64")
    frame = frame[np.isfinite(frame).all(axis=1) & (frame["n_response_tokens"] > 0)]
    if frame.empty:
        raise _no_data(score)
    rho, n = spearman(frame, score)
    y, x = frame[score], frame["n_response_tokens"]
    fig = new_figure()
    ax = fig.add_subplot()
    note = ""
    if score == "ppl_0":
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis)
    else:
        lo, hi = lp_display_range(y)
        outside = int(((y < lo) | (y > hi)).sum())
        y = y.clip(lo, hi)
        ax.set_ylim(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo))
        if outside:
            note = f"; {outside} outside [{lo:g}, {hi:g}] drawn at the edge"
    alpha = float(np.clip(300 / len(frame), 0.08, 0.7))
    ax.scatter(x, y, s=16 if len(frame) < 1000 else 5, alpha=alpha, color="#5b7db1", linewidths=0, label="rows")
    if x.nunique() > 1:
        edges = np.geomspace(x.min(), x.max() * 1.0001, 16)
        which = np.digitize(x, edges)
        binned = pd.DataFrame({"x": x, "y": y, "bin": which}).groupby("bin").filter(lambda g: len(g) >= 5)
        if not binned.empty:
            medians = binned.groupby("bin").agg(x=("x", "median"), y=("y", "median"))
            ax.plot(
                medians["x"],
                medians["y"],
                color="black",
                linewidth=2,
                marker="o",
                markersize=3,
                label="median per length bin",
            )
    ax.set_xscale("log")
    _plain_log_ticks(ax.xaxis)
    ax.set_xlabel("response tokens (log scale)")
    ax.set_ylabel(display_name(score, explained=True))
    rho_text = "n/a" if np.isnan(rho) else f"{rho:+.3f}"
    ax.set_title(f"{display_name(score)} against response length\nSpearman ρ = {rho_text} (n = {n:,}{note})")
    ax.legend(frameon=False, loc="best")
    return fig


def lp1_vs_length(scores: pd.DataFrame) -> Figure:
    """:func:`score_vs_length` for LP(1)."""
    return score_vs_length(scores, "lp1")


def status_counts(scores: pd.DataFrame) -> Figure:
    """Bar chart of rows by status (ok, excluded, invalid, duplicate, then any other), counts on the bars."""
    counts = count_statuses(scores)
    fig = new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    bars = ax.bar(
        list(counts.index), counts.to_numpy(), color=[_STATUS_COLORS.get(s, "#5b7db1") for s in counts.index]
    )
    ax.bar_label(bars, labels=[f"{v:,}" for v in counts.to_numpy()], padding=2)
    ax.set_ylabel("rows")
    ax.set_ylim(0, max(1, counts.max()) * 1.15)
    ax.set_title(f"{int(counts.sum()):,} input rows by status")
    return fig


def count_statuses(scores: pd.DataFrame) -> pd.Series:
    """Rows per status, the known statuses first (zeros included), then any other, as found."""
    found = scores["status"].astype(str).value_counts()
    order = list(STATUSES) + sorted(set(found.index) - set(STATUSES))
    return pd.Series({s: int(found.get(s, 0)) for s in order}, dtype="int64")


def examples(
    scores: pd.DataFrame, n: int = 5, texts: dict[int, str] | None = None, score: str = "lp1"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(hardest, easiest) rows by ``score``: lowest / highest LP(1), ties by row (for ``ppl_0``:
    highest / lowest, the surprising end first). Columns: row, id, the score, P_0, P_n, response
    tokens and ``text`` (from ``texts``, "" when not given)."""

    ranked = scores[np.isfinite(pd.to_numeric(scores[score], errors="coerce").astype("float64"))]
    hard_low = HARD_END.get(score, "low") == "low"
    columns = list(
        dict.fromkeys(["row", "id", score, *pass_columns(scores)[:1], *pass_columns(scores)[-1:], "n_response_tokens"])
    )
    columns = [c for c in columns if c in scores.columns]

    def pick(frame):
        return frame[columns].assign(text=[(texts or {}).get(int(r), "") for r in frame["row"]]).reset_index(drop=True)

    hardest = pick(ranked.sort_values([score, "row"], ascending=[hard_low, True]).head(n))
    easiest = pick(ranked.sort_values([score, "row"], ascending=[not hard_low, True]).head(n))
    return hardest, easiest


# ----------------------------------------------------------------------------- the report


@dataclass
class ReportResult:
    """What :func:`make_report` wrote: the folder, ``report.md``, each figure's PNG and the numbers."""

    out_dir: Path
    markdown: Path
    figures: dict[str, Path]
    stats: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """Where ``report.md`` and each figure went."""
        return "\n".join([f"written: {self.markdown}", *(f"  {name}: {path}" for name, path in self.figures.items())])


def _save(fig: Figure, path: Path) -> None:
    """Save as PNG atomically."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))


def _cell(text: Any, width: int = 160) -> str:
    """One Markdown table cell: one line, pipes escaped, shortened."""
    text = " ".join(str(text).split())
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return "NaN" if np.isnan(value) else f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _examples_table(frame: pd.DataFrame) -> list[str]:
    if frame.empty:
        return ["(none)"]
    cols = [c for c in frame.columns if c != "text" or frame["text"].astype(bool).any()]
    names = [display_name(c) for c in cols]
    lines = [
        "| " + " | ".join(names) + " |",
        "|" + "|".join("---" if c == "text" or c == "id" else "---:" for c in cols) + "|",
    ]
    for record in frame[cols].itertuples(index=False):
        cells = []
        for c, v in zip(cols, record):
            cells.append(f"`{v}`" if c == "id" else _cell(v) if c == "text" else _fmt(v))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def reason_lines(scores: pd.DataFrame, top: int = 10) -> list[str]:
    """Rows that are not ``ok``, counted by status and reason, most frequent first, one Markdown-safe
    line each (``"12 × invalid: empty response"``); the rest summed in one last line."""
    not_ok = scores[scores["status"].astype(str) != "ok"]
    counted = not_ok.groupby([not_ok["status"].astype(str), not_ok["reason"].fillna("").astype(str)]).size()
    counted = counted.sort_values(ascending=False, kind="stable")
    lines = [
        f"{n:,} × {status}: {_cell(reason, 120) or '(no reason given)'}"
        for (status, reason), n in counted.head(top).items()
    ]
    if len(counted) > top:
        lines.append(f"… and {int(counted.iloc[top:].sum()):,} more rows with {len(counted) - top} other reasons")
    return lines


def render_report(context: dict[str, Any]) -> str:
    """``report.md`` from the package template ``cards/report.md`` (the numbers are :func:`make_report`'s)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(files("hf_lpselect.cards"))),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template("report.md").render(**context).rstrip() + "\n"


def make_report(
    run_dir: RunDir | str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    texts: dict[int, str] | None = None,
    *,
    n_examples: int = 5,
) -> ReportResult:
    """Write the figures that make sense for this run and ``report.md`` to ``out_dir`` (default
    ``RUN/report``). ``texts`` maps ``row`` to a display text for the example tables. run.json is
    optional (a scores table converted from another tool is enough).

    Raises:
        [`~hf_lpselect.errors.RunError`]: ``run_dir`` holds no scores.
    """
    run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    if not run_dir.path.is_dir():
        raise RunError(f"No run directory at {run_dir.path}; give the --out folder of a finished `lpselect score`.")
    if not run_dir.scores.is_file():
        raise RunError(
            f"{run_dir.path} holds no scores.parquet, so it is not a finished scorer run; "
            "finish it with `lpselect score` first."
        )
    scores = pd.read_parquet(run_dir.scores)
    if "row" not in scores:  # a table converted from another tool may carry only id and scores
        scores.insert(0, "row", np.arange(len(scores)))
    if "status" not in scores:
        scores["status"] = "ok"
    if "reason" not in scores:
        scores["reason"] = ""
    record = RunRecord.load(run_dir.path) if run_dir.run_json.is_file() else None  # a foreign scores table has none
    out = Path(out_dir) if out_dir is not None else run_dir.path / "report"
    out.mkdir(parents=True, exist_ok=True)

    passes = pass_columns(scores)
    epochs = max(len(passes) - 1, 0)
    has_lp = epochs >= 1 and _has(scores, "lp1")
    counts = count_statuses(scores)
    stats: dict[str, Any] = {"n_rows": int(len(scores)), "epochs": epochs, "counts": counts.to_dict()}
    if record is not None and "truncated" in record.counts:
        stats["truncated"] = int(record.counts["truncated"])

    figures: dict[str, Path] = {}

    def save(name: str, fig: Figure) -> str:
        path = out / FIGURE_FILES[name]
        _save(fig, path)
        figures[name] = path
        return FIGURE_FILES[name]

    header = [f"Run `{run_dir.path}`"]
    if record is not None:
        header += [f"scorer `{record.model_name}`", f"data `{record.dataset.source}`"]
    header += [f"{epochs} training epoch(s)", f"{len(scores):,} input rows"]
    context: dict[str, Any] = {
        "header": header,
        "counts": counts.to_dict(),
        "truncated": stats.get("truncated"),
        "reasons": reason_lines(scores),
        "lp_reasons": [],
        "epochs": epochs,
        "lp1": None,
        "p0": None,
        "length": None,
        "example_tables": [],
    }
    save("status_counts", status_counts(scores))
    if "lp_reason" in scores and has_lp:
        ok = scores["status"].astype(str) == "ok"
        lp_reasons = scores.loc[ok & scores["lp1"].isna(), "lp_reason"].astype(str).value_counts()
        stats["ok_without_lp1"] = int(lp_reasons.sum())
        context["lp_reasons"] = [f"{n:,} × {_cell(r, 120)}" for r, n in lp_reasons.items()]

    if has_lp:
        lp = _finite(scores["lp1"])
        lo, hi = lp_display_range(lp)
        q = lp.quantile([0.1, 0.5, 0.9])
        stats["lp1"] = context["lp1"] = {
            "n": int(len(lp)),
            "median": float(q[0.5]),
            "q10": float(q[0.1]),
            "q90": float(q[0.9]),
            "above_1": int((lp > 1).sum()),
            "below_0": int((lp < 0).sum()),
            "outside_plot": int(((lp < lo) | (lp > hi)).sum()),
            "plot_range": [lo, hi],
        }
        save("lp1_histogram", lp1_histogram(scores))

    if _has(scores, "ppl_0"):
        p0 = _finite(scores["ppl_0"])
        stats["ppl_0_median"] = float(p0.median())
        context["p0"] = {"median": float(p0.median()), "n": int(len(p0))}
        save("p0_histogram", p0_histogram(scores))

    if has_lp and _has(scores, "lp1", 3):
        thirds = lp1_tertiles(scores)
        save("trajectory", trajectory_by_tertile(scores))
        if "n_response_tokens" in scores:
            length = scores.groupby(thirds)["n_response_tokens"].mean()
            stats["mean_response_tokens_by_third"] = {t: float(length.get(t, np.nan)) for t in TERTILES}

    length_score = "lp1" if has_lp else "ppl_0"
    if "n_response_tokens" in scores and _has(scores, length_score, 1):
        rho, n = spearman(scores, length_score)
        stats[f"spearman_{length_score}_length"] = rho
        context["length"] = {
            "label": "LP(1)" if has_lp else "P_0",
            "rho": _fmt(rho),
            "n": n,
            "figure": save("lp1_vs_length" if has_lp else "p0_vs_length", score_vs_length(scores, length_score)),
            "by_third": stats.get("mean_response_tokens_by_third"),
        }

    example_score = "lp1" if has_lp else "ppl_0" if _has(scores, "ppl_0") else None
    if example_score:
        hardest, easiest = examples(scores, n_examples, texts, example_score)
        if has_lp:
            titles = ("Hardest rows (lowest LP(1): learned slowest)", "Easiest rows (highest LP(1))")
        else:
            titles = ("Most surprising rows (highest P_0)", "Least surprising rows (lowest P_0)")
        context["example_tables"] = [
            {"title": t, "lines": _examples_table(f)} for t, f in zip(titles, (hardest, easiest))
        ]
    context["figures"] = {name: path.name for name, path in figures.items()}

    for name, filename in FIGURE_FILES.items():  # figures an earlier report wrote and this one did not
        if name not in figures:
            (out / filename).unlink(missing_ok=True)
    markdown = out / "report.md"
    write_text(render_report(context), markdown)
    return ReportResult(out_dir=out, markdown=markdown, figures=figures, stats=stats)


def report_run(args: ReportArguments) -> ReportResult:
    """``lpselect report``: :func:`make_report` with the example rows' texts read from the run's source.

    A scores table made by another tool (no ``run.json``) has no source: its examples show row numbers only.

    Raises:
        [`~hf_lpselect.errors.RunError`]: the run directory holds no scores.

    Example:

    ```python
    >>> print(report_run(ReportArguments(run="runs/mine")).summary())
    ```
    """
    run_dir = RunDir(args.run)
    texts = display_texts(run_rows(run_dir)) if run_dir.run_json.is_file() else None
    return make_report(run_dir, args.out, texts=texts)
