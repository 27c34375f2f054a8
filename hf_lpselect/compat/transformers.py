"""transformers' private names we rely on (canaries: ``tests/test_compat.py``).

- ``Trainer._save_checkpoint(model, trial)`` and ``Trainer._get_output_dir(trial)``: every checkpoint save,
  into ``OUTPUT_DIR/checkpoint-N``; :class:`CheckpointSaveHook` wraps each one.
- ``Trainer._set_signature_columns_if_needed`` and ``Trainer._signature_columns``: the dataset columns the
  trainer keeps for the model's forward; :class:`SignatureColumns` names them instead of the forward's
  signature.

Light: transformers is imported when a checkpoint is saved, not when this module is.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any


class CheckpointSaveHook:
    """A ``Trainer`` mixin: each checkpoint save runs inside :meth:`checkpoint_saving` (``folder``: where it goes).

    Example:

    ```python
    >>> class MyTrainer(CheckpointSaveHook, Trainer):
    ...     def checkpoint_saving(self, folder):
    ...         return saving_into(folder)  # doctest: +SKIP
    ```
    """

    def checkpoint_saving(self, folder: Path) -> AbstractContextManager:
        """The context one checkpoint save into ``folder`` runs in (here: none)."""
        return nullcontext()

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

        folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        with self.checkpoint_saving(folder):
            super()._save_checkpoint(model, trial)


class SignatureColumns:
    """A ``Trainer`` mixin: the trainer keeps the dataset columns named in :attr:`signature_columns` (when set)
    for the model's forward, rather than those of the forward's signature.

    Example:

    ```python
    >>> class MyTrainer(SignatureColumns, Trainer):
    ...     signature_columns = ("input_ids", "labels", "row")
    ```
    """

    signature_columns: tuple[str, ...] | None = None

    def _set_signature_columns_if_needed(self) -> None:
        if self.signature_columns is None:
            super()._set_signature_columns_if_needed()
        elif self._signature_columns is None:
            self._signature_columns = list(self.signature_columns)
