"""Old names that keep working for a while, each with one warning that names what replaces it. Light: no
third-party import."""

from __future__ import annotations

import warnings
from typing import Any


def renamed_keyword(function: str, old: str, new: str, old_value: Any, new_value: Any) -> Any:
    """The value of keyword ``new`` of ``function``, taking the deprecated ``old`` (with a ``FutureWarning``)
    when it was given.

    Args:
        function (`str`): the public function's name, for the warning.
        old (`str`), new (`str`): the deprecated keyword and the one that replaces it.
        old_value (`Any`): what ``old`` was given (``None``: not given).
        new_value (`Any`): what ``new`` was given, or its default.

    Returns:
        `Any`: ``old_value`` when it was given, else ``new_value``.

    Example:

    ```python
    >>> renamed_keyword("select", "seed", "selection_seed", None, 42)
    42
    ```
    """
    if old_value is None:
        return new_value
    warnings.warn(f"{function}({old}=...) is deprecated; use {new}=... (the same value).", FutureWarning, stacklevel=3)
    return old_value
