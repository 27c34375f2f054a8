"""Data ingest: any instruction dataset -> canonical rows.

`read_source` loads a local JSON / JSONL / Parquet file, a `save_to_disk` directory or a Hub
dataset; `canonicalize` turns it into one canonical row per input row (row index, stable content
id, status + reason, single-turn view, messages view), so that later stages never lose a row
silently: bad rows are kept with status "invalid" and a reason, exact repeats with "duplicate".

Mixed types: JSON is parsed with the stdlib and every key seen in any record becomes a column
(missing keys read as None). A column whose values do not share one Python type, or that Arrow
cannot type, is stored as a `datasets.Json` column of values we JSON-encode ourselves, so each raw
value reads back as it was (an int stays an int, "5" stays a string) and `canonicalize` marks the
row invalid instead of Arrow crashing or a value being coerced. (Not `on_mixed_types="use_json"`:
in datasets 5.2 it stores a string that parses as JSON unquoted, so "5" reads back as the int 5.)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Features, List, Value

from .compat.datasets import fingerprint
from .core.hub import is_hub_id
from .core.schema import OUR_COLUMNS
from .errors import DataError


FORMATS = ("alpaca", "dolly", "sharegpt", "messages", "prompt-completion")

# Columns each format needs; detection picks the single format whose columns are all present.
REQUIRED = {
    "alpaca": ("instruction", "output"),
    "dolly": ("instruction", "response"),
    "sharegpt": ("conversations",),
    "messages": ("messages",),
    "prompt-completion": ("prompt", "completion"),
}
# Single-turn formats: (instruction column, optional input columns by preference, response column).
# Dolly-style data often names its context "input" (e.g. GPTeacher); it must not be dropped silently.
SINGLE_TURN = {
    "alpaca": ("instruction", ("input",), "output"),
    "dolly": ("instruction", ("context", "input"), "response"),
    "prompt-completion": ("prompt", (), "completion"),
}
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "system": "system",
}
# the roles of an OpenAI-style `messages` row; any other is the row's own defect (invalid), named before
# any template's limits (a single-turn template would otherwise call it multi-turn)
MESSAGE_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
FEATURES = Features(
    {
        "row": Value("int64"),
        "id": Value("string"),
        "status": Value("string"),
        "reason": Value("string"),
        "instruction": Value("string"),
        "input": Value("string"),
        "output": Value("string"),
        "messages": List({"role": Value("string"), "content": Value("string")}),
        "format": Value("string"),
    }
)
_WS = re.compile(r"[ \t\n\r]*")
_SHA = re.compile(r"^[0-9a-f]{40}$")
CHUNK_ROWS = 50_000  # JSON records turned into Arrow at a time
MAX_DEPTH = 32  # JSON nesting levels a record may have (Arrow and datasets recurse per level; ~60 fail)


class _Invalid(Exception):
    """A row is invalid; the message is its reason."""


class _TooDeep(Exception):
    """A JSON value nests deeper than Python's parser can go, on file line ``line``."""

    def __init__(self, line: int):
        super().__init__(line)
        self.line = line


# ----------------------------------------------------------------------------- reading


