"""The arguments of a scorer run, declared once: ``ScoreArguments`` + ``ScorerConfig`` + ``ScorerModelConfig``.

``lpselect score`` parses the three with ``trl.TrlParser`` (so every TRL flag works in TRL's
spelling and ``--config recipe.yaml`` works), :func:`hf_lpselect.score` takes the same names as
keyword arguments, and the run identity that decides whether a re-run may resume is derived from
the same fields (:func:`run_identity`), so nothing that changes scores can be left out of it.

Short forms users already type are aliases of the TRL names, declared once for every command
(:data:`hf_lpselect.core.parser.ALIASES`): ``--model`` (``--model_name_or_path``), ``--epochs``
(``--num_train_epochs``), ``--out`` (``--output_dir``), ``--split``, ``--subset``, ``--revision``,
``--lora`` (``--use_peft``), ``--batch_size`` and ``--grad_accum`` (also with dashes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from trl import ModelConfig, ScriptArguments

from ..core.parser import ArgumentParser, field_names
from ..errors import ConfigError, DataError
from ..ingest import FORMATS, parse_column_map
from ..record import identity_of
from .trainer import ScorerConfig


ROW_FORMATS = ("auto", *FORMATS)


@dataclass
class ScoreArguments(ScriptArguments):
    """What to score: TRL's ``ScriptArguments`` (``dataset_name``, ``dataset_config``,
    ``dataset_train_split``) plus the scorer run's own choices. (The prompt template is
    ``ScorerConfig.template``: the trainer tokenises.)

    Args:
        format (`str`, *optional*, defaults to `"auto"`):
            Row format: alpaca, dolly, sharegpt, messages, prompt-completion, or auto (from the columns).
        columns (`str` or `None`, *optional*, defaults to `None`):
            Rename the source's columns to a known format's before reading: ``"question=instruction,answer=output"``.
        limit (`int` or `None`, *optional*, defaults to `None`):
            Only the first N input rows (quick trials).
        ifd (`bool`, *optional*, defaults to `False`):
            Also score each response without its prompt before training (the IFD baselines).
        keep_checkpoints (`bool`, *optional*, defaults to `False`):
            Keep the epoch checkpoints once the run is complete.

    Example:

    ```python
    >>> ScoreArguments(dataset_name="data.jsonl", format="alpaca", limit=100)
    ```
    """

    dataset_name: str | None = field(
        default=None,
        metadata={
            "positional": True,
            "help": "A Hub dataset id, a .json/.jsonl/.parquet file, or a save_to_disk folder "
            "(also the first positional argument of `lpselect score`).",
        },
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Config (subset) of a Hub dataset."})
    dataset_train_split: str = field(default="train", metadata={"help": "Split to score."})
    format: str = field(default="auto", metadata={"help": "Row format: " + ", ".join(ROW_FORMATS) + "."})
    columns: str | None = field(
        default=None,
        metadata={
            "help": "Rename your columns to a known format's first: YOURS=FORMAT pairs, comma-separated, e.g. "
            "question=instruction,answer=output (alpaca), or prompt=prompt,reply=completion."
        },
    )
    limit: int | None = field(default=None, metadata={"help": "Only the first N input rows (quick trials)."})
    ifd: bool = field(
        default=False,
        metadata={
            "help": "Also score each response without its prompt before training (IFD baselines; "
            "with --epochs 0 no training at all)."
        },
    )
    keep_checkpoints: bool = field(
        default=False, metadata={"help": "Keep the epoch checkpoints once the run is complete."}
    )

    def __post_init__(self):
        if self.format not in ROW_FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(ROW_FORMATS)}, got {self.format!r}.")
        try:  # one spelling of the same mapping, so "a=b, c=d" and "a=b,c=d" are the same run
            self.columns = ",".join(f"{k}={v}" for k, v in parse_column_map(self.columns).items()) or None
        except DataError as err:
            raise ConfigError(str(err)) from None
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be 1 or more, got {self.limit}.")
        if self.dataset_streaming:
            raise ConfigError("--dataset_streaming is not supported: a scorer run reads every row of the dataset.")


def lora_target_modules_field() -> Any:
    """The LoRA target modules' field, one declaration for ``lpselect score`` and ``lpselect train``: all linear
    layers (TRL's ``ModelConfig`` has none, and PEFT then adapts ``q_proj`` and ``v_proj`` only)."""
    return field(
        default_factory=lambda: ["all-linear"],
        metadata={"help": "LoRA target modules; all-linear: every linear layer."},
    )


@dataclass
class ScorerModelConfig(ModelConfig):
    """TRL's ``ModelConfig`` (``--model_name_or_path``, ``--use_peft --lora_r …``, ``--load_in_4bit``)
    with the scorer's defaults: the embedded SmolLM2-135M-Instruct (``default``), float32 weights
    (bf16 runs as autocast), and LoRA on all linear layers when ``--use_peft`` is given.

    ``model_name_or_path`` also takes a local folder or a ``.gguf`` file (converted once).
    """

    model_name_or_path: str | None = field(
        default="default",
        metadata={
            "help": "Scorer model: a Hub id, a local folder, a .gguf file, or 'default' "
            "(SmolLM2-135M-Instruct, offline).",
        },
    )
    model_revision: str = field(default="main", metadata={"help": "Branch, tag or commit on the Hub."})
    use_peft: bool = field(default=False, metadata={"help": "Train LoRA adapters (peft) instead of all weights."})
    lora_target_modules: list[str] | None = lora_target_modules_field()


SCORE_DATACLASSES = (ScoreArguments, ScorerConfig, ScorerModelConfig)


def score_parser() -> ArgumentParser:
    """The parser of ``lpselect score`` (a ``TrlParser``: every field a flag, ``--config`` YAML)."""
    return ArgumentParser(
        SCORE_DATACLASSES,
        prog="lpselect score",
        usage="lpselect score DATASET [--config recipe.yaml] [--model default] [--epochs 3] [--out runs/NAME] [OPTIONS]",
        description="Scorer run: fine-tune a small model on DATASET (a Hub id, a .json/.jsonl/.parquet file or a "
        "save_to_disk folder) and score every row's response perplexity before training and after each epoch; "
        "writes LP(1) and the other scores into the run directory. Re-running the same command resumes. "
        "Every TRL SFTConfig and ModelConfig option works in TRL's spelling and with dashes.",
    )


def parse_score_args(argv: list[str]) -> tuple[ScoreArguments, ScorerConfig, ScorerModelConfig]:
    """Parse ``lpselect score`` arguments; a first bare word is the dataset.

    Example:

    ```python
    >>> script, args, model = parse_score_args(["data.jsonl", "--model", "default", "--learning_rate", "1e-4"])
    ```
    """
    return score_parser().parse(argv)


def build_score_args(**kwargs: Any) -> tuple[ScoreArguments, ScorerConfig, ScorerModelConfig]:
    """The three dataclasses from keyword arguments: field names or their short names
    (:data:`~hf_lpselect.core.parser.ALIASES`: ``model``, ``epochs``, ``out`` …).

    Raises:
        ConfigError: an unknown name, or a value a dataclass refuses.
    """
    names = field_names(SCORE_DATACLASSES)
    unknown = sorted(set(kwargs) - set(names))
    if unknown:
        raise ConfigError(f"Unknown argument(s) {', '.join(unknown)}: see `lpselect score --help` for every name.")
    values = {names[k]: v for k, v in kwargs.items()}
    if values.get("output_dir") is not None:
        values["output_dir"] = str(values["output_dir"])
    return tuple(score_parser().parse_dict(values))


def run_identity(script: ScoreArguments, args: ScorerConfig, model_args: ScorerModelConfig) -> dict[str, Any]:
    """Every argument that can change a run's scores, as plain JSON values.

    Derived from the dataclasses' fields minus those that cannot change a score (paths, logging,
    trackers, the Hub), so a new field is part of the identity unless it is known not to matter.
    """
    return identity_of(dataclasses.asdict(script), args.to_dict(), dataclasses.asdict(model_args))
