"""Scores on the Hub: materialise a dataset repo from a run, push it in one commit, load subsets back.

:func:`push_scores` is what ``lpselect push-scores`` calls; :func:`materialize` writes exactly the
folder that is pushed; :func:`load_scored` builds any subset from a pushed dataset's score columns.

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
import random
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import pandas as pd
from huggingface_hub import DatasetCard, HfApi

from .. import __version__
from .card import SubsetRow, card_data, config_paths, original_body, render_card
from .columns import (
    DEFAULT_SUBSETS,
    OUR_COLUMNS,
    SubsetSpec,
    hub_columns,
    parse_subset,
    scores_from_columns,
    select_scored,
)
from ..core.hub import NETWORK_ERRORS, is_hub_id, public_name, short_error
from ..errors import DataError, HubError, RunError
from ..record import DatasetRecord, RunRecord
from ..rundir import RunDir, file_sha256, is_disk_full
from ..selection.report import FIGURE_FILES, count_statuses, make_report, reason_lines
from ..selection.strategies import STRATEGIES, Selection, nll_columns
from ..selection.subsets import describe_selection, run_source, selected_dataset

MAX_SHARD_BYTES = 500 << 20  # as datasets' push_to_hub
DATA_DIR = "data"
SUBSETS_DIR = "lpselect/subsets"
FIGURES_DIR = "lpselect/figures"
# report figures shown on the card: (report figure name, title, caption)
CARD_FIGURES = (
    ("lp1_histogram", "LP(1) histogram", "How many rows learned how much of their perplexity drop in the first epoch; the hard subsets are the left tail."),
    ("lp1_vs_length", "LP(1) against response length", "Each point a scored row: a downward trend means long responses look hard (length bias)."),
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
        listed = ", ".join(f"{r.path} ({key[1]}{f', config {key[0]}' if key[0] else ''})" for _, r, key in sorted(found, key=lambda f: str(f[1].path)))
        raise DataError(f"Several splits or configs of {repo_id!r} were scored ({listed}); pass --run RUN_DIR.")
    return max(found, key=lambda f: f[0])[1]


def _require_finished(run_dir: RunDir) -> None:
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
    except ValueError as err:
        raise DataError(f"{run_dir.path}: {err} Re-score it.") from err
    features = datasets.Features({c: datasets.Value("string" if pd.api.types.is_string_dtype(t) else str(t).lower())
                                  for c, t in columns.dtypes.items()})
    added = datasets.Dataset.from_pandas(columns, features=features, preserve_index=False)
    return datasets.concatenate_datasets([source, added], axis=1), replaced


def subset_specs(names: list[str] | None, scores: pd.DataFrame | None = None) -> tuple[list[SubsetSpec], list[str]]:
    """Parse subset names (None: :data:`DEFAULT_SUBSETS`, or none for a run without LP(1)); and notes."""
    notes = []
    if names is None:
        epochs = len(nll_columns(scores)) - 1 if scores is not None else None
        if epochs == 0:
            return [], ["no subsets by default: the run has no LP(1) (0 epochs); name some with --subsets, e.g. ppl_high_5pct"]
        if epochs == 1:
            return [], ["no subsets by default: after 1 epoch LP(1) is 1 for every learned row; "
                        "name some with --subsets, e.g. lp_app_hard_5pct"]
        names = list(DEFAULT_SUBSETS)
    try:
        specs = [parse_subset(n) for n in names]
    except ValueError as err:
        raise DataError(str(err)) from err
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
            top = ", ".join(f"{t['fraction']:.0%}: {t['overlap']:.2f}" for t in res.get("top", []) if t.get("overlap") is not None)
            other = Path(result.get("runs", ["", path.parent.name])[1]).name
            out.append(f"against run `{other}` on {result.get('n_matched', '?')} rows, {score} Spearman {res['spearman']:.3f}"
                       + (f", overlap of the hardest {top}." if top else "."))
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
    """
    run_dir = run if isinstance(run, RunDir) else RunDir(run)
    _require_finished(run_dir)
    record = RunRecord.load(run_dir.path)
    split = record.dataset.split
    if not re.fullmatch(r"\w+(\.\w+)*", split):
        raise DataError(
            f"{run_dir.path} scored the split {split!r}, not a whole split: a pushed split needs a plain name; "
            f"score `--split {split.split('[')[0]} --limit N` instead."
        )
    local_dir = Path(local_dir)
    if local_dir.exists() and any(local_dir.iterdir()):
        raise DataError(f"{local_dir} is not empty; give an empty or new folder for --local-dir.")
    # Written whole into a staging folder beside local_dir, then renamed to it: a full disk or a kill
    # never leaves a half-materialised --local-dir that a later push (or `datasets`) would trust, and
    # the same command can run again. A staging folder a kill left behind is ours and replaced.
    staging = local_dir.parent / f".{local_dir.name}.lpselect-materialize.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        plan = _materialize(run_dir, record, split, repo_id, staging, subsets=subsets, existing_card=existing_card,
                            source_card=source_card, detected_configs=detected_configs, source_revision=source_revision,
                            seed=seed)
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
        except ValueError as err:
            raise DataError(f"Subset {spec.name}: {err}") from err
        subset = scored.select(list(selection.rows))
        written = _write_shards(subset, local_dir / SUBSETS_DIR / spec.name, split)
        config_files[spec.name] = _data_files(written, local_dir)
        files += written
        selections[spec.name] = selection
        configs[spec.name] = len(subset)
        described = describe_selection(selection, scores)
        rows.append(SubsetRow(spec.name, STRATEGIES[spec.strategy].description, len(subset), len(subset) / max(n_ok, 1),
                              described.mean_response_tokens, described.length_ratio))

    figures, stats = _figures(run_dir, local_dir)
    source = record.dataset.source
    model = public_name(record.model_name)
    yaml_configs = [{"config_name": "default", "default": True, "data_files": [{"split": split, "path": config_files["default"]}]}]
    yaml_configs += [{"config_name": s.name, "data_files": [{"split": split, "path": config_files[s.name]}]} for s in specs]
    data = card_data(
        pretty_name=repo_id.split("/")[-1], configs=yaml_configs,
        existing=existing_card.data if existing_card is not None else None,
        source_data=source_card.data if source_card is not None else None,
        source=source if is_hub_id(source) and source != repo_id else None, split=split,
        owned_prefix=SUBSETS_DIR, detected=detected_configs,
    )
    counts = {k: v for k, v in count_statuses(scores).items() if v}
    if len(scored) > len(scores):
        counts["unscored"] = len(scored) - len(scores)
    hard = next((r for r in rows if r.name.startswith("lp1_hard")), None)
    rho = stats.get("spearman_lp1_length")
    card = render_card(
        data,
        repo_id=repo_id, source=public_name(source), source_is_hub=is_hub_id(source), split=split, n_rows=len(scored),
        n_scored=len(scores), model=model, model_revision=record.model.get("revision"),
        epochs=epochs, template=record.template, max_length=record.identity.get("max_length"), seed=record.identity.get("seed"),
        selection_seed=seed, recipe=record.recipe,
        versions=", ".join(f"{k} {v}" for k, v in record.versions.items()),
        has_lp="lp1" in scores, has_ifd="ifd_nll" in scores, counts=counts, reasons=reason_lines(scores),
        subsets=rows, has_random=any(STRATEGIES[s.strategy].order == "random" for s in specs),
        mean_tokens=mean_tokens, figures=figures, comparisons=_comparisons(run_dir),
        length_spearman=rho if rho is not None and math.isfinite(rho) else None, hard_subset=hard.name if hard else None,
        hard_length_ratio=hard.length_ratio if hard else None, original_body=original_body(existing_card),
    )
    card.save(local_dir / "README.md")
    files = ["README.md"] + [str(p.relative_to(local_dir)) for p in files] + [f["path"] for f in figures]
    what = "learning-percentage" if epochs >= 1 else "perplexity"
    return PushPlan(
        repo_id=repo_id, run_dir=run_dir, local_dir=local_dir, split=split, n_rows=len(scored), configs=configs,
        subsets=selections, files=files, replaced_columns=replaced,
        commit_message=f"Add {what} scores from {model} (hf_lpselect {__version__})",
        commit_description="Configs: " + ", ".join(f"{k} ({v:,} rows)" for k, v in configs.items()),
        delete_patterns=[f"{DATA_DIR}/{split}-*", f"{SUBSETS_DIR}/**", f"{FIGURES_DIR}/**"], notes=notes,
    )


