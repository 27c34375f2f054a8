"""A whole scorer run, end to end: data → tokens → ScorerTrainer → run directory → scores.

:func:`score` is what ``lpselect score`` calls. It is idempotent: re-running the same call on the
same output directory resumes from the last complete epoch checkpoint, a finished run is not redone,
and a run with another identity (data, model weights, template, recipe, LoRA …) is refused.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import datasets
import pandas as pd
from accelerate import PartialState
from transformers import TrainerCallback, set_seed
from trl.trainer.utils import get_peft_config, get_quantization_config

from ..core.hardware import probe
from ..core.io import atomic_write, write_parquet
from ..errors import RunError
from ..ingest import canonicalize, dataset_fingerprint, hub_origin, map_columns, parse_column_map, read_source
from ..models import load_model
from ..record import DatasetRecord, RunRecord, identity_differences
from ..rundir import RunDir, check_run_dir, run_lock
from ..templates import resolve_template, tokenize_rows
from .arguments import ScoreArguments, ScorerModelConfig, build_score_args, run_identity
from .outputs import ROWS_COLUMNS, ScoreResult, build_scores, library_versions, status_counts
from .trainer import ScorerConfig, ScorerTrainer, scores_in_bf16


def _stem(spec: str) -> str:
    return Path(str(spec).rstrip("/")).stem.replace("/", "-") or "data"


def _check_resumable(run_dir: RunDir, identity: dict[str, Any], fingerprint: str) -> None:
    if not run_dir.run_json.is_file():
        return
    previous = RunRecord.load(run_dir.path)
    mismatched = identity_differences(previous, identity, fingerprint)
    if mismatched == ["bf16"]:
        was, now = ("bf16", "float32") if previous.identity.get("bf16") else ("float32", "bf16")
        raise RunError(
            f"{run_dir.path} was scored in {was} and this run would be {now} (precision moves the scores); "
            f"pass --bf16 {str(bool(previous.identity.get('bf16'))).lower()} to resume it, or another --output_dir."
        )
    if mismatched:
        raise RunError(
            f"{run_dir.path} holds a different run ({', '.join(mismatched)} differ); "
            "pass another --output_dir or delete that directory."
        )


def _read_rows(
    dataset: str | datasets.Dataset, script: ScoreArguments
) -> tuple[datasets.Dataset, datasets.Dataset, dict[str, str]]:
    """(raw, canonical rows, Hub origin) of the source, limited to ``script.limit`` rows; the canonical rows are
    read through ``--columns``."""
    if isinstance(dataset, datasets.Dataset):
        raw, origin = dataset, {}
    elif isinstance(dataset, str):
        raw = read_source(dataset, split=script.dataset_train_split, subset=script.dataset_config)
        origin = hub_origin(raw)
        if Path(
            dataset
        ).exists():  # a local file or folder: recorded by its absolute path, so select works from anywhere
            origin["path"] = str(Path(dataset).resolve())
    else:
        raise RunError(
            f"Cannot score a {type(dataset).__name__}: give a file, a folder, a Hub id or a datasets.Dataset."
        )
    if script.limit is not None:
        raw = raw.select(range(min(script.limit, len(raw))))
    # the source keeps its own column names (stored and selected as they are); its rows are read through the mapping
    return raw, canonicalize(map_columns(raw, parse_column_map(script.columns)), format=script.format), origin


def _remove_checkpoints(run_dir: RunDir) -> None:
    """Remove the epoch checkpoints of a completed run: ``checkpoint-N`` folders and the model card
    TRL writes beside them, then the ``checkpoints`` folder itself if nothing else is in it."""
    for folder in run_dir.checkpoint_dirs(complete=False):
        shutil.rmtree(folder, ignore_errors=True)
    (run_dir.checkpoints / "README.md").unlink(missing_ok=True)
    if run_dir.checkpoints.is_dir() and not any(run_dir.checkpoints.iterdir()):
        run_dir.checkpoints.rmdir()


def score(
    dataset: str | os.PathLike | datasets.Dataset | None = None,
    *,
    script_args: ScoreArguments | None = None,
    args: ScorerConfig | None = None,
    model_args: ScorerModelConfig | None = None,
    callbacks: list[TrainerCallback] | None = None,
    **kwargs: Any,
) -> ScoreResult:
    """Run (or resume) a scorer run and write its run directory.

    Either pass the three parsed dataclasses (what ``lpselect score`` does), or keyword arguments
    with the same field names (aliases ``out``, ``model``, ``epochs``, ``lora``, ``split``,
    ``subset``, ``revision`` work too).

    Args:
        dataset (`str`, `os.PathLike` or `datasets.Dataset`, *optional*):
            A Hub id, a local file or folder, or an in-memory ``Dataset`` in any supported format (its
            rows are then stored in the run directory, so the run can be selected and pushed later).
            Defaults to ``script_args.dataset_name``.
        script_args (`ScoreArguments`, *optional*): the data, template, limit and IFD choices.
        args (`ScorerConfig`, *optional*): the training recipe and the run directory (``output_dir``).
        model_args (`ScorerModelConfig`, *optional*): the scorer model and LoRA / 4-bit options.
        callbacks (`list[TrainerCallback]`, *optional*): extra callbacks for the trainer.
        **kwargs: any field of the three dataclasses, when they are not given.

    Returns:
        `ScoreResult`: the run directory, rows, scores table and run record.

    Raises:
        [`~hf_lpselect.errors.DataError`]: the data cannot be read, or holds no row in a format it knows.
        [`~hf_lpselect.errors.ConfigError`]: an argument that cannot work (a zero batch size …).
        [`~hf_lpselect.errors.ModelError`]: a model spec that cannot be resolved.
        [`~hf_lpselect.errors.TemplateError`]: a template that cannot be applied to this tokenizer or data.
        [`~hf_lpselect.errors.RunError`]: ``out`` holds a run of another identity, or one being written by another
            process.

    Example:

    ```python
    >>> from hf_lpselect import score
    >>> result = score("data.jsonl", out="runs/mine", model="default", epochs=3)
    >>> result.scores.sort_values("lp1").head()  # the hardest rows
    ```
    """
    if kwargs or script_args is None or args is None or model_args is None:
        if script_args is not None or args is not None or model_args is not None:
            raise RunError("Pass either the three argument dataclasses or keyword arguments, not both.")
        script_args, args, model_args = build_score_args(**kwargs)
    source = dataset if dataset is not None else script_args.dataset_name
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if source is None:
        raise RunError("No dataset given: pass a file, folder or Hub id (or --dataset_name).")
    source_name = source if isinstance(source, str) else "source.parquet"
    out = (
        str(args.output_dir)
        .replace("{dataset}", _stem(source_name))
        .replace("{model}", _stem(model_args.model_name_or_path))
    )
    run_dir = RunDir(out)
    check_run_dir(run_dir.path)
    state = PartialState()
    with ExitStack() as stack:
        if state.is_main_process:
            stack.enter_context(run_lock(run_dir.path))
            run_dir.remove_stale_temporaries()
        return _score(source, run_dir, script_args, args, model_args, callbacks, state)


def _score(
    source: str | datasets.Dataset,
    run_dir: RunDir,
    script: ScoreArguments,
    args: ScorerConfig,
    model_args: ScorerModelConfig,
    callbacks: list[TrainerCallback] | None,
    state: PartialState,
) -> ScoreResult:
    started = time.time()
    epochs = int(args.num_train_epochs)
    set_seed(args.seed)
    raw, rows, origin = _read_rows(source, script)
    fingerprint = dataset_fingerprint(rows["id"])
    quantization = get_quantization_config(model_args)
    loaded = load_model(
        model_args.model_name_or_path,
        revision=model_args.model_revision,
        trust_remote_code=args.trust_remote_code,
        dtype=model_args.dtype or "float32",
        **({"attn_implementation": model_args.attn_implementation} if model_args.attn_implementation else {}),
        **({"quantization_config": quantization} if quantization is not None else {}),
    )
    template = resolve_template(args.template, loaded.tokenizer, rows)
    max_length = args.max_length or loaded.tokenizer.model_max_length
    identity = {
        **run_identity(script, args, model_args),
        "world_size": state.num_processes,
        "resolved": {"template": template, "max_length": max_length},
        "model_identity": {k: loaded.identity.get(k) for k in ("weights_sha256", "revision", "architecture")},
    }
    _check_resumable(run_dir, identity, fingerprint)
    previous = RunRecord.load(run_dir.path) if run_dir.run_json.is_file() else None
    already_complete = previous is not None and previous.complete and run_dir.scores.is_file()

    tokenized = tokenize_rows(rows, loaded.tokenizer, template=template, max_length=max_length, alone=script.ifd)
    rows_table = tokenized.select_columns(ROWS_COLUMNS).to_pandas()
    counts = status_counts(rows_table)
    stored = not isinstance(source, str)
    record = RunRecord(
        identity=identity,
        dataset=DatasetRecord(
            source=run_dir.source.name if stored else origin.get("path", source),
            split=script.dataset_train_split,
            config=origin.get("config", script.dataset_config),
            revision=origin.get("revision"),
            n_rows=len(rows),
            fingerprint=fingerprint,
            stored=stored,
            columns=parse_column_map(script.columns),
        ),
        format=rows[0]["format"] if len(rows) else script.format,
        template=template,
        epochs=epochs,
        model=loaded.identity,
        counts=counts,
        versions=library_versions(),
        world_size=state.num_processes,
        # a finished run read back keeps the device it ran on
        hardware=previous.hardware
        if already_complete
        else {
            **probe("cpu" if args.use_cpu else None).to_dict(),
            "precision": {
                "training": "bf16" if args.bf16 else "fp32",
                "scoring": "bf16" if scores_in_bf16(args.score_precision, args.bf16) else "fp32",
            },
        },
    )
    if state.is_main_process:
        run_dir.path.mkdir(parents=True, exist_ok=True)
        if stored and not run_dir.source.is_file():  # through Arrow, so every value and type reads back as it was
            atomic_write(run_dir.source, lambda tmp: raw.to_parquet(str(tmp)))
        write_parquet(rows_table, run_dir.rows)
        record.save(run_dir.path)
    state.wait_for_everyone()

    columns = ["row", "input_ids", "labels", "length"] + (
        ["alone_input_ids", "alone_labels", "alone_length"] if script.ifd else []
    )
    train_set = tokenized.filter(lambda s: s == "ok", input_columns="status").select_columns(columns)
    if len(train_set) == 0:
        raise RunError("No row can be scored: every row is invalid, a duplicate or excluded (see rows.parquet).")
    peft_config = get_peft_config(model_args)
    if peft_config is not None and peft_config.target_modules in (["all-linear"], {"all-linear"}):
        peft_config.target_modules = "all-linear"
    trainer_args = copy.copy(args)  # the trainer's output_dir is the run's checkpoints folder
    trainer_args.output_dir = str(run_dir.checkpoints)
    if args.save_total_limit is None and not script.keep_checkpoints:
        trainer_args.save_total_limit = 1  # the last complete epoch is all a resume needs
    trainer = ScorerTrainer(
        model=loaded.model,
        args=trainer_args,
        train_dataset=train_set,
        processing_class=loaded.tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
        run_dir=run_dir,
    )
    if script.ifd:  # before any training: on resume the model is freshly loaded, so still the K = 0 weights
        trainer.run_scoring_pass(0, kind="alone")
    if epochs == 0:
        trainer.run_scoring_pass(0)
    elif any(k not in run_dir.completed_passes() for k in range(epochs + 1)):
        complete = run_dir.checkpoint_dirs()
        trainer.train(resume_from_checkpoint=str(complete[-1]) if complete else None)
    if trainer.diverged is not None:
        record.diverged = trainer.diverged
        if state.is_main_process:
            record.save(run_dir.path)
        where = trainer.diverged
        raise RunError(
            f"Training diverged in epoch {where['epoch']} (step {where['step']}: {where['what']}), so no LP scores were "
            f"written; lower --learning_rate (now {args.learning_rate:g}) and score into a new --output_dir."
        )
    missing = [k for k in range(epochs + 1) if k not in run_dir.completed_passes()]
    if missing:
        raise RunError(f"Training stopped before pass(es) {missing} were scored; re-run the same command to resume.")

    passes = [pd.read_parquet(run_dir.pass_path(k)) for k in range(epochs + 1)]
    alone = pd.read_parquet(run_dir.pass_path(0, "alone")) if script.ifd else None
    scores = build_scores(rows_table, passes, alone)
    record.timings = {"seconds_this_call": round(time.time() - started, 1)}
    record.lp1_summary = scores["lp1"].describe().to_dict() if "lp1" in scores else None
    record.complete = True
    if state.is_main_process:
        write_parquet(scores, run_dir.scores)
        record.save(run_dir.path)
        if not script.keep_checkpoints:
            _remove_checkpoints(run_dir)
    state.wait_for_everyone()
    return ScoreResult(run_dir=run_dir, rows=rows, scores=scores, record=record, already_complete=already_complete)
