"""A pushable dataset repo from a scorer run, written to a local folder: :func:`materialize`.

:func:`materialize` writes exactly the folder that :func:`hf_lpselect.hub.push.push_scores` uploads
(and ``lpselect push-scores --dry_run --local_dir`` keeps). No network: a Hub source is read as the
run read it.

Repo layout (what ``load_dataset(repo_id, config)`` reads, declared in the card's ``configs``)::

    README.md                                  the card (cards/dataset_card.md)
    data/SPLIT-00000-of-0000N-HASH.parquet     config "default": every source row + score columns
    lpselect/subsets/NAME/SPLIT-*.parquet      one config per subset, e.g. "lp1_hard_5pct"
    lpselect/figures/*.png                     the card's figures (from `lpselect report`)
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pandas as pd
from huggingface_hub import DatasetCard

from .. import __version__
from ..core.hub import is_hub_id, public_name
from ..core.io import file_sha256
from ..core.schema import OUR_COLUMNS
from ..errors import DataError, RunError, SelectionError
from ..record import RunRecord
from ..rundir import RunDir
from ..selection.report import FIGURE_FILES, count_statuses, make_report, reason_lines
from ..selection.strategies import STRATEGIES, Selection, nll_columns
from ..selection.subsets import describe_selection, run_source
from .columns import DEFAULT_SUBSETS, SubsetSpec, hub_columns, parse_subset, select_scored
from .dataset_card import CardContext, SubsetRow, card_data, original_body, render_card
from .provenance import CardProvenance


MAX_SHARD_BYTES = 500 << 20  # as datasets' push_to_hub
DATA_DIR = "data"
SUBSETS_DIR = "lpselect/subsets"
FIGURES_DIR = "lpselect/figures"
# report figures shown on the card: (report figure name, title, caption)
CARD_FIGURES = (
    (
        "lp1_histogram",
        "LP(1) histogram",
        "How many rows learned how much of their perplexity drop in the first epoch; the hard subsets are the left tail.",
    ),
    (
        "lp1_vs_length",
        "LP(1) against response length",
        "Each point a scored row: a downward trend means long responses look hard (length bias).",
    ),
    ("p0_histogram", "Perplexity before training", "The scorer's response perplexity before any training."),
)


@dataclass
class PushPlan:
    """What :func:`materialize` wrote and :func:`push_scores` uploads."""

    repo_id: str
    run_dir: RunDir
    local_dir: Path
    split: str
    n_rows: int
    configs: dict[str, int]  # config name -> rows
    subsets: dict[str, Selection]
    files: list[str]  # paths relative to local_dir
    replaced_columns: list[str]
    commit_message: str
    commit_description: str
    delete_patterns: list[str]
    notes: list[str] = field(default_factory=list)
    url: str | None = None  # after the push: the commit (or pull request) URL

    def summary(self) -> str:
        """A few lines for the terminal: configs, files, commit message, notes."""
        lines = [f"{self.repo_id}: {self.n_rows:,} rows from run {self.run_dir.path}"]
        lines += [f"  config {name}: {n:,} rows" for name, n in self.configs.items()]
        lines += [f"  file {f}" for f in self.files]
        lines.append(f"  commit: {self.commit_message}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def find_run(repo_id: str, runs_dir: str | Path = "runs") -> RunDir:
    """The most recently finished run under ``runs_dir`` that scored ``repo_id``; an error when
    runs of different splits or configs of it are found (which one to push is then a choice)."""
    runs_dir = Path(runs_dir)
    found = []
    for run_json in runs_dir.glob("*/run.json") if runs_dir.is_dir() else []:
        run_dir = RunDir(run_json.parent)
        try:
            record = RunRecord.load(run_dir.path)
        except RunError:
            continue  # not a run of ours (or an older one): never pushed by guessing
        if record.complete and record.dataset.source == repo_id and run_dir.scores.is_file():
            found.append((run_dir.scores.stat().st_mtime, run_dir, (record.dataset.config, record.dataset.split)))
    if not found:
        raise DataError(f"No finished run of {repo_id!r} under {runs_dir}/; pass --run RUN_DIR.")
    if len({key for _, _, key in found}) > 1:
        listed = ", ".join(
            f"{r.path} ({key[1]}{f', config {key[0]}' if key[0] else ''})"
            for _, r, key in sorted(found, key=lambda f: str(f[1].path))
        )
        raise DataError(f"Several splits or configs of {repo_id!r} were scored ({listed}); pass --run RUN_DIR.")
    return max(found, key=lambda f: f[0])[1]


def require_finished(run_dir: RunDir) -> None:
    """A :class:`DataError` unless ``run_dir`` is a finished scorer run (``run.json`` complete, ``scores.parquet``)."""
    if not RunRecord.load(run_dir.path).complete or not run_dir.scores.is_file():
        raise DataError(f"{run_dir.path} is not a finished scorer run; finish it with `lpselect score` first.")


def _write_shards(dataset: datasets.Dataset, folder: Path, split: str) -> list[Path]:
    """``folder/SPLIT-0000i-of-0000N-HASH.parquet``, shards of at most :data:`MAX_SHARD_BYTES`, HASH
    the first 16 hex digits of the sha256 of the shard's bytes. The names change with the content
    because ``datasets`` caches a local folder by its name and its card's data files: a folder
    re-made under the same name with other rows must name other files, or ``load_dataset`` returns
    the old rows."""
    nbytes = dataset.data.nbytes * len(dataset) / max(len(dataset.data), 1)  # a select() keeps the whole table
    n = max(1, math.ceil(nbytes / MAX_SHARD_BYTES))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        written = folder / f".{split}-{i:05d}.parquet.tmp"
        dataset.shard(n, i, contiguous=True).to_parquet(str(written))
        digest = file_sha256(written)[:16]
        paths.append(written.rename(folder / f"{split}-{i:05d}-of-{n:05d}-{digest}.parquet"))
    return paths


def _data_files(paths: list[Path], local_dir: Path) -> str | list[str]:
    """A card config's ``path``: exactly the files written (see :func:`_write_shards`)."""
    names = [p.relative_to(local_dir).as_posix() for p in paths]
    return names[0] if len(names) == 1 else names


