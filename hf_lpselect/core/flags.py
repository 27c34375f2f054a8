"""Unknown options, answered with the closest names, and before the heavy imports when possible.

A command's parser (:class:`~hf_lpselect.core.parser.ArgumentParser`) needs TRL imported (about a second:
it reads every installed distribution's metadata), and ``score``, ``train``, ``demo`` and ``eval`` need
transformers and torch too: seconds more. Each parse remembers the command's option names in the cache
(:func:`~hf_lpselect.core.cache.cache_dir`), keyed by the library versions and the files that declare
the options; the next call's dispatcher (:func:`hf_lpselect.cli.main`) checks its flags against them
first, with nothing heavy imported. Light: no third-party import.
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ..errors import ConfigError
from .cache import cache_dir


_FILE = "options.json"
_PACKAGE = Path(__file__).resolve().parent.parent
# the modules whose dataclasses declare the commands' options: an edit to one makes the remembered names stale
_DECLARING = (
    "scoring/arguments.py",
    "scoring/trainer.py",
    "scoring/demo.py",
    "selection/arguments.py",
    "hub/arguments.py",
    "training/arguments.py",
    "eval/arguments.py",
    "space/arguments.py",
    "core/parser.py",
)
# spellings people type that difflib would map wrongly: the flag they mean
_RENAMED = {
    "--warmup_ratio": "--warmup_steps (a value below 1 is a share of the steps)",
    "--fp32": "--bf16 false (float32 is what runs without bf16)",
}


def unknown_options(prog: str, given: Iterable[str], known: Iterable[str]) -> ConfigError:
    """One sentence naming the unknown flags, each with the closest known one ("did you mean").

    Example:

    ```python
    >>> str(unknown_options("lpselect score", ["--learnig_rate"], ["--learning_rate", "--seed"]))
    'Unknown option(s): --learnig_rate (did you mean --learning_rate?); `lpselect score --help` lists every option.'
    ```
    """
    known = sorted(known)
    hints = []
    for flag in given:
        close = [_RENAMED[flag]] if flag in _RENAMED else difflib.get_close_matches(flag, known, n=1, cutoff=0.75)
        hints.append(f"{flag} (did you mean {close[0]}?)" if close else flag)
    return ConfigError(f"Unknown option(s): {', '.join(hints)}; `{prog} --help` lists every option.")


def _key() -> str:
    def known(lib: str) -> str:
        try:
            return version(lib)
        except PackageNotFoundError:
            return "-"

    stamps = [str((_PACKAGE / name).stat().st_mtime_ns) if (_PACKAGE / name).is_file() else "-" for name in _DECLARING]
    return "|".join([known("hf-lpselect"), known("trl"), known("transformers"), *stamps])


def _load() -> dict:
    try:
        return json.loads((cache_dir() / _FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def remember(prog: str, flags: Iterable[str]) -> None:
    """Keep ``prog``'s option names for the next call's :func:`check_early` (a read-only cache only costs time)."""
    entries = _load()
    entries[prog] = {"key": _key(), "flags": sorted(set(flags))}
    path = cache_dir() / _FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{_FILE}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(entries, handle)
        os.replace(tmp, path)
    except OSError:
        pass


def check_early(prog: str, argv: list[str]) -> None:
    """Refuse a flag ``prog`` did not take at its last parse (same versions and option files), before heavy imports.

    Does nothing when nothing is remembered yet: the parser then answers, a few seconds later.
    """
    entry = _load().get(prog)
    if not isinstance(entry, dict) or entry.get("key") != _key():
        return
    known = set(entry.get("flags", ()))
    given = [arg.split("=", 1)[0] for arg in argv if arg.startswith("--") and arg != "--"]
    unknown = [flag for flag in given if flag not in known and flag not in ("--help", "--config")]
    if unknown:
        raise unknown_options(prog, unknown, known)
