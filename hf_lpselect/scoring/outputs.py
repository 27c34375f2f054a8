"""What a scorer run leaves behind: ``rows.parquet``, ``scores.parquet`` and ``run.json``, built from its passes.

:func:`build_scores` joins the rows table and the pass tables; :func:`scores_from_passes` writes a whole run
directory from the passes of a :class:`~hf_lpselect.scoring.trainer.LearningPercentageCallback` in a plain
TRL script, so ``lpselect select``, ``push-scores`` and ``train`` take such a run like one of ``lpselect score``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import datasets
import numpy as np
import pandas as pd
from accelerate import PartialState

from ..core.hardware import probe
from ..core.io import atomic_write, write_parquet
from ..core.schema import STATUSES
from ..errors import ConfigError, DataError, RunError
from ..ingest import FORMATS, canonicalize, content_ids, dataset_fingerprint, source_format
from ..lp import learning_percentages
from ..record import DatasetRecord, RunRecord, identity_differences, identity_of
from ..rundir import RunDir


ROWS_COLUMNS = ["row", "id", "status", "reason", "n_prompt_tokens", "n_response_tokens", "truncated"]


@dataclass
class ScoreResult:
    """What a finished scorer run produced.

    Args:
        run_dir (`RunDir`): where the files are.
        rows (`datasets.Dataset`): the canonical input rows.
        scores (`pandas.DataFrame`): ``scores.parquet``, one row per input row.
        record (`RunRecord`): ``run.json``.
        already_complete (`bool`, defaults to `False`): the run had finished before this call, which only read it back.
    """

    run_dir: RunDir
    rows: datasets.Dataset
    scores: pd.DataFrame
    record: RunRecord
    already_complete: bool = False

    @property
    def counts(self) -> dict[str, int]:
        return self.record.counts


def build_scores(rows: pd.DataFrame, passes: list[pd.DataFrame], alone: pd.DataFrame | None = None) -> pd.DataFrame:
    """Join the rows table and the pass tables into ``scores.parquet``: one row per INPUT row.

    Columns: row, id, status, reason, n_response_tokens, nll_K and ppl_K for every pass, lp_K for
    K = 1..n, lp1, lp_app, the out-of-range flags and lp_reason. With the ``alone`` pass (the
    responses scored without their prompts, before training): nll_alone, ppl_alone and both IFD
    variants, ``ifd_nll = nll_0 / nll_alone`` and ``ifd_ppl = ppl_0 / ppl_alone``.
    Rows that were not scored keep NaN.
    """
    out = rows[["row", "id", "status", "reason", "n_response_tokens"]].copy()
    named = [(f"nll_{k}", frame) for k, frame in enumerate(passes)] + (
        [("nll_alone", alone)] if alone is not None else []
    )
    for column, frame in named:
        out[column] = out["row"].map(frame.set_index("row")["nll"]).astype("float64")
    for column, _ in named:
        out["ppl" + column[3:]] = np.exp(out[column])
    if alone is not None:
        out["ifd_nll"] = out["nll_0"] / out["nll_alone"]
        out["ifd_ppl"] = out["ppl_0"] / out["ppl_alone"]
    if len(passes) > 1:
        lp = learning_percentages(out[[f"ppl_{k}" for k in range(len(passes))]].to_numpy())
        lp.index = out.index
        out = pd.concat([out, lp], axis=1)
    return out


def library_versions() -> dict[str, str | None]:
    """The versions of hf_lpselect and the libraries that decide its numbers, for ``run.json``."""

    def known(lib: str) -> str | None:
        try:
            return version(lib)
        except PackageNotFoundError:
            return None

    return {
        lib: known(lib) for lib in ("hf-lpselect", "torch", "transformers", "trl", "datasets", "accelerate", "peft")
    }


def status_counts(rows: pd.DataFrame) -> dict[str, int]:
    """Rows by status (every status named, zeros included) and how many were truncated."""
    counts = {status: int((rows["status"] == status).sum()) for status in STATUSES}
    counts["truncated"] = int(rows["truncated"].fillna(False).astype(bool).sum())
    return counts


def _rows_table(
    source: datasets.Dataset, canonical: datasets.Dataset, scored: datasets.Dataset, first_pass: pd.DataFrame
) -> pd.DataFrame:
    """One row per source row: scored ones ``ok`` (``excluded`` when no response token was left), rows left out as
    not in the scored dataset, and rows the scorer's own reading finds invalid or duplicate as such."""
    n = len(source)
    ids = content_ids(source)
    table = pd.DataFrame(
        {
            "row": np.arange(n, dtype="int64"),
            "id": ids,
            "status": "excluded",
            "reason": "left out of training by the trainer (its response truncated away at max_length, for instance)",
            "n_prompt_tokens": 0,
            "n_response_tokens": 0,
            "truncated": pd.array([pd.NA] * n, dtype="boolean"),
        }
    )
    not_ok = np.asarray(canonical["status"]) != "ok"
    rows = np.asarray(scored["row"], dtype="int64")
    lengths = np.asarray(scored["length"], dtype="int64")
    responses = np.fromiter(
        (sum(1 for v in labels if v != -100) for labels in scored["labels"]), dtype="int64", count=len(scored)
    )
    tokens = first_pass.set_index("row")["n_tokens"].reindex(rows).fillna(0).to_numpy()
    table.loc[rows, "n_response_tokens"] = responses
    table.loc[rows, "n_prompt_tokens"] = lengths - responses
    table.loc[rows, "status"] = np.where(tokens > 0, "ok", "excluded")
    table.loc[rows, "reason"] = np.where(tokens > 0, None, "no response token left to score (truncated away)")
    # a row the scorer's own reading finds invalid or a duplicate stays so, trained on or not: a selection never
    # takes an invalid row, or both copies of a duplicate, as lpselect score's never does
    table.loc[not_ok, "status"] = np.asarray(canonical["status"])[not_ok]
    table.loc[not_ok, "reason"] = np.asarray(canonical["reason"], dtype=object)[not_ok]
    if "truncated" in scored.column_names:
        table.loc[rows, "truncated"] = pd.array(scored["truncated"], dtype="boolean")
    table["reason"] = table["reason"].astype(object).where(table["status"] != "ok", None)
    return table


