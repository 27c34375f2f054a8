"""datasets' private names we rely on (canaries: ``tests/test_compat.py``).

- ``Dataset._fingerprint``: the hash datasets keeps of a dataset's content and transforms (it names its
  cache files by it); :func:`fingerprint` reads it.
"""

from __future__ import annotations

from typing import Any


def fingerprint(dataset: Any) -> str:
    """``dataset``'s fingerprint, as datasets names its cache files by it.

    Args:
        dataset (`datasets.Dataset`): the dataset.

    Returns:
        `str`: a hex hash that changes with the dataset's content and with every transform.
    """
    return dataset._fingerprint
