"""``evaluate``: answers → reference NLL → pairwise judge → results.json + figure.

One model is loaded at a time: it answers every test set and scores every reference answer, then
it is freed before the next. The judge runs last, over the cached answers.
"""

from __future__ import annotations

import dataclasses
import gc
import json
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..core.hardware import default_device, inference_dtype
from ..core.io import atomic_write
from ..errors import DataError, EvalError
from ..ingest import load_rows
from ..models import load_model
from ..rundir import run_lock
from .arguments import EvalArguments
from .eval_result import EvalResult, EvaluatedModel, GenerationRow, PairwiseRow, ReferenceRow, TestSetInfo
from .generate import GenerationSettings, generate_answers, generation_template
from .identity import model_key, model_labels, split_named
from .judge import EndpointJudge, LocalJudge, Pair, judge_pairs, load_prompt
from .reference import reference_nll, reference_rows, summarize_nll
from .store import JsonlStore
from .testsets import TestSet, default_name, load_test_set
from .verdicts import tally
from .win_tie_lose import win_tie_lose_figure


FIGURE = "win_tie_lose.png"
REFERENCE_TABLE = "reference_nll.parquet"


def _reference_sets(args: EvalArguments, test_sets: list[TestSet]) -> dict[str, Any]:
    """Name → canonical rows: the test sets' reference answers, then the --reference_sets."""
    sets = {t.name: rows for t in test_sets if (rows := reference_rows(t)) is not None}
    for spec in args.reference_sets:
        name, source = split_named(spec)
        name = name or default_name(source)
        try:
            rows = load_rows(source, split=args.reference_split)
        except DataError as err:
            raise EvalError(f"Reference set {name!r}: {err}") from err
        sets[name] = rows.select(range(min(args.limit, len(rows)))) if args.limit else rows
    return sets


def _baseline(args: EvalArguments, labels: list[str]) -> int:
    if args.baseline is None:
        return len(labels) - 1
    for i, (spec, label) in enumerate(zip(args.models, labels)):
        if args.baseline in (spec, label, split_named(spec)[1]):
            return i
    raise EvalError(f"--baseline {args.baseline!r} is not one of --models ({', '.join(labels)}); name one of them.")


def _judge(args: EvalArguments):
    if args.judge_model is None:
        return None
    if args.judge_base_url:
        return EndpointJudge(
            args.judge_base_url,
            args.judge_model,
            api_key_env=args.judge_api_key_env,
            max_tokens=args.judge_max_new_tokens,
            temperature=args.judge_temperature,
            workers=args.judge_workers,
            timeout=args.judge_timeout,
            max_retries=args.judge_max_retries,
        )
    return LocalJudge(
        args.judge_model,
        max_new_tokens=args.judge_max_new_tokens,
        batch_size=args.judge_batch_size,
        dtype=inference_dtype(args.dtype),
        trust_remote_code=args.trust_remote_code,
    )


def evaluate(args: EvalArguments | None = None, /, **kwargs: Any) -> EvalResult:
    """Answer the test sets with every model, score reference answers, judge each model against the baseline.

    Outputs in ``args.eval_dir``: ``generations.jsonl`` (every answer, with the settings that made
    it), ``judgments.jsonl`` (both orders of every pair: raw judge reply and parsed scores),
    ``reference_nll.parquet`` (per-row NLL of every reference answer under every model),
    ``results.json`` and ``win_tie_lose.png``. Re-running the same arguments resumes: answers and
    replies already in the files are reused.

    Args:
        args (`EvalArguments` or `None`, *optional*, defaults to `None`): every setting; see its fields.
        **kwargs: the same settings as keyword arguments (``models=[...], test_sets=[...]``), instead of ``args``.

    Returns:
        `EvalResult`: the results (``results.json``'s content) and the paths; ``summary()`` prints it.

    Raises:
        [`~hf_lpselect.errors.EvalError`]: both ``args`` and keyword arguments, an unknown keyword, or a test set,
            judge or argument that cannot be used as asked.
        [`~hf_lpselect.errors.DataError`]: a test set that cannot be read.
        [`~hf_lpselect.errors.ModelError`]: a model spec that cannot be resolved.

    Example:
        >>> from hf_lpselect.eval import EvalArguments, evaluate
        >>> result = evaluate(EvalArguments(models=["hard=runs/hard", "random=runs/random"],
        ...                                 test_sets=["vicuna_test_set.jsonl"], judge_model="Qwen/Qwen2.5-7B-Instruct"))  # doctest: +SKIP
        >>> print(result.summary())  # doctest: +SKIP
    """
    if args is not None and kwargs:
        raise EvalError("Pass either EvalArguments or keyword arguments to evaluate(), not both.")
    if args is None:
        unknown = sorted(set(kwargs) - {f.name for f in dataclasses.fields(EvalArguments)})
        if unknown:
            raise EvalError(f"Unknown argument(s) {', '.join(unknown)}; use the names of `lpselect eval --help`.")
        args = EvalArguments(**kwargs)
    eval_dir = Path(args.eval_dir)
    with run_lock(eval_dir, flag="--eval_dir"):  # a second eval into the folder would ask the judge twice
        return _evaluate(args, eval_dir)


