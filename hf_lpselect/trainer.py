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

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from accelerate.utils import gather_object
from transformers import TrainerCallback
from trl import SFTConfig, SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from .rundir import RunDir, write_parquet
from .scoring import score_pass

TRAIN_LOSS_COLUMNS = ["row", "epoch", "step", "loss"]


def _has_accelerator() -> bool:
    xpu = getattr(torch, "xpu", None)
    return torch.cuda.is_available() or torch.backends.mps.is_available() or bool(xpu and xpu.is_available())


@dataclass
class ScorerConfig(SFTConfig):
    """``SFTConfig`` with the paper's scorer recipe as defaults (METHOD.md) and the scoring-pass knobs.

    Recipe: lr 2e-5, cosine, warmup 3 %, no weight decay, 3 epochs, 4 x 8 accumulation = 32 per
    device, max length 512, seed 42, bf16 autocast over float32 weights. A checkpoint is saved at
    every epoch end so an interrupted run resumes from the last completed epoch.
    """

    learning_rate: float = 2e-5
    lr_scheduler_type: str = "cosine"
    warmup_steps: float = 0.03
    weight_decay: float = 0.0
    num_train_epochs: float = 3
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 8
    max_length: int | None = 512
    seed: int = 42
    save_strategy: str = "epoch"
    gradient_checkpointing: bool = False
    report_to: Any = "none"
    logging_steps: float = 10
    dataset_kwargs: dict[str, Any] | str | None = field(default_factory=lambda: {"skip_prepare_dataset": True})
    score_batch_size: int = field(default=8, metadata={"help": "Rows per batch in a scoring pass."})
    score_precision: str = field(
        default="auto",
        metadata={"help": "Scoring-pass autocast: 'bf16', 'fp32', or 'auto' (bf16 when training in bf16)."},
    )

    def __post_init__(self):
        if self.score_precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"score_precision must be auto, bf16 or fp32, got {self.score_precision!r}")
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
    """Scores the full dataset before training and after every epoch; writes the pass files."""

    def __init__(self, trainer: "ScorerTrainer"):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        self.trainer.run_scoring_pass(0)

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.trainer.current_epoch = int(round(state.epoch or 0)) + 1

    def on_epoch_end(self, args, state, control, **kwargs):
        epoch = int(round(state.epoch))
        self.trainer.flush_train_losses(epoch)
        self.trainer.run_scoring_pass(epoch)


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
        self._loss_records.extend(
            (int(r), self.current_epoch, step, float(v)) for r, v in zip(self._batch_rows.tolist(), per_row.tolist())
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
        )
        if self.accelerator.is_main_process:
            write_parquet(frame, path)
        self.accelerator.wait_for_everyone()
