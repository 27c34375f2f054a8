"""The ``lpselect:`` block of a pushed dataset card's YAML metadata: who scored the rows, how, and
which subsets were made, as a typed record that ``lpselect train`` reads back.

``lpselect push-scores`` writes it (:meth:`CardProvenance.to_dict`, into the card's metadata) and
``lpselect train`` reads it with huggingface_hub's card API (``DatasetCard.load(...).data``,
:meth:`CardProvenance.from_card`), so the scorer's template never has to be read out of prose::

    lpselect:
      scorer: HuggingFaceTB/SmolLM2-135M-Instruct
      template: alpaca
      epochs: 2
      recipe: {learning_rate: 2.0e-05, ...}
      source: tatsu-lab/alpaca
      source_commit: 5a6f...
      subsets:
        lp1_hard_5pct: {strategy: lp1-hard, fraction: 0.05}
"""

from __future__ import annotations

import re
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from huggingface_hub import DatasetCard

from ..errors import ConfigError, DataError
from .columns import parse_subset


PROVENANCE_KEY = "lpselect"  # the card metadata's key for the block


@dataclass(frozen=True)
class CardProvenance:
    """What a dataset card pushed by ``lpselect push-scores`` says about its scores.

    Args:
        scorer (`str`):
            The scorer model: a Hub id, or ``"NAME (local)"`` for a local folder (no path on a card).
        template (`str` or `None`, defaults to `None`):
            The scorer's prompt template (``alpaca``, ``chat``, ``plain``); ``lpselect train --template
            auto`` trains with it.
        scorer_revision (`str` or `None`, defaults to `None`):
            The scorer model's commit, when it came from the Hub.
        epochs (`int` or `None`, defaults to `None`):
            Epochs the scorer was fine-tuned for (0: perplexities only).
        max_length (`int` or `None`, defaults to `None`):
            Tokens each row was truncated to.
        seed (`int` or `None`, defaults to `None`):
            The scorer run's seed.
        recipe (`dict[str, Any]`, defaults to `{}`):
            The scorer run's training recipe (learning rate, batch size, …).
        source (`str` or `None`, defaults to `None`):
            The dataset the run scored (a Hub id or ``"NAME (local)"``).
        source_config (`str` or `None`, defaults to `None`):
            Its config.
        source_split (`str` or `None`, defaults to `None`):
            Its split, the split of every config of this repo.
        source_commit (`str` or `None`, defaults to `None`):
            The source commit the run read.
        subsets (`dict[str, dict[str, Any]]`, defaults to `{}`):
            Each subset config pushed: ``{name: {"strategy": ..., "fraction": ...}}``.
        selection_seed (`int` or `None`, defaults to `None`):
            The seed random subsets were drawn with.
        version (`str` or `None`, defaults to `None`):
            The hf_lpselect version that pushed.

    Example:

    ```python
    >>> from huggingface_hub import DatasetCard
    >>> card = DatasetCard.load("org/alpaca")
    >>> CardProvenance.from_card(card, where="org/alpaca").template
    'alpaca'
    ```
    """

    scorer: str
    template: str | None = None
    scorer_revision: str | None = None
    epochs: int | None = None
    max_length: int | None = None
    seed: int | None = None
    recipe: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    source_config: str | None = None
    source_split: str | None = None
    source_commit: str | None = None
    subsets: dict[str, dict[str, Any]] = field(default_factory=dict)
    selection_seed: int | None = None
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The block as the card's YAML holds it (unset fields left out)."""
        return {k: v for k, v in asdict(self).items() if v is not None and v != {}}

    @classmethod
    def from_dict(cls, block: Any, *, where: str) -> CardProvenance:
        """The record from a card's ``lpselect:`` block; keys it does not know (a newer version's) are
        ignored. A block of the wrong shape is one :class:`DataError` naming ``where`` (the card's repo)."""
        if not isinstance(block, dict):
            raise _malformed(where, f"it is a {type(block).__name__}, not a mapping")
        hints = typing.get_type_hints(cls)
        known = {f.name: block[f.name] for f in fields(cls) if f.name in block}
        if "scorer" not in known:
            raise _malformed(where, "it names no scorer")
        for name, value in known.items():
            if not _is_a(value, hints[name]):
                raise _malformed(where, f"{name} is {value!r}")
        for name, subset in known.get("subsets", {}).items():
            if not (
                isinstance(subset, dict)
                and isinstance(subset.get("strategy"), str)
                and isinstance(subset.get("fraction"), (int, float))
            ):
                raise _malformed(where, f"subset {name} is {subset!r}, not a strategy and a fraction")
        return cls(**known)

    @classmethod
    def from_card(cls, card: DatasetCard, *, where: str) -> CardProvenance | None:
        """The provenance a pushed card carries: its ``lpselect:`` block, or, for a card pushed before
        there was one, the scorer table of its text; None for a card that is not ours."""
        block = card.data.get(PROVENANCE_KEY)
        if block is not None:
            return cls.from_dict(block, where=where)
        return _from_old_card(card)


# Cards pushed by hf_lpselect 0.1.0 before the `lpselect:` metadata block existed (`lpselect push-scores`
# as first released, commit 931f9f2, up to the hubsplit branch) name the scorer only in the body's "How the
# scores were made" table: `| scorer model | `MODEL` @ `REVISION` |` and `| template | `NAME` |`; their
# subsets are known by their config names (`lp1_hard_5pct`). Such a card still trains: this is the one
# place that reads it.
_OLD_SCORER = re.compile(r"^\| scorer model \| `([^`]+)`", re.MULTILINE)
_OLD_TEMPLATE = re.compile(r"^\| template \| `([^`]+)`", re.MULTILINE)


def _from_old_card(card: DatasetCard) -> CardProvenance | None:
    scorer, template = _OLD_SCORER.search(card.text), _OLD_TEMPLATE.search(card.text)
    if scorer is None:
        return None
    subsets = {}
    for config in card.data.get("configs") or []:
        try:
            spec = parse_subset(config.get("config_name", "default"))
        except ConfigError:  # default, or a config a person added
            continue
        subsets[spec.name] = {"strategy": spec.strategy, "fraction": spec.fraction}
    return CardProvenance(scorer=scorer.group(1), template=template.group(1) if template else None, subsets=subsets)


def _is_a(value: Any, hint: Any) -> bool:
    """Whether a YAML value fits a field's type (``X | None``, ``dict[...]``, ``int`` …; a bool is no number)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        kind = typing.get_origin(option) or option
        if value is None and kind is type(None):
            return True
        if kind is int and isinstance(value, bool):
            continue
        if kind is not type(None) and isinstance(value, kind):
            return True
    return False


def _malformed(where: str, why: str) -> DataError:
    return DataError(
        f"The `{PROVENANCE_KEY}:` block of the dataset card of {where} is malformed ({why}); "
        "push the scores again with `lpselect push-scores`."
    )