def read_source(
    source: str, *, split: str = "train", subset: str | None = None, revision: str | None = None
) -> datasets.Dataset:
    """Load `source` as a Dataset: a .json/.jsonl/.parquet file, a save_to_disk dir, or a Hub id.

    `split` picks the split of a DatasetDict directory or Hub dataset; `subset` is the Hub config
    and `revision` the Hub commit (see :func:`hub_origin`).

    Raises:
        [`~hf_lpselect.errors.DataError`]: no such file or dataset, an unsupported file type, or a line that is not a
            JSON object.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return _no_rows_refused(_read_saved(path, source, split), source)
    if path.is_file():
        if path.suffix in (".json", ".jsonl"):
            return _read_json(path, source)
        if path.suffix == ".parquet":
            try:
                if pq.ParquetFile(path).metadata.num_rows == 0:  # datasets fails on it with a traceback
                    raise DataError(f"{source} holds no rows; give a Parquet file with at least one row.")
                return datasets.Dataset.from_parquet(str(path))
            except pa.ArrowInvalid as e:
                raise DataError(f"{source} is not a readable Parquet file ({e}); check the file.") from e
        raise DataError(
            f"{source} has an unsupported file type {path.suffix!r}; "
            "use .json, .jsonl, .parquet or a save_to_disk directory."
        )
    if not is_hub_id(source):
        raise DataError(f"No such file: {source}; check the path.")
    try:
        loaded = datasets.load_dataset(source, subset, split=split, revision=revision)
    except (datasets.exceptions.DatasetNotFoundError, ConnectionError) as e:
        raise DataError(
            f"Could not load Hub dataset {source!r} ({e}); check the id and your connection, "
            "or give a local .json/.jsonl/.parquet file."
        ) from e
    return _no_rows_refused(loaded, source)


def _no_rows_refused(dataset: datasets.Dataset, source: str) -> datasets.Dataset:
    if len(dataset) == 0:
        raise DataError(f"{source} holds no rows; give a dataset with at least one row.")
    return dataset


def hub_origin(dataset: datasets.Dataset) -> dict[str, str]:
    """``{"config", "revision"}``: the config and commit sha a dataset loaded from the Hub was read
    at ({} for local data), so that a later stage re-reads exactly those rows even after the repo
    changed. datasets caches a Hub dataset under a folder named for the commit sha."""
    files = dataset.cache_files
    revision = Path(files[0]["filename"]).parent.name if files else ""
    if not _SHA.match(revision) or not dataset.info.config_name:
        return {}
    return {"config": dataset.info.config_name, "revision": revision}


def _read_saved(path: Path, source: str, split: str) -> datasets.Dataset:
    try:
        loaded = datasets.load_from_disk(str(path))
    except FileNotFoundError as e:
        raise DataError(
            f"{source} is a directory but not one written by save_to_disk; give a file or a saved dataset."
        ) from e
    except IndexError as e:  # datasets 5.2 saves a zero-row dataset with no data file, then cannot load it
        raise DataError(f"{source} holds no rows; give a dataset with at least one row.") from e
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(f"{source} has no split {split!r}; choose one of: {', '.join(loaded)}.")
        return loaded[split]
    return loaded


def _read_json(path: Path, source: str) -> datasets.Dataset:
    """Parse a JSON array of objects or JSON lines into a Dataset, keeping mixed types (see module doc).

    The records are never all held as Python objects: a first pass checks each one and notes the
    value types of every key, a second builds the Arrow columns :data:`CHUNK_ROWS` records at a
    time (JSON lines are re-read from the file line by line; a JSON array is parsed from one string).
    """
    with path.open("rb") as f:
        array = f.read(1 << 16).lstrip(b"\xef\xbb\xbf \t\n\r").startswith(b"[")
    if array:
        text = _decode(path.read_bytes(), source)
        items = lambda: _json_array(text)  # noqa: E731
    else:
        items = lambda: _json_file_lines(path, source)  # noqa: E731

    def records() -> Iterator[tuple[dict, int]]:
        try:
            for value, line in items():
                if not isinstance(value, dict):
                    raise DataError(
                        f"{source} line {line} holds a JSON {type(value).__name__}, not an object; "
                        "give a JSON array of objects or one object per line."
                    )
                if _deeper_than(value, MAX_DEPTH):
                    raise DataError(_too_deep(source, line))
                yield value, line
        except json.JSONDecodeError as e:
            raise DataError(_not_json(source, e.lineno, e.msg)) from e
        except _TooDeep as e:
            raise DataError(_too_deep(source, e.line)) from None

    types: dict[str, set[type]] = {}  # every key, first-seen order, with the types of its non-null values
    n = 0
    for value, _ in records():
        n += 1
        for key, v in value.items():
            types.setdefault(key, set()).update(() if v is None else (type(v),))
    if not n:
        raise DataError(f"{source} contains no records; give a JSON array of objects or one object per line.")
    columns: dict[str, list[pa.Array | None]] = {key: [] for key in types}
    chunk: list[tuple[dict, int]] = []
    for item in items():  # checked by the first pass
        chunk.append(item)
        if len(chunk) == CHUNK_ROWS:
            _add_chunk(columns, types, chunk, source)
            chunk = []
    if chunk:
        _add_chunk(columns, types, chunk, source)
    for (
        key,
        arrays,
    ) in columns.items():  # a chunk Arrow could not type, or chunks typed apart: the whole column at once
        if any(a is None for a in arrays) or len({a.type for a in arrays}) > 1:
            columns[key] = [_arrow_column([value.get(key) for value, _ in items()])]
    try:
        return datasets.Dataset.from_dict({key: pa.chunked_array(arrays) for key, arrays in columns.items()})
    except UnicodeEncodeError:  # in a key
        raise _surrogate(source, items()) from None


def _add_chunk(
    columns: dict[str, list], types: dict[str, set[type]], chunk: list[tuple[dict, int]], source: str
) -> None:
    """Append each column's Arrow array for ``chunk`` (None where Arrow cannot type it alone)."""
    try:
        for key, arrays in columns.items():
            values = [value.get(key) for value, _ in chunk]
            if len(types[key]) > 1:
                arrays.append(_json_column(values))
                continue
            try:
                arrays.append(pa.array(values))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                arrays.append(None)
    except UnicodeEncodeError:
        raise _surrogate(source, chunk) from None


