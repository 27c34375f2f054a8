"""``EvalResult``: what ``evaluate`` returns and writes to ``results.json`` (:meth:`EvalResult.to_dict`), and its summary.

Its rows are typed records: one :class:`GenerationRow` per model and test set, one :class:`ReferenceRow`
per model and reference set, one :class:`PairwiseRow` per judged model and test set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def _num(value: float | None, fmt: str = ".3f") -> str:
    return "n/a" if value is None else format(value, fmt)


@dataclass(frozen=True)
class EvaluatedModel:
    """One evaluated model: its label, what it was loaded from, its identity, the prompt template and its cache key."""

    label: str
    spec: str
    identity: dict[str, Any]
    template: str
    key: str


@dataclass(frozen=True)
class TestSetInfo:
    """One test set: its name, source, recognised shape, questions, and how many carry a reference answer."""

    __test__ = False  # not a pytest class, despite the name

    name: str
    source: str
    shape: str
    n_items: int
    n_references: int


@dataclass(frozen=True)
class GenerationRow:
    """Answers of one model to one test set: how many, how many generated now (the rest came from the cache),
    how many hit ``max_new_tokens``, and the speed of those generated now."""

    model: str
    test_set: str
    n_answers: int
    n_generated: int
    n_unfinished: int
    new_tokens: int
    seconds: float
    tokens_per_s: float | None


@dataclass(frozen=True)
class ReferenceRow:
    """Reference answers of one set under one model: mean response NLL per row and per token, perplexity."""

    model: str
    set: str
    n_rows: int
    n_scored: int
    not_scored: dict[str, int]
    n_tokens: int
    mean_nll: float | None
    sd_nll: float | None
    token_nll: float | None
    ppl: float | None


@dataclass(frozen=True)
class PairwiseRow:
    """The judge's verdicts of one model against the baseline on one test set (or ``"all"``), both orders.

    ``winning_score`` = (win - lose) / total + 1: 1.0 is parity with the baseline.
    """

    model: str
    baseline: str
    test_set: str
    win: int
    tie: int
    lose: int
    unparseable: int
    total: int
    winning_score: float | None


@dataclass
class EvalResult:
    """The outcome of :func:`hf_lpselect.eval.evaluate`.

    Attributes:
        eval_dir (`Path`): the output folder.
        models (`list[EvaluatedModel]`): the models, in the order given.
        baseline (`str`): the label every other model was judged against.
        test_sets (`list[TestSetInfo]`): the test sets answered.
        reference_sets (`list[str]`): the sets scored by reference NLL.
        settings (`dict`): the arguments (judge settings apart), with the dtype actually used.
        generation (`list[GenerationRow]`), reference (`list[ReferenceRow]`), pairwise (`list[PairwiseRow]`): the numbers.
        judge (`dict` or `None`): the judge's identity (backend, model, prompt); None without a judge.
        figure (`Path` or `None`): the win / tie / lose figure (None without a judge).

    Example:

    ```python
    >>> result = evaluate(EvalArguments(models=["hard=runs/hard", "full=runs/full"], test_sets=["vicuna.jsonl"]))
    >>> [row.mean_nll for row in result.reference]
    >>> print(result.summary())
    ```
    """

    eval_dir: Path
    models: list[EvaluatedModel]
    baseline: str
    test_sets: list[TestSetInfo]
    reference_sets: list[str]
    settings: dict[str, Any]
    generation: list[GenerationRow] = field(default_factory=list)
    reference: list[ReferenceRow] = field(default_factory=list)
    judge: dict[str, Any] | None = None
    pairwise: list[PairwiseRow] = field(default_factory=list)
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

    def to_dict(self) -> dict[str, Any]:
        """The content of ``results.json``: every field but ``eval_dir``, the figure by file name."""
        out = asdict(self)
        del out["eval_dir"]
        out["figure"] = self.figure.name if self.figure else None
        return out

    def summary(self) -> str:
        """A plain-text report: answers per model and set, reference NLL, and the pairwise verdicts."""
        lines = [f"Eval dir: {self.eval_dir}"]
        if self.generation:
            lines += ["", "Answers (model / test set: answers, generated now, hit max_new_tokens, tokens/s):"]
        for g in self.generation:
            lines.append(
                f"  {g.model} / {g.test_set}: {g.n_answers}, {g.n_generated} now, "
                f"{g.n_unfinished} cut at max_new_tokens, {_num(g.tokens_per_s, '.1f')} tok/s"
            )
        if self.reference:
            lines += ["", "Reference answers, mean response NLL under each model (lower = more likely):"]
            for ref in self.reference:
                skipped = f", {ref.n_rows - ref.n_scored} not scored" if ref.n_rows != ref.n_scored else ""
                lines.append(
                    f"  {ref.model} / {ref.set}: mean NLL {_num(ref.mean_nll)} (sd {_num(ref.sd_nll)}), "
                    f"perplexity {_num(ref.ppl, '.2f')}, {ref.n_scored} rows{skipped}"
                )
        if self.judge is None:
            lines += ["", "No judge configured (--judge_model): pairwise comparison skipped."]
        elif not self.pairwise:
            lines += ["", "Only one model: nothing to judge pairwise."]
        else:
            lines += [
                "",
                f"Pairwise, judge {self.judge['model']} (both orders), against {self.baseline}:",
                "  model / test set: win tie lose (unparseable) -> winning score",
            ]
            for p in self.pairwise:
                lines.append(
                    f"  {p.model} / {p.test_set}: {p.win} {p.tie} {p.lose} ({p.unparseable}) -> {_num(p.winning_score)}"
                )
            n_bad = sum(p.unparseable for p in self.pairwise if p.test_set == "all")
            if n_bad:
                lines.append(
                    f"  {n_bad} pair(s) had a judge reply without two readable scores: counted as unparseable, "
                    "not as ties (see judgments.jsonl)."
                )
        written = [path.name for path in (self.generations, self.judgments) if path.is_file()]
        written += [self.results_json.name] + ([self.figure.name] if self.figure else [])
        lines += ["", f"Written: {', '.join(written)}"]
        return "\n".join(lines)
