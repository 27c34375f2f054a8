"""Reading back what ``lpselect push-scores`` pushed: any subset from the score columns
(:func:`load_scored`), and the scorer's provenance from the card (:func:`load_provenance`).

Both take a Hub dataset id or a local folder materialised by :func:`hf_lpselect.hub.materialize.materialize`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
import yaml
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
        files = local_config_files(folder, "default", split)
        if files is None:
            raise DataError(
                f"{repo_id} has no default config with a {split!r} split: it was not pushed by `lpselect push-scores`."
            )
        data = datasets.load_dataset("parquet", data_files=files, split="train", **load_kwargs)
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
    return CardProvenance.from_card(load_card(path, repo_id), where=repo_id)


def load_card(path: str | Path, where: str) -> DatasetCard:
    """The dataset card at ``path``; one sentence naming ``where`` when its YAML header cannot be parsed.

    Args:
        path (`str` or `Path`):
            A ``README.md``.
        where (`str`):
            The repo id or folder the card belongs to, for the message.

    Returns:
        [`~huggingface_hub.DatasetCard`]: the card.

    Raises:
        [`DataError`]: the header is not YAML (``yaml.YAMLError``) or not a mapping (``ValueError``).

    Example:

    ```python
    >>> load_card("out/README.md", "out").data.get("configs")[0]["config_name"]
    'default'
    ```
    """
    try:
        return DatasetCard.load(path)
    except (ValueError, yaml.YAMLError) as err:
        raise DataError(
            f"The dataset card of {where} cannot be parsed ({short_error(err)}); fix its YAML header."
        ) from err


def local_config_files(folder: Path, config: str, split: str) -> list[str] | None:
    """The Parquet files of ``config``'s ``split`` in a folder materialised by ``push-scores --local-dir``.

    Args:
        folder (`Path`):
            The folder; its ``README.md`` declares the configs.
        config (`str`):
            The config name.
        split (`str`):
            The split.

    Returns:
        `list[str]` or `None`: the files, every one present; None when the folder's card declares no
        configs (it is not such a folder).

    Raises:
        [`DataError`]: the card cannot be parsed, it has no config ``config`` (the message lists those it
        has), that config has no ``split``, or a file it names is missing.

    Example:

    ```python
    >>> local_config_files(Path("out"), "lp1_hard_5pct", "train")
    ['out/subsets/lp1_hard_5pct/train-00000-of-00001.parquet']
    ```
    """
    card = folder / "README.md"
    configs = (load_card(card, str(folder)).data.get("configs") or []) if card.is_file() else []
    if not configs:
        return None
    chosen = next((c for c in configs if c.get("config_name", "default") == config), None)
    if chosen is None:
        names = ", ".join(str(c.get("config_name", "default")) for c in configs)
        raise DataError(f"{folder} has no config {config}; it has: {names}.")
    paths = config_paths(chosen, split)
    if not paths:
        raise DataError(f"Config {config} of {folder} has no {split!r} split; pass --dataset_train_split.")
    files = []
    for pattern in paths:
        found = sorted(str(f) for f in folder.glob(pattern)) if pattern and not Path(pattern).is_absolute() else []
        if not found:
            raise DataError(
                f"Config {config} of {folder} names {pattern}, which is not in the folder; "
                "materialise it again with `lpselect push-scores --dry-run --local-dir`."
            )
        files += found
    return files
