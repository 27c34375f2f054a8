"""What a visitor sends the Space, checked before any work: numbers, the text of a source, an uploaded Parquet file.

The page's own widgets send well-formed values, but the Space's API takes anything (a word for a number,
a null, a 100,000-character "dataset id", a small Parquet file that decodes to gigabytes). Each is
refused here in one sentence that does not echo what was sent, and an upload is read only as far as
it is needed, within a bounded amount of memory.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import DataError, LPSelectError


MAX_SOURCE_CHARS = 1_000  # a Hub id is at most 96 + 1 + 96 characters, a web address or a folder a little more
PARQUET_BATCH_ROWS = 64  # rows decoded at a time from an upload: memory is one batch, not the file


def number(value: Any, name: str, minimum: float, maximum: float) -> float:
    """``value`` as a number from ``minimum`` to ``maximum``, or one sentence naming ``name``.

    Args:
        value (`Any`):
            What was sent: a number, or text that reads as one.
        name (`str`):
            The widget's name as the page shows it (``"Epochs"``).
        minimum (`float`):
            The smallest value allowed.
        maximum (`float`):
            The largest value allowed.

    Returns:
        `float`: the value.

    Raises:
        [`LPSelectError`]: ``value`` is no number (a word, a null, NaN) or lies outside the range.

    Example:

    ```python
    >>> number("2", "Epochs", 0, 3)
    2.0
    >>> number("abc", "Epochs", 0, 3)
    Traceback (most recent call last):
    LPSelectError: Epochs: give a number from 0 to 3.
    ```
    """
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = math.nan
    if not minimum <= value <= maximum:  # NaN included
        span = f"of at least {minimum:g}" if maximum == math.inf else f"from {minimum:g} to {maximum:g}"
        raise LPSelectError(f"{name}: give a number {span}.")
    return value


def source_text(text: Any) -> str:
    """What a visitor typed as a source (a Hub id, a web address, a folder), stripped; one sentence,
    without the text, when it is no text or too long to be a source.

    Args:
        text (`Any`):
            What was sent.

    Returns:
        `str`: the stripped text (empty for a null).

    Raises:
        [`LPSelectError`]: ``text`` is not a string, or longer than ``MAX_SOURCE_CHARS``.

    Example:

    ```python
    >>> source_text("  tatsu-lab/alpaca ")
    'tatsu-lab/alpaca'
    ```
    """
    if text is None:
        return ""
    if not isinstance(text, str):
        raise LPSelectError("Give a Hub dataset id, its web address, or a folder, as text.")
    text = text.strip()
    if len(text) > MAX_SOURCE_CHARS:
        raise LPSelectError(
            f"That is not a Hub dataset id, web address or folder: it is {len(text):,} characters long "
            f"(at most {MAX_SOURCE_CHARS:,})."
        )
    return text


def first_parquet_rows(path: Path, out: Path, limit: int, max_bytes: int) -> Path:
    """The first ``limit`` rows of the Parquet file ``path``, written to ``out``, in bounded memory.

    A small Parquet file can decode to gigabytes: a page that is compressed well, or a dictionary page
    whose few values every row repeats. Before anything is read, the row groups that hold the first
    ``limit`` rows are sized from the file's metadata (what their pages decompress to); then rows are
    decoded ``PARQUET_BATCH_ROWS`` at a time, written as they come, and counted at their decoded size,
    so memory holds one batch, never the file, and the rows kept never decode to more than ``max_bytes``.

    Args:
        path (`Path`):
            The upload.
        out (`Path`):
            Where the rows go (Parquet).
        limit (`int`):
            How many rows to keep, from the first.
        max_bytes (`int`):
            What the kept rows may decode to.

    Returns:
        `Path`: ``out``.

    Raises:
        [`DataError`]: the file is not Parquet, or its first ``limit`` rows decode to more than ``max_bytes``.

    Example:

    ```python
    >>> first_parquet_rows(Path("upload.parquet"), Path("uploads/upload.parquet"), 100, 512 << 20)
    PosixPath('uploads/upload.parquet')
    ```
    """
    try:
        parquet = pq.ParquetFile(path)
    except Exception as err:  # pyarrow's ArrowInvalid and friends: not a Parquet file
        raise DataError(f"{path.name} is not a readable Parquet file; check the file.") from err
    meta, groups, rows, expanded = parquet.metadata, [], 0, 0
    for i in range(meta.num_row_groups):
        if rows >= limit:
            break
        groups.append(i)
        rows += meta.row_group(i).num_rows
        expanded += meta.row_group(i).total_byte_size
    too_big = DataError(
        f"{path.name} expands to more than this Space can open ({max_bytes >> 20} MB in memory for the "
        f"first {limit:,} rows); upload fewer or shorter rows."
    )
    if expanded > max_bytes:
        raise too_big
    kept, decoded = 0, 0
    try:
        with pq.ParquetWriter(out, parquet.schema_arrow) as writer:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, row_groups=groups):
                batch = batch.slice(0, limit - kept)
                decoded += decoded_nbytes(batch)
                if decoded > max_bytes:
                    raise too_big
                writer.write_batch(batch)
                kept += batch.num_rows
                if kept >= limit:
                    break
    except pa.ArrowException as err:  # a page that cannot be decoded
        out.unlink(missing_ok=True)
        raise DataError(f"{path.name} is not a readable Parquet file; check the file.") from err
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return out


def decoded_nbytes(batch: pa.RecordBatch) -> int:
    """The bytes ``batch`` holds once its dictionary-encoded columns are decoded, as the scorer decodes them,
    counted without decoding them (a column read with its Arrow schema stays dictionary-encoded in memory).

    Args:
        batch (`pa.RecordBatch`):
            Rows read from a Parquet file.

    Returns:
        `int`: its decoded size in bytes.

    Example:

    ```python
    >>> column = pa.DictionaryArray.from_arrays(pa.array([0, 0, 0]), pa.array(["x" * 1000]))
    >>> decoded_nbytes(pa.record_batch({"output": column})) >= 3000
    True
    ```
    """
    total = 0
    for column in batch.columns:
        if not pa.types.is_dictionary(column.type):
            total += column.nbytes
            continue
        values, indices = column.dictionary, column.indices
        if (
            pa.types.is_string(values.type)
            or pa.types.is_binary(values.type)
            or pa.types.is_large_string(values.type)
            or pa.types.is_large_binary(values.type)
        ):
            lengths = pc.binary_length(values).take(indices)
            total += (pc.sum(lengths).as_py() or 0) + indices.nbytes + 8 * len(indices)  # text + offsets
        else:
            total += indices.nbytes + len(indices) * values.nbytes // max(1, len(values))
    return total
