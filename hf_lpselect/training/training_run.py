"""``lpselect train``: TRL's SFT of a target model on a curated split, with the scorer's prompt and masks.

:func:`train` is what ``lpselect train`` calls. The rows come from a pushed subset config, a
selection made on the fly (from a pushed scored dataset or a local scorer run), or any dataset
``trl sft`` reads (:mod:`hf_lpselect.training.train_rows`). Rows in a format ``lpselect score`` knows are
tokenised with :func:`hf_lpselect.templates.tokenize_rows` (the scorer's template unless
``--template`` says otherwise; response-only loss, EOS scored), so "hard" means at training time
what it meant to the scorer. ``OUTPUT_DIR/lpselect_train.json`` records what was trained on
(:class:`TrainRecord`), and with ``--push_to_hub`` the model card says so (:mod:`hf_lpselect.training.model_card`).

This module is named ``training_run`` (not ``train``) so that ``hf_lpselect.training.train`` stays the
function: importing a submodule named ``train`` would replace the package attribute with the module.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import datasets
from accelerate import PartialState
from transformers import AutoTokenizer, is_wandb_available
from trl import SFTConfig, SFTTrainer, get_peft_config, get_quantization_config
from trl.trainer.utils import get_comet_experiment_url, get_trackio_space_url

from ..compat.trl import trainer_card_info
from ..core.io import saving_into, write_json
from ..errors import ModelError, TrainError
from ..heads import CompactHeadMixin
from ..models import DEFAULT_MODEL, hub_kernels_kwargs, resolve_model_path
from ..padding_free import PaddingFreeMixin
from ..rundir import SafeCheckpointMixin, checkpoint_dirs, run_lock
from ..templates import TRL_TEMPLATE, resolve_template, tokenize_rows
from .arguments import RECIPE_KEYS, TrainArguments, TrainConfig, train_arguments
from .model_card import model_card
from .schedule import check_schedule
from .train_record import RECORD_FILE, TrainRecord
from .train_rows import TrainRows, resolve_rows


@dataclass
class TrainResult:
    """A finished ``lpselect train``: where the model went, what it was trained on, the data it saw."""

    output_dir: Path
    record: TrainRecord
    train_dataset: datasets.Dataset
    hub_url: str | None = None
    optimizer_steps: int | None = None  # the steps training ran (the trainer's global step)

    def summary(self) -> str:
        """A few lines for the terminal."""
        r = self.record
        where = r.run or r.dataset
        what = (
            f"config {r.dataset_config}"
            if r.origin == "subset-config"
            else (
                f"{r.selection['strategy']} at {_size(r.selection)}"
                if r.selection and r.selection.get("strategy")
                else "all rows"
            )
        )
        lines = [f"trained {r.model} on {r.n_trained} of {r.n_rows} rows of {where} ({what}), template {r.template}"]
        if self.optimizer_steps is not None:
            lines.append(
                f"  {self.optimizer_steps} optimizer step(s) at peak learning rate {r.recipe['learning_rate']:g}"
            )
        if r.skipped:
            lines.append(f"  skipped {len(r.skipped)} row(s): see skipped in {RECORD_FILE}")
        lines.append(f"  model and {RECORD_FILE}: {self.output_dir}")
        if self.hub_url:
            lines.append(f"  pushed: {self.hub_url}")
        return "\n".join(lines)


def _size(selection: dict[str, Any]) -> str:
    if selection.get("fraction") is not None:
        return f"{selection['fraction']:.4g} of the eligible rows" + (
            f" (per cluster, K={selection['per_cluster']})" if selection.get("per_cluster") else ""
        )
    return f"{selection.get('count')} rows"


class TargetTrainer(SafeCheckpointMixin, CompactHeadMixin, PaddingFreeMixin, SFTTrainer):
    """TRL's ``SFTTrainer`` whose model card also says what the model was trained on (``record``).

    The card (``cards/model_card.md``) says what TRL's generated card says, with the tag ``lpselect``,
    the dataset linked in its metadata, an ``lpselect:`` metadata block, a section naming the dataset,
    its config or selection, the scorer and the fraction, and the learning-percentage paper's citation.
    """

    _tag_names = ["trl", "sft", "lpselect"]

    def __init__(self, model: Any, args: SFTConfig | None = None, *, record: TrainRecord, **kwargs: Any):
        self.record = record
        super().__init__(model, args, **kwargs)

    def end(self) -> None:
        """Finish the trackers and destroy the process group, on every rank together.

        Under DDP the wrapper's gradient reducer holds the process group. Left to the garbage
        collector after the group was destroyed, a rank's last reference could go when the other rank
        had exited already, and gloo's teardown then waited for it forever (4 of 15 two-process
        ``lpselect train`` runs). So the ranks first wait for each other and drop the wrapper while
        the group is alive; only then is the group destroyed.
        """
        self.accelerator.wait_for_everyone()
        self.accelerator.free_memory()  # accelerate's references to the wrapped model, optimizer, dataloaders
        self.model_wrapped = self.model
        gc.collect()
        getattr(super(), "end", self.accelerator.end_training)()  # Trainer.end: transformers >= 5.18

    def create_model_card(
        self, model_name: str | None = None, dataset_name: str | None = None, tags: str | list[str] | None = None
    ) -> None:
        """Write ``OUTPUT_DIR/README.md`` from our template (:func:`hf_lpselect.training.model_card.model_card`),
        with TRL's hooks: the trainer's ``_tag_names``, ``_name`` and ``_paper``, and the tracker links.
        ``dataset_name`` is not used: the record names the dataset."""
        if not self.is_world_process_zero():
            return
        given = [tags] if isinstance(tags, str) else list(tags or [])
        wandb_url = None
        if is_wandb_available():
            import wandb  # an optional dependency, there only when installed

            wandb_url = wandb.run.url if wandb.run is not None else None
        trackers = {
            "wandb_url": wandb_url,
            "trackio_url": get_trackio_space_url(),
            "comet_url": get_comet_experiment_url(),
        }
        trl_card = trainer_card_info(self)
        card = model_card(
            self.record,
            model_name=model_name,
            hub_model_id=self.hub_model_id,
            tags=[*given, *trl_card["tags"]],
            trainer_name=trl_card["trainer_name"],
            paper=trl_card["paper"],
            trackers=trackers,
            record_file=RECORD_FILE,
        )
        card.save(Path(self.args.output_dir) / "README.md")


def train(args: TrainArguments | None = None, /, **kwargs: Any) -> TrainResult:
    """Fine-tune a target model with TRL's SFT on a curated split; the Python face of ``lpselect train``.

    Takes the keyword arguments of ``lpselect train --help`` (TRL's names, or the short names every
    command shares: ``model``, ``epochs``, ``out`` …), or one parsed
    :class:`~hf_lpselect.training.arguments.TrainArguments`.

    Args:
        model_name_or_path (`str`):
            A Hub id, a local folder, a ``.gguf`` file or ``default`` (SmolLM2-135M-Instruct, offline).
        dataset_name (`str` or `None`, defaults to `None`):
            A Hub dataset id or local path (with ``dataset_config`` a pushed subset config).
        run (`str` or `None`, defaults to `None`):
            A local scorer run to select from, with ``strategy`` and ``fraction`` or ``count``.
        strategy, fraction, count, per_cluster, selection_seed, template:
            See :class:`~hf_lpselect.training.arguments.SelectionArguments`.
        **kwargs:
            Any ``SFTConfig`` / ``ModelConfig`` / ``ScriptArguments`` field (``output_dir``, ``max_steps``,
            ``use_peft``, ``lora_r``, ``push_to_hub``, ``resume_from_checkpoint``, …); the recipe defaults are
            :class:`~hf_lpselect.training.arguments.TrainConfig`'s.

    Returns:
        [`TrainResult`]: the output directory, the provenance record and the tokenised training set.

    Raises:
        [`~hf_lpselect.errors.TrainError`]: both ``args`` and keyword arguments, an unknown keyword, arguments that
            cannot be combined, or an ``output_dir`` holding another training run.
        [`~hf_lpselect.errors.ConfigError`]: an argument value that cannot work.
        [`~hf_lpselect.errors.DataError`]: rows that cannot be read or were not pushed by ``lpselect push-scores``.
        [`~hf_lpselect.errors.SelectionError`]: a selection that cannot be made as asked.
        [`~hf_lpselect.errors.ModelError`]: a model spec that cannot be resolved.

    Example:

    ```python
    >>> import hf_lpselect
    >>> hf_lpselect.train(model_name_or_path="default", run="runs/mine", strategy="lp1-hard", fraction=0.05,
    ...                   output_dir="out/hard5")
    ```
    """
    if args is not None and kwargs:
        raise TrainError("Pass either parsed TrainArguments or keyword arguments to train(), not both.")
    return run_train(args if args is not None else train_arguments(**kwargs))


def run_train(args: TrainArguments) -> TrainResult:
    """Train as :func:`train` does, from parsed arguments (:func:`~hf_lpselect.training.arguments.parse_train_args`)."""
    training, model_args = args.training, args.model
    if not model_args.model_name_or_path:
        raise TrainError(
            "Name the model to train: --model_name_or_path (a Hub id, a folder, a .gguf file or default)."
        )
    rows = resolve_rows(args.script, args.selection, args.mixture)
    path, model_name = _model_path(model_args.model_name_or_path)
    tokenizer = _tokenizer(path, model_args.model_revision, training.trust_remote_code)
    train_set, template, skipped, trained_ids = _training_set(rows, tokenizer, args)
    if len(train_set) == 0:
        raise TrainError(
            f"No row left to train on: all {len(rows.ids)} given rows were skipped ({skipped[0]['reason']})."
        )
    state = PartialState()
    planned = check_schedule(len(train_set), training, state.num_processes)  # before anything is written
    record = TrainRecord(
        origin=rows.origin,
        dataset=rows.dataset,
        dataset_config=rows.dataset_config,
        split=rows.split,
        revision=rows.revision,
        run=rows.run,
        selection=rows.selection,
        scorer=rows.scorer,
        model=model_name,
        model_spec=model_args.model_name_or_path,
        template=template,
        recipe={k: _plain_value(getattr(training, k)) for k in RECIPE_KEYS},
        peft={
            k: _plain_value(getattr(model_args, k))
            for k in ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "load_in_4bit", "load_in_8bit")
        }
        if model_args.use_peft
        else None,
        n_rows=len(rows.ids),
        n_trained=len(train_set),
        row_ids=trained_ids,
        skipped=skipped,
        versions={lib: version(lib) for lib in ("hf-lpselect", "torch", "transformers", "trl", "datasets", "peft")},
        optimizer_steps=planned.steps,
    )
    output_dir = Path(training.output_dir)
    state = PartialState()
    _check_resume(output_dir, record, training.resume_from_checkpoint)  # a folder not ours is refused before our lock
    with ExitStack() as stack:
        if state.is_main_process:  # a second `lpselect train` into the folder is refused while this one runs
            stack.enter_context(run_lock(output_dir, name=_LOCK))
        resume = _check_resume(output_dir, record, training.resume_from_checkpoint)  # what holds now, under the lock
        state.wait_for_everyone()  # every rank has checked the directory before rank 0 writes into it
        if state.is_main_process:
            record.save(output_dir)
        training.model_init_kwargs = {
            "revision": model_args.model_revision,
            "trust_remote_code": training.trust_remote_code,
            "attn_implementation": model_args.attn_implementation,
            "dtype": model_args.dtype,
            **hub_kernels_kwargs(training.model_init_kwargs or {}),  # offline: torch's kernels, not a fetch at step 1
            **(training.model_init_kwargs or {}),
        }
        trainer = TargetTrainer(
            model=path,
            args=training,
            train_dataset=train_set,
            processing_class=tokenizer,
            quantization_config=get_quantization_config(model_args),
            peft_config=get_peft_config(model_args),
            record=record,
        )
        trainer.train(resume_from_checkpoint=resume)
        _save_final_model(trainer, output_dir, state)
        trainer.create_model_card(model_name=_card_name(training))  # on the main process; ours, not PEFT's template
        url = None
        if training.push_to_hub:
            commit = trainer.push_to_hub()
            url = getattr(commit, "commit_url", None) or f"{trainer.hub_model_id}"
        trainer.end()
        return TrainResult(
            output_dir=output_dir,
            record=record,
            train_dataset=train_set,
            hub_url=url,
            optimizer_steps=trainer.state.global_step,
        )


def _model_path(spec: str) -> tuple[str, str]:
    """What TRL loads (``default`` and ``.gguf`` converted once to a folder) and the model's name for the record."""
    if spec == DEFAULT_MODEL or spec.endswith(".gguf"):
        path, identity = resolve_model_path(spec)
        return path, identity["model"]
    return spec, spec