@dataclass
class Target:
    """What the Hub holds at the target repo before a push."""

    exists: bool
    sha: str | None = None  # the commit the card was read at: the push's parent commit
    card: DatasetCard | None = None
    detected_configs: list[dict[str, Any]] | None = None  # for a card that declares no configs


def read_target(api: HfApi, repo_id: str, *, detect: bool = True) -> Target:
    """The target repo's head commit, card, and (``detect``, when the card declares none) the
    configs that ``datasets`` detects from its files, so that a push keeps its other splits.
    A repo that cannot be read is one :class:`HubError` naming it."""
    try:
        return _read_target(api, repo_id, detect)
    except NETWORK_ERRORS as err:
        raise HubError(f"Could not read {repo_id} on the Hub ({short_error(err)}); check the id and your connection.") from err


def _read_target(api: HfApi, repo_id: str, detect: bool) -> Target:
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        sha = api.dataset_info(repo_id).sha
    except RepositoryNotFoundError:
        return Target(exists=False)
    target = Target(exists=True, sha=sha)
    try:
        target.card = DatasetCard.load(api.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=sha))
    except LocalEntryNotFoundError:  # the Hub could not be reached (not: the file is missing)
        raise
    except EntryNotFoundError:
        pass
    except ValueError as err:  # broken YAML
        raise HubError(f"The dataset card of {repo_id} cannot be parsed ({short_error(err)}); fix its YAML header first.") from err
    if detect and (target.card is None or not target.card.data.get("configs")):
        from datasets.data_files import get_data_patterns
        from datasets.download import DownloadConfig

        try:
            patterns = get_data_patterns(f"hf://datasets/{repo_id}@{sha}", DownloadConfig(token=api.token))
        except FileNotFoundError:  # no data files (a new or empty repo)
            patterns = {}
        if patterns:
            target.detected_configs = [{"config_name": "default", "data_files": [{"split": k, "path": v} for k, v in patterns.items()]}]
    return target


