"""The model card ``lpselect train --push_to_hub`` writes: huggingface_hub's card API over the Jinja
template in ``cards/model_card.md`` (installed as ``hf_lpselect.cards``), filled from the training
record.

It says what TRL's generated card says (base model, dataset, quick start, framework versions, TRL's
citation; TRL's trainer hooks give the tags, the trainer's name and paper, and the tracker links) and
what the model was trained on: a "Training data" section, the learning-percentage paper's citation,
and an ``lpselect:`` block in the YAML metadata (dataset, commit, config or selection, scorer).
"""

from __future__ import annotations

from importlib.metadata import version
from importlib.resources import files
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from .. import __version__
from ..core.hub import is_hub_id, public_name
from .train_record import TrainRecord


PAPER_URL = "https://arxiv.org/abs/2402.10430"
LIBRARIES = {
    "TRL": "trl",
    "Transformers": "transformers",
    "Pytorch": "torch",
    "Datasets": "datasets",
    "Tokenizers": "tokenizers",
}  # the card's name -> the distribution's (hf_lpselect's own is the version of the code that wrote the card)


def template_path() -> str:
    """The model card template file (``cards/model_card.md``)."""
    return str(files("hf_lpselect.cards") / "model_card.md")


def hub_dataset(record: TrainRecord) -> str | None:
    """The Hub dataset the model was trained on, for the card's link and ``datasets`` metadata; None
    for a local file or folder and for a ``--datasets`` mixture."""
    name = record.dataset
    return name if name and ", " not in name and is_hub_id(name) else None


def provenance(record: TrainRecord) -> dict[str, Any]:
    """The card metadata's ``lpselect:`` block: where the rows came from, as published (no local path)."""
    selection = record.selection or {}
    block = {
        "origin": record.origin,
        "dataset": _public(record.dataset),
        "dataset_config": record.dataset_config,
        "split": record.split,
        "revision": record.revision,
        "run": _public(record.run) if record.run else None,
        "selection": {
            k: selection[k]
            for k in ("config", "strategy", "fraction", "count", "per_cluster", "seed", "n_selected")
            if selection.get(k) is not None
        }
        or None,
        "scorer": {"model": _public(record.scorer["model"]), "template": record.scorer.get("template")}
        if record.scorer
        else None,
        "template": record.template,
        "n_rows": record.n_rows,
        "n_trained": record.n_trained,
    }
    return {k: v for k, v in block.items() if v is not None}


def model_card(
    record: TrainRecord,
    *,
    model_name: str | None,
    hub_model_id: str | None,
    tags: list[str],
    trainer_name: str,
    paper: dict[str, str],
    trackers: dict[str, str | None],
    record_file: str,
) -> ModelCard:
    """The card of a model trained by ``lpselect train``.

    Args:
        record (`TrainRecord`):
            What the model was trained on (``lpselect_train.json``).
        model_name (`str` or `None`):
            The model's name, the card's title (TRL: the output folder's or the Hub repo's name).
        hub_model_id (`str` or `None`):
            Where it is pushed (``--hub_model_id``), for the quick start.
        tags (`list[str]`):
            The trainer's tags (TRL's ``_tag_names`` and any given); ``generated_from_trainer`` and
            ``lpselect`` are added.
        trainer_name (`str`):
            The TRL trainer's name (``SFTTrainer._name``: ``"SFT"``).
        paper (`dict[str, str]`):
            The TRL trainer's paper (``_paper``: ``title``, ``id``, ``citation``), may be empty.
        trackers (`dict[str, str | None]`):
            ``wandb_url``, ``trackio_url``, ``comet_url`` of the runs that logged training, when any.
        record_file (`str`):
            The record's file name, which the card points to for the row ids.

    Returns:
        [`~huggingface_hub.ModelCard`]: the card, to save as the output folder's ``README.md``.

    Example:

    ```python
    >>> card = model_card(TrainRecord.load("out/hard5"), model_name="hard5", hub_model_id="me/hard5", tags=["trl", "sft"],
    ...                   trainer_name="SFT", paper={}, trackers={}, record_file="lpselect_train.json")
    >>> card.data.to_dict()["lpselect"]["selection"]
    {'strategy': 'lp1-hard', 'fraction': 0.05, 'seed': 42, 'n_selected': 2600}
    ```
    """
    base_model = record.model if is_hub_id(record.model) else None
    dataset = hub_dataset(record)
    data = ModelCardData(
        base_model=base_model,
        datasets=dataset,
        library_name="transformers",
        model_name=model_name,
        tags=["generated_from_trainer", *sorted({*tags, "lpselect"})],
        lpselect=provenance(record),
    )
    return ModelCard.from_template(
        data,
        template_path=template_path(),
        model=_public(record.model),
        base_model=base_model,
        hub_model_id=hub_model_id,
        hub_dataset=dataset,
        dataset=_public(record.dataset),
        revision=record.revision,
        split=record.split,
        origin=record.origin,
        dataset_config=record.dataset_config,
        selection=record.selection or {},
        run=_public(record.run) if record.run else None,
        scorer={**record.scorer, "model": _public(record.scorer["model"])} if record.scorer else None,
        n_trained=record.n_trained,
        n_rows=record.n_rows,
        record_file=record_file,
        template=record.template,
        recipe=record.recipe,
        peft=record.peft,
        paper_url=PAPER_URL,
        trainer_name=trainer_name,
        paper_title=paper.get("title"),
        paper_id=paper.get("id"),
        trainer_citation=paper.get("citation"),
        versions={"hf_lpselect": __version__, **{name: version(dist) for name, dist in LIBRARIES.items()}},
        **trackers,
    )


def _public(name: str | None) -> str:
    return public_name(name) if name else "–"