def _evaluate(args: EvalArguments, eval_dir: Path) -> EvalResult:
    test_sets = [load_test_set(spec, split=args.test_split, limit=args.limit) for spec in args.test_sets]
    if len({t.name for t in test_sets}) != len(test_sets):
        raise EvalError("Two test sets have the same name; name them with NAME=SOURCE.")
    ref_sets = _reference_sets(args, test_sets)
    labels = model_labels(args.models)
    baseline = _baseline(args, labels)
    prompt = load_prompt(args.judge_prompt) if args.judge_model else None  # a bad prompt file fails before any work
    generations = JsonlStore(eval_dir / "generations.jsonl")
    device = default_device()
    dtype_name = inference_dtype(args.dtype, device)
    dtype = getattr(torch, dtype_name)

    answers: dict[tuple[str, str], list[dict[str, Any]]] = {}
    generation_rows, reference_rows_out, reference_tables, models_out = [], [], [], []
    for spec, label in zip(args.models, labels):
        source = split_named(spec)[1]
        loaded = load_model(source, dtype=dtype, device=device, trust_remote_code=args.trust_remote_code)
        template = generation_template(loaded.tokenizer, args.template)
        settings = GenerationSettings(
            template=template,
            max_new_tokens=args.max_new_tokens,
            do_sample=args.do_sample,
            temperature=args.temperature,
            top_p=args.top_p,
            seed=args.seed,
            dtype=dtype_name,
        )
        key = model_key(source, loaded.identity)
        models_out.append(
            EvaluatedModel(label=label, spec=source, identity=loaded.identity, template=template, key=key)
        )
        for test_set in test_sets:
            records, stats = generate_answers(
                loaded.model,
                loaded.tokenizer,
                test_set.items,
                model_label=label,
                model_key=key,
                test_set=test_set.name,
                settings=settings,
                store=generations,
                batch_size=args.batch_size,
            )
            answers[label, test_set.name] = records
            generation_rows.append(
                GenerationRow(model=label, test_set=test_set.name, **vars(stats), tokens_per_s=stats.tokens_per_s)
            )
        for name, rows in ref_sets.items():
            table = reference_nll(
                loaded.model,
                loaded.tokenizer,
                rows,
                template=template,
                max_length=args.max_length,
                token_budget=args.score_token_budget,
                batch_size=args.score_batch_size,
            )
            reference_tables.append(table.assign(model=label, set=name))
            reference_rows_out.append(ReferenceRow(model=label, set=name, **summarize_nll(table)))
        del loaded
        gc.collect()

    judge_info, pairwise = None, []
    if args.judge_model is not None:
        judge = _judge(args)
        judge_info = {**judge.identity, "prompt": args.judge_prompt or "judge_prompt.txt (shipped)"}
        judgments = JsonlStore(eval_dir / "judgments.jsonl")
        for label in labels:
            if label == labels[baseline]:
                continue
            outcomes_all = []
            for test_set in test_sets:
                pairs = [
                    Pair(
                        test_set.name,
                        item.id,
                        item.question,
                        label,
                        mine["answer"],
                        labels[baseline],
                        theirs["answer"],
                    )
                    for item, mine, theirs in zip(
                        test_set.items, answers[label, test_set.name], answers[labels[baseline], test_set.name]
                    )
                ]
                outcomes = judge_pairs(judge, prompt, pairs, judgments)
                pairwise.append(
                    PairwiseRow(
                        model=label, baseline=labels[baseline], test_set=test_set.name, **tally(outcomes).to_dict()
                    )
                )
                outcomes_all += outcomes
            if len(test_sets) > 1:
                pairwise.append(
                    PairwiseRow(
                        model=label, baseline=labels[baseline], test_set="all", **tally(outcomes_all).to_dict()
                    )
                )
        del judge
        gc.collect()

    if reference_tables:
        table = pd.concat(reference_tables, ignore_index=True)
        atomic_write(eval_dir / REFERENCE_TABLE, lambda tmp: table.to_parquet(tmp, index=False))
    figure = None
    if pairwise:
        figure = eval_dir / FIGURE
        fig = win_tie_lose_figure(pairwise, judge=judge_info["model"])
        atomic_write(figure, lambda tmp: fig.savefig(tmp, format="png"))
    result = EvalResult(
        eval_dir=eval_dir,
        models=models_out,
        baseline=labels[baseline],
        test_sets=[
            TestSetInfo(
                name=t.name,
                source=t.source,
                shape=t.shape,
                n_items=len(t.items),
                n_references=sum(i.reference is not None for i in t.items),
            )
            for t in test_sets
        ],
        reference_sets=sorted(ref_sets),
        settings={**{k: v for k, v in vars(args).items() if not k.startswith("judge")}, "dtype": dtype_name},
        generation=generation_rows,
        reference=reference_rows_out,
        judge=judge_info,
        pairwise=pairwise,
        figure=figure,
    )
    atomic_write(
        result.results_json, lambda tmp: tmp.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    )
    return result