def _surrogate(source: str, items: Iterable[tuple[dict, int]]) -> DataError:
    """The error for the first record holding a lone UTF-16 surrogate, which JSON can escape
    (``"\\ud800"``) but UTF-8, and so Arrow, cannot hold."""
    line = next(line for value, line in items if not _encodable(value))
    return DataError(
        f"{source} line {line} holds a lone UTF-16 surrogate (a \\uD800-\\uDFFF escape without its pair), "
        "which is not text; fix or remove that line."
    )


def _not_json(source: str, line: int, msg: str) -> str:
    return f"{source} line {line} is not valid JSON ({msg}); fix or remove that line."


def _decode(raw: bytes, source: str, first_line: int = 1) -> str:
    try:
        return raw.decode("utf-8-sig" if first_line == 1 else "utf-8")
    except UnicodeDecodeError as e:
        line = first_line + raw[: e.start].count(b"\n")
        raise DataError(f"{source} line {line} is not valid UTF-8; re-save the file as UTF-8.") from e


def _json_file_lines(path: Path, source: str) -> Iterator[tuple[Any, int]]:
    """Yield (value, 1-based line) for each non-blank line of a JSON lines file, read line by line."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):  # splits at b"\n" only: U+2028 may sit in strings
            line = _decode(raw, source, number)
            if line.strip():
                try:
                    yield json.loads(line), number
                except json.JSONDecodeError as e:
                    raise DataError(_not_json(source, number, e.msg)) from e
                except RecursionError:
                    raise _TooDeep(number) from None


def _too_deep(source: str, line: int) -> str:
    return (
        f"{source} line {line} nests JSON more than {MAX_DEPTH} levels deep, "
        "which no instruction data needs; flatten or remove that line."
    )


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether JSON ``value`` nests more than ``limit`` levels (an object or array is one level)."""
    level = [value]
    for _ in range(limit):
        level = [v for c in level for v in (c.values() if isinstance(c, dict) else c) if isinstance(v, (dict, list))]
        if not level:
            return False
    return True


def _encodable(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _arrow_column(values: list) -> pa.Array:
    """An Arrow array of `values`; a JSON column (decoded back to the raw values) if types are mixed."""
    if len({type(v) for v in values if v is not None}) <= 1:
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass  # e.g. list items or turn fields of mixed types: fall through to JSON
    return _json_column(values)


def _json_column(values: list) -> pa.Array:
    """A JSON column of ``values``, each encoded by us (decoded back exactly by :func:`canonicalize`)."""
    return pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in values], pa.json_())


def _json_array(text: str) -> Iterator[tuple[Any, int]]:
    """Yield (element, 1-based line where it starts) for the top-level JSON array in `text`."""
    decoder = json.JSONDecoder()
    pos = _WS.match(text, _WS.match(text).end() + 1).end()  # first element, past "["
    line, counted = 1, 0
    if not text.startswith("]", pos):
        while True:
            line, counted = line + text.count("\n", counted, pos), pos
            try:
                value, end = decoder.raw_decode(text, pos)
            except RecursionError:
                raise _TooDeep(line) from None
            yield value, line
            pos = _WS.match(text, end).end()
            if not text.startswith(",", pos):
                break
            pos = _WS.match(text, pos + 1).end()
        if not text.startswith("]", pos):
            raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
    pos = _WS.match(text, pos + 1).end()
    if pos != len(text):
        raise json.JSONDecodeError("Extra data", text, pos)


# ----------------------------------------------------------------------------- formats


def is_canonical(dataset: datasets.Dataset) -> bool:
    """Whether ``dataset`` holds canonical rows (the columns of :data:`FEATURES`, as :func:`load_rows` and
    :func:`canonicalize` give them), which every function that takes raw rows also takes as they are."""
    return set(FEATURES) <= set(dataset.column_names)