def scored_dataset(
    run_dir: RunDir, scores: pd.DataFrame, source_revision: str | None = None
) -> tuple[datasets.Dataset, list[str]]:
    """The run's source rows with their original columns and the score columns; and the source
    columns that were replaced (scores from an earlier push). ``source_revision`` reads the source
    at that commit instead of the run's; either way its first rows must be the rows the run scored."""
    source = run_source(run_dir, source_revision)
    replaced = [c for c in source.column_names if OUR_COLUMNS.match(c)]
    if replaced:
        source = source.remove_columns(replaced)
    try:
        columns = hub_columns(scores, len(source))
    except DataError as err:  # the source changed since the run: say which run
        raise DataError(f"{run_dir.path}: {err} Re-score it.") from err
    features = datasets.Features(
        {
            c: datasets.Value("string" if pd.api.types.is_string_dtype(t) else str(t).lower())
            for c, t in columns.dtypes.items()
        }
    )
    added = datasets.Dataset.from_pandas(columns, features=features, preserve_index=False)
    return datasets.concatenate_datasets([source, added], axis=1), replaced


def subset_specs(names: list[str] | None, scores: pd.DataFrame | None = None) -> tuple[list[SubsetSpec], list[str]]:
    """Parse subset names (None: :data:`DEFAULT_SUBSETS`, or none for a run without LP(1)); and notes."""
    notes = []
    if names is None:
        epochs = len(nll_columns(scores)) - 1 if scores is not None else None
        if epochs == 0:
            return [], [
                "no subsets by default: the run has no LP(1) (0 epochs); name some with --subsets, e.g. ppl_high_5pct"
            ]
        if epochs == 1:
            return [], [
                "no subsets by default: after 1 epoch LP(1) is 1 for every learned row; "
                "name some with --subsets, e.g. lp_app_hard_5pct"
            ]
        names = list(DEFAULT_SUBSETS)
    specs = [parse_subset(n) for n in names]
    if len({s.name for s in specs}) != len(specs):
        raise DataError(f"--subsets names a subset twice: {', '.join(names)}.")
    return specs, notes


