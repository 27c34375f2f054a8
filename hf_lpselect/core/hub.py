"""Hub names and Hub errors, as every stage needs them: is a spec a Hub id, how a card names a source, which
errors mean "the network or the Hub failed", and how such an error is quoted in one of our sentences.

Light: huggingface_hub's error types only.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub.errors import HfHubHTTPError

# files a dataset spec can name on disk (anything else without a path prefix is taken for a Hub id)
DATA_SUFFIXES = {".json", ".jsonl", ".parquet", ".csv", ".tsv", ".txt", ".arrow"}
# what a failed Hub request raises: HTTP errors, and the transport's own (connection refused, timeouts),
# which share HfHubHTTPError's base class; OSError covers the rest (disk, offline mode)
NETWORK_ERRORS = (OSError, *HfHubHTTPError.__bases__)


def is_hub_id(source: str) -> bool:
    """Whether ``source`` names a Hub dataset rather than a local path (existing, or path-like).

    Example:

    ```python
    >>> is_hub_id("tatsu-lab/alpaca"), is_hub_id("./data.jsonl")
    (True, False)
    ```
    """
    return not Path(source).expanduser().exists() and not source.startswith((".", "/", "~")) \
        and Path(source).suffix not in DATA_SUFFIXES


def public_name(name: str) -> str:
    """A Hub id as it is; a local path by its last part (a card or a record that is published must not show local paths)."""
    return name if is_hub_id(name) else f"{Path(name.rstrip('/')).name} (local)"


def short_error(err: BaseException) -> str:
    """An error's text on one line, at most 300 characters, to quote inside one of our sentences."""
    return " ".join(str(err).split())[:300]