def source_format(dataset: datasets.Dataset) -> str:
    """The format of raw rows (:func:`detect_format`), or the one canonical rows were read in.

    Raises:
        DataError: raw rows whose columns match no format, or more than one.
    """
    if is_canonical(dataset):
        return dataset[0]["format"] if len(dataset) else FORMATS[0]
    return detect_format(dataset.column_names)


def detect_format(column_names: list[str]) -> str:
    """Return the one format whose required columns are all present, else raise DataError."""
    found = [name for name in FORMATS if set(REQUIRED[name]) <= set(column_names)]
    if len(found) == 1:
        return found[0]
    if found:
        raise DataError(
            f"The dataset is ambiguous ({' or '.join(found)}) with columns {sorted(column_names)}; "
            f"pass --format with one of: {', '.join(found)}."
        )
    formats = "; ".join(f"{name}: {', '.join(REQUIRED[name])}" for name in FORMATS)
    raise DataError(
        f"The dataset's columns {sorted(column_names)} match no known format ({formats}); rename yours to one of them "
        "with --columns, e.g. --columns question=instruction,answer=output."
    )


def parse_column_map(text: str | None) -> dict[str, str]:
    """``"question=instruction,answer=output"`` → ``{"question": "instruction", "answer": "output"}``.

    Example:

    ```python
    >>> parse_column_map("question=instruction, answer=output")
    {'question': 'instruction', 'answer': 'output'}
    ```
    """
    mapping: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in (text or "").split(","))):
        source, sep, target = (side.strip() for side in pair.partition("="))
        if not sep or not source or not target:
            raise DataError(
                f"--columns takes YOURS=FORMAT pairs separated by commas (question=instruction,answer=output), "
                f"not {pair!r}."
            )
        mapping[source] = target
    doubled = sorted({t for t in mapping.values() if list(mapping.values()).count(t) > 1})
    if doubled:
        raise DataError(
            f"--columns maps two columns to {doubled}; each format column can come from one of yours only."
        )
    return mapping


def map_columns(raw: datasets.Dataset, mapping: dict[str, str]) -> datasets.Dataset:
    """Rename the columns of ``raw`` (yours → a known format's) as ``datasets.Dataset.rename_columns`` does,
    with a one-sentence :class:`~hf_lpselect.errors.DataError` for a column that is not there or a name taken."""
    if not mapping:
        return raw
    missing = sorted(set(mapping) - set(raw.column_names))
    if missing:
        raise DataError(
            f"--columns names {missing}, which the dataset does not have (it has {sorted(raw.column_names)})."
        )
    taken = sorted((set(raw.column_names) - set(mapping)) & set(mapping.values()))
    if taken:
        raise DataError(
            f"--columns renames to {taken}, which the dataset already has; rename those too or map to others."
        )
    return raw.rename_columns(mapping)


