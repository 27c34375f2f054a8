"""A whole scorer run, end to end: data → tokens → ScorerTrainer → run directory → scores.

:func:`score` is what ``lpselect score`` calls. It is idempotent: re-running the same call on the
same output directory resumes from the last completed epoch, and a finished run is not redone.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd
from accelerate import PartialState
from transformers import TrainerCallback, set_seed

from .data import canonicalize, dataset_fingerprint, hub_origin, read_source
from .errors import RunError
from .lp import learning_percentages
from .models import load_model
from .rundir import STATUSES, RunDir, write_json, write_parquet
from .templates import resolve_template, tokenize_rows
from .trainer import ScorerConfig, ScorerTrainer

ROWS_COLUMNS = ["row", "id", "status", "reason", "n_prompt_tokens", "n_response_tokens", "truncated"]
# what must match for a re-run to resume rather than refuse
_IDENTITY_KEYS = ("source", "split", "subset", "format", "model", "revision", "template", "max_length", "epochs", "seed", "lora", "ifd")


@dataclass
class ScoreResult:
    """What a finished scorer run produced."""

    run_dir: RunDir
    rows: datasets.Dataset
    scores: pd.DataFrame
    counts: dict[str, int]
    info: dict[str, Any]


def build_scores(rows: pd.DataFrame, passes: list[pd.DataFrame], alone: pd.DataFrame | None = None) -> pd.DataFrame:
    """Join the rows table and the pass tables into ``scores.parquet``: one row per INPUT row.

    Columns: row, id, status, reason, n_response_tokens, nll_K and ppl_K for every pass, lp_K for
    K = 1..n, lp1, lp_app, the out-of-range flags and lp_reason. With the ``alone`` pass (the
    responses scored without their prompts, before training): nll_alone, ppl_alone and both IFD
    variants, ``ifd_nll = nll_0 / nll_alone`` and ``ifd_ppl = ppl_0 / ppl_alone``.
    Rows that were not scored keep NaN.
    """
    out = rows[["row", "id", "status", "reason", "n_response_tokens"]].copy()
    named = [(f"nll_{k}", frame) for k, frame in enumerate(passes)] + ([("nll_alone", alone)] if alone is not None else [])
    for column, frame in named:
        out[column] = out["row"].map(frame.set_index("row")["nll"]).astype("float64")
    for column, _ in named:
        out["ppl" + column[3:]] = np.exp(out[column])
    if alone is not None:
        out["ifd_nll"] = out["nll_0"] / out["nll_alone"]
        out["ifd_ppl"] = out["ppl_0"] / out["ppl_alone"]
    if len(passes) > 1:
        lp = learning_percentages(out[[f"ppl_{k}" for k in range(len(passes))]].to_numpy())
        lp.index = out.index
        out = pd.concat([out, lp], axis=1)
    return out


# recipe fields recorded in run.json and checked on resume: mixing them across epochs would skew LP
_RECIPE_KEYS = ("learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay", "per_device_train_batch_size",
                "gradient_accumulation_steps", "bf16", "score_precision", "score_batch_size")


def _config_identity(args: ScorerConfig, **kwargs: Any) -> dict[str, Any]:
    identity = {key: kwargs[key] for key in _IDENTITY_KEYS}
    identity["recipe"] = {key: getattr(args, key) for key in _RECIPE_KEYS}
    return identity


def _check_resumable(run_dir: RunDir, identity: dict[str, Any], fingerprint: str) -> None:
    if not run_dir.run_json.is_file():
        return
    previous = run_dir.read_json()
    mismatched = [k for k, v in identity.items() if previous.get("config", {}).get(k) != v]
    if previous.get("dataset", {}).get("fingerprint") != fingerprint:
        mismatched.append("dataset content")
    if mismatched:
        raise RunError(
            f"{run_dir.path} holds a different run ({', '.join(mismatched)} differ); "
            "pass another --out or delete that directory."
        )


def score(
    source: str,
    *,
    out: str | Path,
    model: str = "default",
    epochs: int = 3,
    template: str = "auto",
    max_length: int = 512,
    seed: int = 42,
    split: str = "train",
    subset: str | None = None,
    format: str = "auto",
    revision: str | None = None,
    trust_remote_code: bool = False,
    lora: bool = False,
    lora_r: int = 16,
    ifd: bool = False,
    keep_checkpoints: bool = False,
    limit: int | None = None,
    rows: datasets.Dataset | None = None,
    callbacks: list[TrainerCallback] | None = None,
    **config_overrides: Any,
) -> ScoreResult:
    """Run (or resume) a scorer run on ``source`` and write the run directory ``out``.

    ``config_overrides`` are any :class:`ScorerConfig` / ``SFTConfig`` fields (e.g.
    ``learning_rate``, ``per_device_train_batch_size``, ``bf16``). ``rows`` may pass already
    canonical rows (see :func:`hf_lpselect.data.load_rows`) instead of reading ``source``;
    ``limit`` keeps the first N input rows (for quick trials). ``ifd`` adds a pass over the
    responses without their prompts, before training, for the IFD baselines (METHOD.md §3).
    """
    if epochs < 0:
        raise RunError(f"--epochs must be 0 or more, got {epochs}.")
    run_dir = RunDir(out)
    # the config sets up the (possibly distributed) process state, so it comes before PartialState()
    args = ScorerConfig(
        output_dir=str(run_dir.checkpoints),
        num_train_epochs=epochs,
        max_length=max_length,
        seed=seed,
        data_seed=seed,
        save_total_limit=None if keep_checkpoints else 1,
        **config_overrides,
    )
    state = PartialState()
    started = time.time()
    set_seed(seed)
    origin: dict[str, str] = {}
    if rows is None:
        raw = read_source(source, split=split, subset=subset)
        origin = hub_origin(raw)
        rows = canonicalize(raw, format=format)
    if limit is not None:
        rows = rows.select(range(min(limit, len(rows))))
    fingerprint = dataset_fingerprint(rows["id"])
    loaded = load_model(model, revision=revision, trust_remote_code=trust_remote_code)
    template = resolve_template(template, loaded.tokenizer, rows)
    identity = _config_identity(
        args, source=source, split=split, subset=subset, format=rows[0]["format"] if len(rows) else format,
        model=model, revision=revision, template=template, max_length=max_length, epochs=epochs, seed=seed, lora=lora, ifd=ifd,
    )
    _check_resumable(run_dir, identity, fingerprint)

    tokenized = tokenize_rows(rows, loaded.tokenizer, template=template, max_length=max_length, alone=ifd)
    rows_table = tokenized.select_columns(ROWS_COLUMNS).to_pandas()
    counts = {status: int((rows_table["status"] == status).sum()) for status in STATUSES}
    counts["truncated"] = int(rows_table["truncated"].sum())
    info: dict[str, Any] = {
        "config": identity,
        "model": loaded.identity,
        "dataset": {"source": source, "split": split, "subset": subset, **origin, "n_rows": len(rows), "fingerprint": fingerprint},
        "counts": counts,
        "versions": {lib: version(lib) for lib in ("hf-lpselect", "torch", "transformers", "trl", "datasets", "accelerate", "peft")},
        "world_size": state.num_processes,
    }
    if state.is_main_process:
        run_dir.path.mkdir(parents=True, exist_ok=True)
        write_parquet(rows_table, run_dir.rows)
        write_json({**info, "complete": False}, run_dir.run_json)
    state.wait_for_everyone()

    columns = ["row", "input_ids", "labels", "length"] + (["alone_input_ids", "alone_labels", "alone_length"] if ifd else [])
    train_set = tokenized.filter(lambda s: s == "ok", input_columns="status").select_columns(columns)
    if len(train_set) == 0:
        raise RunError("No row can be scored: every row is invalid, a duplicate or excluded (see rows.parquet).")
    if lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=lora_r, lora_alpha=2 * lora_r, target_modules="all-linear", task_type="CAUSAL_LM")
    else:
        peft_config = None
    trainer = ScorerTrainer(
        model=loaded.model,
        args=args,
        train_dataset=train_set,
        processing_class=loaded.tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
        run_dir=run_dir,
    )
    if ifd:  # before any training: on resume the model is freshly loaded, so still the K = 0 weights
        trainer.run_scoring_pass(0, kind="alone")
    done = run_dir.completed_passes()
    if epochs == 0:
        trainer.run_scoring_pass(0)
    elif any(k not in done for k in range(epochs + 1)):
        checkpoints = sorted(run_dir.checkpoints.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
        trainer.train(resume_from_checkpoint=str(checkpoints[-1]) if checkpoints else None)
    missing = [k for k in range(epochs + 1) if k not in run_dir.completed_passes()]
    if missing:
        raise RunError(f"Training stopped before pass(es) {missing} were scored; re-run the same command to resume.")

    passes = [pd.read_parquet(run_dir.pass_path(k)) for k in range(epochs + 1)]
    alone = pd.read_parquet(run_dir.pass_path(0, "alone")) if ifd else None
    scores = build_scores(rows_table, passes, alone)
    info["timings"] = {"seconds_this_call": round(time.time() - started, 1)}
    info["lp1_summary"] = scores["lp1"].describe().to_dict() if "lp1" in scores else None
    if state.is_main_process:
        write_parquet(scores, run_dir.scores)
        write_json({**info, "complete": True}, run_dir.run_json)
        if not keep_checkpoints:
            shutil.rmtree(run_dir.checkpoints, ignore_errors=True)
    state.wait_for_everyone()
    return ScoreResult(run_dir=run_dir, rows=rows, scores=scores, counts=counts, info=info)
