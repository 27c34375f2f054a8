"""Padding-free training batches (TRL's ``padding_free``) for the trainers of this package.

With ``padding_free=True``, TRL's collator concatenates the rows of a micro-batch into ONE sequence
whose ``position_ids`` restart at 0 for each row, with no attention mask and no padding. A model
whose attention mask is built from those position ids (transformers' ``create_causal_mask``:
Llama / SmolLM2, Qwen, Gemma, GPT-2 …; FlashAttention's variable-length kernels) keeps the rows
apart, so every row sees exactly what it saw in a padded batch and no position is spent on padding
(a third of a scorer's training positions on Alpaca rows). A model that derives positions and
masks from the attention mask instead (OPT, the paper's scorer family) would let each row attend to
the rows packed before it: different numbers, and no error anywhere.

:class:`PaddingFreeMixin` makes the flag safe and usable for both trainers (the scorer and
``lpselect train``):

- TRL refuses ``padding_free`` whenever ``max_length`` is set, because without packing it cannot
  truncate. Our trainers' rows are already truncated to ``max_length`` (with exact response masks)
  before TRL sees them, which is the case TRL's message itself allows, so for them the check is
  lifted for the duration of ``SFTTrainer.__init__`` only;
- before training, :func:`keeps_rows_apart` runs the model on two short rows packed and alone and
  refuses the run with one sentence when the logits differ.
"""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator
from typing import Any

import torch
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from .errors import ConfigError

PROBE_TOKENS = 16  # tokens of each probe row: enough for a row to see another, cheap on any model


def keeps_rows_apart(model: torch.nn.Module, rows: list[list[int]], *, pad_token_id: int = 0) -> tuple[bool, float]:
    """Whether ``model`` gives packed rows (one sequence, position ids restarting) the logits it gives each row alone.

    Runs in eval mode without gradients (the model's mode is restored) through TRL's own
    padding-free collator, so the model receives exactly the keys it will be trained with.

    Args:
        model (`torch.nn.Module`): a causal LM (a PEFT model too).
        rows (`list[list[int]]`): two or more token-id lists; each is cut to its first 16 tokens.
        pad_token_id (`int`, *optional*, defaults to `0`): the collator's pad id (unused without padding).

    Returns:
        `tuple[bool, float]`: whether the logits agree, and their largest absolute difference
        (``inf`` when the model's forward does not accept the padding-free keys).

    Example:

    ```python
    >>> ok, diff = keeps_rows_apart(model, [[1, 5, 9, 4], [1, 7, 3]])  # doctest: +SKIP
    ```
    """
    rows = [list(ids[:PROBE_TOKENS]) for ids in rows]
    packed = DataCollatorForLanguageModeling(pad_token_id=pad_token_id, padding_free=True)(
        [{"input_ids": ids} for ids in rows])
    packed.pop("labels")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            try:
                together = model(**{k: v.to(device) if torch.is_tensor(v) else v for k, v in packed.items()},
                                 use_cache=False).logits.float()
            except TypeError:  # a forward that takes no position_ids / cu_seq_lens keys cannot be padding-free
                return False, float("inf")
            alone = torch.cat([model(input_ids=torch.tensor([ids], device=device), use_cache=False).logits.float()
                               for ids in rows], dim=1)
    finally:
        model.train(was_training)
    diff = float((together - alone).abs().max())
    fp32 = next(model.parameters()).dtype == torch.float32
    tolerance = (1e-4 if fp32 else 2e-2) * max(1.0, float(alone.abs().max()))
    return diff <= tolerance, diff


@contextmanager
def _max_length_hidden(config: Any) -> Iterator[None]:
    """Hide ``max_length`` from TRL's padding-free check; our rows are truncated to it already."""
    max_length = config.max_length
    config.max_length = None
    try:
        yield
    finally:
        config.max_length = max_length


class PaddingFreeMixin:
    """Put before ``SFTTrainer`` in a trainer's bases: ``padding_free=True`` works with our pre-truncated rows, or refuses.

    With ``dataset_kwargs={"skip_prepare_dataset": True}`` (how both trainers of this package pass their
    rows: tokenised and truncated to ``max_length``), TRL's ``max_length`` check is lifted; rows that
    TRL prepares itself keep TRL's rules. Either way the model is probed before training.

    Example:

    ```python
    >>> class MyTrainer(PaddingFreeMixin, SFTTrainer):
    ...     pass
    ```
    """

    def __init__(self, *args: Any, **kwargs: Any):
        config = kwargs["args"] if "args" in kwargs else (args[1] if len(args) > 1 else None)
        if config is None or not config.padding_free or config.packing:
            super().__init__(*args, **kwargs)
            return
        if (config.dataset_kwargs or {}).get("skip_prepare_dataset"):  # our rows: truncated to max_length already
            with _max_length_hidden(config):
                super().__init__(*args, **kwargs)
        else:  # rows TRL prepares itself: TRL's own rules
            super().__init__(*args, **kwargs)
        rows = [self.train_dataset[i]["input_ids"] for i in range(min(2, len(self.train_dataset)))]
        if len(rows) == 2:
            ok, diff = keeps_rows_apart(self.model, rows, pad_token_id=self.processing_class.pad_token_id or 0)
            if not ok:
                name = type(self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model).__name__
                raise ConfigError(
                    f"--padding_free needs a model whose attention keeps packed rows apart, and {name} does not "
                    f"(two packed rows get other logits than alone: max difference {diff:.3g}); leave --padding_free off.")
