"""hf_lpselect: a small model picks the instruction-tuning data a large one should train on.

Learning percentage (Mekala, Nguyen & Shang, ACL Findings 2024): fine-tune a small scorer model on
the whole dataset, score each sample's response perplexity before training and after every epoch,
and keep the samples it learned slowest.

The public API is importable from here; names load on first use, so ``import hf_lpselect`` (and
the command line) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "load_rows": "data",
    "score": "run",
    "ScoreResult": "run",
    "ScorerConfig": "trainer",
    "ScorerTrainer": "trainer",
    "score_pass": "scoring",
    "tokenize_rows": "templates",
    "load_model": "models",
    "learning_percentages": "lp",
    "select": "select",
    "STRATEGIES": "select",
    "select_run": "subsets",
    "agreement": "agreement",
    "compare_runs": "compare",
    "make_report": "report",
    "push_scores": "hub",
    "load_scored": "hub",
    "materialize": "hub",
    "RunDir": "rundir",
    "LPSelectError": "errors",
    "train": "training",
    "TrainConfig": "train_args",
    "SelectionArguments": "train_args",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'hf_lpselect' has no attribute {name!r}")
