"""The rows ``lpselect train`` trains on, from one of four sources, and where they came from.

1. a pushed subset config: ``--dataset_name org/alpaca --dataset_config lp1_hard_5pct`` (a Hub id or
   a local folder materialised by ``lpselect push-scores --local_dir``);
2. selected on the fly from a pushed scored dataset: ``--dataset_name org/alpaca --strategy lp1-hard
   --fraction 0.07``, with :func:`hf_lpselect.hub.load.load_scored` (the same ``select()`` as ``lpselect select``);
3. selected from a local scorer run: ``--run runs/NAME --strategy lp1-hard --fraction 0.05``, with
   :func:`hf_lpselect.selection.subsets.select_run`;
4. anything ``trl sft`` reads (``--dataset_name``, ``--datasets`` mixtures): no selection.

Rows in a format ``lpselect score`` knows come back canonical (:func:`hf_lpselect.ingest.canonicalize`),
so they are tokenised exactly as the scorer tokenised them; with ``--template trl`` (or a plain
dataset in no such format) the dataset goes to TRL unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError
from trl import DatasetMixtureConfig, ScriptArguments, get_dataset

from ..core.hub import NETWORK_ERRORS
from ..core.schema import OUR_COLUMNS
from ..errors import ConfigError, DataError, SelectionError, TrainError
from ..hub.columns import UNSCORED, parse_subset, scores_from_columns
from ..hub.load import load_provenance, load_scored, local_config_files
from ..hub.provenance import CardProvenance
from ..ingest import canonicalize, content_id, detect_format, is_hub_id, read_source
from ..record import RunRecord
from ..rundir import RunDir
from ..selection.clusters import cluster_rows
from ..selection.strategies import default_mirror, select
from ..selection.subsets import run_rows, run_source, select_run
from ..templates import TRL_TEMPLATE
from .arguments import SelectionArguments


# columns load_scored adds to the rows it selects (not content)
_SELECTION_COLUMNS = ("row", "selection_rank", "selection_score", "selection_cluster")


@dataclass
class TrainRows:
    """The rows to train on and their provenance.

    ``rows`` are canonical rows (``canonical=True``: columns of :data:`hf_lpselect.ingest.FEATURES`) or
    the dataset as TRL reads it; ``ids[i]`` is the content id of ``rows[i]`` (the scorer's row id). When the
    scorer's rows were formatted by TRL's own trainer (template ``trl``: a ``LearningPercentageCallback`` run
    on prompt/completion rows), ``raw`` holds the same rows in their own columns, to hand to TRL again.
    """

    rows: datasets.Dataset
    canonical: bool
    ids: list[str]
    origin: str  # "subset-config", "hub-selection", "run-selection" or "dataset"
    dataset: str | None
    dataset_config: str | None
    split: str
    revision: str | None = None  # the Hub commit the rows were read at
    run: str | None = None
    selection: dict[str, Any] | None = None
    scorer: dict[str, Any] | None = None  # {"model", "template"} of the scorer run, when recorded
    # the same rows in their own columns, for a scorer whose rows TRL formatted itself (template "trl"): TRL's again
    raw: datasets.Dataset | None = None


def resolve_rows(script: ScriptArguments, selection: SelectionArguments, mixture: DatasetMixtureConfig) -> TrainRows:
    """The training rows the arguments name (see the module docstring for the four sources).

    Example:

    ```python
    >>> resolve_rows(ScriptArguments(), SelectionArguments(run="runs/mine", strategy="lp1-hard", fraction=0.05),
    ...              DatasetMixtureConfig()).ids[:2]
    ['3f1c…', '9a0b…']
    ```
    """
    _check_combination(script, selection, mixture)
    if selection.run is not None:
        return _from_run(selection)
    if selection.strategy is not None:
        return _from_scored(script, selection)
    if script.dataset_name is not None and not mixture.datasets:
        data, revision = _load(script.dataset_name, script.dataset_config, script.dataset_train_split)
        if "lpselect_status" in data.column_names and script.dataset_config not in (None, "default"):
            return _from_subset_config(script, data, revision)
        return _plain(
            data,
            selection.template,
            dataset=script.dataset_name,
            config=script.dataset_config,
            split=script.dataset_train_split,
            revision=revision,
        )

    data = get_dataset(mixture)[script.dataset_train_split]
    names = ", ".join(d.path for d in mixture.datasets)
    return _plain(
        data, selection.template, dataset=names, config=None, split=script.dataset_train_split, revision=None
    )


def _check_combination(script: ScriptArguments, selection: SelectionArguments, mixture: DatasetMixtureConfig) -> None:
    has_data = script.dataset_name is not None or bool(mixture.datasets)
    if selection.run is not None and has_data:
        raise TrainError("Give --run or --dataset_name/--datasets, not both: a run reads the dataset it scored.")
    if selection.run is not None and selection.strategy is None:
        raise TrainError("--run needs --strategy (e.g. --strategy lp1-hard --fraction 0.05).")
    if selection.run is None and not has_data:
        raise TrainError("Name the training data: --dataset_name, --datasets, or --run with --strategy.")
    if selection.strategy is None and any(
        v is not None for v in (selection.fraction, selection.count, selection.per_cluster)
    ):
        raise TrainError("--fraction, --count and --per_cluster select rows: add --strategy (e.g. lp1-hard).")
    if selection.strategy is not None and script.dataset_config not in (None, "default"):
        raise TrainError(
            f"--dataset_config {script.dataset_config} is already a selection; drop it to select with --strategy "
            "from the scored rows, or drop --strategy to train on that config."
        )
    if selection.strategy is not None and mixture.datasets:
        raise TrainError(
            "--strategy selects from one scored dataset (--dataset_name) or run (--run), not a --datasets mixture."
        )
    if selection.strategy is not None and selection.template == "trl":
        raise TrainError(
            "--template trl hands a plain dataset to TRL unchanged; selected rows are tokenised as the scorer did "
            "(use --template auto, alpaca, chat or plain)."
        )


def _from_run(selection: SelectionArguments) -> TrainRows:
    chosen, _ = select_run(
        selection.run,
        selection.strategy,
        fraction=selection.fraction,
        count=selection.count,
        per_cluster=selection.per_cluster,
        selection_seed=selection.selection_seed,
        cluster_rows=selection.cluster_rows,
    )
    run_dir = RunDir(selection.run)
    record = RunRecord.load(run_dir.path)
    rows = run_rows(run_dir).select(list(chosen.rows))  # run_rows verifies they are the rows the run scored
    raw = run_source(run_dir).select(list(chosen.rows)) if record.template == TRL_TEMPLATE else None
    return TrainRows(
        rows=rows,
        canonical=True,
        ids=rows["id"],
        origin="run-selection",
        dataset=record.dataset.source,
        dataset_config=record.dataset.config,
        split=record.dataset.split,
        revision=record.dataset.revision,
        run=str(run_dir.path),
        selection={**chosen.summary(), **_requested(selection)},  # K, not summary()'s per_cluster flag
        scorer={
            "model": record.model_name,
            "template": record.template,
            "max_length": record.identity.get("max_length"),
        },
        raw=raw,
    )


def _from_scored(script: ScriptArguments, selection: SelectionArguments) -> TrainRows:
    name = script.dataset_name
    if selection.per_cluster is not None:
        return _from_scored_per_cluster(script, selection)
    revision = _hub_commit(name)
    data = load_scored(
        name,
        selection.strategy,
        fraction=selection.fraction,
        count=selection.count,
        split=script.dataset_train_split,
        revision=revision,
        selection_seed=selection.selection_seed,
    )
    rows = _canonical_scored(data.remove_columns([c for c in _SELECTION_COLUMNS if c in data.column_names]), name)
    return _hub_selection(script, rows, data, revision, {**_requested(selection), "n_selected": len(rows)})


def _hub_selection(
    script: ScriptArguments, rows: datasets.Dataset, data: datasets.Dataset, revision: str | None, selection: dict
) -> TrainRows:
    """Canonical ``rows`` selected from a pushed dataset's score columns; ``data`` holds the same rows in their own
    columns, for a scorer whose rows TRL formatted."""
    scorer = _scorer(load_provenance(script.dataset_name, revision))
    return TrainRows(
        rows=rows,
        canonical=True,
        ids=rows["id"],
        origin="hub-selection",
        dataset=script.dataset_name,
        dataset_config="default",
        split=script.dataset_train_split,
        revision=revision,
        selection=selection,
        scorer=scorer,
        raw=_own_columns(data, scorer),
    )


def _from_scored_per_cluster(script: ScriptArguments, selection: SelectionArguments) -> TrainRows:
    """The paper's per-cluster selection from pushed score columns: the scored rows embedded and clustered
    as ``lpselect select --per_cluster`` clusters a run's rows (not cached: a pushed dataset has no run
    directory), then the same ``select()``."""
    name = script.dataset_name
    data, revision = _load(name, "default", script.dataset_train_split)
    try:
        scores = scores_from_columns(
            data.select_columns([c for c in data.column_names if OUR_COLUMNS.match(c)]).to_pandas()
        )
    except DataError as err:  # the columns are not ours: say which dataset
        raise DataError(f"{name}: {err}") from err
    rows = _canonical_scored(data, name)
    scored = rows.select([i for i, s in enumerate(scores["status"]) if s != UNSCORED])  # the rows the scorer run read
    clusters = cluster_rows(scored, selection.per_cluster, seed=selection.selection_seed).set_index("row")["cluster"]
    try:
        chosen = select(
            scores,
            selection.strategy,
            fraction=selection.fraction,
            count=selection.count,
            clusters=clusters,
            selection_seed=selection.selection_seed,
            mirror=default_mirror(selection.strategy, scores),
            cluster_rows=selection.cluster_rows,
        )
    except SelectionError as err:  # e.g. a strategy the pushed columns cannot serve: say which dataset
        raise SelectionError(f"{name}: {err}") from err
    picked = list(chosen.rows)
    return _hub_selection(
        script, rows.select(picked), data.select(picked), revision, {**chosen.summary(), **_requested(selection)}
    )


def _from_subset_config(script: ScriptArguments, data: datasets.Dataset, revision: str | None) -> TrainRows:
    rows = _canonical_scored(data, script.dataset_name)
    provenance = load_provenance(script.dataset_name, revision)
    # how the card says the config was chosen; else what its name says (a config the Space added after the push
    # names its strategy and size the same way); nothing for a config a person added by hand under another name
    subset = provenance.subsets.get(script.dataset_config, {}) if provenance is not None else {}
    if not subset:
        try:
            spec = parse_subset(script.dataset_config)
            subset = {"strategy": spec.strategy, "fraction": spec.fraction}
        except ConfigError:  # a config a person named otherwise: nothing to say about its selection
            pass
    chosen = {"config": script.dataset_config, **{k: subset[k] for k in ("strategy", "fraction") if k in subset}}
    return TrainRows(
        rows=rows,
        canonical=True,
        ids=rows["id"],
        origin="subset-config",
        dataset=script.dataset_name,
        dataset_config=script.dataset_config,
        split=script.dataset_train_split,
        revision=revision,
        selection={**chosen, "n_selected": len(rows)},
        scorer=_scorer(provenance),
        raw=_own_columns(data, _scorer(provenance)),
    )


def _plain(
    data: datasets.Dataset, template: str, *, dataset: str, config: str | None, split: str, revision: str | None
) -> TrainRows:
    """Source 4: every row, canonical when the format is one we know (else, or with ``--template trl``, TRL's)."""
    canonical = template != "trl"
    if template == "auto":
        try:
            detect_format(data.column_names)
        except DataError:
            canonical = False
    if canonical:
        data = canonicalize(data)
        ids = data["id"]
    else:
        ids = [content_id(record) for record in data.to_list()]
    return TrainRows(
        rows=data,
        canonical=canonical,
        ids=ids,
        origin="dataset",
        dataset=dataset,
        dataset_config=config,
        split=split,
        revision=revision,
    )


def _canonical_scored(data: datasets.Dataset, name: str) -> datasets.Dataset:
    """Canonical rows of pushed scored data, refused when a row no longer has the content the scorer scored."""
    rows = canonicalize(data)
    if "lpselect_id" in data.column_names:
        changed = [
            i for i, (ours, pushed) in enumerate(zip(rows["id"], data["lpselect_id"])) if pushed and ours != pushed
        ]
        if changed:
            raise DataError(
                f"{len(changed)} row(s) of {name} (first: row {changed[0]}) changed since they were scored "
                "(their content id differs from lpselect_id); push the scores again."
            )
    return rows


def _own_columns(data: datasets.Dataset, scorer: dict[str, Any] | None) -> datasets.Dataset | None:
    """Pushed rows in their own columns (ours and the selection's dropped) when the scorer's rows were TRL's, else None."""
    if not scorer or scorer.get("template") != TRL_TEMPLATE:
        return None
    return data.remove_columns([c for c in data.column_names if OUR_COLUMNS.match(c) or c in _SELECTION_COLUMNS])


def _requested(selection: SelectionArguments) -> dict[str, Any]:
    return {
        "strategy": selection.strategy,
        "fraction": selection.fraction,
        "count": selection.count,
        "per_cluster": selection.per_cluster,
        "cluster_rows": selection.cluster_rows if selection.per_cluster is not None else None,
        "seed": selection.selection_seed,
    }


def _load(name: str, config: str | None, split: str) -> tuple[datasets.Dataset, str | None]:
    """A dataset as ``trl sft`` reads it (a local folder pushed by us: its card's config files); and the Hub commit."""
    folder = Path(name).expanduser()
    files = local_config_files(folder, config or "default", split) if folder.is_dir() else None
    if files is not None:
        return datasets.load_dataset("parquet", data_files=files, split="train"), None
    if not is_hub_id(name):
        return read_source(name, split=split, subset=config), None
    revision = _hub_commit(name)
    return read_source(name, split=split, subset=config, revision=revision), revision


def _hub_commit(name: str) -> str | None:
    """The commit a Hub dataset is read at (its head now), so provenance names exactly the rows; None
    for a local folder or offline."""
    if not is_hub_id(name):
        return None
    try:
        return HfApi().dataset_info(name).sha
    except RepositoryNotFoundError as err:
        raise DataError(f"No dataset {name!r} on the Hub; check the id (or give a local path).") from err
    except NETWORK_ERRORS:  # offline: datasets reads its cache, whose commit it names itself
        return None


def _scorer(provenance: CardProvenance | None) -> dict[str, Any] | None:
    """The scorer model and template a pushed dataset's card records; None if it records none."""
    return {"model": provenance.scorer, "template": provenance.template} if provenance is not None else None