def _tokenizer(path: str, revision: str | None, trust_remote_code: bool):
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, revision=revision, trust_remote_code=trust_remote_code)
    except OSError as err:
        raise ModelError(f"Could not load the tokenizer of {path!r}: {str(err).splitlines()[0]}") from err
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # labels are built by position, so this never unscores EOS
    return tokenizer


def _training_set(
    rows: TrainRows, tokenizer, args: TrainArguments
) -> tuple[datasets.Dataset, str, list[dict[str, str]], list[str]]:
    """The dataset handed to the trainer, the template used, the rows skipped (id, status, reason), and
    the ids of the rows trained on."""
    if not rows.canonical:
        return rows.rows, "trl", [], list(rows.ids)
    training = args.training
    if training.max_length is None:
        raise TrainError(
            "--max_length must be a number of tokens: rows are truncated to it as the scorer truncated them."
        )
    template = args.selection.template
    if template == "auto" and rows.scorer and rows.scorer.get("template"):
        template = rows.scorer["template"]  # the scorer's prompt, so hard means the same thing
    if template == TRL_TEMPLATE and rows.raw is not None:  # the scorer's rows were TRL's: TRL formats them again
        return rows.raw, TRL_TEMPLATE, [], list(rows.ids)
    template = resolve_template(template, tokenizer, rows.rows)
    tokenized = tokenize_rows(rows.rows, tokenizer, template=template, max_length=training.max_length)
    status = tokenized["status"]
    skipped = [
        {"id": i, "status": s, "reason": r}
        for i, s, r in zip(tokenized["id"], status, tokenized["reason"])
        if s != "ok"
    ]
    keep = [i for i, s in enumerate(status) if s == "ok"]
    training.dataset_kwargs = {**(training.dataset_kwargs or {}), "skip_prepare_dataset": True}  # already exact tokens
    trained = tokenized.select(keep).select_columns(["input_ids", "labels"])
    return trained, template, skipped, [rows.ids[i] for i in keep]


