"""GPU benchmark that fits one 15-minute lease: scoring passes at SmolLM2's three shapes with the DEFAULT
settings and the best manual ones, a pass over all of Alpaca, and a whole scorer run against plain TRL SFT.

Two steps, because the GPU machine reaches no registry and no Hub and ../shared does not travel with a call:

    # here (CPU, online registry, ../shared present): writes .gpu/ (git-ignored, about 12 MiB)
    python benchmarks/bench_gpu.py prepare
    # there (the device tool): carry [".gpu"], one call, at most 8 minutes
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/wheels/*.whl \\
      && PYTHONPATH=/tmp/site HF_HUB_OFFLINE=1 USE_HUB_KERNELS=0 python3 benchmarks/bench_gpu.py run --out $OUT

``prepare`` saves SmolLM2's tokenizer (from the embedded default model), the token ids of every ``ok``
Alpaca row under the paper's template (max_length 512), and the wheels the GPU image lacks (trl,
datasets and theirs, and hf_lpselect itself). ``run`` builds each model from its config with seeded
random weights (speed needs no trained weights), so no model package travels.

What ``run`` measures (tokens/s; padded tokens computed are counted only in TFLOP/s):

1. ``passes``: for 135M, 360M and 1.7B shapes, on the first 1,000 rows: the peers' one-row loop
   (full logits, float32), ``score_pass`` with NO batching arguments (what a user gets), and with
   16,384 and 65,536-token budgets and no row cap. TFLOP/s counts 2 x non-embedding parameters x
   computed tokens plus the LM head at scored positions; ``share_of_peak`` divides by ``--peak-tflops``.
2. ``full_alpaca``: one default pass over every ok Alpaca row at 135M: seconds and peak GPU memory.
3. ``whole_run``: ``ScorerTrainer`` (pass 0, one epoch, pass 1, a checkpoint) against ``trl.SFTTrainer``
   with the same rows, recipe and precision, both with the paper's micro-batches (4 x 8) and with the
   opt-in ``--per_device_train_batch_size 32 --gradient_accumulation_steps 1 --padding_free true``.

Sections stop being started once ``--budget-s`` is spent; the results file says which ran. With
``--smoke`` everything runs at toy sizes on any device (to check the script here, on a CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
GPU_DIR = REPO / ".gpu"
ALPACA = REPO.parent / "shared" / "data" / "train" / "alpaca" / "alpaca_data.json"
MAX_LENGTH = 512
# packages the GPU image lacks (it has torch, transformers, accelerate, peft, pandas, pyarrow, numpy, psutil …)
WHEELS = ("trl", "datasets", "dill", "multiprocess", "xxhash")  # xxhash: datasets imports it; the GPU image lacks it
# SmolLM2's shapes (HuggingFaceTB/SmolLM2-{135M,360M,1.7B} configs): hidden, intermediate, layers, heads, kv heads
SHAPES = {
    "135m": (576, 1536, 30, 9, 3),
    "360m": (960, 2560, 32, 15, 5),
    "1.7b": (2048, 8192, 24, 32, 32),
}
SMOKE_SHAPES = {"tiny": (64, 128, 2, 4, 2)}


# ============================================================================ prepare (here)


def prepare(args: argparse.Namespace) -> None:
    """Tokenizer, Alpaca token ids and wheels into .gpu/ (for ``carry``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    from hf_lpselect.ingest import load_rows
    from hf_lpselect.models import default_gguf_path
    from hf_lpselect.templates import tokenize_rows

    GPU_DIR.mkdir(exist_ok=True)  # git-ignored: it travels only where `carry` names it
    gguf = default_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer.save_pretrained(GPU_DIR / "tokenizer")
    rows = load_rows(str(ALPACA))
    if args.rows:
        rows = rows.select(range(min(args.rows, len(rows))))
    tok = tokenize_rows(rows, tokenizer, template="alpaca", max_length=MAX_LENGTH)
    ok = tok.filter(lambda s: s == "ok", input_columns="status")
    # labels are the ids with the prompt masked: keep the prompt length, not a second copy of the ids
    n_prompt = [next((i for i, v in enumerate(lab) if v != -100), len(lab)) for lab in ok["labels"]]
    for ids, lab, k in zip(ok["input_ids"][:100], ok["labels"][:100], n_prompt[:100]):
        assert lab == [-100] * k + ids[k:], "labels are not the ids after the prompt"
    table = pa.table(
        {
            "row": pa.array(ok["row"], pa.int32()),
            "input_ids": pa.array(ok["input_ids"], pa.list_(pa.int32())),
            "n_prompt": pa.array(n_prompt, pa.int32()),
        }
    )
    pq.write_table(table, GPU_DIR / "alpaca_tokens.parquet", compression="zstd")
    download_wheels(GPU_DIR / "wheels", WHEELS)
    size = sum(p.stat().st_size for p in GPU_DIR.rglob("*") if p.is_file())
    print(
        f"{GPU_DIR}: {len(ok)} ok rows of {len(rows)}, {sum(map(len, ok['input_ids'])):,} tokens; {size / 2**20:.1f} MiB to carry"
    )


def download_wheels(folder: Path, names: tuple[str, ...]) -> None:
    """The wheels of ``names`` (the lock's versions, constraints.txt, for the device's CPython 3.12 on x86-64
    Linux) and of hf_lpselect itself into ``folder``, for a machine that reaches no registry."""
    sys.path.insert(0, str(REPO / "scripts"))
    from lock import canonical, read_lock

    pins = read_lock()
    folder.mkdir(parents=True, exist_ok=True)
    platforms = [f"--platform={p}" for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.12",
            "--implementation",
            "cp",
            *platforms,
            "-d",
            str(folder),
            *[f"{w}=={pins[canonical(w)]}" for w in names],
        ],
        check=True,
    )
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), str(REPO)], check=True)


