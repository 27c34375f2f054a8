"""``lpselect eval``: is the model trained on the selected subset better?

Each model answers the test sets (batched, cached); a judge compares every model with the
baseline in both orders (docs/method.md §8); reference answers are scored by response NLL under every
model, a number that needs no judge; two models' per-row NLLs are compared by paired differences with a
bootstrap interval, and against random subsets with their seeds as the null (:mod:`hf_lpselect.eval.paired`).
See docs/eval.md.

    from hf_lpselect.eval import EvalArguments, evaluate
    result = evaluate(EvalArguments(models=["hard=runs/hard", "random=runs/random"], test_sets=["vicuna.jsonl"]))
    print(result.summary())
"""

from .arguments import EvalArguments
from .eval_result import EvalResult
from .pipeline import evaluate


__all__ = ["EvalArguments", "EvalResult", "evaluate"]
