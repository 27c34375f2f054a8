"""The figure of this line of work: stacked win / tie / lose bars per test set, with the winning score."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.figures import new_figure


if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .eval_result import PairwiseRow

COLOURS = {"win": "#4c9a2a", "tie": "#b8b8b8", "lose": "#c0392b"}


def win_tie_lose_figure(pairwise: list[PairwiseRow], *, judge: str = "") -> Figure:
    """One panel per model against the baseline; one bar per test set (share of judged pairs).

    Args:
        pairwise (`list[PairwiseRow]`): the verdicts, one row per model and test set (``EvalResult.pairwise``).
        judge (`str`, defaults to `""`): the judge's name, for the title.

    Returns:
        `matplotlib.figure.Figure` on the Agg canvas; ``fig.savefig(path)`` writes it.

    Example:
        >>> fig = win_tie_lose_figure(result.pairwise, judge="gpt-4o")  # doctest: +SKIP
        >>> fig.savefig("win_tie_lose.png")  # doctest: +SKIP
    """
    models = list(dict.fromkeys(row.model for row in pairwise))
    n_sets = max((sum(row.model == m for row in pairwise) for m in models), default=1)
    fig = new_figure(width=8.0, height=1.0 + 0.45 * n_sets * len(models) + 0.6 * len(models))
    axes = fig.subplots(len(models), 1, squeeze=False)[:, 0]
    for ax, model in zip(axes, models):
        rows = [row for row in pairwise if row.model == model][::-1]  # first test set on top
        labels = [row.test_set for row in rows]
        left = [0.0] * len(rows)
        for outcome in ("win", "tie", "lose"):
            shares = [getattr(row, outcome) / row.total if row.total else 0.0 for row in rows]
            bars = ax.barh(labels, shares, left=left, color=COLOURS[outcome], label=outcome.capitalize())
            for bar, share, row in zip(bars, shares, rows):
                if share >= 0.06:
                    ax.text(
                        bar.get_x() + bar.get_width() / 2,
                        bar.get_y() + bar.get_height() / 2,
                        str(getattr(row, outcome)),
                        ha="center",
                        va="center",
                        fontsize=8,
                    )
            left = [a + b for a, b in zip(left, shares)]
        for y, row in enumerate(rows):
            text = f"{row.winning_score:.3f}" if row.winning_score is not None else "n/a"
            if row.unparseable:
                text += f"  ({row.unparseable} unparseable)"
            ax.text(1.02, y, text, va="center", fontsize=8, transform=ax.get_yaxis_transform())
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of judged pairs" if ax is axes[-1] else "")
        ax.set_title(f"{model} vs {rows[0].baseline}" if rows else model, fontsize=10, loc="left")
        ax.text(1.02, 1.0, "winning score", fontsize=8, transform=ax.transAxes, va="bottom")
    axes[0].legend(ncols=3, fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False)
    if judge:
        fig.suptitle(f"Judge: {judge} (both orders; win = win+win or win+tie)", fontsize=9)
    return fig
