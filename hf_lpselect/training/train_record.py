"""``OUTPUT_DIR/lpselect_train.json``: what a target model was trained on (:class:`TrainRecord`).

Written by :func:`hf_lpselect.training.training_run.train` before training, read back on resume and by the
model card (:mod:`hf_lpselect.training.model_card`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.io import write_json
from ..errors import TrainError
from ..models import TRAIN_RECORD_FILE as RECORD_FILE


@dataclass
class TrainRecord:
    """What a target model was trained on: written to ``OUTPUT_DIR/lpselect_train.json`` before training.

    ``row_ids`` are the content ids (the scorer's row ids, ``lpselect_id`` on the Hub) of the rows
    trained on, in dataset order; ``skipped`` lists the given rows that were not trained on
    (``invalid``, ``duplicate``, or ``excluded`` when truncation to ``max_length`` left no response
    token), with the reason. ``optimizer_steps`` is the number of optimizer steps the recipe makes on
    those rows (:func:`~hf_lpselect.training.schedule.optimizer_steps`).
    """

    origin: str  # subset-config | hub-selection | run-selection | dataset
    dataset: str | None
    dataset_config: str | None
    split: str
    revision: str | None
    run: str | None
    selection: dict[str, Any] | None
    scorer: dict[str, Any] | None
    model: str
    template: str
    recipe: dict[str, Any]
    peft: dict[str, Any] | None
    n_rows: int
    n_trained: int
    row_ids: list[str]
    skipped: list[dict[str, str]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    optimizer_steps: int | None = None  # as the recipe plans them (hf_lpselect.training.schedule)
    model_spec: str | None = None  # the model as given (``default``, a .gguf file …); ``model`` is its name

    def save(self, output_dir: str | Path) -> Path:
        """Write ``OUTPUT_DIR/lpselect_train.json`` (atomically)."""
        path = Path(output_dir) / RECORD_FILE
        write_json(asdict(self), path)
        return path

    @classmethod
    def load(cls, output_dir: str | Path) -> TrainRecord:
        """Read ``OUTPUT_DIR/lpselect_train.json``; a damaged or foreign file is one :class:`TrainError`."""
        path = Path(output_dir) / RECORD_FILE
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as err:
            raise TrainError(
                f"{path} cannot be read as an lpselect train record ({err}); pass another --output_dir."
            ) from None