def _check_target(target: Target, repo_id: str, dataset: DatasetRecord) -> None:
    """Refuse pushes that would overwrite data that is not the scored rows (``dataset``: where the run read them)."""
    scored_config = dataset.config
    if repo_id == dataset.source and scored_config not in (None, "default"):
        raise DataError(
            f"The run scored config {scored_config!r} of {repo_id}; pushing it there would replace the repo's "
            "default config. Push to a new repo instead."
        )
    ours = target.card is not None and "lpselect" in (target.card.data.get("tags") or [])
    has_data = target.detected_configs or (target.card is not None and target.card.data.get("configs"))
    if target.exists and repo_id != dataset.source and has_data and not ours:
        raise DataError(
            f"{repo_id} already holds another dataset (not the one the run scored, {dataset.source}); "
            "push to that dataset or to a new repo."
        )


def push_scores(
    repo_id: str,
    *,
    run: str | Path | None = None,
    subsets: list[str] | None = None,
    private: bool = False,
    create_pr: bool = False,
    local_dir: str | Path | None = None,
    dry_run: bool = False,
    token: str | None = None,
    runs_dir: str | Path = "runs",
    seed: int = 42,
) -> PushPlan:
    """Push a run's scores as columns of the Hub dataset ``repo_id``, with subset configs and a card,
    in ONE commit (or one pull request with ``create_pr``).

    ``run`` defaults to the latest finished run of ``repo_id`` under ``runs_dir``. ``local_dir``
    keeps the materialised folder (otherwise a temporary one); ``dry_run`` materialises and stops
    before any network call, so the target's existing card is not read. The commit's parent is the
    commit the card was read at: if the repo moves on in between, the push fails instead of
    overwriting that change.
    """
    from huggingface_hub import get_token
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise DataError(f"Bad repo id {repo_id!r}: write OWNER/NAME, e.g. my-org/alpaca ({short_error(err)}).") from err
    subset_specs(subsets)  # a bad name fails before any network call
    run_dir = RunDir(run) if run is not None else find_run(repo_id, runs_dir)
    _require_finished(run_dir)
    dataset = RunRecord.load(run_dir.path).dataset
    source_id = dataset.source
    api, target, source = None, Target(exists=False), None
    if not dry_run:
        token = token or get_token()
        if not token:
            raise HubError("No Hugging Face token: run `hf auth login` or set HF_TOKEN, then push again.")
        api = HfApi(token=token)
        target = read_target(api, repo_id)
        if source_id != repo_id and is_hub_id(source_id):
            source = read_target(api, source_id, detect=False).card
        _check_target(target, repo_id, dataset)
    scratch = None if local_dir is not None else tempfile.TemporaryDirectory(prefix="lpselect-push-")
    try:
        try:
            with offline() if dry_run else nullcontext():
                plan = materialize(run_dir, repo_id, local_dir if local_dir is not None else scratch.name, subsets=subsets,
                                   existing_card=target.card, source_card=source,
                                   detected_configs=target.detected_configs, seed=seed,
                                   source_revision=target.sha if repo_id == source_id else None)
        except NETWORK_ERRORS as err:
            if is_disk_full(err):
                raise  # a full disk while materialising: said as one by the command line, and the re-run resumes
            raise HubError(f"Could not read the scored rows of {source_id} ({short_error(err)}); check your connection.") from err
        if dry_run:
            plan.notes.append("dry run: nothing was sent; the target's existing card was not read (a push keeps its metadata and text)")
            return plan
        if not target.exists:
            _with_retries(lambda: api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True),
                          f"Creating {repo_id}")
        info = _upload(api, plan, target, create_pr)
        plan.url = info.pr_url if create_pr else info.commit_url
        return plan
    finally:
        if scratch is not None:
            scratch.cleanup()


