"""The scorer: ``ScorerConfig(SFTConfig)`` + ``ScorerTrainer(SFTTrainer)``.

A scorer run fine-tunes a small model on the WHOLE dataset and, around that training, scores every
row's response NLL before training (pass K = 0) and after each epoch (K = 1..n), in eval mode.
Two things are added to TRL's SFT loop and nothing else is changed:

- a per-sample loss hook: TRL's fused LM head already returns per-token ``log_probs`` and the
  ``label_mask`` during ``compute_loss``; a forward hook turns them into one training loss per row
  (``train_losses.parquet``: row, epoch, step, loss) at no extra forward cost;
- :class:`ScoringPassCallback`, which runs :func:`~hf_lpselect.scoring.score_pass` on the full
  dataset at train begin and at every epoch end and writes ``passes/epoch_K.parquet``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from accelerate.utils import gather_object
from transformers import TrainerCallback
from trl import SFTConfig, SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from .errors import ConfigError
from .rundir import RunDir, write_parquet
from .scoring import score_pass

TRAIN_LOSS_COLUMNS = ["row", "epoch", "step", "loss"]


def _has_accelerator() -> bool:
    xpu = getattr(torch, "xpu", None)
    return torch.cuda.is_available() or torch.backends.mps.is_available() or bool(xpu and xpu.is_available())


@dataclass
class ScorerConfig(SFTConfig):
    """``SFTConfig`` with the paper's scorer recipe as defaults (METHOD.md) and the scoring-pass knobs.

    Every ``SFTConfig`` / ``TrainingArguments`` field works in TRL's spelling (``--learning_rate``,
    ``--report_to`` …). Defaults that differ from TRL's: ``learning_rate`` 2e-5, ``lr_scheduler_type``
    cosine, ``warmup_steps`` 0.03 (a ratio), ``num_train_epochs`` 3, ``per_device_train_batch_size`` 4,
    ``gradient_accumulation_steps`` 8 (32 rows per device and optimizer step), ``max_length`` 512,
    ``save_strategy`` epoch (resumable; checkpoints are removed when the run completes),
    ``activation_checkpointing`` (``gradient_checkpointing``) off, ``logging_steps`` 10, ``report_to`` none, and ``output_dir``
    ``runs/{dataset}-{model}`` (the run directory; ``{dataset}`` and ``{model}`` are filled in).
    bf16 autocast runs over float32 weights (pure bf16 AdamW barely moves the weights).

    Args:
        score_batch_size (`int`, *optional*, defaults to `8`):
            Rows per batch in a scoring pass.
        score_precision (`str`, *optional*, defaults to `"auto"`):
            Scoring-pass autocast: ``"bf16"``, ``"fp32"`` or ``"auto"`` (bf16 when training in bf16).

    Passes are scored at epoch ends, so ``max_steps`` and a fractional ``num_train_epochs`` are refused.

    Example:

    ```python
    >>> from hf_lpselect import ScorerConfig
    >>> args = ScorerConfig(output_dir="runs/mine", num_train_epochs=2, learning_rate=1e-4)
    ```
    """

    output_dir: str | None = field(
        default="runs/{dataset}-{model}",
        metadata={"aliases": ["--out"], "help": "Run directory; re-running the same command there resumes. "
                  "Default runs/{dataset}-{model}."},
    )
    learning_rate: float = field(default=2e-5, metadata={"help": "Peak learning rate (cosine schedule, 3 %% warmup)."})
    lr_scheduler_type: str = "cosine"
    warmup_steps: float = 0.03
    weight_decay: float = 0.0
    num_train_epochs: float = field(
        default=3,
        metadata={"aliases": ["--epochs"], "help": "Training epochs n; passes are scored before training and "
                  "after each epoch. 0 = one pass, no training."},
    )
    per_device_train_batch_size: int = field(default=4, metadata={"aliases": ["--batch-size"], "help": "Rows per device per step."})
    gradient_accumulation_steps: int = field(
        default=8, metadata={"aliases": ["--grad-accum"], "help": "Gradient accumulation steps (effective batch = "
                             "batch size x accumulation x processes)."},
    )
    max_length: int | None = field(
        default=512, metadata={"help": "Tokens per row (right truncation); a row whose response is truncated "
                               "away is excluded, never scored."},
    )
    seed: int = 42
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
    score_batch_size: int = field(default=8, metadata={"help": "Rows per batch in a scoring pass."})
    score_precision: str = field(
        default="auto",
        metadata={"help": "Scoring-pass autocast: 'bf16', 'fp32', or 'auto' (bf16 when training in bf16)."},
    )

    def __post_init__(self):
        if self.score_precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"--score_precision must be auto, bf16 or fp32, got {self.score_precision!r}.")
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "score_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be 1 or more, got {getattr(self, name)}.")
        epochs = self.num_train_epochs
        if epochs < 0 or epochs != int(epochs):
            raise ConfigError(
                f"--num_train_epochs must be a whole number, 0 or more (passes are scored at epoch ends), got {epochs}."
            )
        if self.max_steps not in (-1, None):
            raise ConfigError("--max_steps is not supported: passes are scored at epoch ends; set --num_train_epochs instead.")
        if self.max_length is not None and self.max_length < 2:
            raise ConfigError(f"--max_length must be 2 or more, got {self.max_length}.")
        if not _has_accelerator():
            self.use_cpu = True  # CPU only: say so, for bf16 autocast on CPU and for gloo under accelerate launch
        super().__post_init__()

    @property
    def score_autocast_dtype(self) -> torch.dtype | None:
        if self.score_precision == "bf16" or (self.score_precision == "auto" and self.bf16):
            return torch.bfloat16
        return None


@dataclass
class RowCollator(DataCollatorForLanguageModeling):
    """TRL's collator, plus the ``row`` index of every example so losses can be attributed."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super().torch_call(examples)
        batch["row"] = torch.tensor([ex["row"] for ex in examples], dtype=torch.long)
        return batch