def canonicalize(
    raw: datasets.Dataset,
    *,
    format: str = "auto",
    num_proc: int | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> datasets.Dataset:
    """Map every row of `raw` to one canonical row (columns of FEATURES), same order, none dropped.

    Rows are viewed in Arrow batches by ``datasets.map`` (``num_proc`` worker processes), so a
    million rows never become Python lists at once; duplicates are then found over the ``id``
    column alone. The result is kept in memory as Arrow, or written to an Arrow file in
    ``cache_dir`` and memory-mapped (then memory stays bounded whatever the size, and later maps
    of it, e.g. tokenisation, write their cache files there too).

    Args:
        raw (`datasets.Dataset`): rows as read by :func:`read_source`.
        format (`str`, defaults to `"auto"`): one of :data:`FORMATS`, or `"auto"` to detect it from the columns.
        num_proc (`int` or `None`, defaults to `None`): processes for the row views (None: this one).
        cache_dir (`str` or `os.PathLike` or `None`, defaults to `None`): a folder for the rows' Arrow
            file (None: in memory).

    Raises:
        [`~hf_lpselect.errors.DataError`]: a format that cannot be detected or is unknown, or a column map naming
            columns the data does not have.

    Example:
        >>> rows = canonicalize(read_source("data.jsonl"), num_proc=4)
        >>> rows[0]["status"], rows[0]["id"]
        ('ok', '2eb0072aa70896a1')
    """
    if is_canonical(raw):  # load_rows' output, or some of its rows: canonical already, numbered again in order
        return raw.select_columns(list(FEATURES)).map(
            lambda _, at: {"row": at}, with_indices=True, keep_in_memory=cache_dir is None, desc="Numbering rows"
        )
    ours = [c for c in raw.column_names if OUR_COLUMNS.match(c)]  # scores pushed by us are not content
    if ours:
        raw = raw.remove_columns(ours)
    columns = list(raw.column_names)
    if format == "auto":
        format = detect_format(columns)
    elif format not in FORMATS:
        raise DataError(f"Unknown format {format!r}; choose one of: {', '.join(FORMATS)}.")
    missing = [c for c in REQUIRED[format] if c not in columns]
    if missing:
        raise DataError(
            f"Format {format!r} needs column(s) {', '.join(missing)} but the dataset has "
            f"{sorted(columns)}; pick another --format."
        )
    input_columns = SINGLE_TURN[format][1] if format in SINGLE_TURN else ()
    input_key = next((c for c in input_columns if c in columns), None)
    features = raw.features

    def view_batch(batch: pa.Table, indices: list[int]) -> dict[str, list]:
        values = {name: _python_values(batch.column(name), features[name]) for name in batch.column_names}
        out: dict[str, list] = {name: [] for name in FEATURES}
        for row, record in zip(indices, (dict(zip(values, vs)) for vs in zip(*values.values()))):
            try:
                row_id = content_id(record)
                view, status, reason = _view(format, record, input_key), "ok", ""
            except _Invalid as e:
                view, status, reason = (None, None, None, []), "invalid", str(e)
            for name, value in zip(out, (row, row_id, status, reason, *view, format)):  # FEATURES order
                out[name].append(value)
        return out

    where: dict[str, Any] = {"keep_in_memory": True}
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        where = {
            "cache_file_name": str(Path(cache_dir) / f"rows-{fingerprint(raw)}-{format}.arrow"),
            "load_from_cache_file": False,
        }
    rows = raw.with_format("arrow").map(
        view_batch,
        batched=True,
        batch_size=1000,
        with_indices=True,
        remove_columns=columns,
        features=FEATURES,
        num_proc=num_proc if num_proc and num_proc > 1 and len(raw) > 1 else None,
        desc="Reading rows",
        **where,
    )
    return _mark_duplicates(rows.with_format(None), in_memory=cache_dir is None)


def content_ids(raw: datasets.Dataset) -> list[str]:
    """The content id of every row of ``raw``, in order: the ``id`` :func:`canonicalize` gives it, at a
    fraction of the cost (no views, statuses or duplicates), for checking a source against a run."""
    if is_canonical(raw):
        return list(raw["id"])
    ours = [c for c in raw.column_names if OUR_COLUMNS.match(c)]
    if ours:
        raw = raw.remove_columns(ours)
    features = raw.features
    ids: list[str] = []
    for batch in raw.with_format("arrow").iter(batch_size=1000):
        values = {name: _python_values(batch.column(name), features[name]) for name in batch.column_names}
        ids.extend(content_id(dict(zip(values, vs))) for vs in zip(*values.values()))
    return ids


def _python_values(column: pa.ChunkedArray, feature: Any) -> list:
    """A column's values as Python objects; a top-level Json column decoded with the stdlib, exactly
    (datasets decodes Json with ujson, which reads a huge integer back as text and 1.0000000000000002
    as 1.0)."""
    if isinstance(feature, datasets.Json):
        return [None if v is None else json.loads(v) for v in column.to_pylist()]
    values = column.to_pylist()
    if datasets.features.features.require_decoding(feature):
        return [datasets.features.features.decode_nested_example(feature, v) for v in values]
    return values


def _mark_duplicates(rows: datasets.Dataset, in_memory: bool) -> datasets.Dataset:
    """Mark each ok row whose id an earlier ok row has as ``duplicate of row K`` (K: the first);
    the result in memory, or (``in_memory=False``) in a cache file beside ``rows``' own."""
    table = rows.data.table.select(["row", "id", "status"]).to_pandas()
    ok = table[table["status"] == "ok"]
    first = ok.groupby("id", sort=False)["row"].transform("min")
    duplicates = dict(zip(ok["row"][ok["row"] != first].tolist(), first[ok["row"] != first].tolist()))
    if not duplicates:
        return rows

    def mark(row: list[int], status: list[str], reason: list[str]) -> dict[str, list]:
        for i, r in enumerate(row):
            if r in duplicates:
                status[i], reason[i] = "duplicate", f"duplicate of row {duplicates[r]}"
        return {"status": status, "reason": reason}

    return rows.map(
        mark,
        batched=True,
        batch_size=10_000,
        input_columns=["row", "status", "reason"],
        keep_in_memory=in_memory,
        load_from_cache_file=False,
        desc="Marking duplicates",
    )


def load_rows(
    source: str, *, split: str = "train", subset: str | None = None, format: str = "auto", num_proc: int | None = None
) -> datasets.Dataset:
    """`read_source` then `canonicalize`: the canonical rows of any supported source.

    Raises:
        [`~hf_lpselect.errors.DataError`]: as :func:`read_source` and :func:`canonicalize`.
    """
    return canonicalize(read_source(source, split=split, subset=subset), format=format, num_proc=num_proc)


def dataset_fingerprint(ids: Iterable[str]) -> str:
    """A short hash of the ordered row ids (each followed by a newline): same data, same fingerprint."""
    if isinstance(ids, datasets.arrow_dataset.Column):  # its iterator decodes row by row, a slice in one batch
        ids = ids[:]
    return hashlib.sha256("".join(f"{row_id}\n" for row_id in ids).encode()).hexdigest()[:16]


def content_id(record: dict) -> str:
    """First 16 hex chars of sha256 over the record's canonical JSON (None-valued keys dropped).

    None-valued keys are dropped because Arrow cannot tell a missing key from a null one (it fills
    missing keys with None), so the id depends only on the content, not on the other rows. Values
    JSON cannot hold (dates, bytes from Parquet) are hashed by their str().
    """
    text = json.dumps(_drop_none(record), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


# ----------------------------------------------------------------------------- row views


View = tuple[str | None, str | None, str | None, list[dict]]  # instruction, input, output, messages


def _view(format: str, record: dict, input_key: str | None) -> View:
    """(instruction, input, output, messages) of a valid row; raises _Invalid with the reason."""
    prompt, completion = record.get("prompt"), record.get("completion")
    if format == "prompt-completion" and isinstance(prompt, list) and isinstance(completion, list):
        return _conversation(prompt + completion, "role", "content", None)  # TRL conversational
    if format in SINGLE_TURN:
        instruction_key, _, output_key = SINGLE_TURN[format]
        instruction = _string(record, instruction_key)
        input_ = _string(record, input_key, required=False) if input_key else ""
        output = _string(record, output_key)
        if not output.strip():
            raise _Invalid("empty response")
        user = f"{instruction}\n\n{input_}" if input_ else instruction
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": output}]
        return instruction, input_, output, messages
    key = "conversations" if format == "sharegpt" else "messages"
    turns = record[key]
    if turns is None:
        raise _Invalid(f"missing field {key!r}")
    if not isinstance(turns, list):
        raise _Invalid(f"field {key!r} is not a list ({type(turns).__name__})")
    if format == "sharegpt":
        return _conversation(turns, "from", "value", SHAREGPT_ROLES)
    return _conversation(turns, "role", "content", None)


def _string(record: dict, key: str, *, required: bool = True) -> str:
    value = record.get(key)
    if value is None:
        if required:
            raise _Invalid(f"missing field {key!r}")
        return ""
    if not isinstance(value, str):
        raise _Invalid(f"field {key!r} is not a string ({type(value).__name__})")
    return value


def _conversation(turns: list, role_key: str, content_key: str, roles: dict[str, str] | None) -> View:
    """View of a list of turns; `roles` maps source role names (None: taken as is, one of MESSAGE_ROLES)."""
    messages = []
    for number, turn in enumerate(turns, 1):
        if not isinstance(turn, dict):
            raise _Invalid(f"turn {number} is not an object ({type(turn).__name__})")
        role, content = turn.get(role_key), turn.get(content_key)
        for name, value in ((role_key, role), (content_key, content)):
            if value is None:
                raise _Invalid(f"turn {number} has no {name!r}")
            if not isinstance(value, str):
                raise _Invalid(f"turn {number} {name!r} is not a string ({type(value).__name__})")
        if role not in (roles if roles is not None else MESSAGE_ROLES):
            raise _Invalid(f"unknown role {role!r}")
        if roles is not None:
            role = roles[role]
        if role == "assistant" and not content.strip():
            raise _Invalid(f"empty response (turn {number})")
        messages.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in messages):
        raise _Invalid("no assistant turn")
    shape = [m["role"] for m in messages]
    if shape in (["user", "assistant"], ["system", "user", "assistant"]):
        return messages[-2]["content"], "", messages[-1]["content"], messages
    return None, None, None, messages