def callback_record(source: datasets.Dataset, *, args: Any, model_name: str, template: str = "") -> RunRecord:
    """The ``run.json`` of a run whose passes a callback writes in the user's own trainer (``complete`` false):
    identity from the trainer's arguments and model, the source's fingerprint, and the device and precision."""
    try:
        row_format = source_format(source)
    except DataError:
        raise ConfigError(
            f"The source rows have columns {sorted(source.column_names)}, which match none of the formats "
            f"hf_lpselect reads ({', '.join(FORMATS)})."
        ) from None
    values = args.to_dict() if args is not None else {}
    bf16 = bool(values.get("bf16"))
    return RunRecord(
        identity={**identity_of(values), "model_name_or_path": model_name, "resolved": {"template": template}},
        dataset=DatasetRecord(
            source="source.parquet",
            n_rows=len(source),
            fingerprint=dataset_fingerprint(content_ids(source)),
            stored=True,
        ),
        format=row_format,
        template=template,
        epochs=int(values.get("num_train_epochs") or 0),
        model={"model": model_name, "source": "trainer"},
        versions=library_versions(),
        hardware={
            **probe("cpu" if values.get("use_cpu") else None).to_dict(),
            "precision": {"training": "bf16" if bf16 else "fp32", "scoring": "bf16" if bf16 else "fp32"},
        },
    )


