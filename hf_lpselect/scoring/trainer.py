"""The scorer: ``ScorerConfig(SFTConfig)`` + ``ScorerTrainer(SFTTrainer)``.

A scorer run fine-tunes a small model on the WHOLE dataset and, around that training, scores every
row's response NLL before training (pass K = 0) and after each epoch (K = 1..n), in eval mode.
Two things are added to TRL's SFT loop and nothing else is changed:

- a per-sample loss hook: TRL's fused LM head already returns per-token ``log_probs`` and the
  ``label_mask`` during ``compute_loss``; a forward hook turns them into one training loss per row
  (``train_losses.parquet``: row, epoch, step, loss) at no extra forward cost;
- :class:`LearningPercentageCallback`, which runs :func:`~hf_lpselect.scoring.passes.score_pass` on the full
  dataset at train begin and at every epoch end and writes ``passes/epoch_K.parquet``. It works
  in any ``Trainer`` / ``SFTTrainer`` script too.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, fields
from typing import Any

import datasets
import numpy as np
import pandas as pd
import torch
from accelerate import PartialState
from accelerate.utils import gather_object
from transformers import AutoTokenizer, TrainerCallback
from transformers.utils import logging
from trl import SFTConfig, SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from ..compat.transformers import SignatureColumns
from ..core.hardware import has_accelerator, resolve_bf16
from ..core.io import write_parquet
from ..errors import ConfigError, RunError
from ..heads import CompactHeadMixin
from ..ingest import canonicalize
from ..models import model_name, unwrap_peft
from ..padding_free import PaddingFreeMixin
from ..rundir import RunDir, SafeCheckpointMixin
from ..templates import TEMPLATES, TRL_TEMPLATE, resolve_template, tokenize_rows
from .outputs import ScoreResult, scores_from_passes, start_callback_run
from .passes import score_pass


TRAIN_LOSS_COLUMNS = ["row", "epoch", "step", "loss"]
logger = logging.get_logger(__name__)


# SFTConfig fields whose value the scorer's method fixes: the values it accepts, and why
_FIXED_FIELDS = {
    "completion_only_loss": (
        (None, True),
        "learning percentage is the perplexity of the response alone, so the prompt is never scored",
    ),
    "packing": (
        (False,),
        "each row needs its own loss and passes; --padding_free removes padding without mixing rows",
    ),
    "truncation_mode": (
        ("keep_start",),
        "rows are cut at their end, as the paper's were (a row whose response is cut away is excluded)",
    ),
}


@dataclass
class ScorerConfig(SFTConfig):
    """``SFTConfig`` with the paper's scorer recipe as defaults (docs/method.md) and the scoring-pass knobs.

    Every ``SFTConfig`` / ``TrainingArguments`` field works in TRL's spelling (``--learning_rate``,
    ``--report_to`` …). Defaults that differ from TRL's: ``learning_rate`` 2e-5, ``lr_scheduler_type``
    cosine, ``warmup_steps`` 0.03 (a ratio), ``num_train_epochs`` 3, ``per_device_train_batch_size`` 4,
    ``gradient_accumulation_steps`` 8 (32 rows per device and optimizer step), ``max_length`` 512,
    ``save_strategy`` epoch (resumable; checkpoints are removed when the run completes),
    ``activation_checkpointing`` (``gradient_checkpointing``) off, ``logging_steps`` 10, ``report_to`` none, and ``output_dir``
    ``runs/{dataset}-{model}`` (the run directory; ``{dataset}`` and ``{model}`` are filled in).
    bf16 autocast runs over float32 weights (pure bf16 AdamW barely moves the weights), and only where the
    device computes bf16 natively unless ``--bf16 true`` asks for it.

    Args:
        template (`str`, *optional*, defaults to `"auto"`):
            Prompt template: ``alpaca`` (the paper's), ``chat`` (the tokenizer's chat template), ``plain``,
            or ``auto`` (chat for conversations when the tokenizer has a template, else alpaca).
        score_token_budget (`int` or `None`, *optional*, defaults to `None`):
            Most tokens per scoring batch: rows x the longest row's length (padding included) stays
            within it, which bounds a pass's memory; a longer row is scored alone. ``None``: 2,048 on a
            CPU; on an accelerator sized to its free memory, up to 65,536
            (:func:`~hf_lpselect.scoring.passes.device_batching`).
        score_batch_size (`int` or `None`, *optional*, defaults to `None`):
            Also at most this many rows per scoring batch. ``None``: 8 on a CPU (faster there than larger
            batches of short rows), no cap on an accelerator; ``0``: no cap.
        bf16 (`bool` or `None`, *optional*, defaults to `None`):
            bf16 autocast over float32 weights. ``None``: on where the device computes bf16 natively (a
            CPU with AMX or AVX-512 BF16, a GPU of compute capability 8.0 or more), float32 elsewhere,
            announced in one line (:mod:`hf_lpselect.core.hardware`). Part of the run identity.
        score_precision (`str`, *optional*, defaults to `"auto"`):
            Scoring-pass autocast: ``"bf16"``, ``"fp32"`` or ``"auto"`` (bf16 when training in bf16).
        padding_free (`bool`, *optional*, defaults to `False`):
            TRL's flag, made to work with our pre-truncated rows: a micro-batch's rows are packed into one
            sequence, so no position is padding. The model is probed first (two rows packed in both orders) and
            a model whose attention would mix packed rows is refused (:mod:`hf_lpselect.padding_free`). Part of
            the run identity: under bf16 the layout moves LP(1) a little.

    Passes are scored at epoch ends, so ``max_steps`` and a fractional ``num_train_epochs`` are refused. Fields the
    method fixes are refused with the reason when given another value: ``completion_only_loss`` (only the
    response is scored), ``packing`` (rows stay apart; ``padding_free`` removes the padding instead) and
    ``truncation_mode`` (rows are cut at their end).

    Example:

    ```python
    >>> from hf_lpselect import ScorerConfig
    >>> args = ScorerConfig(output_dir="runs/mine", num_train_epochs=2, learning_rate=1e-4)
    ```
    """

    output_dir: str | None = field(
        default="runs/{dataset}-{model}",
        metadata={
            "help": "Run directory ({dataset} and {model} are filled in); re-running the same command there resumes.",
        },
    )
    learning_rate: float = field(default=2e-5, metadata={"help": "Peak learning rate (cosine schedule, 3 %% warmup)."})
    lr_scheduler_type: str = "cosine"
    warmup_steps: float = 0.03
    weight_decay: float = 0.0
    num_train_epochs: float = field(
        default=3,
        metadata={
            "help": "Training epochs n; passes are scored before training and "
            "after each epoch. 0 = one pass, no training.",
        },
    )
    per_device_train_batch_size: int = field(default=4, metadata={"help": "Rows per device per step."})
    gradient_accumulation_steps: int = field(
        default=8,
        metadata={
            "help": "Gradient accumulation steps (effective batch = batch size x accumulation x processes).",
        },
    )
    max_length: int | None = field(
        default=512,
        metadata={
            "help": "Tokens per row (right truncation); a row whose response is truncated "
            "away is excluded, never scored."
        },
    )
    seed: int = 42
    max_steps: int = field(default=-1, metadata={"help": argparse.SUPPRESS})  # refused: passes belong to epoch ends
    save_strategy: str = "epoch"
    # transformers 5 renamed gradient_checkpointing to activation_checkpointing; setting the new name
    # (and leaving the old one unset) keeps TRL's deprecated default from printing a FutureWarning
    activation_checkpointing: bool | None = False
    gradient_checkpointing: bool | None = None
    report_to: None | str | list[str] = field(
        default="none", metadata={"help": "Trackers to log to (wandb, trackio, tensorboard …, 'all' or 'none')."}
    )
    logging_steps: float = 10
    dataset_kwargs: dict[str, Any] | str | None = field(default_factory=lambda: {"skip_prepare_dataset": True})
    padding_free: bool = field(
        default=False,
        metadata={
            "help": "Lay each training micro-batch out as its rows packed into one sequence (position ids restart "
            "at each row) instead of padding them: the same loss, fewer positions computed. Checked on the model "
            "first and refused where its attention would mix the packed rows (e.g. OPT)."
        },
    )
    template: str = field(
        default="auto",
        metadata={
            "help": "Prompt template: alpaca (the paper's prompt), chat (the tokenizer's chat template), plain, "
            "or auto (chat for conversations when the tokenizer has a template, else alpaca)."
        },
    )
    score_token_budget: int | None = field(
        default=None,
        metadata={
            "help": "Most tokens per scoring batch (rows x the longest row, padding included): bounds a pass's "
            "memory; a longer row is scored alone. Default: 2048 on a CPU; on a GPU sized to its free memory "
            "(up to 65536)."
        },
    )
    score_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "Also at most this many rows per scoring batch. Default: 8 on a CPU, no cap "
            "on a GPU; 0: no cap (--score_token_budget alone decides)."
        },
    )
    bf16: bool | None = field(
        default=None,
        metadata={
            "help": "bf16 autocast over float32 weights. Default: on where the device computes bf16 natively (a CPU "
            "with AMX or AVX-512 BF16, a GPU of compute capability 8.0 or more), float32 elsewhere, where bf16 "
            "is emulated and many times slower."
        },
    )
    score_precision: str = field(
        default="auto",
        metadata={"help": "Scoring-pass autocast: 'bf16', 'fp32', or 'auto' (bf16 when training in bf16)."},
    )

    def __post_init__(self):
        if self.template not in TEMPLATES:
            raise ConfigError(f"--template must be one of {', '.join(TEMPLATES)}, got {self.template!r}.")
        if self.score_precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"--score_precision must be auto, bf16 or fp32, got {self.score_precision!r}.")
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "score_token_budget"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be 1 or more, got {getattr(self, name)}.")
        if self.score_batch_size is not None and self.score_batch_size < 0:
            raise ConfigError(f"--score_batch_size must be 0 (no cap) or more, got {self.score_batch_size}.")
        epochs = self.num_train_epochs
        if epochs < 0 or epochs != int(epochs):
            raise ConfigError(
                f"--num_train_epochs must be a whole number, 0 or more (passes are scored at epoch ends), got {epochs}."
            )
        for name, (allowed, why) in _FIXED_FIELDS.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"--{name} {getattr(self, name)} cannot be used for a scorer run: {why}.")
        if self.max_steps not in (-1, None):
            raise ConfigError(
                "--max_steps is not supported: passes are scored at epoch ends; set --num_train_epochs instead."
            )
        if self.max_length is not None and self.max_length < 2:
            raise ConfigError(f"--max_length must be 2 or more, got {self.max_length}.")
        if not has_accelerator():
            self.use_cpu = True  # CPU only: say so, for bf16 autocast on CPU and for gloo under accelerate launch
        self.bf16 = resolve_bf16(self.bf16, device="cpu" if self.use_cpu else None, fp16=self.fp16)
        super().__post_init__()


SCORING_COLUMNS = ["row", "input_ids", "labels", "length"]
# a column that numbers the raw rows when the trainer may leave some out; matches core.schema.OUR_COLUMNS,
# so it is not part of a row's content
ROW_NUMBER = "lpselect_row"
# columns TRL adds when it packs several rows into one sequence: such rows cannot be scored one by one
_PACKED_COLUMNS = ("seq_lengths", "position_ids")


def scoring_rows(dataset: datasets.Dataset) -> datasets.Dataset:
    """The rows a scoring pass takes (``row``, ``input_ids``, ``labels``, ``length``), from a trainer's dataset.

    Rows from :func:`~hf_lpselect.templates.tokenize_rows` are taken as they are. A dataset TRL prepared
    (``input_ids`` and ``labels``, the prompt masked with -100) gets ``length`` from its ids and ``row``
    from an ``lpselect_row`` column when it has one, else from its position. Anything else is refused in
    one sentence saying what is needed: untokenised rows, packed rows, and labels with no masked
    token (the loss on every token, e.g. ``completion_only_loss=False``: there is no response to score).

    Args:
        dataset (`datasets.Dataset`): the trainer's ``train_dataset`` (or ours).

    Example:

    ```python
    >>> trainer = SFTTrainer(model, args=SFTConfig("out"), train_dataset=prompt_completion_rows)
    >>> scoring_rows(trainer.train_dataset).column_names
    ['row', 'input_ids', 'labels', 'length']
    ```
    """
    columns = set(getattr(dataset, "column_names", None) or ())
    if set(SCORING_COLUMNS) <= columns:
        return dataset
    if not {"input_ids", "labels"} <= columns:
        raise ConfigError(
            "LearningPercentageCallback needs tokenised rows with labels: the trainer's own train_dataset after TRL "
            f"prepared it, or rows from hf_lpselect.tokenize_rows; this dataset has columns {sorted(columns)}."
        )
    if columns & set(_PACKED_COLUMNS):
        raise ConfigError(
            "LearningPercentageCallback cannot score packed rows (TRL's packing joins rows into one "
            "sequence); train with packing=False."
        )
    sample = dataset.select(range(min(len(dataset), 256)))["labels"]
    if sample and not any(-100 in labels for labels in sample):
        raise ConfigError(
            "The trainer's labels mask no token, so there is no response to score (plain-text rows, or "
            "completion_only_loss=False): give prompt/completion rows with completion_only_loss left on, or "
            "conversations with assistant_only_loss=True."
        )

    def derive(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        return {
            "row": batch[ROW_NUMBER] if ROW_NUMBER in batch else indices,
            "input_ids": batch["input_ids"],
            "labels": batch["labels"],
            "length": [len(ids) for ids in batch["input_ids"]],
        }

    return dataset.map(
        derive,
        batched=True,
        with_indices=True,
        remove_columns=dataset.column_names,
        desc="Rows for the scoring passes",
    )


def _tokenizer_of(model) -> Any:
    """The tokenizer of a model given by name or as a loaded model (what SFTTrainer does when none is passed)."""
    return AutoTokenizer.from_pretrained(model if isinstance(model, str) else model.config.name_or_path)


def scores_in_bf16(precision: str, training_bf16: bool | None) -> bool:
    """Whether scoring passes autocast to bf16: ``precision`` is ``"bf16"``, or ``"auto"`` while training is in bf16."""
    return precision == "bf16" or (precision == "auto" and bool(training_bf16))


@dataclass
class RowCollator(DataCollatorForLanguageModeling):
    """TRL's collator, plus the ``row`` index of every example so losses can be attributed."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super().torch_call(examples)
        batch["row"] = torch.tensor([ex["row"] for ex in examples], dtype=torch.long)
        return batch


