"""The row schema every stage shares: the statuses an input row can end with, and the column names that are ours.

Light: no third-party import.
"""

from __future__ import annotations

import re


# every input row ends with exactly one of these in rows.parquet and scores.parquet
STATUSES = ("ok", "excluded", "invalid", "duplicate")
# every column hf_lpselect writes into a user's dataset (pushed scores, row numbers); a source column matching it
# is ours, not content: it is left out of content ids and replaced on push
OUR_COLUMNS = re.compile(r"^(lp1|lp_app|lp1_rank|ppl_e\d+|ifd_nll|ifd_ppl|lpselect_[a-z_]+)$")

# What a person reads for a score column, on the Space's page, on figures and in reports (the column
# names themselves are the data's API and stay as they are). Passes are named by pattern: see display_name.
DISPLAY_NAMES = {
    "lp1": "LP(1)",
    "lp_app": "LP_app",
    "ifd_nll": "IFD",
    "ifd_ppl": "IFD (perplexity variant)",
    "n_response_tokens": "response tokens",
}
_PASS_COLUMN = re.compile(r"^(ppl|nll|lp)_e?(\d+)$")
_PASS_NAMES = {"ppl": "P_{}", "nll": "NLL_{}", "lp": "LP({})"}


def display_name(column: str, *, explained: bool = False) -> str:
    """The name a person reads for a score column, the same for a run's name and the pushed one.

    Args:
        column (`str`): a column of a scores table (``lp1``, ``ppl_0``) or of a pushed dataset (``ppl_e0``).
        explained (`bool`, defaults to `False`): add what a perplexity pass is, e.g. ``P_0 (perplexity before training)``.

    Example:

    ```python
    >>> display_name("lp1"), display_name("ppl_e0"), display_name("ppl_2", explained=True)
    ('LP(1)', 'P_0', 'P_2 (perplexity after epoch 2)')
    ```
    """
    match = _PASS_COLUMN.match(column)
    if match is None:
        return DISPLAY_NAMES.get(column, column)
    kind, k = match.group(1), int(match.group(2))
    name = _PASS_NAMES[kind].format(k)
    if explained and kind == "ppl":
        name += " (perplexity before training)" if k == 0 else f" (perplexity after epoch {k})"
    return name
