"""What the Space says, in plain words: strategy names a non-coder can pick from, and the summaries of
a scored dataset, a selection and a comparison. Pure pandas: no torch, no gradio."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..selection.report import count_statuses, examples, reason_lines
from ..selection.strategies import STRATEGIES, nll_columns

# (plain name, strategy, one-line explanation), in the order the page lists them
PLAIN_STRATEGIES: tuple[tuple[str, str, str], ...] = (
    ("Hardest for the small model", "lp1-hard",
     "rows the small model learned slowest in its first epoch (lowest LP(1)): the paper's pick"),
    ("Random — the baseline to beat", "random",
     "a fair coin for every row: any selector worth using should beat this"),
    ("Longest answers", "longest",
     "the longest responses: hard-sample selectors often just pick long answers, so compare against this"),
    ("Medium for the small model", "lp1-medium", "the middle third of the LP(1) order"),
    ("Easiest for the small model", "lp1-easy", "rows learned fastest (highest LP(1))"),
    ("Hardest after one epoch (no full run needed)", "lp-app-hard",
     "lowest LP_app = (P_0 − P_1) / P_0: the share of the perplexity lost in epoch 1"),
    ("Most surprising before training", "ppl-high", "highest perplexity P_0 before any training"),
    ("Least surprising before training", "ppl-low", "lowest perplexity P_0 before any training"),
    ("Typical surprise before training", "ppl-mid", "the middle of the P_0 order"),
    ("The question helps least (IFD)", "ifd-nll",
     "highest instruction-following difficulty: the prompt makes the answer hardly easier to predict"),
    ("The question helps least (IFD, perplexity variant)", "ifd-ppl", "IFD computed on perplexities"),
    ("Varied learning curves (S2L)", "s2l", "groups rows by how their loss fell, then samples every group evenly"),
    ("Least confident", "confidence", "lowest average probability of the answer after each epoch (hard to learn)"),
    ("Most changeable", "variability", "the answer's probability moved most across epochs (ambiguous)"),
)
PLAIN_NAME = {strategy: name for name, strategy, _ in PLAIN_STRATEGIES}
WHAT_HARD_MEANS = (
    "**What \"hard\" means.** A small *scorer* model was fine-tuned on every row, and each answer's "
    "perplexity (how surprised the model is by it; lower = better predicted) was measured before training "
    "(P_0) and after every epoch. **LP(1) = (P_0 − P_1) / (P_0 − P_n)** is the share of the whole drop "
    "that happened in the first epoch. A **low LP(1)** means the model learned the row slowly: it is "
    "**hard**. The paper (Mekala et al. 2024) trains the big model on the hardest rows."
)


def usable_strategies(scores: pd.DataFrame) -> list[str]:
    """The strategies this scores table has the columns for, in :data:`PLAIN_STRATEGIES` order."""
    epochs = len(nll_columns(scores)) - 1
    out = []
    for _, strategy, _ in PLAIN_STRATEGIES:
        spec = STRATEGIES[strategy]
        if spec.order == "s2l" or spec.score == "confidence":
            ok = epochs >= 1
        elif spec.score == "variability":
            ok = epochs >= 2
        else:
            ok = spec.score is None or spec.score in scores
        if ok:
            out.append(strategy)
    return out


def strategy_choices(scores: pd.DataFrame) -> list[tuple[str, str]]:
    """``(label, strategy)`` pairs for a dropdown: the plain name and its explanation."""
    usable = set(usable_strategies(scores))
    return [(f"{name}: {why}", strategy) for name, strategy, why in PLAIN_STRATEGIES if strategy in usable]


def ranking_score(scores: pd.DataFrame) -> str:
    """``lp1`` when the table has any finite LP(1), else ``ppl_0`` (a run without training)."""
    if "lp1" in scores and np.isfinite(pd.to_numeric(scores["lp1"], errors="coerce")).any():
        return "lp1"
    return "ppl_0"


def explore_markdown(name: str, scores: pd.DataFrame) -> str:
    """The Explore tab's text: what hard means, the counts by status with reasons, the LP(1) spread."""
    counts = count_statuses(scores)
    lines = [f"### {name}: {len(scores):,} rows", "", WHAT_HARD_MEANS, "",
             "**Rows by status.** " + ", ".join(f"{n:,} {status}" for status, n in counts.items() if n or status == "ok")
             + ". Only `ok` rows were scored; the others say why not:"]
    lines += [f"- {line}" for line in reason_lines(scores)] or ["- (every row was scored)"]
    score = ranking_score(scores)
    values = pd.to_numeric(scores.get(score), errors="coerce").dropna() if score in scores else pd.Series(dtype=float)
    if score == "lp1" and len(values):
        q = values.quantile([0.1, 0.5, 0.9])
        lines += ["", f"**LP(1)** of {len(values):,} rows: median {q[0.5]:.3f}; 10 % of rows are below {q[0.1]:.3f} "
                      f"(the hardest) and 10 % above {q[0.9]:.3f} (the easiest). "
                      f"Below 0: {int((values < 0).sum()):,}; above 1: {int((values > 1).sum()):,} "
                      "(the perplexity went up in an epoch); such rows are kept and selectable."]
    elif score == "ppl_0" and len(values):
        lines += ["", "This dataset was scored without training (0 epochs), so it has no LP(1): "
                      "the rows are ranked by perplexity before training, P_0 (high = surprising)."]
    return "\n".join(lines)


