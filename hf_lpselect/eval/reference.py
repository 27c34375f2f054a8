"""Reference metrics that need no judge: how likely each model finds the reference answers.

The mean response NLL (and perplexity) of reference answers, e.g. AlpacaEval's GPT-4 answers or
held-out rows of the training source, under each model and its own template. It reuses the
scorer's exact tokenisation (:func:`hf_lpselect.templates.tokenize_rows`: response tokens only,
the EOS that ends the response scored) and its scoring pass (:func:`hf_lpselect.scoring.passes.score_pass`),
so a reference NLL means the same thing as a scorer run's P_0. Lower is better.
"""

from __future__ import annotations

import math
from typing import Any

import datasets
import numpy as np
import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..core.io import json_number
from ..ingest import canonicalize
from ..scoring.passes import score_pass
from ..templates import tokenize_rows
from .testsets import TestSet


ROW_COLUMNS = ["row", "id", "status", "reason", "nll", "n_tokens"]


def reference_rows(test_set: TestSet) -> datasets.Dataset | None:
    """The canonical rows (Alpaca shape) of the items that have a reference answer; None when none has."""
    items = [item for item in test_set.items if item.reference is not None]
    if not items:
        return None
    raw = datasets.Dataset.from_dict(
        {
            "id": [item.id for item in items],
            "instruction": [item.instruction for item in items],
            "input": [item.input for item in items],
            "output": [item.reference for item in items],
        }
    )
    rows = canonicalize(raw.remove_columns("id"), format="alpaca")
    return rows.map(lambda r: {"id": items[r["row"]].id})  # the test set's ids, not content hashes


def reference_nll(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    rows: datasets.Dataset,
    *,
    template: str,
    max_length: int = 1024,
    token_budget: int | None = None,
    batch_size: int | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> pd.DataFrame:
    """Per-row response NLL of canonical ``rows`` under ``model``: ``row, id, status, reason, nll, n_tokens``.

    Rows that cannot be scored (invalid, duplicate, or truncated away at ``max_length``) keep their
    status and reason and a NaN ``nll``.

    Args:
        model (`PreTrainedModel`): the model.
        tokenizer (`PreTrainedTokenizerBase`): its tokenizer (pad id set).
        rows (`datasets.Dataset`): canonical rows (:func:`hf_lpselect.ingest.load_rows`, :func:`reference_rows`).
        template (`str`): ``chat``, ``alpaca`` or ``plain`` (the model's generation template).
        max_length (`int`, defaults to `1024`): tokens per row (right truncation).
        token_budget (`int | None`, defaults to `None`): most tokens per forward pass (rows x the longest row);
            ``None``: chosen for the model's device (:func:`hf_lpselect.scoring.passes.device_batching`).
        batch_size (`int | None`, defaults to `None`): also at most this many rows per forward pass; ``None``: 8 on a
            CPU, no cap on an accelerator; ``0``: no cap.
        autocast_dtype (`torch.dtype | None`, defaults to `None`): e.g. ``torch.bfloat16``.

    Example:
        >>> table = reference_nll(model, tokenizer, load_rows("heldout.json"), template="alpaca")  # doctest: +SKIP
        >>> summarize_nll(table)["mean_nll"]  # doctest: +SKIP
    """
    tokenized = tokenize_rows(rows, tokenizer, template=template, max_length=max_length)
    table = tokenized.select_columns(["row", "id", "status", "reason"]).to_pandas()
    ok = tokenized.filter(lambda status: status == "ok", input_columns="status")
    if len(ok):
        scored = score_pass(
            model,
            ok,
            pad_token_id=tokenizer.pad_token_id,
            token_budget=token_budget,
            batch_size=batch_size,
            autocast_dtype=autocast_dtype,
            desc="Reference NLL",
        )
        table = table.merge(scored, on="row", how="left")
    else:
        table = table.assign(nll=np.nan, n_tokens=0)
    table["n_tokens"] = table["n_tokens"].fillna(0).astype("int64")
    return table[ROW_COLUMNS]


def summarize_nll(table: pd.DataFrame) -> dict[str, Any]:
    """``n_rows, n_scored, mean_nll`` (mean of row NLLs), ``sd_nll``, ``token_nll`` (pooled over tokens), ``ppl = exp(token_nll)``."""
    scored = table[table["nll"].notna()]
    tokens = int(scored["n_tokens"].sum())
    token_nll = float((scored["nll"] * scored["n_tokens"]).sum() / tokens) if tokens else math.nan
    return {
        "n_rows": len(table),
        "n_scored": len(scored),
        "not_scored": {
            f"{s}: {r}": int(n)
            for (s, r), n in table[table["nll"].isna()].groupby(["status", "reason"]).size().items()
        },
        "n_tokens": tokens,
        "mean_nll": json_number(float(scored["nll"].mean()) if len(scored) else math.nan),
        "sd_nll": json_number(float(scored["nll"].std(ddof=1)) if len(scored) > 1 else math.nan),
        "token_nll": json_number(token_nll),
        "ppl": json_number(math.exp(token_nll) if tokens else math.nan),
    }