# what a training run is, as its record says: a re-run of the same command must match all of it to resume
_IDENTITY = {
    "row_ids": "rows",
    "template": "template",
    "origin": "source",
    "dataset": "dataset",
    "dataset_config": "dataset config",
    "split": "split",
    "revision": "dataset revision",
    "run": "scorer run",
    "selection": "selection",
    "scorer": "scorer",
    "model": "model",
    "recipe": "recipe",
    "peft": "LoRA settings",
}
_FINAL_STAGING = "_lpselect_final_model.tmp"  # "_*": left out of the trainer's Hub uploads
_LOCK = "_lpselect.lock"  # held while a run writes into output_dir (rundir.run_lock); "_*" as well


def _check_resume(output_dir: Path, record: TrainRecord, resume: str | None) -> str | None:
    """Where training starts: ``None`` (from the beginning) or a checkpoint folder.

    A new run needs a new or empty ``output_dir``. A folder holding a run of ours (``lpselect_train.json``)
    with the same identity (rows, template, source, selection, model, recipe, LoRA settings) is resumed
    from its last checkpoint saved whole, so the same command goes on after a kill or a full disk; any
    other identity is refused in one sentence, and so is a folder of files that are not a run of ours.
    With ``--resume_from_checkpoint`` (e.g. to train for more steps), only the rows and template must match.
    """
    held = sorted(p.name for p in output_dir.iterdir() if p.name != _LOCK) if output_dir.is_dir() else []
    has_record = (output_dir / RECORD_FILE).is_file()
    if resume:
        if has_record:
            previous = TrainRecord.load(output_dir)
            if previous.row_ids != record.row_ids or previous.template != record.template:
                raise TrainError(
                    f"{output_dir} was trained on other rows or another template ({RECORD_FILE}); "
                    "resume with the arguments of that run, or pass another --output_dir."
                )
        return resume
    if not held:
        return None
    if not has_record:
        shown = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
        raise TrainError(
            f"{output_dir} is not empty and holds no lpselect training run (it holds {shown}); "
            "pass a new --output_dir so nothing of yours is overwritten."
        )
    before, now = _plain_json(asdict(TrainRecord.load(output_dir))), _plain_json(asdict(record))
    differ = [name for key, name in _IDENTITY.items() if before.get(key) != now.get(key)]
    if differ:
        raise TrainError(
            f"{output_dir} holds a training run with another {', '.join(differ)} ({RECORD_FILE}); "
            "re-run that run's command to resume it, or pass another --output_dir."
        )
    complete = checkpoint_dirs(output_dir)
    return str(complete[-1]) if complete else None