def _figures(run_dir: RunDir, local_dir: Path) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Make the report's figures (in a scratch folder, leaving RUN/report alone) and copy the card's."""
    with tempfile.TemporaryDirectory() as scratch:
        report = make_report(run_dir, scratch)
        shown = []
        for name, title, caption in CARD_FIGURES:
            if name in report.figures and not (name == "p0_histogram" and "lp1_histogram" in report.figures):
                target = local_dir / FIGURES_DIR / FIGURE_FILES[name]
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(report.figures[name], target)
                shown.append({"title": title, "caption": caption, "path": f"{FIGURES_DIR}/{FIGURE_FILES[name]}"})
        return shown, report.stats


def _comparisons(run_dir: RunDir) -> list[str]:
    """One sentence per ``lpselect compare`` result stored in the run directory."""
    out = []
    for path in sorted(run_dir.path.glob("compare-*/compare.json")):
        result = json.loads(path.read_text())
        for score, res in result.get("results", {}).items():
            if res.get("spearman") is None:
                continue
            top = ", ".join(
                f"{t['fraction']:.0%}: {t['overlap']:.2f}" for t in res.get("top", []) if t.get("overlap") is not None
            )
            other = Path(result.get("runs", ["", path.parent.name])[1]).name
            out.append(
                f"against run `{other}` on {result.get('n_matched', '?')} rows, {score} Spearman {res['spearman']:.3f}"
                + (f", overlap of the hardest {top}." if top else ".")
            )
    return out


def materialize(
    run: str | Path | RunDir,
    repo_id: str,
    local_dir: str | Path,
    *,
    subsets: list[str] | None = None,
    existing_card: DatasetCard | None = None,
    source_card: DatasetCard | None = None,
    detected_configs: list[dict[str, Any]] | None = None,
    source_revision: str | None = None,
    seed: int = 42,
) -> PushPlan:
    """Write the dataset repo for ``run`` to ``local_dir``: Parquet shards, subsets, figures, card.

    ``existing_card`` (the target repo's ``DatasetCard``, when it has one) keeps its metadata,
    configs and body; ``detected_configs`` stands in for its configs when it declares none;
    ``source_card`` lends its license, task categories and language. ``source_revision`` reads
    the source at that commit rather than the one the run read (a push onto the scored repo reads
    its head, so that commits made since are kept; rows added since become ``unscored``). Random
    subsets are drawn with ``seed``.

    Raises:
        [`~hf_lpselect.errors.RunError`]: the run directory holds no complete scorer run.
        [`~hf_lpselect.errors.DataError`]: the run's source changed since it was scored, or ``local_dir`` holds another
            dataset.
        [`~hf_lpselect.errors.ConfigError`]: a subset name that is not STRATEGY_Npct.
        [`~hf_lpselect.errors.SelectionError`]: a subset the run's scores cannot serve.
    """
    run_dir = run if isinstance(run, RunDir) else RunDir(run)
    require_finished(run_dir)
    record = RunRecord.load(run_dir.path)
    split = record.dataset.split
    if not re.fullmatch(r"\w+(\.\w+)*", split):
        raise DataError(
            f"{run_dir.path} scored the split {split!r}, not a whole split: a pushed split needs a plain name; "
            f"score `--split {split.split('[')[0]} --limit N` instead."
        )
    local_dir = Path(local_dir)
    if local_dir.exists() and any(local_dir.iterdir()):
        raise DataError(f"{local_dir} is not empty; give an empty or new folder for --local_dir.")
    # Written whole into a staging folder beside local_dir, then renamed to it: a full disk or a kill
    # never leaves a half-materialised --local_dir that a later push (or `datasets`) would trust, and
    # the same command can run again. A staging folder a kill left behind is ours and replaced.
    staging = local_dir.parent / f".{local_dir.name}.lpselect-materialize.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        plan = _materialize(
            run_dir,
            record,
            split,
            repo_id,
            staging,
            subsets=subsets,
            existing_card=existing_card,
            source_card=source_card,
            detected_configs=detected_configs,
            source_revision=source_revision,
            seed=seed,
        )
        os.replace(staging, local_dir)  # onto a missing or empty folder (checked above): one rename
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    plan.local_dir = local_dir
    return plan


def _materialize(
    run_dir: RunDir,
    record: RunRecord,
    split: str,
    repo_id: str,
    local_dir: Path,
    *,
    subsets: list[str] | None,
    existing_card: DatasetCard | None,
    source_card: DatasetCard | None,
    detected_configs: list[dict[str, Any]] | None,
    source_revision: str | None,
    seed: int,
) -> PushPlan:
    scores = pd.read_parquet(run_dir.scores)
    epochs = len(nll_columns(scores)) - 1
    specs, notes = subset_specs(subsets, scores)
    scored, replaced = scored_dataset(run_dir, scores, source_revision)
    if replaced:
        notes.append(f"replaced the source's earlier score columns: {', '.join(replaced)}")

    files = _write_shards(scored, local_dir / DATA_DIR, split)
    config_files = {"default": _data_files(files, local_dir)}
    configs = {"default": len(scored)}
    selections: dict[str, Selection] = {}
    n_ok = int((scores["status"] == "ok").sum())
    mean_tokens = float(scores.loc[scores["status"] == "ok", "n_response_tokens"].mean()) if n_ok else None
    rows = []
    for spec in specs:
        try:
            selection = select_scored(scores, spec.strategy, fraction=spec.fraction, seed=seed)
        except SelectionError as err:  # say which subset
            raise SelectionError(f"Subset {spec.name}: {err}") from err
        subset = scored.select(list(selection.rows))
        written = _write_shards(subset, local_dir / SUBSETS_DIR / spec.name, split)
        config_files[spec.name] = _data_files(written, local_dir)
        files += written
        selections[spec.name] = selection
        configs[spec.name] = len(subset)
        described = describe_selection(selection, scores)
        rows.append(
            SubsetRow(
                spec.name,
                STRATEGIES[spec.strategy].description,
                len(subset),
                len(subset) / max(n_ok, 1),
                described.mean_response_tokens,
                described.length_ratio,
            )
        )

    figures, stats = _figures(run_dir, local_dir)
    source = record.dataset.source
    model = public_name(record.model_name)
    yaml_configs = [
        {"config_name": "default", "default": True, "data_files": [{"split": split, "path": config_files["default"]}]}
    ]
    yaml_configs += [
        {"config_name": s.name, "data_files": [{"split": split, "path": config_files[s.name]}]} for s in specs
    ]
    provenance = CardProvenance(
        scorer=model,
        template=record.template,
        scorer_revision=record.model.get("revision"),
        epochs=epochs,
        max_length=record.identity.get("max_length"),
        seed=record.identity.get("seed"),
        recipe=dict(record.recipe),
        source=public_name(source),
        source_config=record.dataset.config,
        source_split=split,
        source_commit=source_revision or record.dataset.revision,
        subsets={s.name: {"strategy": s.strategy, "fraction": s.fraction} for s in specs},
        selection_seed=seed,
        version=__version__,
    )
    data = card_data(
        pretty_name=repo_id.split("/")[-1],
        configs=yaml_configs,
        existing=existing_card.data if existing_card is not None else None,
        source_data=source_card.data if source_card is not None else None,
        source=source if is_hub_id(source) and source != repo_id else None,
        split=split,
        owned_prefix=SUBSETS_DIR,
        provenance=provenance,
        detected=detected_configs,
    )
    counts = {k: v for k, v in count_statuses(scores).items() if v}
    if len(scored) > len(scores):
        counts["unscored"] = len(scored) - len(scores)
    hard = next((r for r in rows if r.name.startswith("lp1_hard")), None)
    rho = stats.get("spearman_lp1_length")
    card = render_card(
        data,
        CardContext(
            repo_id=repo_id,
            source=public_name(source),
            source_is_hub=is_hub_id(source),
            split=split,
            n_rows=len(scored),
            n_scored=len(scores),
            model=model,
            model_revision=record.model.get("revision"),
            epochs=epochs,
            template=record.template,
            max_length=record.identity.get("max_length"),
            seed=record.identity.get("seed"),
            selection_seed=seed,
            recipe=record.recipe,
            versions=", ".join(f"{k} {v}" for k, v in record.versions.items()),
            has_lp="lp1" in scores,
            has_ifd="ifd_nll" in scores,
            counts=counts,
            reasons=reason_lines(scores),
            subsets=rows,
            has_random=any(STRATEGIES[s.strategy].order == "random" for s in specs),
            mean_tokens=mean_tokens,
            figures=figures,
            comparisons=_comparisons(run_dir),
            length_spearman=rho if rho is not None and math.isfinite(rho) else None,
            hard_subset=hard.name if hard else None,
            hard_length_ratio=hard.length_ratio if hard else None,
            original_body=original_body(existing_card),
        ),
    )
    card.save(local_dir / "README.md")
    files = ["README.md"] + [str(p.relative_to(local_dir)) for p in files] + [f["path"] for f in figures]
    what = "learning-percentage" if epochs >= 1 else "perplexity"
    return PushPlan(
        repo_id=repo_id,
        run_dir=run_dir,
        local_dir=local_dir,
        split=split,
        n_rows=len(scored),
        configs=configs,
        subsets=selections,
        files=files,
        replaced_columns=replaced,
        commit_message=f"Add {what} scores from {model} (hf_lpselect {__version__})",
        commit_description="Configs: " + ", ".join(f"{k} ({v:,} rows)" for k, v in configs.items()),
        delete_patterns=[f"{DATA_DIR}/{split}-*", f"{SUBSETS_DIR}/**", f"{FIGURES_DIR}/**"],
        notes=notes,
    )
