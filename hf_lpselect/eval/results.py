"""``EvalResult``: what ``evaluate`` returns and writes to ``results.json``, and its printed summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "n/a" if value is None else format(value, fmt)


@dataclass
class EvalResult:
    """The outcome of :func:`hf_lpselect.eval.evaluate`.

    Attributes:
        eval_dir (`Path`): the output folder.
        results (`dict`): the content of ``results.json``: ``models``, ``baseline``, ``test_sets``,
            ``reference_sets``, ``settings``, ``generation``, ``reference``, ``judge``, ``pairwise``.
        figure (`Path | None`): the win / tie / lose figure (None without a judge).

    Example:
        >>> print(result.summary())  # doctest: +SKIP
    """

    eval_dir: Path
    results: dict[str, Any]
    figure: Path | None = None

    @property
    def generations(self) -> Path:
        return self.eval_dir / "generations.jsonl"

    @property
    def judgments(self) -> Path:
        return self.eval_dir / "judgments.jsonl"

    @property
    def results_json(self) -> Path:
        return self.eval_dir / "results.json"

    def summary(self) -> str:
        """A plain-text report: answers per model and set, reference NLL, and the pairwise verdicts."""
        r = self.results
        lines = [f"Eval dir: {self.eval_dir}"]
        if r["generation"]:
            lines += ["", "Answers (model / test set: answers, generated now, hit max_new_tokens, tokens/s):"]
        for g in r["generation"]:
            lines.append(f"  {g['model']} / {g['test_set']}: {g['n_answers']}, {g['n_generated']} now, "
                         f"{g['n_unfinished']} cut at max_new_tokens, {_num(g['tokens_per_s'], '.1f')} tok/s")
        if r["reference"]:
            lines += ["", "Reference answers, mean response NLL under each model (lower = more likely):"]
            for ref in r["reference"]:
                skipped = f", {ref['n_rows'] - ref['n_scored']} not scored" if ref["n_rows"] != ref["n_scored"] else ""
                lines.append(f"  {ref['model']} / {ref['set']}: mean NLL {_num(ref['mean_nll'])} (sd {_num(ref['sd_nll'])}), "
                             f"perplexity {_num(ref['ppl'], '.2f')}, {ref['n_scored']} rows{skipped}")
        if r["judge"] is None:
            lines += ["", "No judge configured (--judge_model): pairwise comparison skipped."]
        elif not r["pairwise"]:
            lines += ["", "Only one model: nothing to judge pairwise."]
        else:
            lines += ["", f"Pairwise, judge {r['judge']['model']} (both orders), against {r['baseline']}:",
                      "  model / test set: win tie lose (unparseable) -> winning score"]
            for p in r["pairwise"]:
                lines.append(f"  {p['model']} / {p['test_set']}: {p['win']} {p['tie']} {p['lose']} ({p['unparseable']}) "
                             f"-> {_num(p['winning_score'])}")
            n_bad = sum(p["unparseable"] for p in r["pairwise"] if p["test_set"] == "all")
            if n_bad:
                lines.append(f"  {n_bad} pair(s) had a judge reply without two readable scores: counted as unparseable, "
                             "not as ties (see judgments.jsonl).")
        written = [path.name for path in (self.generations, self.judgments) if path.is_file()]
        written += [self.results_json.name] + ([self.figure.name] if self.figure else [])
        lines += ["", f"Written: {', '.join(written)}"]
        return "\n".join(lines)
