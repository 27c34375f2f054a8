"""A ``TrainerCallback`` that reports every scoring pass and training epoch of a scorer run to a
progress function (``gr.Progress`` in the Space: called as ``progress(fraction, desc=...)``)."""

from __future__ import annotations

import math
from collections.abc import Callable

from transformers import TrainerCallback


class ProgressCallback(TrainerCallback):
    """Reports ``(fraction done, what is running)`` to ``progress`` through a scorer run: the scoring
    pass before training, each training step, and the pass after each epoch.

    Args:
        progress (`Callable`): called as ``progress(fraction, desc=text)``, e.g. a ``gr.Progress``.
        epochs (`int`): training epochs of the run (its passes are ``epochs + 1``).

    Example:
    ```python
    score("data.jsonl", out="runs/x", epochs=2, callbacks=[ProgressCallback(gr.Progress(), 2)])
    ```
    """

    def __init__(self, progress: Callable[..., object], epochs: int):
        self.progress = progress
        self.epochs = epochs
        self.log: list[str] = []  # every description reported, in order

    def _report(self, fraction: float, desc: str) -> None:
        if not self.log or self.log[-1] != desc:
            self.log.append(desc)
        self.progress(min(max(fraction, 0.0), 1.0), desc=desc)

    def on_train_begin(self, args, state, control, **kwargs):
        self._report(0.0, f"Scoring pass 0 of {self.epochs} (before training)")

    def on_step_end(self, args, state, control, **kwargs):
        epoch = max(1, min(math.ceil(state.epoch or 0), self.epochs))
        self._report(state.global_step / max(state.max_steps, 1), f"Training epoch {epoch} of {self.epochs}")

    def on_epoch_end(self, args, state, control, **kwargs):
        epoch = int(round(state.epoch or 0))
        self._report(
            state.global_step / max(state.max_steps, 1), f"Scoring pass {epoch} of {self.epochs} (after epoch {epoch})"
        )
