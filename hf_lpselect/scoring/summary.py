"""A one-screen summary of a finished scorer run: counts, the LP(1) distribution, the hardest and
easiest rows, and where the files are. Computed as plain data, rendered with rich."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from ..record import RunRecord
from ..rundir import RunDir


_BARS = " ▁▂▃▄▅▆▇█"
_TABLE_FRAME = 13  # a 4-column table's borders (5) and cell padding (2 a column)


def display_texts(rows) -> dict[int, str]:
    """``row`` → a one-line text of a canonical row (instruction, input → output; else the last turns)."""
    texts = {}
    for r in rows:
        if r["instruction"] is not None:
            prompt = f"{r['instruction']} {r['input']}".strip()
            texts[r["row"]] = f"{prompt} → {r['output']}"
        elif r["messages"]:
            texts[r["row"]] = " | ".join(f"{m['role']}: {m['content']}" for m in r["messages"][-2:])
    return texts


def summarize(run_dir: RunDir, texts: dict[int, str] | None = None, n_examples: int = 5) -> dict[str, Any]:
    """Counts, LP(1) quantiles and histogram, hardest/easiest rows of a run (plain data).

    The easiest rows leave out those flagged ``lp1_above_1`` (out of range, not easy); ``easiest_left_out``
    counts them.
    """
    scores = pd.read_parquet(run_dir.scores)
    record = RunRecord.load(run_dir.path)
    out: dict[str, Any] = {
        "run_dir": str(run_dir.path),
        "n_rows": len(scores),
        "counts": record.counts,
        "excluded_reasons": scores.loc[scores["status"] != "ok", "reason"].value_counts().head(5).to_dict(),
        "files": [
            str(p) for p in (run_dir.run_json, run_dir.rows, run_dir.scores, run_dir.train_losses, run_dir.passes_dir)
        ],
    }
    if "lp1" not in scores:
        return out
    lp1 = scores["lp1"].dropna()
    out["lp1"] = {
        "n": int(len(lp1)),
        "nan": int(scores["lp1"].isna().sum() - (scores["status"] != "ok").sum()),
        "quantiles": {q: float(lp1.quantile(q)) for q in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)} if len(lp1) else {},
        "above_1": int(scores["lp1_above_1"].sum()),
        "below_0": int(scores["lp1_below_0"].sum()),
    }
    if len(lp1):
        counts, edges = np.histogram(lp1.clip(-0.5, 1.5), bins=20)
        out["lp1"]["histogram"] = {"counts": counts.tolist(), "edges": edges.tolist()}
    ranked = scores.dropna(subset=["lp1"]).sort_values(["lp1", "row"])
    pick = lambda frame: [  # noqa: E731
        {"row": int(r.row), "lp1": float(r.lp1), "ppl_0": float(r.ppl_0), "text": (texts or {}).get(int(r.row), "")}
        for r in frame.itertuples()
    ]
    out["hardest"] = pick(ranked.head(n_examples))
    # a row flagged LP(1) above 1 is out of range (after epoch 1 below where training ended), not the easiest
    flagged = ranked["lp1_above_1"].fillna(False).astype(bool)
    out["easiest"] = pick(ranked[~flagged].tail(n_examples).iloc[::-1])
    out["easiest_left_out"] = int(flagged.sum())
    return out


def _sparkline(counts: list[int]) -> str:
    top = max(counts) or 1
    return "".join(_BARS[round(c / top * (len(_BARS) - 1))] for c in counts)


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    """Render :func:`summarize`'s output for a terminal."""
    console = console or Console()
    counts = summary["counts"]
    console.print(
        f"[bold]{summary['n_rows']}[/] input rows: [green]{counts['ok']} scored[/], "
        f"{counts['excluded']} excluded, {counts['invalid']} invalid, {counts['duplicate']} duplicate "
        f"({counts['truncated']} truncated to max length)"
    )
    for reason, n in summary["excluded_reasons"].items():
        console.print(f"  {n} × {reason}")
    lp1 = summary.get("lp1")
    if lp1 and lp1["quantiles"]:
        q = lp1["quantiles"]
        console.print(
            f"LP(1): median {q[0.5]:.3f}, 10–90 % [{q[0.1]:.3f}, {q[0.9]:.3f}], "
            f"{lp1['above_1']} above 1, {lp1['below_0']} below 0, {lp1['nan']} scored rows without LP (no drop)"
        )
        hist = lp1["histogram"]
        console.print(f"  {hist['edges'][0]:+.1f} {_sparkline(hist['counts'])} {hist['edges'][-1]:+.1f}")
        for title, key in (
            ("Hardest (lowest LP(1): learned slowest)", "hardest"),
            ("Easiest (highest LP(1))", "easiest"),
        ):
            table = Table(title=title, show_lines=False, title_justify="left")
            cells = [
                (str(ex["row"]), f"{ex['lp1']:.3f}", f"{ex['ppl_0']:.4g}", ex["text"].replace("\n", " ⏎ "))
                for ex in summary[key]
            ]
            # numbers are never cut: each number column is as wide as its longest cell, and the text column takes
            # what is left of the line (rich shrinks every column alike when a table is too wide, a row number to
            # nothing included)
            widths = [
                max([len(col)] + [len(row[i]) for row in cells]) for i, col in enumerate(("row", "LP(1)", "P_0"))
            ]
            for col, width in zip(("row", "LP(1)", "P_0"), widths):
                table.add_column(col, justify="right", no_wrap=True, width=width)
            left = console.width - sum(widths) - _TABLE_FRAME
            table.add_column("text", overflow="ellipsis", no_wrap=True, max_width=max(left, 4))
            for row in cells:
                table.add_row(*row)
            console.print(table)
        if summary.get("easiest_left_out"):
            console.print(
                f"  {summary['easiest_left_out']} row(s) flagged LP(1) above 1 left out: out of range, not easy"
            )
    console.print("Files:")
    for path in summary["files"]:
        console.print(f"  {path}")
