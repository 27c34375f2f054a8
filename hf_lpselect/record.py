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

from .core.io import write_json
from .errors import RunError


RECORD_KIND = "hf_lpselect.run"
# the training recipe as a person reads it (cards, reports): a view of the identity
RECIPE_FIELDS = (
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "bf16",
    "score_precision",
    "use_peft",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
)
# the recipe fields that exist only in a LoRA run (use_peft true)
LORA_FIELDS = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules")


# Fields that cannot change a score: where files and logs go, trackers, progress bars, the Hub.
_NOT_IDENTITY = {
    "output_dir",
    "overwrite_output_dir",
    "keep_checkpoints",
    "report_to",
    "run_name",
    "project",
    "disable_tqdm",
    "resume_from_checkpoint",
    "push_to_hub",
    "dataloader_num_workers",
    "dataloader_persistent_workers",
    "dataloader_prefetch_factor",
    "dataloader_pin_memory",
    "skip_memory_metrics",
    "ddp_timeout",
    "save_strategy",
    "save_steps",
    "save_total_limit",
    "save_only_model",
    "save_safetensors",
    "save_on_each_node",
    "log_level",
    "log_level_replica",
    "log_on_each_node",
    "logging_dir",
    "logging_strategy",
    "logging_steps",
    "logging_first_step",
    "logging_nan_inf_filter",
    "trackio_space_id",
    "use_cpu",
    "local_rank",
    "ignore_bias_buffers",
    "restore_callback_states_from_checkpoint",
    "dataset_test_split",
    "dataset_streaming",
    # how a pass is batched changes its speed and memory, not its scores: the batched pass equals
    # the one-row loop in fp32 (tested); under bf16 they differ by bf16 rounding only (~1e-4 in NLL)
    "score_batch_size",
    "score_token_budget",
}
_NOT_IDENTITY_PREFIXES = (
    "hub_",
    "eval_",
    "do_",
    "per_device_eval",
    "include_",
    "_",
    "logging_",
    "save_",
    "push_to_hub",
)


def is_identity_field(name: str) -> bool:
    """Whether an argument can change a run's scores (and so belongs to its identity)."""
    return name not in _NOT_IDENTITY and not name.startswith(_NOT_IDENTITY_PREFIXES)


def identity_of(*argument_dicts: dict[str, Any]) -> dict[str, Any]:
    """The identity fields of argument dataclasses (as dicts: ``asdict`` or ``TrainingArguments.to_dict``), JSON values.

    Derived from the fields minus those that cannot change a score (paths, logging, trackers, the
    Hub), so a new field is part of the identity unless it is known not to matter.
    """
    identity: dict[str, Any] = {}
    for values in argument_dicts:
        for name, value in values.items():
            if is_identity_field(name):
                identity[name] = (
                    value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else str(value)
                )
    return identity


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
        columns (`dict`): the source's columns renamed to a known format's (``--columns``) when its rows are read.
    """

    source: str
    split: str = "train"
    config: str | None = None
    revision: str | None = None
    n_rows: int = 0
    fingerprint: str = ""
    stored: bool = False
    columns: dict[str, str] = field(default_factory=dict)


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
        """The training recipe fields of the identity (learning rate, schedule, batch, precision; LoRA's only
        in a LoRA run)."""
        lora = bool(self.identity.get("use_peft"))
        return {k: self.identity[k] for k in RECIPE_FIELDS if k in self.identity and (lora or k not in LORA_FIELDS)}

    def save(self, run_dir: str | os.PathLike) -> None:
        """Write ``run_dir/run.json`` atomically."""
        write_json(asdict(self), Path(run_dir) / "run.json")

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> RunRecord:
        """Read ``run_dir/run.json``; a missing, unreadable or foreign file is one :class:`RunError`."""
        path = Path(run_dir) / "run.json"
        if not path.is_file():
            raise RunError(f"{Path(run_dir)} is not a scorer run (no run.json): run `lpselect score` into it first.")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise RunError(
                f"{path} cannot be read ({err}); it was not written by hf_lpselect or was damaged."
            ) from None
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
            raise RunError(
                f"{path} is an incomplete run record ({err}); score again into a new output directory."
            ) from None


def identity_differences(previous: RunRecord, identity: dict[str, Any], fingerprint: str) -> list[str]:
    """What differs between a recorded run and a new one: the identity fields (an older record may hold more),
    and ``"dataset content"`` when the rows' fingerprints differ. Empty: the new one may resume the recorded one."""
    keys = sorted(k for k in set(identity) | set(previous.identity) if is_identity_field(k))
    differ = [k for k in keys if previous.identity.get(k) != identity.get(k)]
    return differ + (["dataset content"] if previous.dataset.fingerprint != fingerprint else [])
