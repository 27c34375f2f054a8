"""Hub names and Hub errors, as every stage needs them: is a spec a Hub id, how a card names a source, which
errors mean "the network or the Hub failed", how such an error is quoted in one of our sentences, and a
scoped offline mode.

Light: huggingface_hub's error types only (``datasets`` is imported when :func:`offline` is entered).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import huggingface_hub.constants as hub_constants
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
    return (
        not Path(source).expanduser().exists()
        and not source.startswith((".", "/", "~"))
        and Path(source).suffix not in DATA_SUFFIXES
    )


def public_name(name: str) -> str:
    """A Hub id as it is; a local path by its last part (a card or a record that is published must not show local paths)."""
    return name if is_hub_id(name) else f"{Path(name.rstrip('/')).name} (local)"


def short_error(err: BaseException) -> str:
    """An error's text on one line, at most 300 characters, to quote inside one of our sentences."""
    return " ".join(str(err).split())[:300]


_offline_lock = threading.Lock()
_offline_users = 0  # offline() blocks now inside, in any thread
_online_flags: tuple[bool, bool] = (False, False)  # the flags before the first of them entered


@contextmanager
def offline() -> Iterator[None]:
    """No Hub request inside the block: huggingface_hub and datasets read their local cache instead.

    Both libraries read one process-wide flag (``HF_HUB_OFFLINE``) on every call and have no per-call
    switch, so the flag is set for the block and set back to what it was when the block ends, on an
    error too. Blocks that overlap (in other threads) share it: it is set back only when the last one
    ends, never while another is still inside. Other threads' requests meanwhile are offline as well.

    Example:

    ```python
    >>> with offline():  # `lpselect push-scores --dry_run`
    ...     plan = materialize("runs/alpaca", "org/alpaca", "dry")  # a Hub source read from the cache
    ```
    """
    import datasets  # heavy (pyarrow, pandas): imported by the one caller that goes offline, not by every stage

    global _offline_users, _online_flags
    with _offline_lock:
        if _offline_users == 0:
            _online_flags = hub_constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE
            hub_constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
        _offline_users += 1
    try:
        yield
    finally:
        with _offline_lock:
            _offline_users -= 1
            if _offline_users == 0:
                hub_constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = _online_flags