def examples_frame(scores: pd.DataFrame, n: int = 100) -> tuple[pd.DataFrame, str]:
    """The ``n`` hardest and ``n`` easiest rows (:func:`hf_lpselect.selection.report.examples`) as one table
    with columns which, row, score, response tokens (texts added by the caller); and the score name."""
    score = ranking_score(scores)
    if score not in scores:
        return pd.DataFrame(columns=["which", "row", score, "response tokens"]), score
    hardest, easiest = examples(scores, n=n, score=score)
    easiest = easiest[~easiest["row"].isin(hardest["row"])]  # a small table: each row once
    frame = pd.concat([hardest.assign(which="hardest"), easiest.assign(which="easiest")], ignore_index=True)
    frame = frame[["which", "row", score, "n_response_tokens"]].rename(columns={"n_response_tokens": "response tokens"})
    frame["response tokens"] = frame["response tokens"].astype("Int64")
    return frame, score


def _ratio(describe: dict[str, Any]) -> str:
    ratio = describe.get("length_ratio")
    return "n/a" if ratio is None or not np.isfinite(ratio) else f"{ratio:.2f}×"


def selection_markdown(describe: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    """The Select tab's live summary: size, real fraction, length ratio next to the random baseline's."""
    name = PLAIN_NAME.get(describe["strategy"], describe["strategy"])
    n, eligible = describe["n_selected"], describe["n_eligible"]
    lines = [f"**{name}**: {n:,} rows = {describe['real_fraction']:.1%} of the {eligible:,} rows it could pick "
             f"({describe['real_fraction_of_input']:.1%} of all {describe['n_input']:,} rows)."]
    if describe.get("per_cluster"):
        lines.append(f"Per cluster: rows taken from {describe['n_clusters_covered']:,} of {describe['n_clusters']:,} "
                     "groups of similar rows (the paper's way: each group gives its share).")
    lengths = describe["mean_response_tokens"]
    lines.append(f"**Answer length**: {lengths['selected']:.0f} tokens on average against {lengths['all_ok_rows']:.0f} "
                 f"for all rows: **{_ratio(describe)}** as long.")
    if baseline is not None:
        lines.append(f"**Random baseline** of the same size: **{_ratio(baseline)}** as long. "
                     "A selector far above its baseline mostly picks long answers.")
    skipped = describe.get("skipped") or {}
    if skipped:
        lines.append("Not eligible: " + ", ".join(f"{v:,} ({k})" for k, v in skipped.items()) + ".")
    return "\n\n".join(lines)


def _strength(rho: float | None) -> str:
    if rho is None:
        return "cannot be measured (too few rows, or a constant score)"
    size = abs(rho)
    word = "no" if size < 0.1 else "a weak" if size < 0.3 else "a moderate" if size < 0.6 else "a strong"
    direction = "" if size < 0.1 else " (same order)" if rho > 0 else " (opposite order)"
    return f"{word} agreement{direction}"


def compare_markdown(result: dict[str, Any]) -> str:
    """The Compare tab's answer to "does hardness transfer?", from :func:`hf_lpselect.selection.compare.compare_runs`."""
    score = result["score"]
    main = result["results"][score]
    n = result["n_matched"]
    rho, tau = main["spearman"], main["kendall_tau_b"]
    fmt = lambda v: "n/a" if v is None else f"{v:+.3f}"  # noqa: E731
    lines = [f"**{n:,} rows** were scored by both (matched by content).",
             f"**Spearman ρ = {fmt(rho)}**, Kendall τ = {fmt(tau)}: {_strength(rho)} on {score}. "
             "1 = both rank every row the same way, 0 = unrelated, −1 = reversed."]
    for top in main["top"]:
        if top["overlap"] is None:
            continue
        lines.append(f"- Of the hardest {top['fraction']:.0%} ({top['k']:,} rows) by the first, "
                     f"**{top['overlap']:.0%}** are also among the hardest by the second "
                     f"(about {top['expected_random']:.0%} if the two were unrelated).")
    reference = result.get("reference")
    if reference and reference in result["results"]:
        ref_rho = result["results"][reference]["spearman"]
        lines.append(f"For reference, perplexity before training ({reference}) agrees with ρ = {fmt(ref_rho)}.")
    return "\n\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:])
