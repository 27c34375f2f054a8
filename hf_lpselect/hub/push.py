"""Scores on the Hub: :func:`push_scores`, what ``lpselect push-scores`` calls.

It reads the target repo (its head commit, card and configs: :func:`read_target`), refuses a push
that would overwrite another dataset, materialises the repo folder
(:func:`hf_lpselect.hub.materialize.materialize`) and uploads it in ONE commit (or one pull request)
whose parent is the commit the card was read at, asking again on a transient failure.
"""

from __future__ import annotations

import random
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from datasets.data_files import DataFilesDict, get_data_patterns
from datasets.download import DownloadConfig
from huggingface_hub import DatasetCard, HfApi, get_token
from huggingface_hub.errors import (
    EntryNotFoundError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

from ..core.deprecation import renamed_keyword
from ..core.hub import NETWORK_ERRORS, is_hub_id, offline, public_name, short_error
from ..core.io import is_disk_full, write_refusal
from ..errors import DataError, HubError
from ..record import DatasetRecord, RunRecord
from ..rundir import RunDir
from .load import load_card
from .materialize import PushPlan, find_run, materialize, require_finished, subset_specs
from .provenance import CardProvenance


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
    except HubError:  # a card that cannot be parsed: said already (a HubError is an OSError too)
        raise
    except NETWORK_ERRORS as err:
        raise HubError(
            f"Could not read {repo_id} on the Hub ({short_error(err)}); check the id and your connection."
        ) from err


def _read_target(api: HfApi, repo_id: str, detect: bool) -> Target:
    try:
        sha = api.dataset_info(repo_id).sha
    except RepositoryNotFoundError:
        return Target(exists=False)
    target = Target(exists=True, sha=sha)
    try:
        card = api.hf_hub_download(repo_id, "README.md", repo_type="dataset", revision=sha)
    except LocalEntryNotFoundError:  # the Hub could not be reached (not: the file is missing)
        raise
    except EntryNotFoundError:
        card = None
    if card is not None:
        target.card = load_card(card, repo_id)  # a broken YAML header is one sentence
    if detect and (target.card is None or not target.card.data.get("configs")):
        base, download = f"hf://datasets/{repo_id}@{sha}", DownloadConfig(token=api.token)
        try:
            patterns = get_data_patterns(base, download)
        except FileNotFoundError:  # no data files (a new or empty repo)
            patterns = {}
        if patterns and _holds_data(patterns, base, download):
            target.detected_configs = [
                {"config_name": "default", "data_files": [{"split": k, "path": v} for k, v in patterns.items()]}
            ]
    return target


def _holds_data(patterns: dict[str, list[str]], base: str, download: DownloadConfig) -> bool:
    """Whether the files ``datasets`` detects hold rows: a Markdown file (someone's notes, an ``OTHER.md``)
    is not a dataset, though ``datasets`` detects it as one."""
    files = DataFilesDict.from_patterns(patterns, base_path=base, download_config=download)
    return any(not str(f).lower().endswith(".md") for split in files.values() for f in split)


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
    if not target.exists or repo_id == dataset.source or not has_data:
        return
    if not ours:
        raise DataError(
            f"{repo_id} already holds another dataset (not the one the run scored, {dataset.source}); "
            "push to that dataset or to a new repo."
        )
    pushed = CardProvenance.from_card(target.card, where=repo_id)  # None or no source: a card too old to say
    scored = (public_name(dataset.source), dataset.config or "default")
    if (
        pushed is not None
        and pushed.source is not None
        and (pushed.source, pushed.source_config or "default") != scored
    ):
        config = f" (config {pushed.source_config})" if pushed.source_config not in (None, "default") else ""
        raise DataError(
            f"{repo_id} holds the pushed scores of another dataset, {pushed.source}{config}, not of the one the run "
            f"scored ({scored[0]}); push to a new repo, or score {pushed.source} to update its scores."
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
    selection_seed: int = 42,
    seed: int | None = None,
) -> PushPlan:
    """Push a run's scores as columns of the Hub dataset ``repo_id``, with subset configs and a card,
    in ONE commit (or one pull request with ``create_pr``).

    ``run`` defaults to the latest finished run of ``repo_id`` under ``runs_dir``. ``local_dir``
    keeps the materialised folder (otherwise a temporary one); ``dry_run`` materialises and stops
    before any network call, so the target's existing card is not read. The commit's parent is the
    commit the card was read at: if the repo moves on in between, the push fails instead of
    overwriting that change. ``selection_seed`` seeds the random subsets (``seed``: its deprecated name).

    Raises:
        [`~hf_lpselect.errors.RunError`]: the run directory holds no complete scorer run.
        [`~hf_lpselect.errors.DataError`]: the run's source changed since it was scored, or a repo id that is not
            OWNER/NAME.
        [`~hf_lpselect.errors.ConfigError`]: a subset name that is not STRATEGY_Npct.
        [`~hf_lpselect.errors.SelectionError`]: a subset the run's scores cannot serve.
        [`~hf_lpselect.errors.HubError`]: no token, or the Hub cannot be reached or refused the push (nothing was
            pushed).
    """
    seed = renamed_keyword("push_scores", "seed", "selection_seed", seed, selection_seed)
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise DataError(
            f"Bad repo id {repo_id!r}: write OWNER/NAME, e.g. my-org/alpaca ({short_error(err)})."
        ) from err
    subset_specs(subsets)  # a bad name fails before any network call
    run_dir = RunDir(run) if run is not None else find_run(repo_id, runs_dir)
    require_finished(run_dir)
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
                plan = materialize(
                    run_dir,
                    repo_id,
                    local_dir if local_dir is not None else scratch.name,
                    subsets=subsets,
                    existing_card=target.card,
                    source_card=source,
                    detected_configs=target.detected_configs,
                    seed=seed,
                    source_revision=target.sha if repo_id == source_id else None,
                )
        except NETWORK_ERRORS as err:
            if is_disk_full(err) or write_refusal(err):
                raise  # a full disk or a read-only --local-dir: said as one by the command line
            raise HubError(
                f"Could not read the scored rows of {source_id} ({short_error(err)}); check your connection."
            ) from err
        if dry_run:
            plan.notes.append(
                "dry run: nothing was sent; the target's existing card was not read (a push keeps its metadata and text)"
            )
            return plan
        if not target.exists:
            _with_retries(
                lambda: api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True),
                f"Creating {repo_id}",
            )
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
    return min(RETRY_BASE_SECONDS * 2**attempt, RETRY_MAX_SECONDS) * (1 + 0.1 * random.random())


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
                raise HubError(
                    f"{what} failed{tries} ({short_error(err)}); nothing was pushed, re-run the same command."
                ) from err
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
                folder_path=plan.local_dir,
                repo_id=repo_id,
                repo_type="dataset",
                commit_message=plan.commit_message,
                commit_description=plan.commit_description,
                create_pr=create_pr,
                delete_patterns=plan.delete_patterns,
                parent_commit=target.sha,
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
                raise HubError(
                    f"Pushing to {repo_id} failed{tries} ({short_error(err)}); no commit was made, "
                    "re-run the same command."
                ) from err
            time.sleep(_backoff(attempt, err))