def _plain_json(value: Any) -> Any:
    """``value`` as it reads back from the record's JSON (tuples as lists, other objects as strings)."""
    return json.loads(json.dumps(value, default=str))


def _save_final_model(trainer: TargetTrainer, output_dir: Path, state) -> None:
    """Save the trained model so that no later run, or ``lpselect eval``, finds half of it in ``output_dir``.

    It is saved whole into a staging folder inside ``output_dir`` first (a failure removes it, a full disk
    is said as one); only then is each file renamed into ``output_dir`` (same filesystem: atomic, no
    extra space). A kill before the renames leaves the staging folder, which the re-run replaces.
    """
    staging = output_dir / _FINAL_STAGING
    if state.is_main_process and staging.exists():
        shutil.rmtree(staging)  # a save a kill cut short: ours, and never trusted
    state.wait_for_everyone()
    with saving_into(staging, remove=state.is_main_process):
        trainer.save_model(str(staging), _internal_call=True)  # the push, if any, follows from output_dir
    state.wait_for_everyone()
    if state.is_main_process:
        _name_adapter_base(staging, trainer.record.model)
        for item in sorted(staging.iterdir()):
            target = output_dir / item.name
            if item.is_dir() and target.is_dir():
                shutil.rmtree(target)
            os.replace(item, target)
        staging.rmdir()
    state.wait_for_everyone()


def _name_adapter_base(folder: Path, model: str) -> None:
    """A LoRA adapter's ``adapter_config.json`` names its base as the record does (the Hub id, or the name given),
    not by the folder TRL loaded it from (``default`` and ``.gguf`` files are loaded from a converted folder in the
    cache); PEFT's empty card template is dropped (ours is written after the save)."""
    config = folder / "adapter_config.json"
    if not config.is_file():
        return
    values = json.loads(config.read_text(encoding="utf-8"))
    values["base_model_name_or_path"] = model
    write_json(values, config)
    (folder / "README.md").unlink(missing_ok=True)  # PEFT's, written by this save a moment ago


def _card_name(training: TrainConfig) -> str:
    """The card's title, as TRL names it: the Hub repo's name, else the output folder's."""
    return (training.hub_model_id or str(training.output_dir)).rstrip("/").split("/")[-1]


def _plain_value(value: Any) -> Any:
    """A config value as JSON holds it (enums by their value)."""
    return getattr(value, "value", value)
