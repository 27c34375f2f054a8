"""The arguments of ``lpselect select``, ``compare`` and ``report``, declared once as dataclasses.

Each command parses its dataclass with :class:`hf_lpselect.core.parser.ArgumentParser` (TRL's
``TrlParser``: every field a flag in TRL's spelling or with dashes, ``--config FILE.yaml``), and
:class:`SubsetArguments` (which rows of a scored table to pick) is also what ``lpselect train``
selects with. The strategy choices come from the registry, :data:`~hf_lpselect.selection.strategies.STRATEGIES`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from .strategies import CLUSTER_ROWS, STRATEGIES


@dataclass
class SubsetArguments:
    """Which rows of a scored table to pick: a strategy and a size, globally or per cluster.

    Args:
        run (`str` or `None`, *optional*, defaults to `None`):
            A scorer run directory (``lpselect score``) to select from.
        strategy (`str` or `None`, *optional*, defaults to `None`):
            A strategy of :data:`~hf_lpselect.selection.strategies.STRATEGIES` (``lp1-hard``, ``random``, …).
        fraction (`float` or `None`, *optional*, defaults to `None`):
            Share of the eligible rows to select, in (0, 1].
        count (`int` or `None`, *optional*, defaults to `None`):
            Number of rows to select (global selection only), instead of ``fraction``.
        per_cluster (`int` or `None`, *optional*, defaults to `None`):
            Cluster the rows into K clusters (all-MiniLM-L6-v2 + k-means, cached) and select per cluster,
            the paper's way.
        cluster_rows (`str`, *optional*, defaults to `"eligible"`):
            Per cluster, take ``ceil(n_c / round(1 / fraction))`` rows with ``n_c`` the cluster's ``eligible``
            rows, or ``all`` its rows, eligible or not, as the paper's code counts (with the paper's own
            clustering, ``lpselect select --clusters FILE``: its subset sizes). At most the cluster's eligible
            rows are taken. Per-cluster selection only.
        selection_seed (`int`, *optional*, defaults to `42`):
            Seed of k-means and of random draws.

    Example:

    ```python
    >>> SubsetArguments(run="runs/mine", strategy="lp1-hard", fraction=0.05)
    ```
    """

    run: str | None = field(
        default=None, metadata={"help": "A scorer run directory (from lpselect score) to select from."}
    )
    strategy: str | None = field(
        default=None,
        metadata={
            "help": "The strategy: the rows a selector keeps, or a baseline (each is described on the method "
            "page of the documentation and in hf_lpselect.STRATEGIES).",
            "choices": list(STRATEGIES),
        },
    )
    fraction: float | None = field(default=None, metadata={"help": "Share of the eligible rows to select, in (0, 1]."})
    count: int | None = field(
        default=None, metadata={"help": "Number of rows to select (global selection only), instead of --fraction."}
    )
    per_cluster: int | None = field(
        default=None,
        metadata={
            "help": "Cluster the rows into K clusters (all-MiniLM-L6-v2 + k-means, cached) and select per cluster, the paper's way."
        },
    )
    cluster_rows: str = field(
        default="eligible",
        metadata={
            "help": "Per cluster, take ceil(n_c / round(1 / fraction)) rows, n_c counting the cluster's eligible rows, "
            "or all its rows as the paper's code does (with the paper's own clustering: its subset sizes). "
            "Per-cluster selection only.",
            "choices": list(CLUSTER_ROWS),
        },
    )
    selection_seed: int = field(default=42, metadata={"help": "Seed of k-means and of random draws."})

    def __post_init__(self) -> None:
        if self.cluster_rows not in CLUSTER_ROWS:
            raise ConfigError(f"--cluster_rows is one of {', '.join(CLUSTER_ROWS)}, not {self.cluster_rows!r}.")
        if self.cluster_rows != "eligible" and not self.selects_per_cluster:
            raise ConfigError(
                f"--cluster_rows {self.cluster_rows} sets the per-cluster counts: add --per_cluster K "
                "(e.g. --per_cluster 1000, the paper's K for Alpaca)."
            )

    @property
    def selects_per_cluster(self) -> bool:
        """Whether the rows are selected per cluster (``per_cluster`` given)."""
        return self.per_cluster is not None


def _also(name: str, **metadata: object) -> dict:
    """``SubsetArguments``' metadata of ``name`` with more keys (a bare word, an alias): one help text."""
    return {**SubsetArguments.__dataclass_fields__[name].metadata, **metadata}


