"""hf_lpselect: a small model picks the instruction-tuning data a large one should train on.

Learning percentage (Mekala, Nguyen & Shang, ACL Findings 2024): fine-tune a small scorer model on
the whole dataset, score each sample's response perplexity before training and after every epoch,
and keep the samples it learned slowest.

The package is grouped by stage:

- ``hf_lpselect.scoring``: the scorer run (``score``, ``ScorerConfig`` + ``ScorerTrainer``,
  ``LearningPercentageCallback``, the scoring passes);
- ``hf_lpselect.selection``: from scores to subsets (``select``, ``STRATEGIES``, ``select_run``,
  clusters, ``agreement`` / ``compare_runs`` between runs, ``make_report``);
- ``hf_lpselect.hub``: scores as Hub dataset columns (``push_scores``, ``load_scored``, ``materialize``);
- ``hf_lpselect.training``: ``train`` the target model on a curated split;
- ``hf_lpselect.eval``: ``evaluate`` whether the subset was worth it;
- ``hf_lpselect.space``: the Gradio Space's logic (the app is ``spaces/app.py``);

and the shared pieces: ``ingest`` (reading any instruction dataset), ``templates`` (prompts and exact
response masks), ``models``, ``lp`` (the formulas), ``record`` / ``rundir`` (the run directory).

Every public name below is importable from here; names load on first use, so ``import hf_lpselect``
(and the command line) stays fast.

Example:

```python
>>> import hf_lpselect
>>> result = hf_lpselect.score("data.jsonl", out="runs/mine", model="default", epochs=3)
>>> subset = hf_lpselect.select(result.scores, "lp1-hard", fraction=0.05)
```
"""

import importlib as _importlib


__version__ = "0.2.0"

# public name -> the module that defines it
_API = {
    "load_rows": "ingest",
    "tokenize_rows": "templates",
    "load_model": "models",
    "learning_percentages": "lp",
    "RunDir": "rundir",
    "RunRecord": "record",
    "LpselectError": "errors",
    "LPSelectError": "errors",
    "score": "scoring.scorer_run",
    "ScoreResult": "scoring.scorer_run",
    "ScoreArguments": "scoring.arguments",
    "ScorerModelConfig": "scoring.arguments",
    "ScorerConfig": "scoring.trainer",
    "ScorerTrainer": "scoring.trainer",
    "LearningPercentageCallback": "scoring.trainer",
    "score_pass": "scoring.passes",
    "select": "selection.strategies",
    "STRATEGIES": "selection.strategies",
    "select_run": "selection.subsets",
    "select_subset": "selection.subsets",
    "SelectArguments": "selection.arguments",
    "agreement": "selection.agreement",
    "compare_runs": "selection.compare",
    "CompareResult": "selection.compare",
    "make_report": "selection.report",
    "push_scores": "hub.push",
    "load_scored": "hub.load",
    "materialize": "hub.materialize",
    "train": "training.training_run",
    "TrainConfig": "training.arguments",
    "SelectionArguments": "training.arguments",
    "evaluate": "eval.pipeline",
    "EvalArguments": "eval.arguments",
    "EvalResult": "eval.eval_result",
}
__all__ = sorted(_API)
# the packages a newcomer looks for by stage (and the bottom layer they share)
_STAGES = ("core", "scoring", "selection", "hub", "training", "eval", "space")


def __getattr__(name: str) -> object:
    if name in _API:
        return getattr(_importlib.import_module(f".{_API[name]}", __name__), name)
    if name in _STAGES:
        return _importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'hf_lpselect' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API, the stage packages and the version, not this module's helpers."""
    return sorted({*__all__, *_STAGES, "__version__"})
