"""Benchmark: materialising the Hub repo of a 52,002-row run (`lpselect push-scores --dry-run --local-dir`).

    python benchmarks/bench_push.py [--rows 52002] [--epochs 3] [--threads 2]

Data: Stanford Alpaca (../shared/data), all rows, canonicalised by hf_lpselect (so the statuses,
duplicates and invalid rows are real). The SCORES ARE SYNTHETIC: scoring 52,002 rows with a real
model takes hours on this CPU, and materialising does not depend on the values. Synthetic per-pass
NLLs (a seeded random decay per row) go through the real ``build_scores`` (real LP code) into a
real run directory; response lengths are word counts x 1.3.

Measured in a fresh subprocess: wall time of ``materialize`` (default subsets: lp1_hard_5/10/33pct,
random_5pct; Parquet shards, report figures, card), the import time before it, and the peak RSS
of the worker process (Linux VmHWM; psutil sampling from outside as a cross-check). Targets (from the issue):
under 30 s and under 2 GiB. Writes benchmarks/results/bench_push.json. No asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C


TARGET_S, TARGET_MIB = 30.0, 2048.0


def make_run(run_dir: Path, n_rows: int, epochs: int, seed: int = 0) -> dict:
    """A finished run directory over the first ``n_rows`` Alpaca rows, with synthetic scores."""
    import numpy as np
    import pandas as pd

    from hf_lpselect.core.io import write_parquet
    from hf_lpselect.core.schema import STATUSES
    from hf_lpselect.ingest import load_rows
    from hf_lpselect.record import DatasetRecord, RunRecord
    from hf_lpselect.rundir import RunDir
    from hf_lpselect.scoring.scorer_run import build_scores, dataset_fingerprint

    rows = load_rows(str(C.ALPACA))
    rows = rows.select(range(min(n_rows, len(rows))))
    table = rows.select_columns(["row", "id", "status", "reason", "output"]).to_pandas()
    rng = np.random.default_rng(seed)
    table["n_prompt_tokens"] = 20
    table["n_response_tokens"] = (table["output"].str.split().str.len().fillna(0) * 1.3).astype("int64")
    table["truncated"] = False
    table = table.drop(columns="output")
    ok = table["status"] == "ok"
    nll0 = rng.uniform(0.5, 3.0, len(table))
    rates = rng.uniform(0.05, 0.6, len(table))
    passes = []
    for k in range(epochs + 1):
        nll = nll0 * (1 - rates) ** k + rng.normal(0, 0.01, len(table))
        passes.append(
            pd.DataFrame(
                {
                    "row": table.loc[ok, "row"],
                    "nll": nll[ok.to_numpy()],
                    "n_tokens": table.loc[ok, "n_response_tokens"],
                }
            )
        )
    run = RunDir(run_dir)
    write_parquet(table, run.rows)
    write_parquet(build_scores(table, passes), run.scores)
    record = RunRecord(
        identity={"model_name_or_path": "synthetic", "max_length": 512, "seed": 42},
        dataset=DatasetRecord(source=str(C.ALPACA), n_rows=len(rows), fingerprint=dataset_fingerprint(rows["id"])),
        format="alpaca",
        template="alpaca",
        epochs=epochs,
        model={"model": "synthetic-scores (bench_push.py)"},
        counts={s: int((table["status"] == s).sum()) for s in STATUSES},
        complete=True,
    )
    record.save(run.path)
    return record.counts


def worker(spec_path: Path) -> None:
    spec = json.loads(spec_path.read_text())
    t0 = time.perf_counter()
    from hf_lpselect.hub.materialize import materialize

    import_s = time.perf_counter() - t0
    with C.Window() as window:
        plan = materialize(spec["run"], "bench/alpaca", spec["local_dir"])
    sizes = {f: (Path(spec["local_dir"]) / f).stat().st_size for f in plan.files}
    result = {
        "import_s": round(import_s, 2),
        **window.as_dict("materialize_"),
        "peak_rss_mib": C.vm_hwm_mib(),
        "ru_maxrss_mib_incl_parent": C.maxrss_mib(),
        "configs": plan.configs,
        "files_bytes": sizes,
        "process_cpu_s_total": C.cpu_s(),
    }
    Path(spec["result_path"]).write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=52002)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)

    with tempfile.TemporaryDirectory(prefix="bench_push-") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        counts = make_run(tmp / "run", args.rows, args.epochs)
        setup_s = time.perf_counter() - started
        result = C.run_worker(
            Path(__file__),
            {
                "name": "materialize",
                "run": str(tmp / "run"),
                "local_dir": str(tmp / "repo"),
                "result_path": str(tmp / "result.json"),
            },
            args.threads,
            poll_s=0.2,
            log=tmp / "worker.log",
        )
    wall = result["materialize_wall_s"]
    peak = max(result["peak_rss_mib"], result["outside"]["rss_sampled_peak_mib"])
    payload = {
        "benchmark": "bench_push",
        "command": C.command_line(),
        "when": C.now(),
        "machine": C.machine_info(args.threads),
        "data": {
            "source": str(C.ALPACA),
            "rows": args.rows,
            "epochs": args.epochs,
            "counts": counts,
            "scores": "SYNTHETIC: seeded random per-pass NLL decay through the real build_scores; lengths = words x 1.3",
        },
        "setup_s_not_timed": round(setup_s, 1),
        "result": result,
        "targets": {
            "materialize_s": TARGET_S,
            "peak_rss_mib": TARGET_MIB,
            "met": bool(wall < TARGET_S and peak < TARGET_MIB),
        },
    }
    path = C.write_results("bench_push", payload)
    print(
        C.table(
            [[args.rows, result["import_s"], wall, peak, result["outside"]["other_cpu_share"]]],
            ["rows", "import s", "materialize s", "peak RSS MiB", "other CPU share"],
        )
    )
    print(f"configs: {result['configs']}")
    print(f"written: {path}")


if __name__ == "__main__":
    main()
