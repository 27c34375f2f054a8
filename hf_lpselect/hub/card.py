"""The dataset card pushed with the scores: huggingface_hub's card API over the Jinja template in
``cards/dataset_card.md`` (installed as ``hf_lpselect.cards``).

The YAML header carries the configs (``default`` + one per subset), the tags, and the license,
task categories and language of the target's existing card or the source's card. Our section of
the body sits between ``<!-- lpselect:begin`` and ``<!-- lpselect:end -->``; an existing card's own
body is kept below it, and re-pushing replaces only our section.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from .. import __version__

TAGS = ("lpselect", "data-selection")
CARRIED_FIELDS = ("license", "license_name", "license_link", "task_categories", "language")  # taken from the source's card when known
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


def _split_files(data_files: Any) -> list[dict[str, Any]]:
    """A config's ``data_files`` as ``[{"split", "path"}]``: a bare pattern or list of patterns is ``train``."""
    if isinstance(data_files, str) or (isinstance(data_files, list) and data_files and not isinstance(data_files[0], dict)):
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
    detected: list[dict[str, Any]] | None = None,
) -> DatasetCardData:
    """The YAML metadata: the existing card's fields kept, configs merged, tags added, license,
    task categories and language carried over from the source card when the target has none.
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
    return DatasetCardData(**base)


def original_body(existing: DatasetCard | None) -> str:
    """An existing card's body without a previous lpselect section."""
    if existing is None:
        return ""
    return _OURS.sub("", existing.text).strip()


def _fmt(value: float | None, digits: int = 1) -> str:
    """A number for the card, or "–" for a missing one (an empty subset, a NaN)."""
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def render_card(data: DatasetCardData, **template_vars: Any) -> DatasetCard:
    """Render the template with ``data`` as the YAML header and ``template_vars`` in the body."""
    return DatasetCard.from_template(data, template_path=template_path(), version=__version__, fmt=_fmt, **template_vars)