class LearningPercentageCallback(TrainerCallback):
    """Score the full dataset before training and after every whole epoch, inside any ``Trainer``.

    Writes ``passes/epoch_K.parquet`` (row, nll, n_tokens) into ``run_dir`` for K = 0 (before
    training) and K = 1..n (after each epoch), in eval mode with no gradient, through the trainer's
    own model. A pass whose file exists is not recomputed (resuming is cheap). It also watches for
    divergence: a non-finite training loss, or a non-finite NLL after training, stops the run before
    anything is scored or saved from broken weights (``diverged`` says where).

    Args:
        dataset (`datasets.Dataset`):
            The rows to score, tokenised with our exact response masks (``row``, ``input_ids``,
            ``labels``, ``length``; :func:`hf_lpselect.templates.tokenize_rows` makes it).
        run_dir (`str` or `RunDir`, *optional*):
            Where the pass files go; defaults to the trainer's ``output_dir``.
        token_budget (`int` or `None`, *optional*, defaults to `None`): most tokens per scoring batch (rows x
            the longest row, padding included); ``None``: chosen for the device
            (:func:`~hf_lpselect.scoring.passes.device_batching`).
        batch_size (`int` or `None`, *optional*, defaults to `None`): also at most this many rows per batch;
            ``None``: 8 on a CPU, no cap on an accelerator; ``0``: no cap.
        precision (`str`, *optional*, defaults to `"auto"`): ``"bf16"``, ``"fp32"`` or ``"auto"``
            (bf16 autocast when the trainer trains in bf16).
        trainer (`transformers.Trainer`, *optional*):
            Give it to log each pass's mean NLL and LP quantiles to the trainer's trackers
            (``report_to``) and to record per-row training losses when it is a :class:`ScorerTrainer`.
        source (`datasets.Dataset`, *optional*):
            The raw rows the trainer's dataset was made from, in the same order. Given it, the callback
            finishes the run directory when training ends (:func:`~hf_lpselect.scoring.outputs.scores_from_passes`:
            ``rows.parquet``, ``scores.parquet``, ``run.json``), so ``lpselect select DIR`` takes it.
        template (`str` or `None`, *optional*, defaults to `None`):
            The prompt template the rows were tokenised with, recorded in ``run.json`` so that
            ``lpselect train --run`` tokenises the selected rows the same way. Rows TRL prepared are ``"trl"``
            (TRL's own formatting: ``lpselect train`` hands them to TRL again, in their own columns), found
            from the dataset; rows from :func:`hf_lpselect.templates.tokenize_rows` need the template they
            were made with (``alpaca``, ``chat`` or ``plain``) when ``source`` is given.

    Checkpoints are the trainer's: TRL's ``SFTConfig`` saves one (weights and optimizer state, 1.6 GB for a
    135M model) at the end of training into ``output_dir``, the run folder. The callback never deletes them
    (they are not its own); pass ``save_strategy="no"`` when you do not need to resume the training itself.

    The dataset is checked here, not when training starts (:func:`scoring_rows`): TRL-prepared rows
    need their prompt masked in ``labels``, and rows TRL left out (responses truncated away) need an
    ``lpselect_row`` column numbering the raw rows.

    Example (inside your own TRL script):

    ```python
    >>> trainer = SFTTrainer(model, args=TrainConfig("out", save_strategy="no"), train_dataset=raw)  # prompt/completion
    >>> trainer.add_callback(LearningPercentageCallback(trainer.train_dataset, source=raw, trainer=trainer))
    >>> trainer.train()  # out/passes/epoch_*.parquet, then out/scores.parquet: `lpselect select out --strategy lp1-hard`
    ```
    """

    def __init__(
        self,
        dataset,
        run_dir: str | RunDir | None = None,
        *,
        source: datasets.Dataset | None = None,
        token_budget: int | None = None,
        batch_size: int | None = None,
        precision: str = "auto",
        trainer=None,
        template: str | None = None,
    ):
        self.template = _rows_template(dataset, template, needed=source is not None)
        self.dataset = scoring_rows(dataset)
        self.source = source
        if (
            source is not None
            and len(self.dataset) != len(source)
            and not {"row", ROW_NUMBER} & set(dataset.column_names)
        ):
            raise ConfigError(
                f"The trainer's dataset has {len(self.dataset)} rows and the source {len(source)} (TRL leaves out rows "
                "whose response is truncated away), so rows cannot be matched by position; number the raw rows before "
                f"the trainer sees them: raw = raw.add_column({ROW_NUMBER!r}, list(range(len(raw))))."
            )
        self.run_dir = (
            RunDir(run_dir.path if isinstance(run_dir, RunDir) else run_dir) if run_dir is not None else None
        )
        self.token_budget = token_budget
        self.batch_size = batch_size
        self.precision = precision
        self.trainer = trainer
        self.current_epoch = 1
        self.diverged: dict[str, Any] | None = None
        self._first_nll: pd.Series | None = None

    # -- the passes

    def run_pass(self, model, args, epoch: int, *, pad_token_id: int, kind: str = "epoch") -> None:
        """Score the whole dataset for pass ``epoch`` unless its file already exists.

        ``kind="alone"`` scores the responses without their prompts instead (the IFD pass; needs the
        ``alone_*`` columns of :func:`~hf_lpselect.templates.tokenize_rows` with ``alone=True``).
        """
        if self.run_dir is None:
            self.run_dir = RunDir(args.output_dir)
        path = self.run_dir.pass_path(epoch, kind)
        if path.is_file():
            return
        dataset = self.dataset
        if kind == "alone":
            dataset = dataset.select_columns(["row", "alone_input_ids", "alone_labels", "alone_length"])
            dataset = dataset.rename_columns({f"alone_{c}": c for c in ("input_ids", "labels", "length")})
        bf16 = scores_in_bf16(self.precision, getattr(args, "bf16", False))
        frame = score_pass(
            model,
            dataset,
            pad_token_id=pad_token_id,
            token_budget=self.token_budget,
            batch_size=self.batch_size,
            autocast_dtype=torch.bfloat16 if bf16 else None,
            desc=f"Scoring pass {epoch}" + (" (responses alone)" if kind == "alone" else ""),
            disable_progress=getattr(args, "disable_tqdm", False),
        )
        broken = ~frame["nll"].map(math.isfinite)
        if epoch > 0 and broken.any():
            self.mark_diverged(
                f"a non-finite NLL for {int(broken.sum())} row(s) in pass {epoch}",
                epoch=epoch,
                step=self.trainer.state.global_step if self.trainer is not None else -1,
            )
            return
        if PartialState().is_main_process:
            write_parquet(frame, path)
        PartialState().wait_for_everyone()
        if kind == "epoch":
            self._log_pass(epoch, frame)

    def _log_pass(self, epoch: int, frame: pd.DataFrame) -> None:
        """Each pass's mean NLL, and how far each row has come since pass 0, to the trainer's trackers."""
        nll = frame.set_index("row")["nll"]
        if epoch == 0 or self._first_nll is None:
            first = self.run_dir.pass_path(0)
            self._first_nll = (
                nll if epoch == 0 or not first.is_file() else pd.read_parquet(first).set_index("row")["nll"]
            )
        metrics = {"lpselect/pass": epoch, "lpselect/mean_nll": float(nll.mean())}
        if epoch > 0:  # share of each row's perplexity that is gone since pass 0: LP_app for pass 1
            p0, pk = np.exp(self._first_nll), np.exp(nll.reindex(self._first_nll.index))
            drop = ((p0 - pk) / p0).dropna()
            metrics.update(
                {f"lpselect/ppl_drop_q{int(q * 100)}": float(drop.quantile(q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9)}
            )
        if self.trainer is not None and self.trainer.state is not None:
            self.trainer.log(metrics)

    def mark_diverged(self, what: str, *, epoch: int, step: int) -> None:
        """Record the first sign that training diverged."""
        if self.diverged is None:
            self.diverged = {"what": what, "epoch": epoch, "step": step}

    # -- the trainer's events

    def _model(self, model):
        """The model to score: the trainer's, which is FSDP's wrapper under FSDP (the callbacks' is the inner module)."""
        return self.trainer.model if self.trainer is not None else model

    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        self._model_name = model_name(
            getattr(getattr(unwrap_peft(model), "config", None), "_name_or_path", "") if model is not None else ""
        )
        if (
            self.source is not None
        ):  # refuse another run's passes before using any (every rank checks; the first writes)
            start_callback_run(
                self.run_dir or RunDir(args.output_dir),
                self.source,
                args=args,
                model_name=self._model_name,
                template=self.template,
            )
        self.run_pass(self._model(model), args, 0, pad_token_id=_pad_id(processing_class))

    def on_train_end(self, args, state, control, **kwargs):
        if self.source is not None and self.diverged is None and PartialState().is_main_process:
            self.write_scores(args)

    def write_scores(self, args=None) -> ScoreResult:
        """Finish the run directory from the passes: ``rows.parquet``, ``scores.parquet``, ``run.json`` (needs ``source``).

        Called when training ends if ``source`` was given; call it yourself after a resumed or
        interrupted script. Returns what :func:`hf_lpselect.score` returns.
        """
        if self.source is None:
            raise ConfigError(
                "LearningPercentageCallback.write_scores needs the raw rows: pass source=... to the callback."
            )
        args = args if args is not None else getattr(self.trainer, "args", None)
        run_dir = self.run_dir or RunDir(args.output_dir)
        return scores_from_passes(
            run_dir,
            self.source,
            self.dataset,
            args=args,
            model_name=getattr(self, "_model_name", ""),
            template=self.template or "",
        )

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.current_epoch = int(round(state.epoch or 0)) + 1

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.mark_diverged(f"training loss {loss}", epoch=self.current_epoch, step=state.global_step)
        self._stop_if_diverged(control)

    def on_step_end(self, args, state, control, **kwargs):
        if PartialState().num_processes > 1:  # a rank that saw a broken loss stops them all, or the others would hang
            self.diverged = next((d for d in gather_object([self.diverged]) if d is not None), None)
        self._stop_if_diverged(control)

    def on_epoch_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        epoch = int(round(state.epoch))
        if self.diverged is None and abs(state.epoch - epoch) < 1e-6:  # a whole epoch, not an early stop
            if isinstance(self.trainer, ScorerTrainer):
                self.trainer.flush_train_losses(epoch)
            self.run_pass(self._model(model), args, epoch, pad_token_id=_pad_id(processing_class))
        self._stop_if_diverged(control)

    def _stop_if_diverged(self, control) -> None:
        if self.diverged is not None:
            control.should_training_stop = True
            control.should_save = False


def _rows_template(dataset, template: str | None, *, needed: bool) -> str | None:
    """The template a callback's rows were tokenised with: ``trl`` for rows TRL prepared, else the one given."""
    ours = set(SCORING_COLUMNS) <= set(getattr(dataset, "column_names", None) or ())
    if not ours:
        if template not in (None, TRL_TEMPLATE):
            raise ConfigError(
                f"These rows were formatted and tokenised by TRL's trainer, not with the {template!r} template; "
                "leave template unset (it is recorded as 'trl')."
            )
        return TRL_TEMPLATE
    if template is None and needed:
        raise ConfigError(
            "These rows come from hf_lpselect.tokenize_rows: pass template= the template they were tokenised with "
            "(alpaca, chat or plain), so that the run records it and lpselect train --run uses it again."
        )
    if template is not None and (template == "auto" or template not in TEMPLATES):
        raise ConfigError(f"template must be alpaca, chat or plain for rows from tokenize_rows, got {template!r}.")
    return template


def _pad_id(processing_class) -> int:
    tokenizer = getattr(processing_class, "tokenizer", processing_class)  # a processor wraps its tokenizer
    if tokenizer is None or tokenizer.pad_token_id is None:
        raise ConfigError("The trainer's tokenizer has no pad token; set tokenizer.pad_token (e.g. to its EOS) first.")
    return tokenizer.pad_token_id


class ScorerTrainer(SafeCheckpointMixin, SignatureColumns, CompactHeadMixin, PaddingFreeMixin, SFTTrainer):
    """An ``SFTTrainer`` that records per-row training losses and runs the LP scoring passes.

    It takes what ``SFTTrainer`` takes. A raw dataset (alpaca, dolly, sharegpt, messages or
    prompt-completion rows) is tokenised with our exact response masks (the prompt template of
    ``args.template``); an already tokenised one needs ``row``, ``input_ids``, ``labels`` and ``length``
    (:func:`hf_lpselect.templates.tokenize_rows`). Rows that cannot be scored are left out of
    training, as in ``lpselect score``. Two things are added to TRL's loop and nothing else changes:
    a forward hook that reads each row's training loss off TRL's fused LM head (no extra forward),
    written to ``train_losses.parquet``, and a :class:`LearningPercentageCallback` writing the passes.

    Args:
        run_dir (`str` or `RunDir`, *optional*): where the pass files go; defaults to ``args.output_dir``.
        *args, **kwargs: as for ``trl.SFTTrainer``.

    Example:

    ```python
    >>> from datasets import load_dataset
    >>> trainer = ScorerTrainer(model="HuggingFaceTB/SmolLM2-135M-Instruct", args=ScorerConfig("runs/mine"),
    ...                         train_dataset=load_dataset("tatsu-lab/alpaca", split="train[:200]"))
    >>> trainer.train()  # runs/mine/passes/epoch_0..3.parquet, runs/mine/train_losses.parquet
    ```
    """

    signature_columns = ("input_ids", "labels", "row")  # ``row`` travels to compute_loss, which pops it

    def __init__(
        self, model=None, args: SFTConfig | None = None, *rest: Any, run_dir: str | RunDir | None = None, **kwargs: Any
    ):
        if not rest:
            kwargs.setdefault("data_collator", None)
        dataset = kwargs.get("train_dataset")
        if dataset is not None and "input_ids" not in dataset.column_names:
            if kwargs.get("processing_class") is None:
                kwargs["processing_class"] = _tokenizer_of(model)
            kwargs["train_dataset"] = self._tokenize(dataset, kwargs["processing_class"], args)
        super().__init__(model, args, *rest, **kwargs)
        if type(self.data_collator) is DataCollatorForLanguageModeling:  # TRL's, as TRL configured it
            self.data_collator = RowCollator(
                **{f.name: getattr(self.data_collator, f.name) for f in fields(self.data_collator)}
            )
        self._batch_rows: torch.Tensor | None = None
        self._batch_segments: torch.Tensor | None = None
        self._loss_records: list[tuple[int, int, int, float]] = []
        unwrap_peft(self.model).register_forward_hook(self._record_row_losses)
        self.lp_callback = LearningPercentageCallback(
            self.train_dataset,
            run_dir if run_dir is not None else self.args.output_dir,
            token_budget=self.args.score_token_budget,
            batch_size=self.args.score_batch_size,
            precision=self.args.score_precision,
            trainer=self,
        )
        self.add_callback(self.lp_callback)

    @staticmethod
    def _tokenize(dataset: datasets.Dataset, tokenizer, config: SFTConfig | None) -> datasets.Dataset:
        """A raw dataset in any supported format → our tokenised ``ok`` rows (exact masks)."""
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        rows = canonicalize(dataset)
        template = resolve_template(getattr(config, "template", "auto"), tokenizer, rows)
        max_length = getattr(config, "max_length", None) or 512
        tokenized = tokenize_rows(rows, tokenizer, template=template, max_length=max_length)
        left_out = pd.Series(tokenized["reason"])[pd.Series(tokenized["status"]) != "ok"].value_counts()
        for reason, n in left_out.items():
            logger.warning("ScorerTrainer leaves %d row(s) out of training and scoring: %s", n, reason)
        return tokenized.filter(lambda s: s == "ok", input_columns="status").select_columns(
            ["row", "input_ids", "labels", "length"]
        )

    @property
    def run_dir(self) -> RunDir:
        return self.lp_callback.run_dir or RunDir(self.args.output_dir)

    @property
    def diverged(self) -> dict[str, Any] | None:
        return self.lp_callback.diverged

    def run_scoring_pass(self, epoch: int, kind: str = "epoch") -> None:
        """Score pass ``epoch`` now, through this trainer's model (see :meth:`LearningPercentageCallback.run_pass`)."""
        self.lp_callback.run_pass(
            self.model, self.args, epoch, pad_token_id=self.processing_class.pad_token_id, kind=kind
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self._batch_rows = inputs.pop("row", None)
        self._batch_segments = (
            inputs.get("seq_idx") if self.padding_free else None
        )  # each token's row in a packed batch
        try:
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        finally:
            self._batch_rows = self._batch_segments = None

    def _record_row_losses(self, module, args, output):
        """Forward hook: per-row mean training loss from the fused head's per-token log-probs."""
        if self._batch_rows is None or not module.training or getattr(output, "label_mask", None) is None:
            return
        mask = output.label_mask.float()
        log_probs = output.log_probs.detach().float() * mask
        if self._batch_segments is None:
            per_row = -log_probs.sum(1) / mask.sum(1).clamp(min=1)
        else:  # padding-free: one sequence; a label's row is its token's (labels are shifted by one position)
            n_rows = len(self._batch_rows)
            row_of = self._batch_segments[0, 1:].long()
            labeled = mask[0] > 0
            if labeled.any() and int(row_of[labeled].max()) >= n_rows:
                raise RunError(
                    f"A padding-free batch holds labels for more rows than the {n_rows} it names; "
                    "its rows cannot be told apart."
                )
            row_of = row_of.clamp(max=n_rows - 1)  # trailing pad positions (pad_to_multiple_of) carry no label
            total = log_probs.new_zeros(n_rows).index_add_(0, row_of, log_probs[0])
            per_row = -total / mask.new_zeros(n_rows).index_add_(0, row_of, mask[0]).clamp(min=1)
        step = self.state.global_step + 1  # the optimizer step this micro-batch contributes to
        if not torch.isfinite(per_row).all():
            self.lp_callback.mark_diverged(
                "a non-finite per-row training loss", epoch=self.lp_callback.current_epoch, step=step
            )
        self._loss_records.extend(
            (int(r), self.lp_callback.current_epoch, step, float(v))
            for r, v in zip(self._batch_rows.tolist(), per_row.tolist())
        )

    def flush_train_losses(self, epoch: int) -> None:
        """Append this epoch's recorded losses (from every rank) to ``train_losses.parquet``."""
        records = self._loss_records
        self._loss_records = []
        if self.accelerator.num_processes > 1:
            records = gather_object(records)
        if not self.accelerator.is_main_process:
            return
        new = pd.DataFrame(records, columns=TRAIN_LOSS_COLUMNS)
        # Multi-process, accelerate pads the epoch's last batch with rows from its start (even_batches)
        # so every rank steps together: keep each row's first loss of the epoch, not the padded repeat.
        new = new.sort_values(["step", "row"], kind="stable").drop_duplicates(["row", "epoch"], keep="first")
        path = self.run_dir.train_losses
        if path.is_file():
            old = pd.read_parquet(path)
            new = pd.concat([old[old["epoch"] < epoch], new], ignore_index=True)  # drop a crashed epoch's part
        write_parquet(new.sort_values(["epoch", "step", "row"], ignore_index=True), path)
