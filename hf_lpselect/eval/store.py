"""An append-only JSON-lines file of records keyed by content: the cache that makes eval resumable.

Each record is written (and fsync'ed) as soon as it exists, so a crash loses at most the batch in
flight; a torn last line from such a crash is dropped when the file is opened again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..core.io import atomic_write
from ..errors import EvalError


def content_key(*parts: Any) -> str:
    """A short sha256 of the JSON of ``parts``: the same inputs give the same key."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


class JsonlStore:
    """Records with a ``key`` field, loaded from ``path`` if it exists and appended to it.

    Example:
        >>> store = JsonlStore(tmp / "generations.jsonl")  # doctest: +SKIP
        >>> store.add([{"key": "k1", "answer": "..."}]); "k1" in store  # doctest: +SKIP
        True
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.is_file():
            self._load()

    def _load(self) -> None:
        text = self.path.read_text(encoding="utf-8")
        lines = text.split("\n")
        torn = bool(text) and not text.endswith("\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                if number == len(lines):  # an unfinished last line: the write a crash cut short
                    torn = True
                    break
                raise EvalError(
                    f"{self.path} line {number} is not valid JSON ({err.msg}); remove that line or the file."
                ) from err
            self.records[record["key"]] = record
        if torn:
            atomic_write(
                self.path,
                lambda tmp: tmp.write_text(
                    "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.records.values()), encoding="utf-8"
                ),
            )

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __getitem__(self, key: str) -> dict[str, Any]:
        return self.records[key]

    def add(self, records: list[dict[str, Any]]) -> None:
        """Append records (each with a ``key``) and make them durable before returning."""
        if not records:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        for record in records:
            self.records[record["key"]] = record
