"""The compact LM head on CPUs too: the training loss projects only the positions that have a label.

TRL's ``SFTTrainer`` computes the training loss with a fused LM head
(``trl.trainer.utils.add_fused_lm_head``) that never builds the ``(batch, seq, vocab)`` logits. On
Triton devices (CUDA, XPU) it projects only the positions whose next token has a label; elsewhere it
projects EVERY position (prompt and padding included) and zeroes the unlabeled ones afterwards,
because a compiled backend such as Neuron would recompile for each new number of labeled positions.
In eager mode on a CPU nothing is recompiled, and the wasted projections were more than half of a
training step (on SmolLM2-135M with Alpaca rows, the head took 4.7 s of an 8.1 s step): the
vocabulary projection is the largest matrix product of a small model.

:class:`CompactHeadMixin` makes both trainers of this package (the scorer and ``lpselect train``)
use TRL's own compact path on CPUs as well as on CUDA/XPU (other devices keep TRL's choice, and so
does ``torch_compile``). The per-token log-probabilities, the loss and the
gradients are those of the full path: the same positions, each row's projection computed alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch

from .compat.trl import compact_fused_head_on_cpu


@contextmanager
def compact_lm_head(enabled: bool = True) -> Iterator[None]:
    """Within this context, TRL's fused LM head projects only labeled positions on a CPU too.

    It widens TRL's device test to CPUs for the duration and restores it on exit, so other trainers in the
    process are unaffected (:func:`hf_lpselect.compat.trl.compact_fused_head_on_cpu`).

    Args:
        enabled (`bool`, *optional*, defaults to `True`):
            ``False`` leaves TRL's choice alone (e.g. under ``torch_compile``, where a new number of
            labeled positions per batch would recompile the graph).

    Example:

    ```python
    >>> with compact_lm_head():
    ...     outputs = model(**batch, fused_lm_head=True)  # doctest: +SKIP
    ```
    """
    with compact_fused_head_on_cpu() if enabled else nullcontext():
        yield


class CompactHeadMixin:
    """Put before ``SFTTrainer`` in a trainer's bases: its training (and eval) loss uses the compact head.

    Example:

    ```python
    >>> class MyTrainer(CompactHeadMixin, SFTTrainer):
    ...     pass
    ```
    """

    def compute_loss(self, model: torch.nn.Module, inputs: dict[str, Any], *args: Any, **kwargs: Any):
        with compact_lm_head(enabled=not self.args.torch_compile):
            return super().compute_loss(model, inputs, *args, **kwargs)
