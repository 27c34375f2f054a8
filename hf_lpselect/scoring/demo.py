"""``lpselect demo``: a real scorer run, offline, in minutes on 2 CPU cores.

The data is generated here (:mod:`hf_lpselect.scoring.demo_data`: answers computed by code, a few
deliberately wrong) and scored in memory (the rows are stored in the run directory as
``source.parquet``); the model is the embedded default, SmolLM2-135M-Instruct. The recipe is the
paper's, scaled down so 120 short rows (by default) show a real learning signal in 2-3 minutes:
2 epochs, batch 8 without accumulation, a larger learning rate (1e-4), length 256 and the short
``plain`` prompt (the Alpaca preamble alone would double the tokens, and the time, on a CPU).

Its last line counts the deliberately wrong rows among the hardest 10 %: a wrong answer is hard to
learn, so a working scorer ranks many of them hard (chance would put 10 % of them there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pandas as pd

from .demo_data import make_demo_rows
from .scorer_run import ScoreResult, score


DEMO_RECIPE = {
    "epochs": 2,
    "max_length": 256,
    "template": "plain",
    "learning_rate": 1e-4,
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "logging_steps": 5,
}


def run_demo(out: str | Path = "runs/demo", n_rows: int = 120, seed: int = 42, **overrides) -> ScoreResult:
    """Generate ``n_rows`` demo rows and score them with the default model into ``out``.

    Args:
        out (`str` or `Path`, *optional*, defaults to `"runs/demo"`): the run directory.
        n_rows (`int`, *optional*, defaults to `120`): rows to generate.
        seed (`int`, *optional*, defaults to `42`): the run's seed.
        **overrides: any :func:`hf_lpselect.score` argument, over :data:`DEMO_RECIPE`.
    """
    rows = datasets.Dataset.from_list(make_demo_rows(n=n_rows, seed=0))
    return score(rows, out=str(out), model="default", seed=seed, **{**DEMO_RECIPE, **overrides})


@dataclass
class DemoArguments:
    """``lpselect demo [--out runs/demo] [--rows 120] [--epochs 2] [--bf16 false]``.

    Args:
        out (`str`, *optional*, defaults to `"runs/demo"`): the run directory.
        rows (`int`, *optional*, defaults to `120`): rows of generated data.
        epochs (`int`, *optional*, defaults to `2`): training epochs (at least 2 for LP(1) to mean anything).
        bf16 (`bool` or `None`, *optional*, defaults to `None`): bf16 autocast, or float32 with ``false``
            (default: bf16 where this device computes it natively).
    """

    out: str = field(default="runs/demo", metadata={"help": "Run directory for the demo."})
    rows: int = field(default=120, metadata={"help": "Rows of generated data."})
    epochs: int = field(
        default=DEMO_RECIPE["epochs"], metadata={"help": "Training epochs (at least 2 for LP(1) to mean anything)."}
    )
    bf16: bool | None = field(
        default=None,
        metadata={
            "negatable": True,
            "help": "bf16 autocast (true), or float32 (false); default: bf16 where this device computes it natively.",
        },
    )


@dataclass(frozen=True)
class DemoResult:
    """What :func:`demo` ran and found.

    Attributes:
        run (`ScoreResult`): the scorer run.
        wrong_found (`int`): deliberately wrong rows among the hardest 10 % by LP(1).
        wrong_total (`int`): deliberately wrong rows in all.
    """

    run: ScoreResult
    wrong_found: int
    wrong_total: int

    def summary(self) -> str:
        """Where it ran, and how many deliberately wrong answers the scorer ranked among the hardest 10 %."""
        hardware = self.run.record.hardware
        return (
            f"Ran on {hardware['name']} ({hardware['device']}) in {hardware['precision']['training']}.\n"
            f"Deliberately wrong answers among the 10 % rows the scorer found hardest: {self.wrong_found} of "
            f"{self.wrong_total} (by chance {self.wrong_total / 10:.1f}): wrong answers are hard to learn."
        )


def demo(args: DemoArguments) -> DemoResult:
    """``lpselect demo``: score generated rows with the default model and count the wrong answers found hardest.

    Example:

    ```python
    >>> print(demo(DemoArguments(out="runs/demo")).summary())
    ```
    """
    result = run_demo(
        out=args.out, n_rows=args.rows, epochs=args.epochs, **({} if args.bf16 is None else {"bf16": args.bf16})
    )
    return DemoResult(result, *wrong_rows_among_hardest(result))


def wrong_rows_among_hardest(result: ScoreResult, fraction: float = 0.1) -> tuple[int, int]:
    """How many deliberately wrong demo rows fall in the hardest ``fraction`` by LP(1), out of how many."""
    source = pd.read_parquet(result.run_dir.source, columns=["deliberately_wrong"])
    wrong = set(source.index[source["deliberately_wrong"]])
    ranked = result.scores.dropna(subset=["lp1"]).sort_values(["lp1", "row"])
    hardest = set(ranked["row"].head(max(1, round(fraction * len(ranked)))))
    return len(wrong & hardest), len(wrong)