# ============================================================================ run (there)


def _dataset(n_rows: int | None):
    import datasets
    import pyarrow.parquet as pq

    table = pq.read_table(GPU_DIR / "alpaca_tokens.parquet")
    if n_rows is not None:
        table = table.slice(0, n_rows)
    ids = table.column("input_ids").to_pylist()
    n_prompt = table.column("n_prompt").to_pylist()
    labels = [[-100] * k + x[k:] for x, k in zip(ids, n_prompt)]
    return datasets.Dataset.from_dict(
        {"row": table.column("row").to_pylist(), "input_ids": ids, "labels": labels, "length": [len(x) for x in ids]}
    )


def model_from_shape(shape: tuple[int, ...], vocab: int, device: str):
    """A Llama of SmolLM2's build (hidden, intermediate, layers, heads, kv heads) with seeded random weights, in eval mode."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, inner, layers, heads, kv = shape
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=inner,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        rope_theta=100000.0,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    return model.eval()


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _flops(model, computed: int, scored: int) -> float:
    embed = model.get_input_embeddings().weight.numel()
    body = sum(p.numel() for p in model.parameters()) - embed
    return 2.0 * body * computed + 2.0 * embed * scored  # the tied head is vocab x hidden = the embedding


def one_row_loop(model, data, device: str) -> dict:
    """The peers' way: one row at a time, full logits, float32, mean CE over the response."""
    import torch
    import torch.nn.functional as F

    tokens = 0
    _sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        for ids, labels in zip(data["input_ids"], data["labels"]):
            logits = model(torch.tensor([ids], device=device)).logits[0, :-1].float()
            F.cross_entropy(logits, torch.tensor(labels[1:], device=device), ignore_index=-100)
            tokens += len(ids)
    _sync(device)
    seconds = time.perf_counter() - start
    return {"rows": len(data), "tokens": tokens, "seconds": round(seconds, 3), "tokens_per_s": round(tokens / seconds)}


