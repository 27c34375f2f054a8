"""Benchmark: what do the training-batch layouts do to the LP(1) ranking? Measured before any is offered.

    python benchmarks/bench_batching_lp.py [--pool FILE] [--rows 160] [--reference RUN_DIR]
                                           [--work benchmarks/.batching] [--name bench_batching_lp]

The same scorer run (the default model, the paper's recipe: ScorerConfig defaults, alpaca
template, max_length 512) in four variants, each compared with the reference run's exact LP(1) by
:func:`hf_lpselect.selection.agreement.agreement` (what ``lpselect compare`` prints: Kendall tau-b,
Spearman, overlap of the hardest 5 / 10 / 33 %):

- ``reference``: padded batches in random order, seed 42 (``--reference`` reuses a finished run
  of exactly this recipe on the same pool, e.g. bench_evidence's ``.evidence/scorer``);
- ``seed43``: the same with seed 43, i.e. another random batch composition and order. Its
  agreement is the noise floor: a layout that agrees with the reference as well as another seed
  does has not changed the method more than the seed does;
- ``padding_free``: ``padding_free=True``, the same batches laid out as one packed sequence each
  (same rows, positions and loss; should agree almost perfectly);
- ``group_by_length``: ``train_sampling_strategy="group_by_length"`` (transformers'
  LengthGroupedSampler: rows of similar length share a batch). It changes which rows share an
  optimizer step, the batch composition the paper used.

Runs are resumable (each variant's run directory under ``--work`` is read back when complete, and
the results say so); each run's layout is taken from its own run record. ``run_s`` (from the record)
is for information only: speed is measured on a quiet machine by bench_run.py.
Writes benchmarks/results/<name>.json. No asserts: this is a benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as C  # noqa: E402


MAX_LENGTH = 512
TOP = (0.05, 0.1, 0.33)
VARIANTS: dict[str, dict[str, Any]] = {
    "reference": {},
    "seed43": {"seed": 43},
    "padding_free": {"padding_free": True},
    "group_by_length": {"train_sampling_strategy": "group_by_length"},
}


def make_pool(work: Path, rows: int) -> Path:
    """The first ``rows`` Alpaca records (the JSON's own order) as a JSON-lines pool."""
    records = json.loads(C.ALPACA.read_text())[:rows]
    path = work / "pool.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def run_variant(pool: Path, out: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """Run (or read back, when it is complete) one variant; what its own run record says it was."""
    import hf_lpselect
    from hf_lpselect.record import RunRecord

    reused = (out / "run.json").is_file() and RunRecord.load(out).complete
    result = hf_lpselect.score(
        str(pool),
        out=str(out),
        model="default",
        template="alpaca",
        max_length=MAX_LENGTH,
        disable_tqdm=True,
        **overrides,
    )
    record = RunRecord.load(out)
    return {
        "run_dir": str(out),
        "reused_complete_run": reused,
        "overrides": overrides,
        "recorded_layout": {k: record.identity.get(k) for k in ("seed", "padding_free", "train_sampling_strategy")},
        "run_s": record.timings.get("seconds_this_call"),
        "counts": result.counts,
        "lp1_median": round(float(result.scores["lp1"].median()), 4),
    }


def compare(reference: Path, other: Path) -> dict[str, Any]:
    import pandas as pd

    from hf_lpselect.selection.agreement import agreement

    a, b = (pd.read_parquet(run / "scores.parquet") for run in (reference, other))
    found = agreement(a, b, score="lp1", reference="ppl_0", top=TOP)
    lp1, ppl0 = found["results"]["lp1"], found["results"]["ppl_0"]
    return {
        "n_matched": found["n_matched"],
        "kendall_lp1": round(lp1["kendall_tau_b"], 4),
        "spearman_lp1": round(lp1["spearman"], 4),
        "hardest_overlap_lp1": {f"{t['fraction']:g}": round(t["overlap"], 4) for t in lp1["top"]},
        "kendall_ppl_0": round(ppl0["kendall_tau_b"], 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pool", type=Path, help="a JSON-lines pool (default: the first --rows Alpaca records)")
    ap.add_argument("--rows", type=int, default=160)
    ap.add_argument("--reference", type=Path, help="a finished run of the reference recipe on --pool, reused")
    ap.add_argument("--work", type=Path, default=C.BENCH_DIR / ".batching")
    ap.add_argument("--name", default="bench_batching_lp")
    args = ap.parse_args()

    started = time.perf_counter()
    args.work.mkdir(parents=True, exist_ok=True)
    pool = args.pool or make_pool(args.work, args.rows)
    runs: dict[str, dict[str, Any]] = {}
    for name, overrides in VARIANTS.items():
        if name == "reference" and args.reference:
            runs[name] = {"run_dir": str(args.reference), "given_as_reference": True, "overrides": {}}
            continue
        print(f"scorer run: {name} {overrides or ''} ...", flush=True)
        runs[name] = run_variant(pool, args.work / name, overrides)
        print(f"  {runs[name]['run_s']} s{' (read back)' if runs[name]['reused_complete_run'] else ''}", flush=True)

    reference = Path(runs["reference"]["run_dir"])
    agreement = {name: compare(reference, Path(run["run_dir"])) for name, run in runs.items() if name != "reference"}
    payload = {
        "benchmark": "bench_batching_lp",
        "date": C.now(),
        "command": C.command_line(),
        "machine": C.machine_info(len(os.sched_getaffinity(0))),
        "pool": str(pool),
        "recipe": "ScorerConfig defaults (the paper's), default model, alpaca template, max_length 512",
        "runs": runs,
        "agreement_with_reference": agreement,
        "total_script_wall_s": round(time.perf_counter() - started, 1),
        "notes": [
            "agreement_with_reference[v] compares variant v's LP(1) with the reference run's (hardest = low LP(1)); "
            "overlap[f] = |hardest-f of both| / k, whose value for unrelated rankings is about f.",
            "seed43 is the noise floor: another random batch composition and order of the same recipe.",
        ],
    }
    path = C.write_results(args.name, payload)
    rows = [
        [
            name,
            a["n_matched"],
            a["kendall_lp1"],
            *(a["hardest_overlap_lp1"][f"{f:g}"] for f in TOP),
            a["kendall_ppl_0"],
        ]
        for name, a in agreement.items()
    ]
    print(
        C.table(
            rows, ["variant vs reference", "rows", "Kendall LP(1)", *(f"hardest {f:g}" for f in TOP), "Kendall P_0"]
        )
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
