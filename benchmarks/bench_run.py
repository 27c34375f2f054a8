"""Benchmark: a whole scorer run (hf_lpselect.scoring.scorer_run.score) vs a plain TRL SFTTrainer run of the same recipe.

    python benchmarks/bench_run.py [--rows 100] [--epochs 3] [--speed-rows 64] [--speed-epochs 1]
                                   [--threads 2] [--skip-main] [--skip-speed] [--padding-free] [--retries 0]
                                   [--max-other-share 0.1] [--name bench_run]

Default size: 100 rows x 3 epochs (~18 min on 2 CPU cores). Training runs at only ~80 tokens/s
here, so the 200-row default of the brief (``--rows 200``) takes ~30 min.

Data: the first ``--rows`` ``ok`` rows of /work/shared/data/train/alpaca/alpaca_data.json, the
``alpaca`` template, max_length 512, the default model (SmolLM2-135M-Instruct, fp32 weights).

Runs, each in its OWN subprocess (fresh model, separate peak-memory accounting):

1. ``plain``  — ``trl.SFTTrainer`` on the same tokenised rows (``input_ids``/``labels``, dataset_kwargs
   skip_prepare_dataset) with an ``SFTConfig`` whose every field is copied from the scorer's
   ``ScorerConfig`` (recipe defaults + per_device_train_batch_size 4 / grad accum 8), except
   ``save_strategy="no"`` (no checkpoints) — so no scoring passes and no checkpoints;
2. ``scorer`` — ``hf_lpselect.scoring.scorer_run.score(rows, ...)`` exactly as the CLI would run it
   (n + 1 scoring passes, a checkpoint at every epoch end, run directory written). The worker
   wraps ``ScorerTrainer.train``, ``LearningPercentageCallback.run_pass`` and
   ``Trainer._save_checkpoint`` with timers (instrumentation only, behaviour unchanged) so the
   time of the passes and of checkpoint saving can be separated from training;
   With ``--padding-free``, a third run ``scorer_padding_free`` is the same scorer run with
   ``padding_free=True`` (each micro-batch's rows packed into one sequence, no padding);
3. ``speed_bf16`` / ``speed_fp32`` — the plain SFTTrainer for ``--speed-epochs`` on the first
   ``--speed-rows`` rows, with ``bf16=True`` vs ``bf16=False`` (everything else identical): does
   bf16 autocast help TRAINING speed on this CPU?

Ideal scorer/plain ratio for n epochs (a scoring pass ~ 1/3 of a training epoch: forward only,
vs forward + backward ~ 3 forwards): (n + (n + 1) / 3) / n  = 1.44 for n = 3.

Writes benchmarks/results/<name>.json and prints a short table. No asserts: this is a benchmark.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as C  # noqa: E402


MAX_LENGTH = 512
RECIPE_OVERRIDES = {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 8}
# fields that legitimately differ between the scorer's config and the plain run's
_EXPECTED_DIFF = {"output_dir", "save_strategy", "save_total_limit", "logging_dir", "run_name"}


# ============================================================================ worker


class Timer:
    """Accumulates wall time of every call of a wrapped method."""

    def __init__(self):
        self.calls: list[float] = []

    def wrap(self, owner, name):
        original = getattr(owner, name)
        timer = self

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timer.calls.append(round(time.perf_counter() - t0, 3))

        setattr(owner, name, timed)
        return original

    @property
    def total(self) -> float:
        return round(sum(self.calls), 3)


class TokenCounter:
    """Counts, over every training batch a collator builds: tokens computed (padding included), real
    tokens, and labeled positions (those the compact LM head projects)."""

    def __init__(self):
        self.computed = self.real = self.labeled = 0

    def wrap(self, owner) -> None:
        original = owner.torch_call
        counter = self

        def counted(collator, examples):
            batch = original(collator, examples)
            ids, mask = batch["input_ids"], batch.get("attention_mask")
            counter.computed += ids.numel()
            counter.real += int(mask.sum()) if mask is not None else ids.numel()
            counter.labeled += int((batch["labels"][:, 1:] != -100).sum())
            return batch

        owner.torch_call = counted

    def as_dict(self) -> dict[str, float]:
        return {
            "train_tokens_computed": self.computed,
            "train_tokens_real": self.real,
            "train_padded_share": round(1 - self.real / self.computed, 4) if self.computed else None,
            "train_labeled_share_of_computed": round(self.labeled / self.computed, 4) if self.computed else None,
        }


def scorer_config(output_dir: str, epochs: int, bf16: bool | None, seed: int = 42):
    """The ScorerConfig that hf_lpselect.scoring.scorer_run.score builds for these settings."""
    from hf_lpselect.scoring.trainer import ScorerConfig

    extra = {} if bf16 is None else {"bf16": bf16}
    return ScorerConfig(
        output_dir=output_dir,
        num_train_epochs=epochs,
        max_length=MAX_LENGTH,
        seed=seed,
        data_seed=seed,
        save_total_limit=1,
        **RECIPE_OVERRIDES,
        **extra,
    )


def plain_config(output_dir: str, epochs: int, bf16: bool | None):
    """An SFTConfig with every field copied from the scorer's config, except: no checkpoints."""
    from trl import SFTConfig

    sc = scorer_config(output_dir, epochs, bf16)
    values = {f.name: getattr(sc, f.name) for f in dataclasses.fields(SFTConfig) if f.init and f.name != "output_dir"}
    values.update(output_dir=output_dir, save_strategy="no", save_total_limit=None)
    if hasattr(values.get("lr_scheduler_type"), "value"):
        values["lr_scheduler_type"] = values["lr_scheduler_type"].value
    cfg = SFTConfig(**values)
    a, b = sc.to_dict(), cfg.to_dict()
    diff = {
        k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k) and not k.startswith("score_")
    }
    return cfg, sc, diff