def timed_pass(model, data, pad: int, device: str, peak_tflops: float, **batching) -> dict:
    import numpy as np
    import torch

    from hf_lpselect.core.hardware import probe
    from hf_lpselect.scoring.passes import computed_tokens, device_batching, length_batches, score_pass

    chosen = device_batching(model, batching.get("token_budget"), batching.get("batch_size"))
    lengths = np.asarray(data["length"])
    computed = computed_tokens(
        lengths, length_batches(lengths, token_budget=chosen.token_budget, max_rows=chosen.max_rows)
    )
    scored = int(sum(sum(1 for v in lab[1:] if v != -100) for lab in data["labels"]))
    autocast = torch.bfloat16 if probe(device).native_bf16 else None
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    _sync(device)
    start = time.perf_counter()
    frame = score_pass(model, data, pad_token_id=pad, autocast_dtype=autocast, disable_progress=True, **batching)
    _sync(device)
    seconds = time.perf_counter() - start
    tflops = _flops(model, computed, scored) / seconds / 1e12
    return {
        "token_budget": chosen.token_budget,
        "max_rows": chosen.max_rows,
        "autocast": str(autocast),
        "rows": len(frame),
        "tokens": int(lengths.sum()),
        "padded_share": round(1 - lengths.sum() / computed, 4),
        "seconds": round(seconds, 3),
        "tokens_per_s": round(lengths.sum() / seconds),
        "tflops": round(tflops, 1),
        "share_of_peak": round(tflops / peak_tflops, 3),
        "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None,
        "finite_nll": bool(np.isfinite(frame["nll"]).all()),
    }


def passes_section(args, tokenizer, device: str, shapes: dict) -> dict:
    import torch

    data = _dataset(args.pass_rows)
    peer = data.select(range(min(args.peer_rows, len(data))))
    out = {}
    for name, shape in shapes.items():
        model = model_from_shape(shape, len(tokenizer), device)
        timed_pass(
            model, data.select(range(min(64, len(data)))), tokenizer.pad_token_id, device, args.peak_tflops
        )  # warm-up
        entry = {
            "one_row_loop_fp32": one_row_loop(model, peer, device),
            "default": timed_pass(model, data, tokenizer.pad_token_id, device, args.peak_tflops),
        }
        for budget in args.budgets:
            entry[f"tb{budget}_no_cap"] = timed_pass(
                model, data, tokenizer.pad_token_id, device, args.peak_tflops, token_budget=budget, batch_size=0
            )
        base = entry["one_row_loop_fp32"]["tokens_per_s"]
        for key, value in entry.items():
            if key != "one_row_loop_fp32":
                value["x_one_row_loop"] = round(value["tokens_per_s"] / base, 1)
        out[name] = entry
        print(name, json.dumps({k: v.get("tokens_per_s") for k, v in entry.items()}), flush=True)
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
    return out


def full_alpaca_section(args, tokenizer, device: str, shapes: dict) -> dict:
    data = _dataset(args.smoke_rows if args.smoke else None)
    model = model_from_shape(next(iter(shapes.values())), len(tokenizer), device)
    result = timed_pass(model, data, tokenizer.pad_token_id, device, args.peak_tflops)
    print("full alpaca", json.dumps(result), flush=True)
    return {"shape": next(iter(shapes)), **result}


def _train(kind: str, data, tokenizer, device: str, shape, overrides: dict, workdir: Path) -> dict:
    import dataclasses

    from trl import SFTConfig, SFTTrainer

    from hf_lpselect.scoring.trainer import ScorerConfig, ScorerTrainer

    model = model_from_shape(shape, len(tokenizer), device).train()
    scorer_args = ScorerConfig(
        output_dir=str(workdir / f"{kind}"),
        num_train_epochs=1,
        max_length=MAX_LENGTH,
        disable_tqdm=True,
        logging_steps=1000,
        **overrides,
    )
    start = time.perf_counter()
    if kind == "scorer":
        trainer = ScorerTrainer(
            model=model,
            args=scorer_args,
            train_dataset=data,
            processing_class=tokenizer,
            run_dir=str(workdir / "scorer_run"),
        )
    else:  # every SFTConfig field as the scorer has it; no checkpoint, no passes
        values = {f.name: getattr(scorer_args, f.name) for f in dataclasses.fields(SFTConfig) if f.init}
        values.update(save_strategy="no", save_total_limit=None)
        if values["padding_free"]:
            values["max_length"] = None  # the rows are truncated already; TRL refuses padding_free with a max_length
        if hasattr(values.get("lr_scheduler_type"), "value"):
            values["lr_scheduler_type"] = values["lr_scheduler_type"].value
        trainer = SFTTrainer(
            model=model,
            args=SFTConfig(**values),
            train_dataset=data.select_columns(["input_ids", "labels"]),
            processing_class=tokenizer,
        )
    out = trainer.train()
    _sync(device)
    seconds = time.perf_counter() - start
    return {
        "seconds": round(seconds, 2),
        "steps": int(out.global_step),
        "loss": round(float(out.training_loss), 4),
        "bf16": bool(scorer_args.bf16),
    }


