"""From a run directory to a subset on disk: clusters, :func:`~hf_lpselect.selection.strategies.select`, output.

:func:`select_run` is what ``lpselect select`` calls. The source is re-read from what ``run.json`` recorded, rows are picked by their input position
``row``, and the output format follows the output path: ``.json`` (array), ``.jsonl``,
``.parquet``, or anything else as a ``save_to_disk`` folder. Every output re-loads with
``datasets``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datasets
import pandas as pd

from ..core.deprecation import renamed_keyword
from ..errors import DataError
from ..ingest import canonicalize, content_ids, dataset_fingerprint, map_columns, read_source
from ..record import RunRecord
from ..rundir import RunDir
from .arguments import SelectArguments
from .clusters import cached_clusters, read_clusters
from .strategies import Selection, default_mirror, select, selection_frame


# score columns carried into a subset, when the run has them
SCORE_COLUMN_PREFIXES = ("nll_", "ppl_", "lp_", "ifd_")
SCORE_COLUMNS = ("lp1", "lp_app", "n_response_tokens")


def score_columns(scores: pd.DataFrame) -> list[str]:
    """The per-row score columns of a scores table worth carrying into a subset."""
    return [
        c for c in scores.columns if c in SCORE_COLUMNS or (c.startswith(SCORE_COLUMN_PREFIXES) and c != "lp_reason")
    ]


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
    if (
        dataset_fingerprint(content_ids(map_columns(_scored_rows(raw, dataset.n_rows), dataset.columns)))
        != dataset.fingerprint
    ):
        raise DataError(
            f"{dataset.source} no longer holds the rows {run_dir.path} scored, in the same order (their content ids "
            "differ): it was edited or re-ordered since the run; score it again."
        )
    return raw


def _scored_rows(raw: datasets.Dataset, n_rows: int) -> datasets.Dataset:
    return raw.select(range(n_rows)) if len(raw) > n_rows else raw


def default_output(run_dir: RunDir, selection: Selection) -> Path:
    """``RUN/selections/STRATEGY-FRACTION[-per-cluster[-all-rows]].EXT``, in the source's own format."""
    source = Path(RunRecord.load(run_dir.path).dataset.source)
    suffix = source.suffix if source.suffix in (".json", ".jsonl", ".parquet") else ""
    size = (
        f"{selection.requested * 100:g}pct" if isinstance(selection.requested, float) else f"{selection.requested}rows"
    )
    cluster = "-per-cluster" if selection.per_cluster else ""
    cluster += "-all-rows" if selection.cluster_rows == "all" else ""  # the paper's counts: another subset
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
        raise DataError(
            f"Cannot write {out.name}: {out.suffix} is not a format we write; "
            "end --out in .json, .jsonl, .parquet or .csv, or give a folder name without an extension."
        )
    nested = [name for name, feature in dataset.features.items() if not isinstance(feature, datasets.Value)]
    if suffix == ".csv" and nested:
        raise DataError(
            f"CSV holds only flat columns but {', '.join(nested)} hold lists or records; "
            "write .jsonl or .parquet instead."
        )
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
    """The run's canonical rows (:func:`hf_lpselect.ingest.canonicalize`), verified, e.g. for embedding texts."""
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
    selection_seed: int = 42,
    mirror: str | None = None,
    embedding_model: str | None = None,
    cluster_rows: str = "eligible",
    seed: int | None = None,
) -> tuple[Selection, pd.DataFrame]:
    """Select from a finished run; returns the selection and the run's scores table.

    ``per_cluster=K`` clusters the rows (all-MiniLM-L6-v2 + k-means, cached in the run directory)
    and selects per cluster, the paper's way; ``clusters_file`` uses a clustering made elsewhere.
    ``cluster_rows="all"`` takes the paper's per-cluster counts (of all the cluster's rows, not only
    its eligible ones; :func:`~hf_lpselect.selection.strategies.select`).
    ``selection_seed`` seeds k-means and the random draws (``seed``: its deprecated name).

    Raises:
        [`~hf_lpselect.errors.RunError`]: ``run_dir`` holds no complete scorer run.
        [`~hf_lpselect.errors.DataError`]: the run's source changed since it was scored, or a clusters file that does
            not fit it.
        [`~hf_lpselect.errors.SelectionError`]: a selection that cannot be made as asked.
        [`~hf_lpselect.errors.ClusterError`]: clusters that cannot be made (per-cluster selection).
    """
    seed = renamed_keyword("select_run", "seed", "selection_seed", seed, selection_seed)
    run_dir = RunDir(run)
    if not run_dir.scores.is_file():
        raise DataError(f"{run_dir.path} has no scores.parquet: finish the run with `lpselect score` first.")
    scores = pd.read_parquet(run_dir.scores)
    if per_cluster is not None and clusters_file is not None:
        raise DataError("Give --per_cluster K or --clusters FILE, not both.")
    clusters = None
    if clusters_file is not None:
        clusters = read_clusters(clusters_file, scores)
    elif per_cluster is not None:
        table = cached_clusters(run_dir, run_rows(run_dir), per_cluster, seed=seed, model=embedding_model)
        clusters = table.set_index("row")["cluster"]
    mirror = mirror if mirror is not None else default_mirror(strategy, scores)
    selection = select(
        scores,
        strategy,
        fraction=fraction,
        count=count,
        clusters=clusters,
        selection_seed=seed,
        mirror=mirror,
        cluster_rows=cluster_rows,
    )
    return selection, scores


