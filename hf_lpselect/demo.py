"""``lpselect demo``: a real scorer run, offline, in minutes on 2 CPU cores.

The data is generated here (:mod:`hf_lpselect.demo_data`: answers computed by code, a few
deliberately wrong); the model is the embedded default, SmolLM2-135M-Instruct. The recipe is the
paper's, scaled down so 120 short rows (by default) show a real learning signal in about 4 minutes: 2 epochs, batch 8
without accumulation, a larger learning rate (1e-4), length 256 and the short ``plain``
prompt (the Alpaca preamble alone would double the tokens, and the time, on a CPU).
"""

from __future__ import annotations

import json
from pathlib import Path

from .demo_data import make_demo_rows
from .run import ScoreResult, score

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
    """Write the generated dataset to ``out/demo_data.jsonl`` and score it with the default model."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data_file = out / "demo_data.jsonl"
    records = make_demo_rows(n=n_rows, seed=0)
    data_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return score(str(data_file), out=out, model="default", seed=seed, **{**DEMO_RECIPE, **overrides})


def wrong_rows_among_hardest(result: ScoreResult, fraction: float = 0.1) -> tuple[int, int]:
    """How many deliberately wrong demo rows fall in the hardest ``fraction`` by LP(1), out of how many."""
    data_file = Path(result.info["dataset"]["source"])
    wrong = {i for i, line in enumerate(data_file.read_text(encoding="utf-8").splitlines()) if json.loads(line)["deliberately_wrong"]}
    ranked = result.scores.dropna(subset=["lp1"]).sort_values(["lp1", "row"])
    hardest = set(ranked["row"].head(max(1, round(fraction * len(ranked)))))
    return len(wrong & hardest), len(wrong)
