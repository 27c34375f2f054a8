"""Where hf_lpselect keeps what it can recompute: ``$HF_LPSELECT_CACHE``, else ``~/.cache/hf_lpselect``.

It holds converted GGUF models, cached file hashes and the option names each command took last time
(so a mistyped flag is answered before torch is imported). Light: no third-party import.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Where converted models and other recomputable files live: ``$HF_LPSELECT_CACHE`` or ``~/.cache/hf_lpselect``."""
    return Path(os.environ.get("HF_LPSELECT_CACHE", Path.home() / ".cache" / "hf_lpselect"))
