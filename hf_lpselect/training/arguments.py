"""The arguments of ``lpselect train``: TRL's own dataclasses, the paper's recipe, and one of ours.

``lpselect train`` parses with a :class:`trl.TrlParser` (:class:`hf_lpselect.core.parser.ArgumentParser`) over exactly what ``trl sft`` parses
(``ScriptArguments``, an ``SFTConfig``, ``ModelConfig``, ``DatasetMixtureConfig``) plus
:class:`SelectionArguments`, so every ``trl sft`` flag works with TRL's spelling and
``--config recipe.yaml`` works as it does for TRL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trl import DatasetMixtureConfig, ModelConfig, ScriptArguments, SFTConfig

from ..core.hardware import has_accelerator, resolve_bf16
from ..core.parser import ArgumentParser, field_names
from ..errors import TrainError
from ..scoring.arguments import lora_target_modules_field
from ..scoring.trainer import ScorerConfig
from ..selection.arguments import SubsetArguments


# the recipe as recorded in lpselect_train.json and on the model card
RECIPE_KEYS = (
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "weight_decay",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "seed",
    "bf16",
)
TEMPLATES = ("auto", "alpaca", "chat", "plain", "trl")


def _recipe_field(name: str):
    """A field with ScorerConfig's default (the paper's value) and SFTConfig's help text."""
    return field(
        default=ScorerConfig.__dataclass_fields__[name].default, metadata=SFTConfig.__dataclass_fields__[name].metadata
    )


@dataclass
class TrainConfig(SFTConfig):
    """``SFTConfig`` with the paper's recipe (docs/method.md) as defaults, the same values as ``ScorerConfig``.

    Defaults that differ from TRL's ``SFTConfig``:

    - ``lr_scheduler_type``: ``"cosine"`` instead of ``"linear"``;
    - ``warmup_steps``: ``0.03`` (3 % of the steps) instead of ``0``;
    - ``per_device_train_batch_size``: ``4`` instead of ``8``;
    - ``gradient_accumulation_steps``: ``8`` instead of ``1`` (4 x 8 = 32 rows per device and step);
    - ``max_length``: ``512`` instead of ``1024``;
    - ``activation_checkpointing`` (TRL's ``gradient_checkpointing``): off on a machine with no accelerator,
      where memory is plentiful and recomputing activations costs a third more time per step; TRL's ``True``
      elsewhere;
    - ``use_cpu``: ``True`` on a machine with no accelerator (TRL's bf16 default fails there otherwise);
    - ``bf16``: only where the device computes bf16 natively (a CPU with AMX or AVX-512 BF16, a GPU of compute
      capability 8.0 or more) instead of always; float32 elsewhere, announced in one line.

    ``padding_free`` keeps TRL's default (off) and TRL's meaning, and works with our rows although
    ``max_length`` is set: they are truncated before TRL sees them. The model is checked first and
    refused where its attention would mix packed rows (:mod:`hf_lpselect.padding_free`).

    The rest of the recipe is TRL's default already: ``learning_rate=2e-5``, ``weight_decay=0.0``,
    ``num_train_epochs=3``, ``seed=42``.

    It is also the config for your own ``SFTTrainer`` script with a
    :class:`~hf_lpselect.scoring.trainer.LearningPercentageCallback` (docs/trl.md): TRL's ``SFTConfig("out")``
    raises on a machine without a GPU (its bf16 default), this one runs there.

    Example:

    ```python
    >>> TrainConfig(output_dir="out").lr_scheduler_type
    <SchedulerType.COSINE: 'cosine'>
    ```
    """

    lr_scheduler_type: str = _recipe_field("lr_scheduler_type")
    warmup_steps: float = _recipe_field("warmup_steps")
    per_device_train_batch_size: int = _recipe_field("per_device_train_batch_size")
    gradient_accumulation_steps: int = _recipe_field("gradient_accumulation_steps")
    max_length: int | None = _recipe_field("max_length")
    # set through transformers 5's name, so TRL's deprecated one prints no FutureWarning
    activation_checkpointing: bool | None = field(
        default=None,
        metadata={
            "help": "Recompute activations in the backward pass to save memory "
            "(default: on with an accelerator, off on a CPU)."
        },
    )
    gradient_checkpointing: bool | None = None
    padding_free: bool = field(default=False, metadata=ScorerConfig.__dataclass_fields__["padding_free"].metadata)
    bf16: bool | None = field(default=None, metadata=ScorerConfig.__dataclass_fields__["bf16"].metadata)

    def __post_init__(self):
        if not has_accelerator():
            self.use_cpu = True
        self.bf16 = resolve_bf16(self.bf16, device="cpu" if self.use_cpu else None, fp16=self.fp16)
        if self.activation_checkpointing is None and self.gradient_checkpointing is None:
            self.activation_checkpointing = not self.use_cpu
        super().__post_init__()


