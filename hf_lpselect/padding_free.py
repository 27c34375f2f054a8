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
- before training, :func:`keeps_rows_apart` runs the model on two short rows packed in both orders
  and the run is refused with one sentence when a row is predicted differently at the other place.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

import torch
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from .compat.trl import max_length_hidden
from .errors import ConfigError
from .models import is_sharded, unwrap_peft


PROBE_TOKENS = 16  # tokens of each probe row: enough for a row to see another, cheap on any model
# the mean |difference| of next-token log-probabilities that is still kernel rounding. Measured on
# SmolLM2-135M (2 rows of 16 tokens, CPU): 3e-6 with float32 weights and 0.04 with bfloat16 weights
# when the rows are kept apart, 1.9 in both when they are not (each row seeing the one before it)
FULL_PRECISION_TOLERANCE, HALF_PRECISION_TOLERANCE = 1e-3, 0.2


def keeps_rows_apart(model: torch.nn.Module, rows: list[list[int]], *, pad_token_id: int = 0) -> tuple[bool, float]:
    """Whether ``model`` predicts a packed row (one sequence, position ids restarting) as it predicts the row alone.

    Runs in eval mode without gradients (the model's mode is restored) through TRL's own
    padding-free collator, so the model receives exactly the keys it will be trained with. The two
    rows are packed in both orders, so each row is once first and once second in a sequence of the
    same shape: a model that keeps them apart predicts each row the same way both times (up to
    kernel rounding), while one that lets a row see the row before it, or numbers positions across
    the sequence, does not. The measure is the mean absolute difference of the next-token
    log-probabilities.

    Args:
        model (`torch.nn.Module`): a causal LM (a PEFT model too).
        rows (`list[list[int]]`): two token-id lists (more are ignored); each is cut to its first 16 tokens.
        pad_token_id (`int`, *optional*, defaults to `0`): the collator's pad id (unused without padding).

    Returns:
        `tuple[bool, float]`: whether the predictions agree within the rounding of the weights'
        dtype (1e-3 in float32, 0.2 in half precision), and the mean absolute difference.

    Raises:
        ConfigError: the model's forward does not take the padding-free keys (``position_ids`` …).

    Example:

    ```python
    >>> ok, diff = keeps_rows_apart(model, [[1, 5, 9, 4], [1, 7, 3]])  # doctest: +SKIP
    ```
    """
    first, second = (list(ids[:PROBE_TOKENS]) for ids in rows[:2])
    collate = DataCollatorForLanguageModeling(pad_token_id=pad_token_id, padding_free=True)
    weight = next(model.parameters())
    was_training = model.training
    model.eval()
    log_probs = []
    try:
        with torch.no_grad():
            for order in ([first, second], [second, first]):
                batch = collate([{"input_ids": ids} for ids in order])
                batch.pop("labels")
                try:
                    logits = model(
                        **{k: v.to(weight.device) if torch.is_tensor(v) else v for k, v in batch.items()},
                        use_cache=False,
                    ).logits
                except TypeError as err:
                    raise ConfigError(
                        f"--padding_free needs a model whose forward takes position ids, and "
                        f"{type(unwrap_peft(model)).__name__}'s does not ({err}); leave --padding_free off."
                    ) from err
                log_probs.append(logits[0].float().log_softmax(-1))
    finally:
        model.train(was_training)
    # first then second vs second then first: each row at the other place in a sequence of the same shape
    swapped = torch.cat([log_probs[1][len(second) :], log_probs[1][: len(second)]])
    diff = float((log_probs[0] - swapped).abs().mean())
    full = weight.dtype in (torch.float32, torch.float64)
    return diff <= (FULL_PRECISION_TOLERANCE if full else HALF_PRECISION_TOLERANCE), diff


def _check_config(config: Any, kwargs: dict[str, Any]) -> None:
    """What padding-free cannot be combined with, refused before TRL sees it."""
    if kwargs.get("data_collator") is not None:
        raise ConfigError("--padding_free lays batches out with TRL's own collator; pass no data_collator.")
    accelerate = config.accelerator_config
    if any(getattr(accelerate, name, None) for name in ("split_batches", "dispatch_batches")):
        raise ConfigError(
            "--padding_free packs a micro-batch into one sequence, which accelerate cannot split "
            "between processes; leave split_batches and dispatch_batches off."
        )


class PaddingFreeMixin:
    """Put before ``SFTTrainer`` in a trainer's bases: ``padding_free=True`` works with our pre-truncated rows, or refuses.

    With ``dataset_kwargs={"skip_prepare_dataset": True}`` (how both trainers of this package pass their
    rows: tokenised and truncated to ``max_length``), TRL's ``max_length`` check is lifted; rows that
    TRL prepares itself keep TRL's rules. Either way the model is probed on the first two rows
    before training (:func:`keeps_rows_apart`), so it needs a dataset with a length and whole weights
    (not ZeRO-3 partitions).

    Example:

    ```python
    >>> class MyTrainer(PaddingFreeMixin, SFTTrainer):
    ...     pass
    ```
    """

    def __init__(self, model: Any = None, args: Any = None, *rest: Any, **kwargs: Any) -> None:
        if args is None or not args.padding_free or args.packing:
            super().__init__(model, args, *rest, **kwargs)
            return
        _check_config(args, kwargs)
        if (args.dataset_kwargs or {}).get("skip_prepare_dataset"):  # our rows: truncated to max_length already
            with max_length_hidden(args):
                super().__init__(model, args, *rest, **kwargs)
        else:  # rows TRL prepares itself: TRL's own rules
            super().__init__(model, args, *rest, **kwargs)
        dataset = self.train_dataset
        if not isinstance(dataset, Sized):
            raise ConfigError(
                "--padding_free is checked on the first two rows before training, so it needs a "
                "dataset with a length, not a streamed one."
            )
        if is_sharded(self.model):
            raise ConfigError(
                "--padding_free is checked on the model before training, which needs its whole "
                "weights, not ZeRO-3 partitions; leave --padding_free off."
            )
        if len(dataset) < 2:
            return  # one row cannot see another
        ok, diff = keeps_rows_apart(
            self.model,
            [dataset[i]["input_ids"] for i in range(2)],
            pad_token_id=self.processing_class.pad_token_id or 0,
        )
        if not ok:
            raise ConfigError(
                f"--padding_free needs a model whose attention keeps packed rows apart, and "
                f"{type(unwrap_peft(self.model)).__name__} does not (packed in the other order, two rows' log-probabilities "
                f"move by {diff:.3g} on average); leave --padding_free off."
            )