@dataclass
class SelectArguments(SubsetArguments):
    """``lpselect select RUN --strategy S (--fraction F | --count N) [--per_cluster K | --clusters FILE] [--cluster_rows all] [--out PATH]``.

    The :class:`SubsetArguments`, with ``run`` and ``strategy`` required (``run`` also as the first
    bare word; ``--seed``, deprecated, still sets ``--selection_seed``), plus:

    Args:
        clusters (`str` or `None`, *optional*, defaults to `None`):
            A clustering made elsewhere: Parquet/JSON/CSV mapping ``row`` or ``id`` to ``cluster``.
        out (`str` or `None`, *optional*, defaults to `None`):
            Where to write the subset: ``.json``, ``.jsonl``, ``.parquet``, ``.csv`` or a folder
            (``save_to_disk``); default ``RUN/selections/``, in the source's format.

    Example:

    ```python
    >>> SelectArguments(run="runs/mine", strategy="lp1-hard", fraction=0.05, out="hard.jsonl")
    ```
    """

    run: str | None = field(default=None, metadata=_also("run", positional=True))
    clusters: str | None = field(
        default=None,
        metadata={"help": "Use a clustering made elsewhere: Parquet/JSON/CSV mapping row or id to cluster."},
    )
    out: str | None = field(
        default=None,
        metadata={
            "help": "Output: .json, .jsonl, .parquet, .csv, or a folder (save_to_disk). Default: RUN/selections/, in the source's format."
        },
    )

    def __post_init__(self) -> None:
        if self.run is None:
            raise ConfigError(
                "Give the run directory to select from: `lpselect select RUN --strategy lp1-hard --fraction 0.05`."
            )
        if self.strategy is None:
            raise ConfigError(f"Give --strategy, one of: {', '.join(STRATEGIES)}.")
        super().__post_init__()

    @property
    def selects_per_cluster(self) -> bool:
        """Whether the rows are selected per cluster (``per_cluster`` or ``clusters`` given)."""
        return self.per_cluster is not None or self.clusters is not None


@dataclass
class CompareArguments:
    """``lpselect compare RUN_A RUN_B [--score lp1] [--out DIR]``: agreement between two scorer runs.

    Args:
        run_a (`str`):
            The first run directory (or a folder or file holding a ``scores.parquet`` with ``id`` and the score).
        run_b (`str`):
            The second run directory.
        score (`str`, *optional*, defaults to `"lp1"`):
            The score to compare (``lp1``, ``lp_app``, ``ppl_0``, ``ifd_ppl`` …).
        out (`str` or `None`, *optional*, defaults to `None`):
            Folder for ``compare.json`` and ``scatter.png`` (default ``RUN_A/compare-NAME_B``).

    Example:

    ```python
    >>> CompareArguments(run_a="runs/small", run_b="runs/large")
    ```
    """

    run_a: str | None = field(
        default=None,
        metadata={
            "positional": True,
            "help": "The first run directory (or any folder with a scores.parquet holding id + score columns).",
        },
    )
    run_b: str | None = field(default=None, metadata={"positional": True, "help": "The second run directory."})
    score: str = field(default="lp1", metadata={"help": "Score to compare (lp1, lp_app, ppl_0, ifd_ppl, ...)."})
    out: str | None = field(
        default=None, metadata={"help": "Folder for compare.json and scatter.png (default: RUN_A/compare-NAME_B)."}
    )

    def __post_init__(self) -> None:
        if self.run_a is None or self.run_b is None:
            raise ConfigError("Give two run directories to compare: `lpselect compare RUN_A RUN_B`.")


@dataclass
class ReportArguments:
    """``lpselect report RUN [--out DIR]``: the figures and ``report.md`` of a run.

    Args:
        run (`str`):
            A finished run directory (or a folder holding a ``scores.parquet``).
        out (`str` or `None`, *optional*, defaults to `None`):
            Folder for the figures and ``report.md`` (default ``RUN/report``).

    Example:

    ```python
    >>> ReportArguments(run="runs/mine")
    ```
    """

    run: str | None = field(default=None, metadata={"positional": True, "help": "A finished run directory."})
    out: str | None = field(
        default=None, metadata={"help": "Folder for the figures and report.md (default: RUN/report)."}
    )

    def __post_init__(self) -> None:
        if self.run is None:
            raise ConfigError("Give the run directory to report on: `lpselect report RUN`.")