@dataclass(frozen=True)
class SelectionStats:
    """The one-screen numbers of a selection: sizes, the length bias, the score range, clusters, what was skipped.

    Attributes:
        strategy (`str`): the strategy's name.
        requested (`float` or `int`): the fraction (float) or count (int) asked for.
        per_cluster (`bool`): whether it selected per cluster.
        n_selected (`int`), n_eligible (`int`), n_input (`int`): rows selected, rows it could select, all rows.
        real_fraction (`float`), real_fraction_of_input (`float`): ``n_selected`` over the other two.
        mean_response_tokens (`float`): mean response length of the selected rows, in scorer tokens.
        mean_response_tokens_all (`float`): the same over every ``ok`` row.
        length_ratio (`float`): the first over the second (> 1: the strategy prefers long answers).
        score_range (`tuple[float, float]` or `None`): the lowest and highest score selected, when the strategy has a score.
        n_clusters (`int` or `None`), n_clusters_covered (`int` or `None`): clusters with an eligible row, and
            of those the ones with a selected row.
        cluster_rows (`str` or `None`): per cluster, what a cluster's count counted (``eligible`` or ``all``
            rows); None without clusters.
        n_short (`int`): rows the per-cluster counts asked for that the clusters' eligible rows could not give.
        skipped (`dict[str, int]`): rows not eligible, by reason.
    """

    strategy: str
    requested: float | int
    per_cluster: bool
    n_selected: int
    n_eligible: int
    n_input: int
    real_fraction: float
    real_fraction_of_input: float
    mean_response_tokens: float
    mean_response_tokens_all: float
    length_ratio: float
    score_range: tuple[float, float] | None
    n_clusters: int | None
    n_clusters_covered: int | None
    skipped: dict[str, int]
    cluster_rows: str | None = None
    n_short: int = 0

    def summary(self) -> str:
        """The numbers in a few lines of plain text (what ``lpselect select`` prints)."""
        requested = f"{self.requested:.1%}" if isinstance(self.requested, float) else f"{self.requested} rows"
        lines = [
            f"{self.strategy}: {self.n_selected} of {self.n_eligible} eligible rows (requested {requested}, real "
            f"{self.real_fraction:.2%}; {self.real_fraction_of_input:.2%} of all {self.n_input} input rows)",
            f"mean response length {self.mean_response_tokens:.1f} tokens vs {self.mean_response_tokens_all:.1f} "
            f"for all rows (x{self.length_ratio:.2f})",
        ]
        if self.score_range is not None:
            lines.append(f"score range {self.score_range[0]:.4g} … {self.score_range[1]:.4g}")
        if self.n_clusters:
            counted = {
                "all": " (counts from all the rows of each cluster, as the paper's code)",
                "eligible": " (counts from each cluster's eligible rows)",
            }
            lines.append(
                f"clusters covered: {self.n_clusters_covered} of {self.n_clusters}{counted.get(self.cluster_rows, '')}"
            )
        if self.n_short:
            lines.append(f"{self.n_short} rows short of the per-cluster counts: clusters with too few eligible rows")
        if self.skipped:
            lines.append("skipped: " + ", ".join(f"{n} ({reason})" for reason, n in self.skipped.items()))
        return "\n".join(lines)