def start_callback_run(
    run_dir: str | os.PathLike | RunDir, source: datasets.Dataset, *, args: Any, model_name: str, template: str = ""
) -> None:
    """Before a callback's first pass: refuse a folder that holds another run, then record this one (``run.json``).

    The same run (identity and rows) resumes; another one, or pass files with no record, is one :class:`RunError`,
    so passes of two runs are never mixed into one set of scores.
    """
    run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    record = callback_record(source, args=args, model_name=model_name, template=template)
    if run_dir.run_json.is_file():
        differ = identity_differences(RunRecord.load(run_dir.path), record.identity, record.dataset.fingerprint)
        if differ:
            raise RunError(
                f"{run_dir.path} holds the passes of a different run ({', '.join(differ)} differ); give the "
                "trainer another output_dir or delete that directory."
            )
        return
    if run_dir.completed_passes():
        raise RunError(
            f"{run_dir.path} holds pass files but no run.json, so they may be another run's; give the trainer "
            "another output_dir or delete that directory."
        )
    state = PartialState()
    if state.is_main_process:
        record.save(run_dir.path)
    state.wait_for_everyone()


def scores_from_passes(
    run_dir: str | os.PathLike | RunDir,
    source: datasets.Dataset,
    scored: datasets.Dataset,
    *,
    args: Any = None,
    model_name: str = "",
    template: str = "",
) -> ScoreResult:
    """Write ``rows.parquet``, ``scores.parquet``, ``run.json`` and ``source.parquet`` from a run directory's passes.

    What ``lpselect score`` writes at its end, for the passes that a
    :class:`~hf_lpselect.scoring.trainer.LearningPercentageCallback` wrote inside your own trainer.
    Afterwards ``lpselect select``, ``report``, ``push-scores`` and ``train --run`` take the folder.

    Args:
        run_dir (`str`, `os.PathLike` or `RunDir`): the folder holding ``passes/epoch_0..n.parquet``.
        source (`datasets.Dataset`): the raw rows the trainer was given (any format ``lpselect score``
            reads), in the same order; stored as ``source.parquet``.
        scored (`datasets.Dataset`): the rows the passes scored (``row``, ``input_ids``, ``labels``, ``length``:
            :func:`~hf_lpselect.scoring.trainer.scoring_rows` of the trainer's dataset); ``row`` is the
            position in ``source``.
        args (`TrainingArguments`, *optional*): the trainer's arguments; their fields that change scores
            become the run's identity.
        model_name (`str`, *optional*, defaults to `""`): the scorer model, as a person names it.
        template (`str`, *optional*, defaults to `""`): the prompt template the rows were tokenised with: one of
            ours (``alpaca``, ``chat``, ``plain``), or ``trl`` when TRL's trainer formatted and tokenised them
            (``lpselect train --run`` then hands the selected rows to TRL again, in their own columns); empty:
            not known (``lpselect train`` then chooses as for any dataset).

    Returns:
        `ScoreResult`: the run directory, rows, scores and record.

    Example:

    ```python
    >>> trainer.add_callback(LearningPercentageCallback(trainer.train_dataset, trainer=trainer))
    >>> trainer.train()
    >>> scores_from_passes("out", raw_rows, scoring_rows(trainer.train_dataset), args=trainer.args).scores.head()
    ```
    """
    run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    record = callback_record(source, args=args, model_name=model_name, template=template)
    done = run_dir.completed_passes()
    if done != list(range(record.epochs + 1)) or record.epochs < 1:
        raise RunError(
            f"{run_dir.path} holds passes {done or 'none'}, and a run of {record.epochs} epoch(s) needs passes 0 to "
            f"{record.epochs}: train whole epochs with the callback (at least 1), into an output_dir of its own."
        )
    if max(scored["row"], default=-1) >= len(source):
        raise ConfigError(
            f"The scored rows name row {max(scored['row'])}, but the source has {len(source)} rows: "
            "give the raw rows the trainer's dataset was made from, in the same order."
        )
    canonical = canonicalize(source, format=record.format)
    passes = [pd.read_parquet(run_dir.pass_path(k)) for k in done]
    rows = _rows_table(source, canonical, scored, passes[0])
    scores = build_scores(rows, passes)
    record.counts, record.complete, record.lp1_summary = status_counts(rows), True, scores["lp1"].describe().to_dict()
    atomic_write(run_dir.source, lambda tmp: source.to_parquet(str(tmp)))
    write_parquet(rows, run_dir.rows)
    write_parquet(scores, run_dir.scores)
    record.save(run_dir.path)
    return ScoreResult(run_dir=run_dir, rows=canonical, scores=scores, record=record)
