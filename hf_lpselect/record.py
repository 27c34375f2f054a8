"""``run.json`` as a typed record: what a scorer run is, what it read, and how it went.

One :class:`RunRecord` is written when a run starts (``complete: false``) and again when it ends.
It is read back with :meth:`RunRecord.load` everywhere (select, report, clusters, push), never as a
loose dict. ``identity`` holds every argument that changes scores; a re-run with another identity
is refused instead of mixing two runs' passes.

Pure module: no torch, so the command line can read a run without loading a model.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import RunError

RECORD_KIND = "hf_lpselect.run"
# the training recipe as a person reads it (cards, reports): a view of the identity
RECIPE_FIELDS = ("learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay", "per_device_train_batch_size",
                 "gradient_accumulation_steps", "bf16", "score_precision", "use_peft", "lora_r",
                 "lora_alpha", "lora_dropout")


@dataclass
class DatasetRecord:
    """Where a run's rows came from.

    Args:
        source (`str`): the Hub id, file or folder the rows were read from, or ``"source.parquet"``
            when the rows were given in memory and stored with the run (``stored=True``).
        split (`str`): the split that was read.
        config (`str` or `None`): the Hub dataset config (subset) that was read.
        revision (`str` or `None`): the Hub commit the rows were read at.
        n_rows (`int`): input rows scored (after ``limit``).
        fingerprint (`str`): hash of the ordered content ids of those rows.
        stored (`bool`): the source rows are stored in the run directory.
    """

    source: str
    split: str = "train"
    config: str | None = None
    revision: str | None = None
    n_rows: int = 0
    fingerprint: str = ""
    stored: bool = False


@dataclass
class RunRecord:
    """The typed contents of ``run.json``.

    Args:
        identity (`dict`): every argument that changes scores (data, model, template, recipe …) and
            the model's own identity (weights hash or Hub commit). Equal identities may resume.
        dataset (`DatasetRecord`): where the rows came from.
        format (`str`): the row format that was read (``alpaca``, ``messages`` …).
        template (`str`): the prompt template that was applied.
        epochs (`int`): training epochs; passes ``0..epochs`` are scored.
        model (`dict`): the scorer model's identity (name, source, revision, weights hash, size).
        counts (`dict`): rows by status, and ``truncated``.
        versions (`dict`): library versions.
        world_size (`int`): processes that trained.
        complete (`bool`): the run finished and ``scores.parquet`` is final.
        hardware (`dict`): the device this call ran on (:class:`~hf_lpselect.core.hardware.Hardware`) and the
            precision of training and of the scoring passes (``bf16`` or ``fp32``).
        timings (`dict`), lp1_summary (`dict` or `None`), diverged (`dict` or `None`): how it went.

    Example:

    ```python
    >>> from hf_lpselect.record import RunRecord
    >>> record = RunRecord.load("runs/mine")
    >>> record.dataset.source, record.epochs, record.complete
    ('data.jsonl', 3, True)
    ```
    """

    identity: dict[str, Any]
    dataset: DatasetRecord
    format: str
    template: str
    epochs: int
    model: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    world_size: int = 1
    complete: bool = False
    hardware: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    lp1_summary: dict[str, Any] | None = None
    diverged: dict[str, Any] | None = None
    kind: str = RECORD_KIND

    @property
    def model_name(self) -> str:
        """The scorer's name as a person reads it (the Hub id, or the local folder's spec)."""
        return str(self.model.get("model") or self.identity.get("model_name_or_path") or "")

    @property
    def recipe(self) -> dict[str, Any]:
        """The training recipe fields of the identity (learning rate, schedule, batch, precision, LoRA)."""
        return {k: self.identity[k] for k in RECIPE_FIELDS if k in self.identity}

    def save(self, run_dir: str | os.PathLike) -> None:
        """Write ``run_dir/run.json`` atomically."""
        from .rundir import write_json

        write_json(asdict(self), Path(run_dir) / "run.json")

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> "RunRecord":
        """Read ``run_dir/run.json``; a missing, unreadable or foreign file is one :class:`RunError`."""
        path = Path(run_dir) / "run.json"
        if not path.is_file():
            raise RunError(f"{Path(run_dir)} is not a scorer run (no run.json): run `lpselect score` into it first.")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise RunError(f"{path} cannot be read ({err}); it was not written by hf_lpselect or was damaged.") from None
        if not isinstance(data, dict) or data.get("kind") != RECORD_KIND:
            raise RunError(
                f"{path} is not an hf_lpselect run record (written by another tool or an older hf_lpselect); "
                "score again into a new output directory."
            )
        names = {f.name for f in fields(cls)}
        try:
            data["dataset"] = DatasetRecord(**data["dataset"])
            return cls(**{k: v for k, v in data.items() if k in names})
        except (TypeError, KeyError) as err:
            raise RunError(f"{path} is an incomplete run record ({err}); score again into a new output directory.") from None