def describe_selection(selection: Selection, scores: pd.DataFrame) -> SelectionStats:
    """The one-screen numbers of ``selection`` over the scores table it was made from.

    Example:

    ```python
    >>> print(describe_selection(select(scores, "lp1-hard", fraction=0.05), scores).summary())
    ```
    """
    chosen = scores.set_index("row").loc[list(selection.rows)]
    ok = scores[scores["status"] == "ok"]
    selected, everything = float(chosen["n_response_tokens"].mean()), float(ok["n_response_tokens"].mean())
    return SelectionStats(
        strategy=selection.strategy,
        requested=selection.requested,
        per_cluster=selection.per_cluster,
        n_selected=len(selection.rows),
        n_eligible=selection.n_eligible,
        n_input=selection.n_input,
        real_fraction=selection.real_fraction,
        real_fraction_of_input=selection.real_fraction_of_input,
        mean_response_tokens=selected,
        mean_response_tokens_all=everything,
        length_ratio=selected / everything,
        score_range=(float(min(selection.values)), float(max(selection.values))) if selection.values else None,
        n_clusters=selection.n_clusters,
        n_clusters_covered=selection.n_clusters_covered,
        skipped=dict(selection.skipped),
        cluster_rows=selection.cluster_rows,
        n_short=selection.n_short,
    )


@dataclass(frozen=True)
class SubsetResult:
    """What :func:`select_subset` picked and wrote.

    Attributes:
        selection (`Selection`): the selected rows, in selection order.
        stats (`SelectionStats`): its numbers.
        out (`Path`): the file or folder written.
    """

    selection: Selection
    stats: SelectionStats
    out: Path

    def summary(self) -> str:
        """The selection's numbers and where it went."""
        return f"{self.stats.summary()}\nwritten: {self.out}"


def select_subset(args: SelectArguments) -> SubsetResult:
    """``lpselect select``: select from a finished run and write the subset, its rows with their score columns.

    Args:
        args (`SelectArguments`): the run, the strategy and size, the clusters, the output.

    Returns:
        `SubsetResult`: the selection, its numbers and the path written (``args.out``, or
        ``RUN/selections/STRATEGY-SIZE`` in the source's format).

    Raises:
        [`~hf_lpselect.errors.RunError`]: ``args.run`` holds no complete scorer run.
        [`~hf_lpselect.errors.DataError`]: the run's source changed since it was scored, or a clusters file that does
            not fit it.
        [`~hf_lpselect.errors.SelectionError`]: a selection that cannot be made as asked.
        [`~hf_lpselect.errors.ClusterError`]: clusters that cannot be made (per-cluster selection).

    Example:

    ```python
    >>> print(select_subset(SelectArguments(run="runs/mine", strategy="lp1-hard", fraction=0.05)).summary())
    ```
    """
    selection, scores = select_run(
        args.run,
        args.strategy,
        fraction=args.fraction,
        count=args.count,
        per_cluster=args.per_cluster,
        clusters_file=args.clusters,
        selection_seed=args.selection_seed,
        cluster_rows=args.cluster_rows,
    )
    run_dir = RunDir(args.run)
    out = write_dataset(
        selected_dataset(run_source(run_dir), scores, selection),
        args.out if args.out is not None else default_output(run_dir, selection),
    )
    return SubsetResult(selection=selection, stats=describe_selection(selection, scores), out=out)
