"""Benchmark: time and length bias of every selection strategy on a real scorer run.

    python benchmarks/bench_select.py [--rows 100] [--epochs 2] [--fraction 0.1] [--run DIR] [--per-cluster 10]

Data: the first ``--rows`` rows of Stanford Alpaca (../shared/data), scored by the default model
(SmolLM2-135M-Instruct) with ``--ifd`` so every strategy has its columns. The run uses the demo's
small-data recipe (lr 1e-4, batch 8, no accumulation, plain template, max length 256): with a few
hundred rows the paper's lr 2e-5 x batch 32 makes too few steps to learn anything. ``--run`` reuses
a finished run directory instead.

For each strategy at ``--fraction`` (global, and per cluster where it applies): the median wall
time of ``select()`` over 5 repeats, and the length bias = mean response tokens of the subset /
mean over all ok rows (docs/method.md §5: hard samples tend to be long; ``longest`` is the yardstick).
Writes benchmarks/results/bench_select.json and prints a table. No asserts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
import pandas as pd  # noqa: E402

from hf_lpselect.core.io import write_json  # noqa: E402
from hf_lpselect.record import RunRecord  # noqa: E402
from hf_lpselect.rundir import RunDir  # noqa: E402
from hf_lpselect.scoring.scorer_run import score  # noqa: E402
from hf_lpselect.selection.clusters import cached_clusters  # noqa: E402
from hf_lpselect.selection.strategies import STRATEGIES, select  # noqa: E402
from hf_lpselect.selection.subsets import run_rows  # noqa: E402


RECIPE = {
    "template": "plain",
    "max_length": 256,
    "learning_rate": 1e-4,
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
}


def timed_select(scores: pd.DataFrame, strategy: str, **kwargs) -> tuple[float, object]:
    times, selection = [], None
    for _ in range(5):
        start = time.perf_counter()
        selection = select(scores, strategy, **kwargs)
        times.append(time.perf_counter() - start)
    return statistics.median(times), selection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--per-cluster", type=int, default=10)
    parser.add_argument("--run", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    run_dir = RunDir(args.run or C.RESULTS_DIR.parent / "runs" / f"alpaca{args.rows}-smollm2-e{args.epochs}")
    started = time.perf_counter()
    if not run_dir.scores.is_file():
        score(
            str(C.ALPACA), out=run_dir.path, model="default", epochs=args.epochs, limit=args.rows, ifd=True, **RECIPE
        )
    run_seconds = time.perf_counter() - started
    scores = pd.read_parquet(run_dir.scores)
    ok = scores[scores["status"] == "ok"]
    mean_len = float(ok["n_response_tokens"].mean())

    start = time.perf_counter()
    clusters = cached_clusters(run_dir, run_rows(run_dir), args.per_cluster).set_index("row")["cluster"]
    cluster_seconds = time.perf_counter() - start

    results = []
    for name in STRATEGIES:
        for per_cluster in (False, True):
            if per_cluster and name in ("random", "s2l"):
                continue
            if not per_cluster and name == "clustered-random":
                continue
            seconds, selection = timed_select(
                scores, name, fraction=args.fraction, clusters=clusters if per_cluster else None
            )
            chosen = scores.set_index("row").loc[list(selection.rows)]
            results.append(
                {
                    "strategy": name,
                    "per_cluster": per_cluster,
                    "n_selected": len(selection.rows),
                    "real_fraction": selection.real_fraction,
                    "select_ms": round(seconds * 1000, 2),
                    "length_bias": round(float(chosen["n_response_tokens"].mean()) / mean_len, 3),
                }
            )
    counts = RunRecord.load(run_dir.path).counts
    payload = {
        "benchmark": "bench_select",
        "date": C.now(),
        "command": C.command_line(),
        "machine": C.machine_info(args.threads),
        "run": {
            "dir": str(run_dir.path),
            "rows": args.rows,
            "epochs": args.epochs,
            "recipe": RECIPE,
            "counts": counts,
            "seconds": round(run_seconds, 1) if args.run is None else None,
        },
        "fraction": args.fraction,
        "mean_response_tokens_all_ok_rows": mean_len,
        "clusters": {"k": args.per_cluster, "embed_and_kmeans_seconds": round(cluster_seconds, 2)},
        "strategies": results,
        "notes": "length_bias = mean response tokens of the subset / mean of all ok rows; select_ms = median of 5 select() calls.",
    }
    write_json(payload, C.RESULTS_DIR / "bench_select.json")
    print(f"{'strategy':<18} {'per-cluster':<11} {'rows':>5} {'ms':>8} {'length bias':>11}")
    for r in results:
        print(
            f"{r['strategy']:<18} {str(r['per_cluster']):<11} {r['n_selected']:>5} {r['select_ms']:>8} {r['length_bias']:>11}"
        )
    print(json.dumps(payload["clusters"]))


if __name__ == "__main__":
    main()
