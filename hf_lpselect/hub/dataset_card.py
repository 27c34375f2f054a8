"""The dataset card pushed with the scores: huggingface_hub's card API over the Jinja template in
``cards/dataset_card.md`` (installed as ``hf_lpselect.cards``), rendered from one :class:`CardContext`.

The YAML header carries the configs (``default`` + one per subset), the tags, the license, task
categories and language of the target's existing card or the source's card, and the scores'
provenance (the ``lpselect:`` block, :class:`~hf_lpselect.hub.provenance.CardProvenance`). Our section of
the body sits between ``<!-- lpselect:begin`` and ``<!-- lpselect:end -->``; an existing card's own
body is kept below it, and re-pushing replaces only our section.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from importlib.resources import files
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from .. import __version__
from .provenance import PROVENANCE_KEY, CardProvenance


TAGS = ("lpselect", "data-selection")
CARRIED_FIELDS = (
    "license",
    "license_name",
    "license_link",
    "task_categories",
    "language",
)  # taken from the source's card when known
_OURS = re.compile(r"<!-- lpselect:begin.*?<!-- lpselect:end -->\n?", re.DOTALL)


def template_path() -> str:
    """The card template file (``cards/dataset_card.md``)."""
    return str(files("hf_lpselect.cards") / "dataset_card.md")


@dataclass(frozen=True)
class SubsetRow:
    """One subset config as the card lists it."""

    name: str
    description: str
    n_rows: int
    share: float  # of the scored (ok) rows
    mean_tokens: float | None  # None for an empty subset
    length_ratio: float | None  # mean response tokens / that of all scored rows


@dataclass(frozen=True)
class CardContext:
    """Everything the card's body says (the template's variables), gathered in one place.

    Args:
        repo_id (`str`): The pushed repo, e.g. ``org/alpaca``.
        source (`str`): The scored dataset as the card names it (:func:`~hf_lpselect.core.hub.public_name`).
        source_is_hub (`bool`): Whether ``source`` is a Hub id (then linked).
        split (`str`): The scored split, the split of every config.
        n_rows (`int`): Rows in the ``default`` config.
        n_scored (`int`): Rows the scorer run read (fewer with ``--limit``).
        model (`str`): The scorer model as the card names it.
        model_revision (`str` or `None`): The scorer model's commit.
        epochs (`int`): Epochs the scorer was fine-tuned for (0: perplexities only).
        template (`str`): The scorer's prompt template.
        max_length (`int` or `None`): Tokens each row was truncated to.
        seed (`int` or `None`): The scorer run's seed.
        selection_seed (`int`): The seed random subsets were drawn with.
        recipe (`dict[str, Any]`): The scorer run's recipe, one table row per entry.
        versions (`str`): The libraries the run used, e.g. ``"torch 2.13.0, trl 1.16.0"``.
        has_lp (`bool`): Whether the columns include LP(1) (two or more epochs).
        has_ifd (`bool`): Whether the columns include IFD.
        counts (`dict[str, int]`): Rows per status (``ok``, ``invalid`` … ``unscored``), non-zero only.
        reasons (`list[str]`): One line per reason rows were not scored.
        subsets (`list[SubsetRow]`): The subset configs, as the card's table lists them.
        has_random (`bool`): Whether a random baseline subset is among them.
        mean_tokens (`float` or `None`): Mean response tokens of the scored rows.
        figures (`list[dict[str, str]]`): ``{"title", "caption", "path"}`` of each figure shown.
        comparisons (`list[str]`): One sentence per ``lpselect compare`` result of the run.
        length_spearman (`float` or `None`): Spearman ρ of LP(1) and response length.
        hard_subset (`str` or `None`): The ``lp1_hard_*`` subset the length caveat names.
        hard_length_ratio (`float` or `None`): Its mean response length over all scored rows'.
        original_body (`str`, defaults to `""`): The existing card's own text, kept below our section.

    Example:

    ```python
    >>> card = render_card(DatasetCardData(pretty_name="alpaca"), CardContext(repo_id="org/alpaca", ...))
    ```
    """

    repo_id: str
    source: str
    source_is_hub: bool
    split: str
    n_rows: int
    n_scored: int
    model: str
    model_revision: str | None
    epochs: int
    template: str
    max_length: int | None
    seed: int | None
    selection_seed: int
    recipe: dict[str, Any]
    versions: str
    has_lp: bool
    has_ifd: bool
    counts: dict[str, int]
    reasons: list[str]
    subsets: list[SubsetRow]
    has_random: bool
    mean_tokens: float | None
    figures: list[dict[str, str]]
    comparisons: list[str]
    length_spearman: float | None
    hard_subset: str | None
    hard_length_ratio: float | None
    original_body: str = ""


def _split_files(data_files: Any) -> list[dict[str, Any]]:
    """A config's ``data_files`` as ``[{"split", "path"}]``: a bare pattern or list of patterns is ``train``."""
    if isinstance(data_files, str) or (
        isinstance(data_files, list) and data_files and not isinstance(data_files[0], dict)
    ):
        return [{"split": "train", "path": data_files}]
    if isinstance(data_files, dict):
        return [{"split": k, "path": v} for k, v in data_files.items()]
    return [dict(f) for f in data_files or []]


