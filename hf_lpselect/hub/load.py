"""Reading back what ``lpselect push-scores`` pushed: any subset from the score columns
(:func:`load_scored`), and the scorer's provenance from the card (:func:`load_provenance`).

Both take a Hub dataset id or a local folder materialised by :func:`hf_lpselect.hub.materialize.materialize`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
from huggingface_hub import DatasetCard, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError

from ..core.deprecation import renamed_keyword
from ..core.hub import NETWORK_ERRORS, short_error
from ..core.schema import OUR_COLUMNS
from ..errors import DataError, SelectionError
from ..selection.subsets import selected_dataset
from .columns import scores_from_columns, select_scored
from .dataset_card import config_paths
from .provenance import CardProvenance


def load_scored(
    repo_id: str,
    strategy: str,
    *,
    fraction: float | None = None,
    count: int | None = None,
    split: str = "train",
    revision: str | None = None,
    selection_seed: int = 42,
    seed: int | None = None,
    **load_kwargs: Any,
) -> datasets.Dataset:
    """Any subset of a dataset pushed by ``lpselect push-scores``, from its score columns.

    ``load_scored("org/alpaca", strategy="lp1-hard", fraction=0.07)`` loads the ``default``
    config and selects with :func:`hf_lpselect.selection.strategies.select`, exactly as ``lpselect select``
    does; rows come hardest first, with ``selection_rank`` (and ``selection_score``) added.
    ``repo_id`` may also be a local folder holding such a repo. ``selection_seed`` seeds a random strategy
    (``seed``: its deprecated name).

    Raises:
        [`~hf_lpselect.errors.DataError`]: ``repo_id`` was not pushed by ``lpselect push-scores`` (no score columns, no
            default config).
        [`~hf_lpselect.errors.SelectionError`]: a selection its score columns cannot serve.
    """
    seed = renamed_keyword("load_scored", "seed", "selection_seed", seed, selection_seed)
    folder = Path(repo_id).expanduser()
    if folder.is_dir():  # datasets caches a local folder by its name, not its content: read the files themselves
        card = DatasetCard.load(folder / "README.md") if (folder / "README.md").is_file() else None
        configs = (card.data.get("configs") or []) if card is not None else []
        default = next((c for c in configs if c.get("config_name") == "default"), {})
        paths = config_paths(default, split)
        if not paths:
            raise DataError(
                f"{repo_id} has no default config with a {split!r} split: it was not pushed by `lpselect push-scores`."
            )
        data = datasets.load_dataset(
            "parquet", data_files=[str(folder / p) for p in paths], split="train", **load_kwargs
        )
    else:
        data = datasets.load_dataset(repo_id, "default", split=split, revision=revision, **load_kwargs)
    ours = [c for c in data.column_names if OUR_COLUMNS.match(c)]
    try:
        scores = scores_from_columns(data.select_columns(ours).to_pandas())
        selection = select_scored(scores, strategy, fraction=fraction, count=count, seed=seed)
    except (DataError, SelectionError) as err:  # not our columns, or a selection they cannot serve: say which dataset
        raise type(err)(f"{repo_id}: {err}") from err
    return selected_dataset(data, scores, selection, with_scores=False)


def load_provenance(repo_id: str, revision: str | None = None) -> CardProvenance | None:
    """What the card of a dataset pushed by ``lpselect push-scores`` says about its scorer.

    Args:
        repo_id (`str`):
            A Hub dataset id, or a local folder holding such a repo (``push-scores --local_dir``).
        revision (`str` or `None`, defaults to `None`):
            The Hub commit to read the card at (the one the rows are read at).

    Returns:
        [`CardProvenance`] or `None`: the card's ``lpselect:`` block (or, for a card pushed before it
        existed, its scorer table); None when there is no card, it is not ours, or the Hub cannot be
        reached (training then goes on without the scorer's template).

    Raises:
        [`~hf_lpselect.errors.DataError`]: the dataset card's YAML header cannot be parsed.

    Example:

    ```python
    >>> load_provenance("org/alpaca").template
    'alpaca'
    ```
    """
    folder = Path(repo_id).expanduser()
    if folder.is_dir():
        path = folder / "README.md"
        if not path.is_file():
            return None
    else:
        try:
            path = hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=revision)
        except (EntryNotFoundError, *NETWORK_ERRORS):
            return None
    try:
        card = DatasetCard.load(path)
    except ValueError as err:  # broken YAML
        raise DataError(
            f"The dataset card of {repo_id} cannot be parsed ({short_error(err)}); fix its YAML header."
        ) from err
    return CardProvenance.from_card(card, where=repo_id)