# a Hub answer or transport failure that may pass: retried with exponential backoff, PUSH_ATTEMPTS times in all
TRANSIENT_STATUS = (408, 429, 500, 502, 503, 504)
PUSH_ATTEMPTS = 4
RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0


def _status(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def _transient(err: BaseException) -> bool:
    """A failure worth asking again: 408 / 429 / 5xx, or the connection failing (refused, reset, timed out)."""
    import httpx2

    status = _status(err)
    if status is not None:
        return status in TRANSIENT_STATUS
    return isinstance(err, (httpx2.TransportError, ConnectionError, TimeoutError))


def _backoff(attempt: int, err: BaseException) -> float:
    """Seconds to wait before attempt ``attempt + 1``: the server's Retry-After when it gives one, else
    exponential (1, 2, 4 … s, at most 30) with a little jitter."""
    response = getattr(err, "response", None)
    after = getattr(response, "headers", {}).get("retry-after") if response is not None else None
    if after is not None and str(after).isdigit():
        return min(float(after), RETRY_MAX_SECONDS)
    return min(RETRY_BASE_SECONDS * 2 ** attempt, RETRY_MAX_SECONDS) * (1 + 0.1 * random.random())


def _with_retries(call, what: str):
    """``call()``, asked again on a transient failure (bounded, with backoff); anything else is one sentence."""
    for attempt in range(PUSH_ATTEMPTS):
        try:
            return call()
        except NETWORK_ERRORS as err:
            if is_disk_full(err):
                raise
            if not _transient(err) or attempt == PUSH_ATTEMPTS - 1:
                tries = f" after {attempt + 1} tries" if attempt else ""
                raise HubError(f"{what} failed{tries} ({short_error(err)}); nothing was pushed, re-run the same command.") from err
            time.sleep(_backoff(attempt, err))


def _upload(api: HfApi, plan: PushPlan, target: Target, create_pr: bool):
    """The one commit (or pull request) of the materialised folder, with bounded retries.

    The commit's parent is ``target.sha``: if someone else's commit landed on the branch since the
    card was read, the Hub refuses it (HTTP 412 / 409) and nothing of ours lands; that is said in one
    sentence, and the same command then pushes on top of their commit. A transient failure is asked
    again. If a commit whose answer was lost did land, the retry finds every file already there and
    huggingface_hub makes no second, empty commit.
    """
    repo_id = plan.repo_id
    for attempt in range(PUSH_ATTEMPTS):
        try:
            return api.upload_folder(
                folder_path=plan.local_dir, repo_id=repo_id, repo_type="dataset",
                commit_message=plan.commit_message, commit_description=plan.commit_description,
                create_pr=create_pr, delete_patterns=plan.delete_patterns, parent_commit=target.sha,
            )
        except NETWORK_ERRORS as err:
            if is_disk_full(err):
                raise
            if _status(err) in (409, 412) and target.sha is not None:
                raise HubError(
                    f"Someone else pushed to {repo_id} while this push was being made, so nothing was pushed (the push "
                    "would have replaced their commit); re-run the same command to push on top of it."
                ) from err
            if not _transient(err) or attempt == PUSH_ATTEMPTS - 1:
                tries = f" after {attempt + 1} tries" if attempt else ""
                raise HubError(f"Pushing to {repo_id} failed{tries} ({short_error(err)}); no commit was made, "
                               "re-run the same command.") from err
            time.sleep(_backoff(attempt, err))


@contextmanager
def offline() -> Iterator[None]:
    """No network inside (``--dry-run``): datasets and huggingface_hub read these flags on every
    call, so a Hub source is read from the local cache instead of asking the Hub for updates."""
    import huggingface_hub.constants as hub_constants

    saved = hub_constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
    hub_constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved


def load_scored(
    repo_id: str,
    strategy: str,
    *,
    fraction: float | None = None,
    count: int | None = None,
    split: str = "train",
    revision: str | None = None,
    seed: int = 42,
    **load_kwargs: Any,
) -> datasets.Dataset:
    """Any subset of a dataset pushed by ``lpselect push-scores``, from its score columns.

    ``load_scored("org/alpaca", strategy="lp1-hard", fraction=0.07)`` loads the ``default``
    config and selects with :func:`hf_lpselect.selection.strategies.select`, exactly as ``lpselect select``
    does; rows come hardest first, with ``selection_rank`` (and ``selection_score``) added.
    ``repo_id`` may also be a local folder holding such a repo.
    """
    folder = Path(repo_id).expanduser()
    if folder.is_dir():  # datasets caches a local folder by its name, not its content: read the files themselves
        card = DatasetCard.load(folder / "README.md") if (folder / "README.md").is_file() else None
        configs = (card.data.get("configs") or []) if card is not None else []
        default = next((c for c in configs if c.get("config_name") == "default"), {})
        paths = config_paths(default, split)
        if not paths:
            raise DataError(f"{repo_id} has no default config with a {split!r} split: it was not pushed by `lpselect push-scores`.")
        data = datasets.load_dataset("parquet", data_files=[str(folder / p) for p in paths], split="train", **load_kwargs)
    else:
        data = datasets.load_dataset(repo_id, "default", split=split, revision=revision, **load_kwargs)
    ours = [c for c in data.column_names if OUR_COLUMNS.match(c)]
    try:
        scores = scores_from_columns(data.select_columns(ours).to_pandas())
        selection = select_scored(scores, strategy, fraction=fraction, count=count, seed=seed)
    except ValueError as err:
        raise DataError(f"{repo_id}: {err}") from err
    return selected_dataset(data, scores, selection, with_scores=False)
