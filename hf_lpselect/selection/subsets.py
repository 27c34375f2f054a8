"""From a run directory to a subset on disk: clusters, :func:`~hf_lpselect.selection.strategies.select`, output.

:func:`select_run` is what ``lpselect select`` calls. The source is re-read from what ``run.json`` recorded, rows are picked by their input position
``row``, and the output format follows the output path: ``.json`` (array), ``.jsonl``,
``.parquet``, or anything else as a ``save_to_disk`` folder. Every output re-loads with
``datasets``.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import pandas as pd

from ..data import DataError, canonicalize, content_ids, dataset_fingerprint, map_columns, read_source
from ..record import RunRecord
from ..rundir import RunDir
from .strategies import Selection, default_mirror, select, selection_frame

# score columns carried into a subset, when the run has them
SCORE_COLUMN_PREFIXES = ("nll_", "ppl_", "lp_", "ifd_")
SCORE_COLUMNS = ("lp1", "lp_app", "n_response_tokens")


def score_columns(scores: pd.DataFrame) -> list[str]:
    """The per-row score columns of a scores table worth carrying into a subset."""
    return [c for c in scores.columns if c in SCORE_COLUMNS or (c.startswith(SCORE_COLUMN_PREFIXES) and c != "lp_reason")]


def run_source(run_dir: RunDir, revision: str | None = None) -> datasets.Dataset:
    """The run's input dataset, verified to still hold the rows the run scored.

    The source is re-read from what ``run.json`` recorded (for a Hub dataset: the config and commit
    the run read, so later commits to the repo do not change the rows; ``revision`` reads another
    commit instead; for an in-memory dataset: the copy stored in the run directory). Its first
    ``n_rows`` rows must have the same content ids, in the same order, as when they were scored:
    a source that was edited, re-ordered or truncated since is refused with one
    :class:`~hf_lpselect.errors.DataError`, never paired with another row's score.

    Returns:
        `datasets.Dataset`: the whole source as read, rows past a ``limit`` included, with its own column names
        (a run scored with ``--columns`` read them renamed; :func:`run_rows` does the same).
    """
    record = RunRecord.load(run_dir.path)
    dataset = record.dataset
    source = str(run_dir.source) if dataset.stored else dataset.source
    raw = read_source(source, split=dataset.split, subset=dataset.config, revision=revision or dataset.revision)
    if len(raw) < dataset.n_rows:
        raise DataError(
            f"{dataset.source} now has {len(raw)} rows but {run_dir.path} scored {dataset.n_rows}; "
            "it changed since the run: score it again."
        )
    if dataset_fingerprint(content_ids(map_columns(_scored_rows(raw, dataset.n_rows), dataset.columns))) != dataset.fingerprint:
        raise DataError(
            f"{dataset.source} no longer holds the rows {run_dir.path} scored, in the same order (their content ids "
            "differ): it was edited or re-ordered since the run; score it again."
        )
    return raw


def _scored_rows(raw: datasets.Dataset, n_rows: int) -> datasets.Dataset:
    return raw.select(range(n_rows)) if len(raw) > n_rows else raw


def default_output(run_dir: RunDir, selection: Selection) -> Path:
    """``RUN/selections/STRATEGY-FRACTION.EXT``, in the source's own format."""
    source = Path(RunRecord.load(run_dir.path).dataset.source)
    suffix = source.suffix if source.suffix in (".json", ".jsonl", ".parquet") else ""
    size = f"{selection.requested * 100:g}pct" if isinstance(selection.requested, float) else f"{selection.requested}rows"
    cluster = "-per-cluster" if selection.per_cluster else ""
    return run_dir.path / "selections" / f"{selection.strategy}-{size}{cluster}{suffix}"


def selected_dataset(
    source: datasets.Dataset, scores: pd.DataFrame, selection: Selection, *, with_scores: bool = True
) -> datasets.Dataset:
    """The selected source rows, in selection order, with selection columns and (``with_scores``,
    for a source that does not carry them already) the score columns added."""
    added = selection_frame(selection)
    if with_scores:
        added = added.merge(scores[["row", *score_columns(scores)]], on="row", how="left")
    clash = sorted(set(added.columns) & set(source.column_names))
    if clash:
        raise DataError(f"The source already has column(s) {clash}; rename them before selecting.")
    subset = source.select(added["row"].tolist())
    for column in added.columns:
        subset = subset.add_column(column, added[column].tolist())
    return subset