class ScoringPassCallback(TrainerCallback):
    """Scores the full dataset before training and after every WHOLE epoch; writes the pass files.

    It also watches for divergence: a non-finite training loss (per row, from the loss hook, or as
    logged) or a non-finite NLL in a pass after training stops the run before anything is scored
    from broken weights, and no checkpoint of them is saved.
    """

    def __init__(self, trainer: "ScorerTrainer"):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainer.run_scoring_pass(0)

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.trainer.current_epoch = int(round(state.epoch or 0)) + 1

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.trainer.mark_diverged(f"training loss {loss}", epoch=self.trainer.current_epoch, step=state.global_step)
        self._stop_if_diverged(control)

    def on_step_end(self, args, state, control, **kwargs):
        self._stop_if_diverged(control)

    def on_epoch_end(self, args, state, control, **kwargs):
        epoch = int(round(state.epoch))
        if self.trainer.diverged is None and abs(state.epoch - epoch) < 1e-6:  # a whole epoch, not an early stop
            self.trainer.flush_train_losses(epoch)
            self.trainer.run_scoring_pass(epoch)
        self._stop_if_diverged(control)

    def _stop_if_diverged(self, control) -> None:
        if self.trainer.diverged is not None:
            control.should_training_stop = True
            control.should_save = False


class ScorerTrainer(SFTTrainer):
    """An ``SFTTrainer`` that records per-row training losses and runs the LP scoring passes.

    ``train_dataset`` is a tokenised dataset with ``row``, ``input_ids``, ``labels`` and ``length``
    columns (see :func:`hf_lpselect.templates.tokenize_rows`); ``run_dir`` receives the pass files.
    Passes that already exist in ``run_dir`` are not recomputed, which is what makes resuming cheap.
    """

    def __init__(self, *args, run_dir: RunDir, **kwargs):
        kwargs.setdefault("data_collator", None)
        super().__init__(*args, **kwargs)
        if self.data_collator is None or type(self.data_collator) is DataCollatorForLanguageModeling:
            self.data_collator = RowCollator(pad_token_id=self.processing_class.pad_token_id)
        self.run_dir = run_dir
        self.current_epoch = 1
        self.diverged: dict[str, Any] | None = None
        self._batch_rows: torch.Tensor | None = None
        self._loss_records: list[tuple[int, int, int, float]] = []
        fused = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        fused.register_forward_hook(self._record_row_losses)
        self.add_callback(ScoringPassCallback(self))

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = ["input_ids", "labels", "row"]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self._batch_rows = inputs.pop("row", None)
        try:
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        finally:
            self._batch_rows = None

    def _record_row_losses(self, module, args, output):
        """Forward hook: per-row mean training loss from the fused head's per-token log-probs."""
        if self._batch_rows is None or not module.training or getattr(output, "label_mask", None) is None:
            return
        mask = output.label_mask
        per_row = -(output.log_probs.detach().float() * mask).sum(1) / mask.sum(1).clamp(min=1)
        step = self.state.global_step + 1  # the optimizer step this micro-batch contributes to
        if not torch.isfinite(per_row).all():
            self.mark_diverged("a non-finite per-row training loss", epoch=self.current_epoch, step=step)
        self._loss_records.extend(
            (int(r), self.current_epoch, step, float(v)) for r, v in zip(self._batch_rows.tolist(), per_row.tolist())
        )

    def mark_diverged(self, what: str, *, epoch: int, step: int) -> None:
        """Record the first sign that training diverged (kept in ``run.json`` by :func:`hf_lpselect.score`)."""
        if self.diverged is None:
            self.diverged = {"what": what, "epoch": epoch, "step": step}

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

    def run_scoring_pass(self, epoch: int, kind: str = "epoch") -> None:
        """Score the whole training set for pass ``epoch`` unless its file already exists.

        ``kind="alone"`` scores the responses without their prompts instead (the IFD pass; needs the
        ``alone_*`` columns of :func:`~hf_lpselect.templates.tokenize_rows` with ``alone=True``).
        """
        path = self.run_dir.pass_path(epoch, kind)
        if path.is_file():
            return
        dataset = self.train_dataset
        if kind == "alone":
            dataset = dataset.select_columns(["row", "alone_input_ids", "alone_labels", "alone_length"])
            dataset = dataset.rename_columns({f"alone_{c}": c for c in ("input_ids", "labels", "length")})
        frame = score_pass(
            self.accelerator.unwrap_model(self.model),
            dataset,
            pad_token_id=self.processing_class.pad_token_id,
            batch_size=self.args.score_batch_size,
            autocast_dtype=self.args.score_autocast_dtype,
            desc=f"Scoring pass {epoch}" + (" (responses alone)" if kind == "alone" else ""),
            disable_progress=self.args.disable_tqdm,
        )
        broken = ~frame["nll"].map(math.isfinite)
        if epoch > 0 and broken.any():
            self.mark_diverged(f"a non-finite NLL for {int(broken.sum())} row(s) in pass {epoch}", epoch=epoch, step=self.state.global_step)
            return
        if self.accelerator.is_main_process:
            write_parquet(frame, path)
        self.accelerator.wait_for_everyone()
