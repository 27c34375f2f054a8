"""The dataset card pushed with the scores: huggingface_hub's card API over the Jinja template in
``cards/dataset_card.md`` (installed as ``hf_lpselect.cards``).

The YAML header carries the configs (``default`` + one per subset), the tags, and the license,
task categories and language of the target's existing card or the source's card. Our section of
the body sits between ``<!-- lpselect:begin`` and ``<!-- lpselect:end -->``; an existing card's own
body is kept below it, and re-pushing replaces only our section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from . import __version__

TAGS = ("lpselect", "data-selection")
CARRIED_FIELDS = ("license", "task_categories", "language")  # taken from the source's card when known
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
    mean_tokens: float
    length_ratio: float  # mean response tokens / that of all scored rows


def merge_configs(ours: list[dict[str, Any]], existing: list[dict[str, Any]] | None, split: str, owned: set[str]) -> list[dict[str, Any]]:
    """Our configs first; then the existing configs we do not own. The existing ``default``
    config's other splits (e.g. ``test``) stay in our ``default``."""
    merged = [dict(c) for c in ours]
    for config in existing or []:
        name = config.get("config_name", "default")
        if name == "default":
            files_ = config.get("data_files") or []
            others = [f for f in files_ if isinstance(f, dict) and f.get("split") not in (None, split)]
            merged[0]["data_files"] = merged[0]["data_files"] + others
        elif name not in owned and name not in {c["config_name"] for c in ours}:
            merged.append(config)
    return merged


def card_data(
    *,
    pretty_name: str,
    configs: list[dict[str, Any]],
    existing: DatasetCardData | None,
    source_data: DatasetCardData | None,
    source: str | None,
    split: str,
    owned: set[str],
) -> DatasetCardData:
    """The YAML metadata: the existing card's fields kept, configs merged, tags added, license,
    task categories and language carried over from the source card when the target has none."""
    base = existing.to_dict() if existing is not None else {}
    for field in CARRIED_FIELDS:
        if not base.get(field) and source_data is not None and source_data.to_dict().get(field):
            base[field] = source_data.to_dict()[field]
    base.setdefault("task_categories", ["text-generation"])
    tags = list(base.get("tags") or [])
    base["tags"] = tags + [t for t in TAGS if t not in tags]
    if source:
        sources = list(base.get("source_datasets") or [])
        base["source_datasets"] = sources + ([source] if source not in sources else [])
    base.setdefault("pretty_name", pretty_name)
    base["configs"] = merge_configs(configs, base.get("configs"), split, owned)
    return DatasetCardData(**base)


def original_body(existing: DatasetCard | None) -> str:
    """An existing card's body without a previous lpselect section."""
    if existing is None:
        return ""
    return _OURS.sub("", existing.text).strip()


def render_card(data: DatasetCardData, **template_vars: Any) -> DatasetCard:
    """Render the template with ``data`` as the YAML header and ``template_vars`` in the body."""
    return DatasetCard.from_template(data, template_path=template_path(), version=__version__, **template_vars)