def write_dataset(dataset: datasets.Dataset, out: str | Path) -> Path:
    """Write ``dataset`` in the format named by ``out``'s suffix: ``.json``, ``.jsonl``, ``.parquet``,
    ``.csv`` (flat columns only), else a ``save_to_disk`` folder. Another extension of letters only
    (``.tsv``, ``.txt``, ``.xlsx``...) is refused rather than made a folder named like a file; a
    suffix with a digit (``hard-2.5pct``) is part of a folder name.

    Args:
        dataset (`datasets.Dataset`): the rows to write.
        out (`str` or `Path`): the file or folder to write; its parent folders are created.

    Example:
        >>> write_dataset(datasets.Dataset.from_dict({"output": ["Hi."], "lp1": [0.2]}), "hard.csv")
        PosixPath('hard.csv')
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".json", ".jsonl", ".parquet", ".csv") and suffix[1:].isalpha():
        raise DataError(f"Cannot write {out.name}: {out.suffix} is not a format we write; "
                        "end --out in .json, .jsonl, .parquet or .csv, or give a folder name without an extension.")
    nested = [name for name, feature in dataset.features.items() if not isinstance(feature, datasets.Value)]
    if suffix == ".csv" and nested:
        raise DataError(f"CSV holds only flat columns but {', '.join(nested)} hold lists or records; "
                        "write .jsonl or .parquet instead.")
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        dataset.to_csv(str(out), index=False)
    elif suffix == ".jsonl":
        dataset.to_json(str(out), lines=True, force_ascii=False)
    elif suffix == ".json":  # one JSON array (datasets writes arrays only in a single batch)
        dataset.to_json(str(out), lines=False, force_ascii=False, batch_size=max(1, len(dataset)))
    elif suffix == ".parquet":
        dataset.to_parquet(str(out))
    else:
        dataset.save_to_disk(str(out))
    return out


def run_rows(run_dir: RunDir) -> datasets.Dataset:
    """The run's canonical rows (:func:`hf_lpselect.data.canonicalize`), verified, e.g. for embedding texts."""
    record = RunRecord.load(run_dir.path)
    scored = map_columns(_scored_rows(run_source(run_dir), record.dataset.n_rows), record.dataset.columns)
    return canonicalize(scored, format=record.format)


def select_run(
    run: str | Path,
    strategy: str,
    *,
    fraction: float | None = None,
    count: int | None = None,
    per_cluster: int | None = None,
    clusters_file: str | Path | None = None,
    seed: int = 42,
    mirror: str | None = None,
    embedding_model: str | None = None,
) -> tuple[Selection, pd.DataFrame]:
    """Select from a finished run; returns the selection and the run's scores table.

    ``per_cluster=K`` clusters the rows (all-MiniLM-L6-v2 + k-means, cached in the run directory)
    and selects per cluster, the paper's way; ``clusters_file`` uses a clustering made elsewhere.
    """
    from .clusters import cached_clusters, read_clusters

    run_dir = RunDir(run)
    if not run_dir.scores.is_file():
        raise DataError(f"{run_dir.path} has no scores.parquet: finish the run with `lpselect score` first.")
    scores = pd.read_parquet(run_dir.scores)
    if per_cluster is not None and clusters_file is not None:
        raise DataError("Give --per-cluster K or --clusters FILE, not both.")
    clusters = None
    if clusters_file is not None:
        clusters = read_clusters(clusters_file, scores)
    elif per_cluster is not None:
        table = cached_clusters(run_dir, run_rows(run_dir), per_cluster, seed=seed, model=embedding_model)
        clusters = table.set_index("row")["cluster"]
    try:
        mirror = mirror if mirror is not None else default_mirror(strategy, scores)
        selection = select(scores, strategy, fraction=fraction, count=count, clusters=clusters, seed=seed, mirror=mirror)
    except ValueError as err:
        raise DataError(str(err)) from err
    return selection, scores


def describe_selection(selection: Selection, scores: pd.DataFrame) -> dict:
    """The one-screen summary: sizes, the length bias, score range, clusters covered, what was skipped."""
    chosen = scores.set_index("row").loc[list(selection.rows)]
    ok = scores[scores["status"] == "ok"]
    out = selection.summary()
    out["mean_response_tokens"] = {"selected": float(chosen["n_response_tokens"].mean()), "all_ok_rows": float(ok["n_response_tokens"].mean())}
    out["length_ratio"] = out["mean_response_tokens"]["selected"] / out["mean_response_tokens"]["all_ok_rows"]
    if selection.values is not None and selection.values:
        out["score_range"] = [float(min(selection.values)), float(max(selection.values))]
    return out
