"""tqdm's private names we rely on (canaries: ``tests/test_compat.py``).

- ``tqdm._instances``: the progress bars open in this process (ours, transformers', datasets',
  huggingface_hub's), read by :func:`open_bars`.
"""

from __future__ import annotations

import sys
from typing import Any


def open_bars() -> list[Any]:
    """The tqdm progress bars open in this process; none when tqdm was never imported."""
    if "tqdm" not in sys.modules:  # nothing drew a bar
        return []
    from tqdm.std import tqdm

    return list(tqdm._instances)