@dataclass
class TrainModelConfig(ModelConfig):
    """TRL's ``ModelConfig`` with the LoRA defaults of ``lpselect score`` (``ScorerModelConfig``, one declaration):
    with ``--use_peft``, LoRA on all linear layers (``lora_target_modules`` ``all-linear``) instead of PEFT's
    ``q_proj`` and ``v_proj``; ``lora_r`` 16, ``lora_alpha`` 32, ``lora_dropout`` 0.05 are TRL's in both.

    Example:

    ```python
    >>> TrainModelConfig(model_name_or_path="default", use_peft=True).lora_target_modules
    'all-linear'
    ```
    """

    lora_target_modules: list[str] | None = lora_target_modules_field()


@dataclass
class SelectionArguments(SubsetArguments):
    """Where the training rows come from, beyond TRL's ``--dataset_name``/``--dataset_config``: the
    :class:`~hf_lpselect.selection.arguments.SubsetArguments` (``--run`` or a dataset pushed by
    ``lpselect push-scores`` as ``--dataset_name``, with ``--strategy`` and a size; ``--seed`` seeds training,
    ``--selection_seed`` the selection), plus the prompt:

    Args:
        template (`str`, *optional*, defaults to `"auto"`):
            ``auto``: the scorer's template when the source records it (run.json, the dataset card),
            else as ``lpselect score`` chooses; ``alpaca``, ``chat``, ``plain``: that template;
            ``trl``: hand a plain dataset to TRL unchanged (plain ``trl sft``).

    Example:

    ```python
    >>> SelectionArguments(run="runs/mine", strategy="lp1-hard", fraction=0.05)
    ```
    """

    template: str = field(
        default="auto",
        metadata={
            "help": "auto (the scorer's template when recorded), alpaca, chat, plain, or trl (the dataset to TRL unchanged).",
            "choices": list(TEMPLATES),
        },
    )


ARGUMENT_TYPES = (ScriptArguments, TrainConfig, TrainModelConfig, DatasetMixtureConfig, SelectionArguments)


@dataclass
class TrainArguments:
    """Everything ``lpselect train`` parsed, one dataclass per concern (TRL's four and ours)."""

    script: ScriptArguments
    training: TrainConfig
    model: TrainModelConfig
    mixture: DatasetMixtureConfig
    selection: SelectionArguments


def make_parser(prog: str | None = "lpselect train") -> ArgumentParser:
    """The parser of ``lpselect train`` (a ``TrlParser``; ``--help`` lists every option)."""
    return ArgumentParser(
        ARGUMENT_TYPES,
        prog=prog,
        usage="lpselect train --model_name_or_path MODEL (--dataset_name DATA [--dataset_config CONFIG] | --run RUN) "
        "[--strategy STRATEGY (--fraction F | --count N)] [--config recipe.yaml] [OPTIONS]",
        description="Fine-tune a target model with TRL's SFT on a curated split, with the scorer's prompt and "
        "masks. The rows: --dataset_name ORG/DATA --dataset_config lp1_hard_5pct (a config pushed by lpselect "
        "push-scores), or --dataset_name ORG/DATA --strategy lp1-hard --fraction 0.07, or --run runs/NAME --strategy "
        "lp1-hard --fraction 0.05, or any --dataset_name. Every trl sft option works in TRL's spelling and with "
        "dashes; --seed is the training seed, --selection_seed the selection's.",
    )


def parse_train_args(args: list[str] | None = None) -> TrainArguments:
    """Parse command-line strings (``--config recipe.yaml`` included) as ``trl sft`` does.

    Example:

    ```python
    >>> parse_train_args(["--model_name_or_path", "m", "--run", "runs/x", "--strategy", "lp1-hard",
    ...                   "--fraction", "0.05", "--use_peft", "--lora_r", "8"]).model.lora_r
    8
    ```
    """
    return TrainArguments(*make_parser().parse(args))


def train_arguments(**kwargs: Any) -> TrainArguments:
    """The same arguments as keywords, under their field names or short names
    (:data:`~hf_lpselect.core.parser.ALIASES`): ``train_arguments(model="m", dataset_name="d", epochs=1)``.

    Raises:
        TrainError: an unknown name.
    """
    names = field_names(ARGUMENT_TYPES)
    unknown = sorted(set(kwargs) - set(names))
    if unknown:
        raise TrainError(f"Unknown argument(s) {', '.join(unknown)}; use the names of `lpselect train --help`.")
    return TrainArguments(*make_parser().parse_dict({names[k]: v for k, v in kwargs.items()}))