def worker(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    import torch

    torch.set_num_threads(spec["threads"])
    import datasets
    import numpy as np
    import transformers
    from trl import SFTTrainer

    from hf_lpselect.models import load_model
    from hf_lpselect.templates import tokenize_rows

    rows = datasets.load_from_disk(spec["rows_dir"])
    if spec.get("n_rows"):
        rows = rows.select(range(spec["n_rows"]))
    out_dir = Path(spec["out_dir"])
    result = {
        "name": spec["name"],
        "kind": spec["kind"],
        "epochs": spec["epochs"],
        "n_rows": len(rows),
        "torch_threads": torch.get_num_threads(),
    }
    train_timer, pass_timer, save_timer = Timer(), Timer(), Timer()
    tokens = TokenCounter()

    if spec["kind"] == "scorer":
        from hf_lpselect.scoring.scorer_run import score
        from hf_lpselect.scoring.trainer import LearningPercentageCallback, RowCollator, ScorerTrainer

        tokens.wrap(RowCollator)
        train_timer.wrap(ScorerTrainer, "train")
        pass_timer.wrap(LearningPercentageCallback, "run_pass")
        save_timer.wrap(transformers.Trainer, "_save_checkpoint")
        overrides = {**RECIPE_OVERRIDES, **spec.get("overrides", {})}
        if spec["bf16"] is not None:
            overrides["bf16"] = spec["bf16"]
        with C.Window() as w:
            res = score(
                rows.select_columns(["instruction", "input", "output"]),
                out=str(out_dir / "run"),
                model="default",
                epochs=spec["epochs"],
                template="alpaca",
                max_length=MAX_LENGTH,
                seed=42,
                **overrides,
            )
        sc = scorer_config(str(out_dir / "run" / "checkpoints"), spec["epochs"], spec["bf16"])
        result.update(
            scorer_bf16=sc.bf16,
            scorer_score_precision=sc.score_precision,
            score_token_budget=sc.score_token_budget,
            counts=res.counts,
            lp1_median=float(res.scores["lp1"].median()) if "lp1" in res.scores else None,
            n_scored_rows=int(res.scores["nll_0"].notna().sum()),
            run_files=sorted(str(p.relative_to(res.run_dir.path)) for p in res.run_dir.path.rglob("*") if p.is_file()),
        )
    else:
        cfg, sc, diff = plain_config(str(out_dir / "plain"), spec["epochs"], spec["bf16"])
        result["config_fields_differing_from_scorer"] = diff
        result["plain_bf16"] = cfg.bf16
        save_timer.wrap(transformers.Trainer, "_save_checkpoint")
        from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

        tokens.wrap(DataCollatorForLanguageModeling)
        with C.Window() as w:
            loaded = load_model("default")
            tok = tokenize_rows(rows, loaded.tokenizer, template="alpaca", max_length=MAX_LENGTH)
            train_set = tok.filter(lambda s: s == "ok", input_columns="status").select_columns(["input_ids", "labels"])
            lengths = np.asarray([len(x) for x in train_set["input_ids"]])
            trainer = SFTTrainer(
                model=loaded.model, args=cfg, train_dataset=train_set, processing_class=loaded.tokenizer
            )
            train_timer.wrap(SFTTrainer, "train")
            out = trainer.train()
        result["train_loss"] = round(float(out.training_loss), 4)
        result["global_steps"] = int(out.global_step)
        result["train_tokens_per_epoch"] = int(lengths.sum())
        result["train_tokens_per_s"] = round(float(lengths.sum()) * spec["epochs"] / train_timer.total, 1)

    result.update(
        **w.as_dict("end_to_end_"),
        train_wall_s=train_timer.total,
        scoring_pass_s=pass_timer.calls,
        scoring_passes_total_s=pass_timer.total,
        checkpoint_save_s=save_timer.calls,
        checkpoint_save_total_s=save_timer.total,
        # every pass runs inside train(): pass 0 at train begin, passes 1..n at epoch ends
        train_only_s=round(train_timer.total - pass_timer.total - save_timer.total, 3),
        **tokens.as_dict(),
        ru_maxrss_end_mib=C.maxrss_mib(),
        process_cpu_s_total=C.cpu_s(),
    )
    Path(spec["result_path"]).write_text(json.dumps(result, default=str))


# ============================================================================ parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--rows",
        type=int,
        default=100,
        help="first N ok Alpaca rows for the scorer-vs-plain comparison (default 100: 200 rows x 3 epochs "
        "takes ~30 min on 2 CPU cores, over the 20-minute budget)",
    )
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--speed-rows", type=int, default=64, help="rows for the bf16-vs-fp32 training-speed runs")
    ap.add_argument("--speed-epochs", type=int, default=1)
    ap.add_argument(
        "--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads (default: usable cores)"
    )
    ap.add_argument("--skip-main", action="store_true", help="skip the scorer-vs-plain comparison")
    ap.add_argument("--skip-speed", action="store_true", help="skip the bf16-vs-fp32 training-speed runs")
    ap.add_argument(
        "--padding-free",
        action="store_true",
        help="also run the scorer with --padding_free (rows of a micro-batch packed into one sequence)",
    )
    ap.add_argument(
        "--retries",
        type=int,
        default=0,
        help="re-run a run up to this many times when other processes used more than --max-other-share of "
        "the CPU during it (the quietest attempt is kept; each retry of the main runs costs ~7-10 min)",
    )
    ap.add_argument("--max-other-share", type=float, default=0.1)
    ap.add_argument("--name", default="bench_run", help="results file benchmarks/results/<name>.json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker)

    started = time.perf_counter()
    info = C.machine_info(args.threads)
    command = C.command_line()
    print(
        f"{command}\n{info['cpu_model']}, {info['usable_cpus']} usable cores, torch {info['versions']['torch']}, threads={args.threads}"
    )
    n_data = max(args.rows if not args.skip_main else 0, args.speed_rows if not args.skip_speed else 0)

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_run.") as tmp:
        tmp = Path(tmp)
        _, tok = C.tokenized_alpaca(n_data, tmp, max_length=MAX_LENGTH)
        lengths = tok["length"]
        data = {
            "source": str(C.ALPACA),
            "selection": "first N rows with status ok (hf_lpselect.ingest.load_rows)",
            "template": "alpaca",
            "max_length": MAX_LENGTH,
            "main_rows": args.rows,
            "main_input_tokens": int(sum(lengths[: args.rows])),
            "speed_rows": args.speed_rows,
            "speed_input_tokens": int(sum(lengths[: args.speed_rows])),
        }
        jobs = []
        if not args.skip_main:
            jobs += [
                ("plain", "plain", args.rows, args.epochs, None),
                ("scorer", "scorer", args.rows, args.epochs, None),
            ]
            if args.padding_free:
                jobs.append(("scorer_padding_free", "scorer", args.rows, args.epochs, None))
        if not args.skip_speed:
            jobs += [
                ("speed_bf16", "plain", args.speed_rows, args.speed_epochs, True),
                ("speed_fp32", "plain", args.speed_rows, args.speed_epochs, False),
            ]
        log = tmp / "workers.log"
        for name, kind, n, epochs, bf16 in jobs:
            spec = {
                "name": name,
                "kind": kind,
                "n_rows": n,
                "epochs": epochs,
                "bf16": bf16,
                "threads": args.threads,
                "rows_dir": str(tmp / "rows"),
                "out_dir": str(tmp / name),
                "result_path": str(tmp / f"{name}.json"),
                "overrides": {"padding_free": True} if name == "scorer_padding_free" else {},
            }
            attempts = []
            for attempt in range(1 + args.retries):
                print(
                    f"  running {name} ({kind}, {n} rows, {epochs} epoch(s), bf16={'default' if bf16 is None else bf16}), "
                    f"attempt {attempt + 1} ...",
                    flush=True,
                )
                try:
                    res = C.run_worker(Path(__file__), spec, args.threads, log=log)
                except RuntimeError as err:
                    print(f"  {name} FAILED: {err}")
                    res = {"name": name, "failed": str(err)[-3000:]}
                    break
                attempts.append(res)
                print(
                    f"    train() {res['train_wall_s']:.1f} s, other processes used {res['outside']['other_cpu_share']:.0%} of the CPU",
                    flush=True,
                )
                if res["outside"]["other_cpu_share"] <= args.max_other_share:
                    break
            if res.get("failed"):
                results[name] = res
                continue
            res = min(attempts, key=lambda r: r["outside"]["other_cpu_share"])  # the quietest attempt
            res["attempts"] = [
                {
                    "train_wall_s": a["train_wall_s"],
                    "end_to_end_wall_s": a["end_to_end_wall_s"],
                    "other_cpu_share": a["outside"]["other_cpu_share"],
                }
                for a in attempts
            ]
            results[name] = res
            print(
                f"    train() {res['train_wall_s']:.1f} s (passes {res['scoring_passes_total_s']:.1f} s, checkpoints "
                f"{res['checkpoint_save_total_s']:.1f} s), end-to-end {res['end_to_end_wall_s']:.1f} s, "
                f"ru_maxrss {res['ru_maxrss_end_mib']:.0f} MiB, other processes used {res['outside']['other_cpu_share']:.0%} of the CPU",
                flush=True,
            )

    n = args.epochs
    summary = {"ideal_ratio": round((n + (n + 1) / 3) / n, 3)}
    p, s = results.get("plain"), results.get("scorer")
    if p and s and not p.get("failed") and not s.get("failed"):
        summary.update(
            ratio_train=round(s["train_wall_s"] / p["train_wall_s"], 3),
            ratio_train_without_checkpoints=round(
                (s["train_wall_s"] - s["checkpoint_save_total_s"]) / p["train_wall_s"], 3
            ),
            ratio_end_to_end=round(s["end_to_end_wall_s"] / p["end_to_end_wall_s"], 3),
            scorer_pass_mean_s=round(s["scoring_passes_total_s"] / max(1, len(s["scoring_pass_s"])), 2),
            plain_epoch_mean_s=round(p["train_wall_s"] / n, 2),
            pass_cost_vs_plain_epoch=round(
                s["scoring_passes_total_s"] / max(1, len(s["scoring_pass_s"])) / (p["train_wall_s"] / n), 3
            ),
            scorer_train_only_tokens_per_s=round(data["main_input_tokens"] * n / s["train_only_s"], 1),
            plain_train_tokens_per_s=p["train_tokens_per_s"],
            scorer_pass_tokens_per_s=round(
                data["main_input_tokens"] * len(s["scoring_pass_s"]) / max(1e-9, s["scoring_passes_total_s"]), 1
            ),
            scorer_training_overhead_vs_plain=round(s["train_only_s"] / p["train_wall_s"], 3),
            checkpoint_share_of_scorer_train=round(s["checkpoint_save_total_s"] / s["train_wall_s"], 3),
            scorer_train_padded_share=s["train_padded_share"],
            plain_train_padded_share=p["train_padded_share"],
            train_labeled_share_of_computed=s["train_labeled_share_of_computed"],
        )
    q = results.get("scorer_padding_free")
    if p and q and not p.get("failed") and not q.get("failed"):
        summary.update(
            padding_free_ratio_train=round(q["train_wall_s"] / p["train_wall_s"], 3),
            padding_free_train_only_tokens_per_s=round(data["main_input_tokens"] * n / q["train_only_s"], 1),
            padding_free_train_padded_share=q["train_padded_share"],
            padding_free_lp1_median=q["lp1_median"],
            scorer_lp1_median=s["lp1_median"] if s and not s.get("failed") else None,
        )
    b, f = results.get("speed_bf16"), results.get("speed_fp32")
    if b and f and not b.get("failed") and not f.get("failed"):
        summary.update(
            train_speed_bf16_over_fp32=round(f["train_wall_s"] / b["train_wall_s"], 3),
            train_tokens_per_s_bf16=b["train_tokens_per_s"],
            train_tokens_per_s_fp32=f["train_tokens_per_s"],
        )
    shares = [r["outside"]["other_cpu_share"] for r in results.values() if not r.get("failed")]
    notes = [
        "train_wall_s = wall time of Trainer.train() (scorer: includes its n+1 scoring passes, checkpoint saves and the "
        "per-row loss hook; plain: pure training). end_to_end = model load + tokenise + trainer + train (+ the scorer's "
        "run-directory writing). train_only_s = train_wall_s - scoring passes - checkpoint saves.",
        "ratio_train compares train() times; ratio_train_without_checkpoints removes the scorer's checkpoint saving "
        "(the plain run saves none); ideal_ratio = (n + (n+1)/3)/n.",
        "The plain SFTConfig copies every SFTConfig field of the scorer's ScorerConfig (fields that differ are listed in "
        "variants.plain.config_fields_differing_from_scorer; expected: output_dir/save_strategy/save_total_limit).",
        "Peak memory: ru_maxrss of each worker (own subprocess; model load included) and the parent's 0.5 s psutil "
        "sampling of the worker's process tree (outside.rss_sampled_peak_mib).",
        f"other_cpu_share per run ranged {min(shares, default=0):.2f}..{max(shares, default=0):.2f}: the share of the "
        "machine's CPU used by OTHER processes during the run (shared machine). Runs measured above ~0.1 are slowed "
        "by contention (2 OpenMP threads on 2 cores suffer badly when a core is taken) and their ratios are unreliable.",
    ]
    payload = {
        "benchmark": "bench_run",
        "date": C.now(),
        "command": command,
        "machine": info,
        "data": data,
        "recipe": {
            "ScorerConfig defaults plus": RECIPE_OVERRIDES,
            "epochs": args.epochs,
            "speed_epochs": args.speed_epochs,
        },
        "model": {"spec": "default", "name": "HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1 de-quantised to fp32)"},
        "summary": summary,
        "variants": results,
        "total_script_wall_s": round(time.perf_counter() - started, 1),
        "notes": notes,
    }
    path = C.write_results(args.name, payload)

    head = [
        "run",
        "rows x ep",
        "bf16",
        "train() s",
        "passes s",
        "ckpt s",
        "train-only s",
        "end2end s",
        "ru_maxrss MiB",
        "others",
    ]
    tab = []
    for name, r in results.items():
        if r.get("failed"):
            tab.append([name, "FAILED"] + [""] * (len(head) - 2))
            continue
        tab.append(
            [
                name,
                f"{r['n_rows']}x{r['epochs']}",
                r.get("scorer_bf16", r.get("plain_bf16")),
                r["train_wall_s"],
                r["scoring_passes_total_s"],
                r["checkpoint_save_total_s"],
                r["train_only_s"],
                r["end_to_end_wall_s"],
                r["ru_maxrss_end_mib"],
                f"{r['outside']['other_cpu_share']:.2f}",
            ]
        )
    print()
    print(C.table(tab, head))
    print("\n" + "\n".join(f"{k}: {v}" for k, v in summary.items()))
    print(f"\nwrote {path} ({payload['total_script_wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