def whole_run_section(args, tokenizer, device: str, shapes: dict) -> dict:
    data = _dataset(args.run_rows)
    shape = next(iter(shapes.values()))
    variants = {
        "paper_4x8": {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 8},
        "gpu_32x1_padding_free": {
            "per_device_train_batch_size": 32,
            "gradient_accumulation_steps": 1,
            "padding_free": True,
        },
    }
    out = {"shape": next(iter(shapes)), "rows": len(data), "epochs": 1}
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in variants.items():
            entry = {
                kind: _train(kind, data, tokenizer, device, shape, overrides, Path(tmp) / name)
                for kind in ("trl", "scorer")
            }
            entry["scorer_vs_trl"] = round(entry["scorer"]["seconds"] / entry["trl"]["seconds"], 3)
            out[name] = entry
            print(name, json.dumps(entry), flush=True)
    return out


def run(args: argparse.Namespace) -> None:
    import torch
    from transformers import AutoTokenizer

    from hf_lpselect.core.hardware import probe

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(GPU_DIR / "tokenizer")
    shapes = SMOKE_SHAPES if args.smoke else {k: SHAPES[k] for k in args.shapes}
    if args.smoke:
        args.pass_rows, args.peer_rows, args.run_rows, args.budgets = args.smoke_rows, 16, args.smoke_rows, [4096]
    results = {
        "command": " ".join(sys.argv),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "hardware": probe(device).to_dict(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "peak_tflops_assumed": args.peak_tflops,
        "smoke": args.smoke,
        "sections": {},
        "skipped": [],
    }
    started = time.perf_counter()
    sections = {"passes": passes_section, "full_alpaca": full_alpaca_section, "whole_run": whole_run_section}
    for name in args.sections:
        if time.perf_counter() - started > args.budget_s:
            results["skipped"].append(name)
            continue
        t0 = time.perf_counter()
        results["sections"][name] = sections[name](args, tokenizer, device, shapes)
        results["sections"][name]["section_seconds"] = round(time.perf_counter() - t0, 1)
        _write(results, args.out)  # after every section: a lease that ends early still returns what ran
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    print(f"written: {_write(results, args.out)}")


def _write(results: dict, out: str) -> Path:
    path = Path(out) / "bench_gpu.json" if Path(out).is_dir() else Path(out)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare", help="here: tokenizer, Alpaca token ids and wheels into .gpu/")
    p.add_argument("--rows", type=int, default=None, help="only the first N Alpaca rows (default: all)")
    r = sub.add_parser("run", help="there: the measurements, into --out")
    r.add_argument(
        "--out",
        default=str(REPO / "benchmarks" / "results" / "bench_gpu.json"),
        help="results file, or a folder to write bench_gpu.json into (on the device: $OUT)",
    )
    r.add_argument(
        "--sections",
        nargs="+",
        default=["passes", "full_alpaca", "whole_run"],
        choices=["passes", "full_alpaca", "whole_run"],
    )
    r.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    r.add_argument(
        "--pass-rows", type=int, default=1000, help="rows of each pass in the passes section (default 1000)"
    )
    r.add_argument("--peer-rows", type=int, default=200, help="rows of the one-row loop (default 200)")
    r.add_argument("--budgets", type=int, nargs="*", default=[16384, 65536], help="manual token budgets, no row cap")
    r.add_argument("--run-rows", type=int, default=2000, help="rows of the whole-run comparison (default 2000)")
    r.add_argument(
        "--peak-tflops",
        type=float,
        default=790.0,
        help="dense bf16 peak for share_of_peak (default 790, the H200's as measured on the device machine)",
    )
    r.add_argument(
        "--budget-s", type=float, default=420.0, help="start no new section after this many seconds (default 420)"
    )
    r.add_argument("--smoke", action="store_true", help="toy sizes on any device: checks the script, measures nothing")
    r.add_argument("--smoke-rows", type=int, default=48)
    args = ap.parse_args()
    prepare(args) if args.step == "prepare" else run(args)


if __name__ == "__main__":
    main()
