"""Benchmark: the peak memory of a scorer run (``hf_lpselect.score``) of the default 135M model, stage by stage.

    python benchmarks/bench_memory.py [--rows 32] [--epochs 1] [--threads 2]
                                      [--variants default activation_checkpointing] [--name bench_memory]

Data: the first ``--rows`` ``ok`` rows of /work/shared/data/train/alpaca/alpaca_data.json, the default model
(SmolLM2-135M-Instruct, float32 weights), the scorer's recipe (4 rows x 8 accumulation steps, max length 512),
``--epochs`` epochs.

Each variant runs in its OWN subprocess (``_common.run_worker``): ``default`` is ``lpselect score`` as it
ships; ``activation_checkpointing`` adds ``activation_checkpointing=True`` (recompute activations in the
backward pass: less memory, more time per step).

Memory, per stage, inside the worker: Linux's peak RSS of the process (``VmHWM``) is reset (``5`` written to
``/proc/self/clear_refs``) at the start of each stage and read at its end, so each stage's peak is its own:
``load`` (model, tokenizer, data, everything before the first scoring pass), ``pass_K`` (scoring pass K),
``train_epoch_K`` (training between pass K-1 and pass K) and ``finish`` (scores, run.json). Also
``ru_maxrss`` (the whole life) and the parent's 0.5 s sampling of the worker's RSS.

Writes benchmarks/results/<name>.json and prints a short table. No asserts: this is a benchmark.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as C  # noqa: E402


VARIANTS = {"default": {}, "activation_checkpointing": {"activation_checkpointing": True}}


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def worker(spec_path: str) -> None:
    import datasets

    import hf_lpselect
    from hf_lpselect.scoring.trainer import LearningPercentageCallback

    spec = json.loads(Path(spec_path).read_text())
    stages: list[dict] = []
    state = {"stage": "load", "t0": time.perf_counter()}

    def close(next_stage: str) -> None:
        stages.append(
            {
                "stage": state["stage"],
                "peak_rss_mib": C.vm_hwm_mib(),
                "wall_s": round(time.perf_counter() - state["t0"], 1),
            }
        )
        _reset_peak()
        state.update(stage=next_stage, t0=time.perf_counter())

    run_pass = LearningPercentageCallback.run_pass

    def measured(self, model, args, epoch, **kwargs):
        close(f"pass_{epoch}")
        try:
            return run_pass(self, model, args, epoch, **kwargs)
        finally:
            close(f"train_epoch_{epoch + 1}" if epoch < spec["epochs"] else "finish")

    LearningPercentageCallback.run_pass = measured
    rows = datasets.load_from_disk(spec["rows"]).select_columns(["instruction", "input", "output"])
    with C.Window() as window:
        hf_lpselect.score(
            rows, out=spec["out"], model="default", epochs=spec["epochs"], template="alpaca", **spec["extra"]
        )
    close("done")
    Path(spec["result_path"]).write_text(
        json.dumps(
            {
                "name": spec["name"],
                "stages": stages,
                "ru_maxrss_end_mib": C.maxrss_mib(),
                **window.as_dict(),
                "process_cpu_s_total": C.cpu_s(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--name", default="bench_memory")
    parser.add_argument("--worker")
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_memory.") as tmp:
        tmp = Path(tmp)
        C.tokenized_alpaca(args.rows, tmp)
        for name in args.variants:
            spec = {
                "name": name,
                "rows": str(tmp / "rows"),
                "out": str(tmp / f"run-{name}"),
                "epochs": args.epochs,
                "extra": VARIANTS[name],
                "result_path": str(tmp / f"{name}.json"),
            }
            results.append(C.run_worker(Path(__file__), spec, args.threads, log=tmp / f"{name}.log"))
    payload = {
        "benchmark": "bench_memory",
        "command": C.command_line(),
        "date": C.now(),
        "machine": C.machine_info(args.threads),
        "rows": args.rows,
        "epochs": args.epochs,
        "memory_method": "VmHWM reset per stage via /proc/self/clear_refs (5); ru_maxrss over the worker's life; "
        "the parent's 0.5 s psutil sampling of the worker's process tree (outside.rss_sampled_peak_mib)",
        "results": results,
    }
    path = C.write_results(args.name, payload)
    rows = [[r["name"], s["stage"], s["peak_rss_mib"], s["wall_s"]] for r in results for s in r["stages"]]
    print(C.table(rows, ["variant", "stage", "peak RSS MiB", "wall s"]))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
