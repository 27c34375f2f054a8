"""Learning percentage (Mekala et al. 2024) from per-pass perplexities: pure numpy, no torch, no I/O.

``P_K`` is the response perplexity after epoch K (K = 0 before training). For a run of ``n`` epochs:

- ``LP(K) = (P_{K-1} - P_K) / (P_0 - P_n)``: the share of the total drop that happened in epoch K;
- ``LP(1)`` is the ranking score (low = learned slowly = hard);
- ``LP_app = (P_0 - P_1) / P_0`` needs only the first epoch.

NaN, never 0, wherever the formula has no meaning (docs/method.md §5): a row with no scored pass,
or ``P_0 - P_n <= 0`` (nothing learned overall), gets NaN LP values and a reason.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


NO_DROP_REASON = "no perplexity drop over training (P_0 - P_n <= 0)"
NOT_SCORED_REASON = "not scored"


def lp_columns(n_epochs: int) -> list[str]:
    """Names of the per-epoch learning-percentage columns for an ``n_epochs`` run."""
    return [f"lp_{k}" for k in range(1, n_epochs + 1)]


def learning_percentages(ppl: np.ndarray) -> pd.DataFrame:
    """LP(K) for K = 1..n, LP(1), LP_app, flags and a reason, from an ``(N, n + 1)`` perplexity matrix.

    Column K of ``ppl`` is ``P_K``; NaN marks a row that was not scored. The result has one row per
    input row, in the same order.

    Raises:
        [`ValueError`]: ``ppl`` is not an (N, n_epochs + 1) matrix.
    """
    ppl = np.asarray(ppl, dtype=np.float64)
    if ppl.ndim != 2 or ppl.shape[1] < 1:
        raise ValueError(f"expected an (N, n_epochs + 1) perplexity matrix, got shape {ppl.shape}")
    n_epochs = ppl.shape[1] - 1
    out = pd.DataFrame(index=range(ppl.shape[0]))
    scored = ~np.isnan(ppl).any(axis=1)
    total_drop = ppl[:, 0] - ppl[:, -1]
    has_drop = scored & (total_drop > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(1, n_epochs + 1):
            out[f"lp_{k}"] = np.where(has_drop, (ppl[:, k - 1] - ppl[:, k]) / total_drop, np.nan)
        out["lp1"] = out["lp_1"] if n_epochs >= 1 else np.nan
        out["lp_app"] = (ppl[:, 0] - ppl[:, 1]) / ppl[:, 0] if n_epochs >= 1 else np.nan
    out["lp1_above_1"] = out["lp1"].to_numpy() > 1
    out["lp1_below_0"] = out["lp1"].to_numpy() < 0
    reason = np.full(ppl.shape[0], "", dtype=object)
    if n_epochs >= 1:
        reason[scored & ~has_drop] = NO_DROP_REASON
    reason[~scored] = NOT_SCORED_REASON
    out["lp_reason"] = reason.astype(str)
    return out
