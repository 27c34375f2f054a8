"""What the Space says, in plain words: strategy names a non-coder can pick from, and the summaries of
a scored dataset, a selection and a comparison. Pure pandas: no torch, no gradio."""

from __future__ import annotations

import re
from string import Template
from typing import Any

import numpy as np
import pandas as pd

from ..core.schema import display_name
from ..errors import DataError
from ..selection.compare import CompareResult
from ..selection.report import count_statuses, examples, reason_lines
from ..selection.strategies import STRATEGIES, nll_columns
from ..selection.subsets import SelectionStats


# (plain name, strategy, one-line explanation), in the order the page lists them
PLAIN_STRATEGIES: tuple[tuple[str, str, str], ...] = (
    (
        "Hardest for the small model",
        "lp1-hard",
        "rows the small model learned slowest in its first epoch (lowest LP(1)): the paper's pick",
    ),
    (
        "Random — the baseline to beat",
        "random",
        "a fair coin for every row: any selector worth using should beat this",
    ),
    (
        "Longest answers",
        "longest",
        "the longest responses: hard-sample selectors often just pick long answers, so compare against this",
    ),
    ("Medium for the small model", "lp1-medium", "the middle third of the LP(1) order"),
    ("Easiest for the small model", "lp1-easy", "rows learned fastest (highest LP(1))"),
    (
        "Hardest after one epoch (no full run needed)",
        "lp-app-hard",
        "lowest LP_app = (P_0 − P_1) / P_0: the share of the perplexity lost in epoch 1",
    ),
    ("Most surprising before training", "ppl-high", "highest perplexity P_0 before any training"),
    ("Least surprising before training", "ppl-low", "lowest perplexity P_0 before any training"),
    ("Typical surprise before training", "ppl-mid", "the middle of the P_0 order"),
    (
        "The question helps least (IFD)",
        "ifd-nll",
        "highest instruction-following difficulty: the prompt makes the answer hardly easier to predict",
    ),
    ("The question helps least (IFD, perplexity variant)", "ifd-ppl", "IFD computed on perplexities"),
    ("Varied learning curves (S2L)", "s2l", "groups rows by how their loss fell, then samples every group evenly"),
    ("Least confident", "confidence", "lowest average probability of the answer after each epoch (hard to learn)"),
    ("Most changeable", "variability", "the answer's probability moved most across epochs (ambiguous)"),
)
PLAIN_NAME = {strategy: name for name, strategy, _ in PLAIN_STRATEGIES}
WHAT_HARD_MEANS = (
    '**What "hard" means.** A small *scorer* model was fine-tuned on every row, and each answer\'s '
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
    """``(plain name, strategy)`` pairs for a dropdown; the explanations go under a details fold
    (:func:`strategy_details`)."""
    usable = set(usable_strategies(scores))
    return [(name, strategy) for name, strategy, _ in PLAIN_STRATEGIES if strategy in usable]


def strategy_details() -> str:
    """Every strategy's plain name and what it picks (formulas included): the Select tab's details fold."""
    return "\n".join(f"- **{name}**: {why}." for name, _, why in PLAIN_STRATEGIES)


def rows(n: int, word: str = "row") -> str:
    """``"1 row"``, ``"2 rows"``, ``"52,002 rows"``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def trained_epochs(scores: pd.DataFrame) -> int:
    """Epochs of training behind a scores table: its scoring passes minus the one before training."""
    return max(len(nll_columns(scores)) - 1, 0)


def lp1_warning(scores: pd.DataFrame) -> str | None:
    """Why LP(1) means nothing for this table, in one sentence; None when it means something.

    LP(1) compares the drop in epoch 1 with the drop over all epochs: with 0 or 1 epochs there is nothing
    to compare, and when epoch 1 changed no row's perplexity every LP(1) is 0 or undefined.
    """
    epochs = trained_epochs(scores)
    if epochs == 0:
        return (
            "This dataset was scored without training (0 epochs), so it has no LP(1): "
            "the rows are ranked by perplexity before training, P_0 (high = surprising)."
        )
    if epochs == 1:
        return (
            "This dataset was trained for 1 epoch only, and LP(1) needs at least 2 (it compares the first "
            "epoch with the whole run), so the rows are ranked by perplexity before training, P_0 (high = surprising)."
        )
    nll = nll_columns(scores)
    ok = scores[scores["status"] == "ok"] if "status" in scores else scores
    first = pd.to_numeric(ok[nll[0]], errors="coerce") - pd.to_numeric(ok[nll[1]], errors="coerce")
    if len(ok) and np.nanmax(np.abs(first.to_numpy(dtype="float64")), initial=0.0) < 1e-6:
        return (
            "The small model learned nothing in its first epoch (no row's perplexity changed), so LP(1) "
            "means nothing here; score again with more rows or more epochs."
        )
    return None


def ranking_score(scores: pd.DataFrame) -> str:
    """``lp1`` when LP(1) means something for this table (:func:`lp1_warning`), else ``ppl_0``."""
    if (
        "lp1" in scores
        and lp1_warning(scores) is None
        and np.isfinite(pd.to_numeric(scores["lp1"], errors="coerce")).any()
    ):
        return "lp1"
    return "ppl_0"


def explore_markdown(name: str, scores: pd.DataFrame) -> str:
    """The Explore tab's text: what hard means, the counts by status with reasons, the LP(1) spread."""
    counts = count_statuses(scores)
    lines = [
        f"### {name}: {rows(len(scores))}",
        "",
        WHAT_HARD_MEANS,
        "",
        "**Rows by status.** "
        + ", ".join(f"{n:,} {status}" for status, n in counts.items() if n or status == "ok")
        + ". Only `ok` rows were scored; the others say why not:",
    ]
    lines += [f"- {line}" for line in reason_lines(scores)] or ["- (every row was scored)"]
    score = ranking_score(scores)
    values = pd.to_numeric(scores.get(score), errors="coerce").dropna() if score in scores else pd.Series(dtype=float)
    warning = lp1_warning(scores)
    if score == "lp1" and len(values):
        q = values.quantile([0.1, 0.5, 0.9])
        lines += [
            "",
            f"**LP(1)** of {rows(len(values))}: median {q[0.5]:.3f}; 10 % of rows are below {q[0.1]:.3f} "
            f"(the hardest) and 10 % above {q[0.9]:.3f} (the easiest). "
            f"Below 0: {int((values < 0).sum()):,}; above 1: {int((values > 1).sum()):,} "
            "(the perplexity went up in an epoch); such rows are kept and selectable.",
        ]
    elif warning is not None:
        lines += ["", f"⚠️ {warning}"]
    return "\n".join(lines)


def examples_frame(scores: pd.DataFrame, n: int = 100) -> tuple[pd.DataFrame, str, str]:
    """The ``n`` hardest and ``n`` easiest rows (:func:`hf_lpselect.selection.report.examples`) as one table
    with columns which, row, score, response tokens (texts added by the caller); the score name; and a
    heading true for the table's size (with at most ``2 n`` ranked rows: all of them, the harder half
    labelled ``harder half``, the rest ``easier half``)."""
    score = ranking_score(scores)
    label = display_name(score, explained=True)
    if score not in scores:
        return pd.DataFrame(columns=["which", "row", score, "response tokens"]), score, "No scored rows to show"
    ranked = int(np.isfinite(pd.to_numeric(scores[score], errors="coerce").astype("float64")).sum())
    hardest, easiest = examples(scores, n=n, score=score)
    if ranked <= 2 * n:  # every ranked row once, hardest first: a label by half, not "hardest" for all
        frame = hardest if ranked <= n else pd.concat([hardest, easiest.iloc[::-1]], ignore_index=True)
        frame = frame.drop_duplicates("row").head(ranked).reset_index(drop=True)
        half = (len(frame) + 1) // 2
        frame = frame.assign(which=["harder half"] * half + ["easier half"] * (len(frame) - half))
        heading = f"All {rows(ranked, 'scored row')}, hardest first (by {label})"
    else:
        frame = pd.concat([hardest.assign(which="hardest"), easiest.assign(which="easiest")], ignore_index=True)
        heading = f"The {n} hardest and {n} easiest of {ranked:,} scored rows (by {label})"
    frame = frame[["which", "row", score, "n_response_tokens"]].rename(
        columns={"n_response_tokens": "response tokens"}
    )
    frame["response tokens"] = frame["response tokens"].astype("Int64")
    return frame, score, heading


def _ratio(stats: SelectionStats) -> str:
    return "n/a" if not np.isfinite(stats.length_ratio) else f"{stats.length_ratio:.2f}×"


def selection_markdown(stats: SelectionStats, baseline: SelectionStats | None) -> str:
    """The Select tab's live summary: size, real fraction, length ratio next to the random baseline's."""
    name = PLAIN_NAME.get(stats.strategy, stats.strategy)
    lines = [
        f"**{name}**: {rows(stats.n_selected)} = {stats.real_fraction:.1%} of the {rows(stats.n_eligible)} it could pick "
        f"({stats.real_fraction_of_input:.1%} of all {rows(stats.n_input)})."
    ]
    if stats.per_cluster:
        lines.append(
            f"Per group: rows taken from {stats.n_clusters_covered:,} of {stats.n_clusters:,} "
            "groups of similar rows (the paper's way: each group gives its share)."
        )
    lines.append(
        f"**Answer length**: {stats.mean_response_tokens:.0f} tokens on average against "
        f"{stats.mean_response_tokens_all:.0f} for all rows: **{_ratio(stats)}** as long."
    )
    if baseline is not None:
        lines.append(
            f"**Random baseline** of the same size: **{_ratio(baseline)}** as long. "
            "A selector far above its baseline mostly picks long answers."
        )
    if stats.skipped:
        lines.append("Not eligible: " + ", ".join(f"{v:,} ({k})" for k, v in stats.skipped.items()) + ".")
    return "\n\n".join(lines)


def _strength(rho: float | None) -> str:
    if rho is None:
        return "cannot be measured (too few rows, or a constant score)"
    size = abs(rho)
    word = "no" if size < 0.1 else "a weak" if size < 0.3 else "a moderate" if size < 0.6 else "a strong"
    direction = "" if size < 0.1 else " (same order)" if rho > 0 else " (opposite order)"
    return f"{word} agreement{direction}"


def compare_markdown(result: CompareResult) -> str:
    """The Compare tab's answer to "does hardness transfer?", from :func:`hf_lpselect.selection.compare.compare_runs`."""
    main = result.results[result.score]
    fmt = lambda v: "n/a" if v is None else f"{v:+.3f}"  # noqa: E731
    lines = [
        f"**{rows(result.n_matched)}** were scored by both (matched by content).",
        f"**Spearman ρ = {fmt(main.spearman)}**, Kendall τ = {fmt(main.kendall_tau_b)}: {_strength(main.spearman)} "
        f"on {display_name(result.score)}. 1 = both rank every row the same way, 0 = unrelated, −1 = reversed.",
    ]
    for top in main.top:
        if top.overlap is None:
            continue
        lines.append(
            f"- Of the hardest {top.fraction:.0%} ({rows(top.k)}) by the first, "
            f"**{top.overlap:.0%}** are also among the hardest by the second "
            f"(about {top.expected_random:.0%} if the two were unrelated)."
        )
    if result.reference in result.results:
        lines.append(
            f"For reference, {display_name(result.reference, explained=True)} agrees with "
            f"ρ = {fmt(result.results[result.reference].spearman)}."
        )
    return "\n\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:])


# ----------------------------------------------------------------------------- the evidence

# The header's claim and finding: ONE template, filled from benchmarks/results/bench_evidence.json, for
# both the page and the Space's README (spaces/README.md between the markers below), so that a new
# evidence run changes both. $-fields come from :func:`evidence_fields`.
EVIDENCE_TEMPLATE = (
    "**What the paper claims**: training a big model on the rows a small model finds hardest works as "
    "well as training on everything ([Mekala et al. 2024](https://arxiv.org/abs/2402.10430), at tens of "
    "thousands of rows). **What we measured**: $verdict_sentence On $pool Alpaca rows scored by "
    "SmolLM2-135M, $target trained on the hardest $small_pct reached a held-out loss of $small_hard "
    "(lower is better) against $small_random for random rows ($small_verdict), and on the hardest $large_pct $large_hard "
    "against $large_random ($large_verdict). This is a small experiment; a large one has not been run "
    "yet. [The evidence]($link)."
)
EVIDENCE_BEGIN, EVIDENCE_END = "<!-- evidence: generated from bench_evidence.json -->", "<!-- /evidence -->"
_HELDOUT = "alpaca_heldout"


def evidence_fields(results: dict[str, Any]) -> dict[str, str]:
    """The template's fields from ``bench_evidence.json``: the LP(1)-hard subsets against random on held-out rows."""
    verdicts = results["verdicts"]
    picks = sorted(
        {float(k.split("@")[1].split()[0]) for k in verdicts if k.startswith("lp1-hard@") and _HELDOUT in k}
    )
    if not picks:
        raise DataError("bench_evidence.json has no lp1-hard verdict on held-out rows")
    small, large = picks[0], picks[-1]

    def one(fraction: float) -> dict[str, Any]:
        return verdicts[f"lp1-hard@{fraction:g} vs random@{fraction:g} on {_HELDOUT}"]

    beats = [one(f)["verdict"] == "beats random" for f in picks]
    sentence = (
        "the hardest rows did better than random rows at this scale."
        if all(beats)
        else "at this scale, no: the hardest rows did not train the bigger model better than random rows did."
        if not any(beats)
        else "at this scale, only at some sizes."
    )
    target = str(results.get("target", {}).get("model", "a bigger model")).split(" (")[0]
    return {
        "verdict_sentence": sentence[0].upper() + sentence[1:],
        "pool": f"{int(results['data']['pool']):,}",
        "target": target,
        "small_pct": f"{small:.0%}",
        "large_pct": f"{large:.0%}",
        "small_hard": f"{one(small)['mean_nll']:.3f}",
        "small_random": f"{one(small)['random_mean_nll']:.3f}",
        "large_hard": f"{one(large)['mean_nll']:.3f}",
        "large_random": f"{one(large)['random_mean_nll']:.3f}",
        "small_verdict": one(small)["verdict"].replace("than random", "").replace("from random", "").strip(),
        "large_verdict": one(large)["verdict"].replace("than random", "").replace("from random", "").strip(),
    }


def evidence_markdown(results: dict[str, Any], link: str) -> str:
    """The claim and what our measurement found, from ``bench_evidence.json`` through :data:`EVIDENCE_TEMPLATE`.

    Args:
        results (`dict`): the parsed ``benchmarks/results/bench_evidence.json``.
        link (`str`): where "The evidence" points (the README section, or the results file).

    Example:
    ```python
    text = evidence_markdown(json.loads(Path("benchmarks/results/bench_evidence.json").read_text()), "#evidence")
    ```
    """

    return Template(EVIDENCE_TEMPLATE).substitute(evidence_fields(results), link=link)


def with_evidence(readme: str, results: dict[str, Any], link: str) -> str:
    """``readme`` with the text between :data:`EVIDENCE_BEGIN` and :data:`EVIDENCE_END` re-rendered."""
    head, rest = readme.split(EVIDENCE_BEGIN, 1)
    _, tail = rest.split(EVIDENCE_END, 1)
    return f"{head}{EVIDENCE_BEGIN}\n{evidence_markdown(results, link)}\n{EVIDENCE_END}{tail}"


# ----------------------------------------------------------------------------- errors in a visitor's words

GENERIC_ERROR = "Something went wrong on our side; try again, or with other data."
# a path starts a word (a Hub id such as owner/name is not one: its slash follows a letter)
_PATH = re.compile(r"(?<![\w.\-])(?:file://)?(?:~|\.{1,2})?(?:/[^\s/,;:()'\"`]+)+/?")
_FLAG = re.compile(r"\s*\(?`?--[a-z][a-z0-9-]*(?:[ =][^\s`)]+)?`?\)?")
_COMMAND = re.compile(r"`(?:lpselect|hf|pip|python)[^`]*`")
# library messages a visitor must never read, and what to say instead
_LIBRARY = (
    (
        re.compile(r"OfflineModeIsEnabled|offline mode is enabled|HF_HUB_OFFLINE", re.I),
        "The Hugging Face Hub cannot be reached from here right now; upload a file instead.",
    ),
    (
        re.compile(
            r"repo_type|Repository Not Found|RepositoryNotFound|404 Client Error|doesn't exist on the Hub", re.I
        ),
        "That Hub dataset does not exist or is private; check its name (owner/name).",
    ),
    (re.compile(r"Traceback|Error\(|Exception\(|\bself\b|NoneType|KeyError|AttributeError", re.I), GENERIC_ERROR),
)


def hub_id_from_url(text: str) -> str:
    """A Hub id from what a visitor pasted: ``owner/name`` itself, or a web address of the repo
    (``https://huggingface.co/datasets/owner/name/tree/main`` → ``owner/name``)."""
    text = text.strip()
    match = re.match(
        r"^(?:https?://)?(?:www\.)?(?:huggingface\.co|hf\.co)/(?:datasets/|spaces/)?([^/\s?#]+/[^/\s?#]+)", text
    )
    return match.group(1) if match else text


def visitor_sentence(message: str) -> str:
    """One plain sentence for a visitor from an error message: no paths (a file keeps its name), no
    command-line flags or commands, no library internals.

    Args:
        message (`str`): the error's text, e.g. ``"/tmp/x/uploads/e3b0/empty.jsonl contains no records"``.

    Example:
    ```python
    visitor_sentence("/srv/work/ab12/uploads/c0/empty.jsonl contains no records")  # "empty.jsonl contains no records."
    ```
    """
    text = " ".join(str(message).split())
    for pattern, plain in _LIBRARY:
        if pattern.search(text):
            return plain
    text = _COMMAND.sub(lambda m: "lpselect" if m.group(0).startswith("`lpselect") else "the command line", text)
    text = _FLAG.sub("", text)
    text = _PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1] or "that folder", text)
    text = re.sub(r"\(\s*\)", "", text)
    text = re.sub(r"\s+([.,;:])", r"\1", text).strip()
    if not text:
        return GENERIC_ERROR
    # one sentence: cut at the first sentence end that is followed by more text
    first = re.split(r"(?<=[.!?])\s+(?=[A-Z])", text, maxsplit=1)[0]
    return first if first.endswith((".", "!", "?")) else first + "."
