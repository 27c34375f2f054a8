"""A scored dataset as the Space sees it, and what a person can do with it: select, download, push, compare.

Three kinds of source open as one :class:`Scored`:

- a run directory (``scores.parquet`` + ``run.json``; the rows are re-read from the run's source);
- a folder materialised by ``lpselect push-scores --dry_run --local_dir``: the ``default``
  config's Parquet files, whose score columns become a scores table
  (:func:`hf_lpselect.hub.columns.scores_from_columns`);
- the Hub id of a dataset pushed by ``lpselect push-scores`` (its ``default`` config).

Selection is :func:`hf_lpselect.selection.strategies.select` (per cluster: :func:`hf_lpselect.selection.subsets.select_run`),
exactly as ``lpselect select`` and ``load_scored`` do it; nothing here re-implements it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from datasets.table import InMemoryTable
from huggingface_hub import DatasetCard, HfApi, get_token
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from ..core.hub import NETWORK_ERRORS, is_hub_id, short_error
from ..core.io import write_parquet
from ..core.schema import OUR_COLUMNS
from ..errors import DataError, HubError
from ..hub.columns import SUBSET_STRATEGIES, hub_columns, parse_subset, scores_from_columns, subset_name
from ..hub.dataset_card import TAGS, config_paths, config_splits
from ..hub.provenance import PROVENANCE_KEY, CardProvenance
from ..hub.push import push_scores
from ..ingest import canonicalize
from ..record import RunRecord
from ..rundir import RunDir
from ..selection.clusters import embed, embedding_text, kmeans_clusters
from ..selection.compare import CompareResult, compare_runs
from ..selection.strategies import Selection, default_mirror, get_strategy, select
from ..selection.subsets import (
    SelectionStats,
    describe_selection,
    run_source,
    select_run,
    selected_dataset,
    write_dataset,
)


DOWNLOAD_FORMATS = ("jsonl", "csv", "parquet")
SUGGESTIONS = 20  # recently pushed scored datasets offered beside the Hub id box
SUGGEST_SECONDS = 3.0  # how long the page waits for the Hub's list before offering none


@dataclass
class Scored:
    """One opened scored dataset.

    Args:
        name (`str`): what the person opened (a path or a Hub id), shown on the page.
        kind (`str`): ``"run"``, ``"folder"`` or ``"hub"``.
        scores (`pandas.DataFrame`): the scores table (``row``, ``id``, ``status``, ``lp1``, ...).
        data (`datasets.Dataset`): the source rows in ``row`` order; for a folder or a Hub id they
            already carry the pushed score columns.
        format (`str`): the rows' format for :func:`hf_lpselect.ingest.canonicalize` (``"auto"``: detect).
        run_dir (`RunDir` or `None`, defaults to `None`): the run directory, for ``kind == "run"``.
    """

    name: str
    kind: str
    scores: pd.DataFrame
    data: datasets.Dataset
    format: str = "auto"
    run_dir: RunDir | None = None


def _inside(path: Path, roots: list[Path]) -> bool:
    path = path.resolve()
    return any(path == root.resolve() or root.resolve() in path.parents for root in roots)


def open_scored(source: str, *, allowed_roots: list[Path] | None = None, token: str | bool | None = None) -> Scored:
    """Open a run directory, a materialised push-scores folder or a pushed Hub dataset id.

    Args:
        source (`str`): the path or Hub id the person typed.
        allowed_roots (`list[Path]` or `None`, defaults to `None`): local folders this caller may read
            (on a shared Space: the session's own folder); `None` allows any local path.
        token (`str`, `bool` or `None`, defaults to `None`): how a Hub dataset is read (:func:`read_token`):
            a token, `False` for anonymous (public datasets only), `None` for this machine's login.

    Example:
    ```python
    scored = open_scored("runs/alpaca-smollm2")
    scored.scores.sort_values("lp1").head()
    ```
    """
    source = source.strip()
    if not source:
        raise DataError("Give a run directory, a folder made by `lpselect push-scores`, or a Hub dataset id.")
    path = Path(source).expanduser()
    if path.exists():
        if allowed_roots is not None and not _inside(path, allowed_roots):
            raise DataError(
                f"{source} is not a folder this Space may read; give a Hub dataset id or upload a file in Score."
            )
        if (path / "run.json").is_file():
            return _open_run(RunDir(path), source)
        if path.is_dir():
            return _open_folder(path, source)
        raise DataError(
            f"{source} is a file; give a run directory, a folder made by `lpselect push-scores`, or a Hub id."
        )
    if not is_hub_id(source):
        raise DataError(f"No such folder: {source}; check the path.")
    return _open_hub(source, token)


def read_token(oauth_token: str | None, *, on_space: bool) -> str | bool | None:
    """The token a Hub dataset is opened with: the signed-in person's OAuth token, so that they open their
    own private datasets; on a Space when nobody signed in, none (`False`: public datasets only), because
    the Space's own token would open its owner's private datasets for every visitor; run locally, `None`
    (the machine's own login, ``hf auth login`` / ``HF_TOKEN``)."""
    if oauth_token:
        return oauth_token
    return False if on_space else None


def _open_run(run_dir: RunDir, name: str) -> Scored:
    record = RunRecord.load(run_dir.path)
    if not record.complete:
        raise DataError(f"{name} is an unfinished run; finish it with `lpselect score` (the same command resumes it).")
    scores = pd.read_parquet(run_dir.scores)
    try:
        data = run_source(run_dir)
    except (OSError, ConnectionError) as err:
        raise DataError(f"Could not re-read the rows that {name} scored ({err}); check the run's source.") from err
    return Scored(name=name, kind="run", scores=scores, data=data, format=record.format, run_dir=run_dir)


def _with_scores(data: datasets.Dataset, name: str, kind: str) -> Scored:
    ours = [c for c in data.column_names if OUR_COLUMNS.match(c)]
    try:
        scores = scores_from_columns(data.select_columns(ours).to_pandas())
    except DataError as err:  # not our columns: say which dataset
        raise DataError(f"{name}: {err}") from err
    return Scored(name=name, kind=kind, scores=scores, data=data)


def _scored_split(splits: list[str], name: str) -> str:
    """The split to open: the only one there is, else ``train``; several others are refused (the Space has no split choice)."""
    if len(splits) == 1:
        return splits[0]
    if "train" in splits or not splits:
        return "train"
    raise DataError(
        f"{name} has several splits ({', '.join(splits)}) and none is 'train'; open the run directory "
        "that scored the one you want."
    )


def _open_folder(folder: Path, name: str) -> Scored:
    """The ``default`` config's files of its scored split, read straight into memory (no datasets cache)."""
    card = DatasetCard.load(folder / "README.md") if (folder / "README.md").is_file() else None
    configs = (card.data.get("configs") or []) if card is not None else []
    default = next((c for c in configs if c.get("config_name") == "default"), {})
    split = _scored_split(config_splits(default), name)
    files = sorted({f for pattern in config_paths(default, split) for f in folder.glob(pattern)})
    if not files:
        raise DataError(f"{name} has no scores: give a run directory or a folder made by `lpselect push-scores`.")
    table = pa.concat_tables([pq.read_table(f) for f in files])
    return _with_scores(datasets.Dataset(InMemoryTable(table)), name, "folder")


READERS = "lpselect-readers"  # under the datasets cache: one folder per reader (a token, or anonymous)
READER_HOURS = 6  # a reader's folder unused this long is removed when another reader's folder is made


def reader_cache(token: str | bool | None) -> str | None:
    """Where a Hub dataset read with ``token`` (:func:`read_token`) is cached: datasets falls back to a cached
    copy when the Hub refuses a repo, so a private dataset in a shared cache would open for the next reader.

    Args:
        token (`str`, `bool` or `None`): a person's token: a folder of theirs, named by a hash of the token;
            `False` (anonymous): a folder of its own, never filled by a read with a token; `None` (this
            machine's login, run locally): `None`, the default cache.

    Making a new reader's folder removes the readers' folders unused for :data:`READER_HOURS` (a token is
    new at every sign-in, so their folders would pile up); every read marks its folder as used.

    Example:
    ```python
    reader_cache(False)  # ".../datasets/lpselect-readers/anonymous"
    ```
    """
    if token is None:
        return None
    readers = Path(datasets.config.HF_DATASETS_CACHE) / READERS
    folder = readers / (hashlib.sha256(token.encode()).hexdigest() if isinstance(token, str) else "anonymous")
    if not folder.is_dir():
        stale = time.time() - READER_HOURS * 3600
        for old in readers.glob("*") if readers.is_dir() else ():
            if old.is_dir() and old.stat().st_mtime < stale:
                shutil.rmtree(old, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    os.utime(folder)
    return str(folder)


def _hub_failed(repo_id: str, err: Exception, check: str = "the id") -> DataError:
    return DataError(f"Could not load the Hub dataset {repo_id} ({short_error(err)}); check {check}.")


def _open_hub(repo_id: str, token: str | bool | None = None) -> Scored:
    cache = reader_cache(token)
    try:
        split = _scored_split(
            datasets.get_dataset_split_names(repo_id, "default", token=token, cache_dir=cache), repo_id
        )
        data = datasets.load_dataset(repo_id, "default", split=split, token=token, cache_dir=cache)
    except DataError:
        raise
    except (datasets.exceptions.DatasetNotFoundError, ValueError, *NETWORK_ERRORS) as err:
        raise _hub_failed(repo_id, err, "the id and that it was pushed by `lpselect push-scores`") from err
    return _with_scores(data, repo_id, "hub")


def hub_rows(repo_id: str, limit: int, *, token: str | bool | None = None, split: str = "train") -> datasets.Dataset:
    """The first ``limit`` rows of a Hub dataset's split, for the Score tab: read with the same token and
    cache folder as :func:`open_scored` reads a Hub id, streamed (only those rows are fetched, and no copy
    of the dataset is kept on disk).

    Args:
        repo_id (`str`): the dataset's Hub id.
        limit (`int`): how many rows, from the first.
        token (`str`, `bool` or `None`, defaults to `None`): :func:`read_token`'s answer: a person's token,
            `False` for anonymous (public datasets only), `None` for this machine's login.
        split (`str`, defaults to `"train"`): the split to read, as ``lpselect score`` reads it.

    Example:
    ```python
    rows = hub_rows("tatsu-lab/alpaca", 100, token=False)
    ```
    """
    try:
        stream = datasets.load_dataset(
            repo_id, split=split, streaming=True, token=token, cache_dir=reader_cache(token)
        )
        rows = list(stream.take(limit))
    except (datasets.exceptions.DatasetNotFoundError, ValueError, *NETWORK_ERRORS) as err:
        raise _hub_failed(repo_id, err) from err
    if not rows:
        raise DataError(f"{repo_id} holds no rows in its {split} split; give a dataset with at least one row.")
    return datasets.Dataset.from_list(rows, features=stream.features)


def recent_scored(limit: int = SUGGESTIONS, timeout: float = SUGGEST_SECONDS) -> list[str]:
    """The Hub ids of the public datasets most recently pushed by ``lpselect push-scores`` (its card's
    ``lpselect`` tag), newest first; empty, and silent, when the Hub is offline, unreachable or slow.

    Args:
        limit (`int`, defaults to `SUGGESTIONS`): at most this many ids.
        timeout (`float`, defaults to `SUGGEST_SECONDS`): seconds to wait for the Hub's answer.

    The search is anonymous: on a Space the Space's own token would list its owner's private datasets
    to every visitor.

    Example:
    ```python
    recent_scored(5)  # e.g. ["my-org/alpaca-lp", ...]
    ```
    """
    found: list[str] = []

    def search() -> None:
        try:
            datasets_found = HfApi().list_datasets(filter=TAGS[0], sort="last_modified", limit=limit, token=False)
            found.extend(info.id for info in datasets_found)
        except (*NETWORK_ERRORS, ValueError):  # no Hub: no suggestions, and nothing to say about it
            found.clear()

    worker = threading.Thread(target=search, daemon=True)  # a Hub that does not answer is left behind
    worker.start()
    worker.join(timeout)
    return list(found) if not worker.is_alive() else []


# ----------------------------------------------------------------------------- texts


def row_texts(scored: Scored, rows: list[int]) -> pd.DataFrame:
    """``row``, ``instruction`` and ``response`` of the given rows, from their canonical form
    (:func:`hf_lpselect.ingest.canonicalize`, only these rows: fast on a big dataset). The instruction
    of a conversation is its turns before the last one; its response is the last turn."""
    if not rows:
        return pd.DataFrame({"row": [], "instruction": [], "response": []})
    raw = scored.data.select(rows)
    canonical = canonicalize(raw, format=scored.format)
    instructions, responses = [], []
    for record in canonical:
        if record["instruction"] is not None:
            instructions.append(f"{record['instruction']}\n\n{record['input']}".strip())
            responses.append(record["output"])
        elif record["messages"]:
            *before, last = record["messages"]
            instructions.append("\n".join(f"{m['role']}: {m['content']}" for m in before))
            responses.append(last["content"])
        else:  # an invalid row: no usable view
            instructions.append("")
            responses.append("")
    return pd.DataFrame({"row": rows, "instruction": instructions, "response": responses})


# ----------------------------------------------------------------------------- selection


EMBEDDINGS_KEPT = 4  # pushed datasets whose row embeddings stay in memory (a run directory caches its own on disk)
_embedded: dict[tuple, Any] = {}


def _embeddings(scored: Scored) -> tuple[list[int], Any]:
    """The ``ok`` rows of a pushed dataset (a folder or a Hub id) and their MiniLM embeddings (the
    cluster model of ``lpselect select --per_cluster``), embedded on first use and kept in memory,
    keyed by the rows' content ids."""
    ok = scored.scores[scored.scores["status"] == "ok"]
    rows = [int(r) for r in ok["row"]]
    key = (hashlib.sha256("\n".join(map(str, ok["id"])).encode()).hexdigest(),)
    if key not in _embedded:
        canonical = canonicalize(scored.data.select(rows), format=scored.format)
        texts = [embedding_text(r) for r in canonical.select_columns(["instruction", "input", "output", "messages"])]
        _embedded[key] = embed(texts, progress=False)
        while len(_embedded) > EMBEDDINGS_KEPT:
            _embedded.pop(next(iter(_embedded)))
    return rows, _embedded[key]


def pushed_clusters(scored: Scored, k: int, seed: int = 42) -> pd.Series:
    """Cluster ids by row for a pushed dataset: MiniLM embeddings (:func:`_embeddings`) and k-means,
    as :func:`hf_lpselect.selection.subsets.select_run` does for a run directory."""
    rows, embeddings = _embeddings(scored)
    if not 2 <= k <= len(rows):
        raise DataError(f"Choose between 2 and {len(rows):,} groups for these {len(rows):,} scored rows.")
    return pd.Series(kmeans_clusters(embeddings, k, seed), index=pd.Index(rows, name="row"), name="cluster")


def select_subset(
    scored: Scored, strategy: str, fraction: float, *, per_cluster: int | None = None, seed: int = 42
) -> Selection:
    """Select ``fraction`` of the eligible rows with ``strategy``: globally, or per cluster.

    Args:
        scored (`Scored`): the opened dataset.
        strategy (`str`): a name of :data:`hf_lpselect.selection.strategies.STRATEGIES`, e.g. ``"lp1-hard"``.
        fraction (`float`): share of the rows the strategy can pick, in (0, 1].
        per_cluster (`int` or `None`, defaults to `None`): K groups of similar rows (MiniLM embeddings
            + k-means; cached in the run directory, or in memory for a pushed dataset), each giving its share.
        seed (`int`, defaults to `42`): seed of the random draws.

    Example:
    ```python
    selection = select_subset(open_scored("runs/mine"), "lp1-hard", 0.05)
    ```
    """
    if per_cluster is None:
        return select(
            scored.scores,
            strategy,
            fraction=fraction,
            selection_seed=seed,
            mirror=default_mirror(strategy, scored.scores),
        )
    if scored.run_dir is None:  # a pushed dataset: its rows are embedded here
        return select(
            scored.scores,
            strategy,
            fraction=fraction,
            selection_seed=seed,
            clusters=pushed_clusters(scored, per_cluster, seed),
            mirror=default_mirror(strategy, scored.scores),
        )
    selection, _ = select_run(
        scored.run_dir.path, strategy, fraction=fraction, per_cluster=per_cluster, selection_seed=seed
    )
    return selection


def baseline_for(scored: Scored, selection: Selection, *, per_cluster: int | None = None) -> Selection | None:
    """The random draw to compare ``selection`` against: the same number of rows (per cluster: the
    same counts) drawn uniformly from the rows ``selection``'s strategy could select; None for a
    random selection or an empty one."""
    spec = get_strategy(selection.strategy)
    if spec.order == "random" or not selection.rows:
        return None
    if per_cluster is not None and scored.run_dir is not None:
        return select_run(
            scored.run_dir.path,
            "clustered-random",
            fraction=float(selection.requested),
            per_cluster=per_cluster,
            selection_seed=selection.seed,
            mirror=selection.strategy,
        )[0]
    if per_cluster is not None:
        return select(
            scored.scores,
            "clustered-random",
            fraction=float(selection.requested),
            selection_seed=selection.seed,
            clusters=pushed_clusters(scored, per_cluster, selection.seed),
            mirror=selection.strategy,
        )
    return select(
        scored.scores,
        "random",
        count=len(selection.rows),
        selection_seed=selection.seed,
        mirror=selection.strategy,
    )


def describe(scored: Scored, selection: Selection) -> SelectionStats:
    """:func:`hf_lpselect.selection.subsets.describe_selection` (sizes, length ratio, what was skipped)."""
    return describe_selection(selection, scored.scores)


def subset_dataset(scored: Scored, selection: Selection) -> datasets.Dataset:
    """The selected rows in selection order: every source column, the score columns, then the selection
    columns (``selection_rank`` …), as ``lpselect select`` adds them.

    The score columns are named as a pushed dataset names them (``lp1``, ``ppl_e0``, ``lpselect_status`` …:
    :func:`hf_lpselect.hub.columns.hub_columns`, the columns documented on every pushed card), whichever source
    the rows came from, so the same selection downloads the same columns from a run directory and from
    the dataset it was pushed as. A run's source columns with those names (an earlier push's scores)
    are replaced, as ``push-scores`` replaces them.
    """
    if scored.run_dir is None:  # a pushed dataset carries its score columns already
        return selected_dataset(scored.data, scored.scores, selection, with_scores=False)
    pushed = hub_columns(scored.scores, len(scored.scores))
    source = scored.data.remove_columns([c for c in pushed.columns if c in scored.data.column_names])
    subset = selected_dataset(source, scored.scores, selection, with_scores=False)
    rows = [int(r) for r in selection.rows]
    scores = datasets.Dataset.from_pandas(pushed.iloc[rows].reset_index(drop=True), preserve_index=False)
    subset = datasets.concatenate_datasets([subset, scores], axis=1)
    added = [c for c in subset.column_names if c not in source.column_names and c not in pushed.columns]
    return subset.select_columns([*source.column_names, *pushed.columns, *added])


def write_subset(dataset: datasets.Dataset, folder: Path, stem: str, fmt: str) -> Path:
    """Write ``dataset`` as ``folder/stem.fmt``; returns the path.

    Args:
        dataset (`datasets.Dataset`): the rows to write, e.g. :func:`subset_dataset`'s.
        folder (`Path`): where to write (created if needed).
        stem (`str`): the file name without its suffix.
        fmt (`str`): ``"jsonl"``, ``"csv"`` or ``"parquet"``.
    """
    if fmt not in DOWNLOAD_FORMATS:
        raise DataError(f"Unknown download format {fmt!r}; choose one of: {', '.join(DOWNLOAD_FORMATS)}.")
    out = Path(folder) / f"{stem}.{fmt}"
    if fmt == "csv":  # through pandas, which datasets' csv loader reads back exactly
        out.parent.mkdir(parents=True, exist_ok=True)
        dataset.to_pandas().to_csv(out, index=False)
        return out
    return write_dataset(dataset, out)


# ----------------------------------------------------------------------------- push


def push_token(oauth_token: str | None, *, on_space: bool) -> str:
    """The token a push uses: the signed-in person's OAuth token; run locally (not on a Space), the
    machine's own login (``hf auth login`` / ``HF_TOKEN``) when nobody signed in. On a Space the
    Space's own token is NEVER used: pushing is on the person's behalf only."""
    if oauth_token:
        return oauth_token
    if on_space:
        raise HubError("Sign in with Hugging Face first (the button at the top of the page), then push again.")
    token = get_token()
    if not token:
        raise HubError("No Hugging Face token: sign in, or run `hf auth login` on this machine, then push again.")
    return token


def push_subset(scored: Scored, selection: Selection, repo_id: str, *, token: str, private: bool = False) -> str:
    """Push ``selection`` to the Hub as the config ``STRATEGY_Npct``; returns the commit URL.

    Args:
        scored (`Scored`): the dataset the selection was made from.
        selection (`Selection`): a global selection (per-cluster subsets are refused).
        repo_id (`str`): the dataset repo to push to (the scored repo itself, or a new one).
        token (`str`): the person's token (:func:`push_token`); never stored or logged.
        private (`bool`, defaults to `False`): create a new repo as private.

    A run directory goes through :func:`hf_lpselect.hub.push.push_scores` (the whole dataset with its
    score columns as ``default``, the subset as a config, the card). A dataset that was already
    pushed (a folder or a Hub id) gets the subset as a new config of ``repo_id`` (the same repo, or a new one),
    and, where ``repo_id``'s card has an ``lpselect:`` block, the subset listed there in a second commit.
    """
    if selection.per_cluster:
        raise DataError("Per-cluster subsets cannot be pushed as a config yet; download the subset instead.")
    if selection.strategy not in SUBSET_STRATEGIES:
        raise DataError(f"{selection.strategy!r} subsets cannot be pushed as a config; download the subset instead.")
    name = subset_name(selection.strategy, float(selection.requested))
    if scored.run_dir is not None:
        plan = push_scores(
            repo_id,
            run=scored.run_dir.path,
            subsets=[name],
            token=token,
            private=private,
            selection_seed=selection.seed,
        )
        return plan.url or ""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise DataError(
            f"Bad repo id {repo_id!r}: write OWNER/NAME, e.g. my-name/alpaca-hard ({short_error(err)})."
        ) from err
    try:
        info = subset_dataset(scored, selection).push_to_hub(
            repo_id, config_name=name, token=token, private=private, commit_message=f"Add the {name} subset (lpselect)"
        )
    except NETWORK_ERRORS as err:
        raise HubError(f"Pushing to {repo_id} failed ({short_error(err)}); no commit was made.") from err
    _card_lists_subset(repo_id, name, token=token, parent_commit=info.oid)
    return info.commit_url


def _card_lists_subset(repo_id: str, name: str, *, token: str, parent_commit: str) -> None:
    """Add the subset ``name`` to the ``lpselect:`` block of ``repo_id``'s card (which ``lpselect train``
    reads), in a commit right after the subset's own; a card without the block (a repo lpselect did not
    push, e.g. a new one) is left as it is."""
    try:
        card = DatasetCard.load(repo_id, repo_type="dataset", token=token)
        provenance = CardProvenance.from_card(card, where=repo_id)
        if provenance is None or name in provenance.subsets:
            return
        spec = parse_subset(name)
        subsets = {**provenance.subsets, name: {"strategy": spec.strategy, "fraction": spec.fraction}}
        card.data[PROVENANCE_KEY] = dataclasses.replace(provenance, subsets=subsets).to_dict()
        card.push_to_hub(
            repo_id,
            token=token,
            repo_type="dataset",
            parent_commit=parent_commit,
            commit_message=f"List the {name} subset in the card (lpselect)",
        )
    except NETWORK_ERRORS as err:
        raise HubError(
            f"The {name} subset was pushed to {repo_id}, but its card could not list it "
            f"({short_error(err)}); push again to retry."
        ) from err


# ----------------------------------------------------------------------------- compare


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name.rstrip("/")).name or name).strip("-") or "scores"


def compare_scored(a: Scored, b: Scored, out: Path, *, score: str = "lp1") -> CompareResult:
    """:func:`hf_lpselect.selection.compare.compare_runs` on two opened datasets (a pushed dataset's scores
    are written to ``out`` first); returns its numbers, with ``scatter.png`` in ``out``."""
    out = Path(out)
    paths = []
    for label, scored in (("a", a), ("b", b)):
        if scored.run_dir is not None:
            paths.append(scored.run_dir.path)
            continue
        path = out / label / f"{_slug(scored.name)}.parquet"
        write_parquet(scored.scores, path)
        paths.append(path)
    return compare_runs(paths[0], paths[1], score=score, out=out)