def config_splits(config: dict[str, Any]) -> list[str]:
    """The split names of a card config, in the card's order."""
    return list(dict.fromkeys(f["split"] for f in _split_files(config.get("data_files")) if f.get("split")))


def config_paths(config: dict[str, Any], split: str | None = None) -> list[str]:
    """The data file patterns of a card config (of one ``split``, or all), flattened."""
    paths = [f.get("path") for f in _split_files(config.get("data_files")) if split is None or f.get("split") == split]
    return [str(q) for p in paths for q in (p if isinstance(p, list) else [p])]


def merge_configs(
    ours: list[dict[str, Any]], existing: list[dict[str, Any]] | None, split: str, owned_prefix: str
) -> list[dict[str, Any]]:
    """Our configs first, our ``default`` the only default; then the existing configs that are not
    ours (an earlier push's subsets: files under ``owned_prefix``), without their ``default`` flag.
    The existing ``default`` config's other splits (e.g. ``test``) stay in our ``default``; its
    ``split`` is ours now."""
    merged = [dict(c) for c in ours]
    names = {c["config_name"] for c in ours}
    for config in existing or []:
        name = config.get("config_name", "default")
        if name == "default":
            others = [f for f in _split_files(config.get("data_files")) if f.get("split") != split]
            merged[0]["data_files"] = merged[0]["data_files"] + others
        elif name not in names and not any(p.startswith(owned_prefix) for p in config_paths(config)):
            merged.append({k: v for k, v in config.items() if k != "default"})
    return merged


def card_data(
    *,
    pretty_name: str,
    configs: list[dict[str, Any]],
    existing: DatasetCardData | None,
    source_data: DatasetCardData | None,
    source: str | None,
    split: str,
    owned_prefix: str,
    provenance: CardProvenance,
    detected: list[dict[str, Any]] | None = None,
) -> DatasetCardData:
    """The YAML metadata: the existing card's fields kept, configs merged, tags added, license,
    task categories and language carried over from the source card when the target has none, and
    ``provenance`` as the ``lpselect:`` block (replacing an earlier push's).
    ``detected``: the target's configs as ``datasets`` detects them from its files, for a card
    that declares none (so its other splits stay in ``default``)."""
    base = existing.to_dict() if existing is not None else {}
    base.pop("dataset_info", None)  # its features describe the columns before ours: datasets would refuse the data
    for field in CARRIED_FIELDS:
        if not base.get(field) and source_data is not None and source_data.get(field):
            base[field] = source_data.get(field)
    base.setdefault("task_categories", ["text-generation"])
    tags = list(base.get("tags") or [])
    base["tags"] = tags + [t for t in TAGS if t not in tags]
    if source:
        sources = list(base.get("source_datasets") or [])
        base["source_datasets"] = sources + ([source] if source not in sources else [])
    base.setdefault("pretty_name", pretty_name)
    base["configs"] = merge_configs(configs, base.get("configs") or detected, split, owned_prefix)
    base[PROVENANCE_KEY] = provenance.to_dict()
    return DatasetCardData(**base)


def original_body(existing: DatasetCard | None) -> str:
    """An existing card's body without a previous lpselect section."""
    if existing is None:
        return ""
    return _OURS.sub("", existing.text).strip()


def _fmt(value: float | None, digits: int = 1) -> str:
    """A number for the card, or "–" for a missing one (an empty subset, a NaN)."""
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def render_card(data: DatasetCardData, context: CardContext) -> DatasetCard:
    """The card: ``data`` as the YAML header, the template's body filled from ``context``."""
    variables = {f.name: getattr(context, f.name) for f in fields(context)}
    return DatasetCard.from_template(data, template_path=template_path(), version=__version__, fmt=_fmt, **variables)
