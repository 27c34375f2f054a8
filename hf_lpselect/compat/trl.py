"""TRL's private names we rely on (canaries: ``tests/test_compat.py``).

- ``trl.trainer.utils._use_triton(device)``: the fused LM head's test for the devices where it projects
  only the labeled positions; widened to CPUs by :func:`compact_fused_head_on_cpu`.
- ``SFTTrainer.__init__``'s refusal of ``padding_free`` with ``max_length`` (without packing, TRL cannot
  truncate): :func:`max_length_hidden` hides ``max_length`` from it, for rows truncated already.
- ``SFTTrainer._tag_names``, ``_name`` and ``_paper``: what TRL's own model card says of the trainer, read by
  :func:`trainer_card_info`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def compact_fused_head_on_cpu() -> Iterator[None]:
    """Within this context, TRL's fused LM head takes its compact path (labeled positions only) on a CPU too.

    It widens ``trl.trainer.utils._use_triton``, which the fused head reads on each call, to CPUs, and
    restores it on exit, so other trainers in the process are unaffected.

    Example:

    ```python
    >>> with compact_fused_head_on_cpu():
    ...     outputs = model(**batch, fused_lm_head=True)  # doctest: +SKIP
    ```
    """
    import trl.trainer.utils as trl_utils

    original = trl_utils._use_triton
    trl_utils._use_triton = lambda device: device.type == "cpu" or original(device)
    try:
        yield
    finally:
        trl_utils._use_triton = original


@contextmanager
def max_length_hidden(config: Any) -> Iterator[None]:
    """Hide ``config.max_length`` from ``SFTTrainer.__init__``'s padding-free check for the duration.

    TRL refuses ``padding_free`` without packing whenever ``max_length`` is set, because it would not
    truncate; rows tokenised and truncated to ``max_length`` already need no truncation.

    Args:
        config (`trl.SFTConfig`): the trainer's arguments; ``max_length`` is set back on exit.

    Example:

    ```python
    >>> with max_length_hidden(args):
    ...     trainer = SFTTrainer(model, args, train_dataset=rows)  # doctest: +SKIP
    ```
    """
    max_length = config.max_length
    config.max_length = None
    try:
        yield
    finally:
        config.max_length = max_length


def trainer_card_info(trainer: Any) -> dict[str, Any]:
    """What TRL's own model card says of a TRL trainer: its tags, its name and its paper.

    Args:
        trainer (`trl.SFTTrainer` or a subclass): the trainer.

    Returns:
        `dict` with ``tags`` (`list[str]`, e.g. ``["trl", "sft"]``), ``trainer_name`` (`str`, e.g. ``"SFT"``)
        and ``paper`` (`dict`, empty for SFT).
    """
    return {"tags": list(trainer._tag_names), "trainer_name": trainer._name, "paper": trainer._paper}
