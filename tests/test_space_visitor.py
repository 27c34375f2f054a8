"""What a visitor of the Space meets, hostile ones included, tested without a browser.

The words (hf_lpselect.space.page_text) directly; the app's own functions (spaces/app.py, loaded once in
this process with runpy, its sessions' folder in a temporary directory) with real files: a
million-row upload, a Parquet file that expands past the limit, a broken CSV. The ZeroGPU test
replaces the `spaces` package with a stand-in, since ZeroGPU itself runs only on a Hugging Face
Space: the stand-in records what `spaces.GPU` decorates and is called with.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import write_jsonl

from hf_lpselect.errors import LPSelectError
from hf_lpselect.space import page_text


REPO_ROOT = Path(__file__).resolve().parent.parent
APP = REPO_ROOT / "hf_lpselect" / "space" / "app.py"  # the app itself (spaces/app.py is its launcher)


def scores_table(n: int, epochs: int = 2, learned: bool = True) -> pd.DataFrame:
    """A scores table of ``n`` ok rows with ``epochs`` epochs: NLL falling (or flat in epoch 1)."""
    rng = np.random.default_rng(0)
    nll = {"nll_0": rng.uniform(2, 3, n)}
    for e in range(1, epochs + 1):
        drop = rng.uniform(0.1, 0.5, n) * (e if learned or e > 1 else 0)
        nll[f"nll_{e}"] = nll["nll_0"] - drop
    frame = pd.DataFrame(
        {
            "row": range(n),
            "id": [f"r{i}" for i in range(n)],
            "status": "ok",
            "reason": None,
            "n_response_tokens": rng.integers(5, 50, n),
            **nll,
        }
    )
    for c in [c for c in frame if c.startswith("nll_")]:
        frame["ppl_" + c[4:]] = np.exp(frame[c])
    if epochs >= 2:
        p0, p1, pn = frame["ppl_0"], frame["ppl_1"], frame[f"ppl_{epochs}"]
        frame["lp1"] = ((p0 - p1) / (p0 - pn)).where((p0 - pn).abs() > 0)
    return frame


# ----------------------------------------------------------------------------- words


def test_table_labels_are_true_for_a_small_table():
    # before the fix every row of a table under 200 rows was labelled "hardest", the easiest among them
    frame, score, heading = page_text.examples_frame(scores_table(42), n=100)
    assert score == "lp1" and len(frame) == 42 and frame["row"].is_unique
    assert frame["which"].tolist() == ["harder half"] * 21 + ["easier half"] * 21
    assert frame["lp1"].is_monotonic_increasing  # hardest first, the easiest last
    assert heading == "All 42 scored rows, hardest first (by LP(1))"
    big, _, heading = page_text.examples_frame(scores_table(500), n=100)
    assert len(big) == 200 and heading == "The 100 hardest and 100 easiest of 500 scored rows (by LP(1))"
    one, _, heading = page_text.examples_frame(scores_table(1), n=100)
    assert heading.startswith("All 1 scored row,")  # not "1 rows"


def test_one_epoch_is_not_called_zero_and_lp1_is_not_shown():
    # before the fix: "scored without training (0 epochs)" for a 1-epoch run
    one = scores_table(10, epochs=1)
    text = page_text.explore_markdown("mine", one)
    assert "1 epoch only" in text and "0 epochs" not in text and page_text.ranking_score(one) == "ppl_0"
    assert "0 epochs" in page_text.explore_markdown("mine", scores_table(10, epochs=0))


def test_nothing_learned_in_epoch_one_is_a_warning_not_a_number():
    # before the fix: "median 0.000 … below 0.000 … above 0.000" and no warning
    flat = scores_table(10, epochs=2, learned=False)
    text = page_text.explore_markdown("mine", flat)
    assert "learned nothing in its first epoch" in text and "median" not in text
    assert page_text.ranking_score(flat) == "ppl_0"
    assert "median" in page_text.explore_markdown("mine", scores_table(10))


def test_plain_strategy_names_without_formulas():
    labels = [label for label, _ in page_text.strategy_choices(scores_table(20))]
    assert "Hardest for the small model" in labels
    assert not any(mark in label for label in labels for mark in ("=", "LP_app", "P_0", "Kendall", ":"))
    assert "LP_app = (P_0 − P_1) / P_0" in page_text.strategy_details()  # the formulas live under the fold


@pytest.mark.parametrize(
    "message, expected",
    [
        (
            "/tmp/lpselect-space/ab12/uploads/e3b0c442/empty.jsonl contains no records; check the file.",
            "empty.jsonl contains no records; check the file.",
        ),
        ("Unknown format 'x'; pass --format with one of: alpaca, sharegpt.", None),
        (
            "Could not load the Hub dataset org/x (Repository Not Found for url. Use `repo_type` argument if needed.).",
            "That Hub dataset does not exist or is private; check its name (owner/name).",
        ),
        (
            "Could not load the Hub dataset me/tiny-model (Dataset 'me/tiny-model' doesn't exist on the Hub or cannot be "
            "accessed.); check the id.",  # a model repo's id: before the fix "metiny-model" and library words
            "That Hub dataset does not exist or is private; check its name (owner/name).",
        ),
        ("No such folder: /srv/x/mine; check the path.", "No such folder: mine; check the path."),
        (
            "OfflineModeIsEnabled: Cannot reach https://huggingface.co/api/datasets/x",
            "The Hugging Face Hub cannot be reached from here right now; upload a file instead.",
        ),
    ],
)
def test_errors_are_in_a_visitors_words(message, expected):
    said = page_text.visitor_sentence(message)
    if expected is not None:
        assert said == expected
    assert "/" not in said.replace("owner/name", "") and "--" not in said and "`" not in said
    assert "repo_type" not in said and "OfflineModeIsEnabled" not in said and said.endswith(".")


def test_a_hub_web_address_is_its_id():
    # before the fix a pasted address became a local path ("No such folder: https:/huggingface.co/…")
    assert (
        page_text.hub_id_from_url("https://huggingface.co/datasets/tatsu-lab/alpaca/tree/main") == "tatsu-lab/alpaca"
    )
    assert page_text.hub_id_from_url("huggingface.co/datasets/me/x?row=3") == "me/x"
    assert page_text.hub_id_from_url(" me/x ") == "me/x"


# ----------------------------------------------------------------------------- the app's own functions


@pytest.fixture(scope="module")
def app_module(tmp_path_factory):
    """spaces/app.py run once in this process (no server), its sessions' folder temporary."""
    work = tmp_path_factory.mktemp("visitor_app")
    patch = pytest.MonkeyPatch()
    patch.setenv("LPSELECT_SPACE_DIR", str(work / "sessions"))
    patch.delitem(sys.modules, "spaces", raising=False)
    try:
        yield types.SimpleNamespace(**runpy.run_path(str(APP))), work / "sessions"
    finally:
        patch.undo()


class Visitor:
    """What gr.Request gives a function: a session hash."""

    def __init__(self, name: str):
        self.session_hash = name


def test_per_cluster_groups_are_sized_to_the_data(app_module):
    app, _ = app_module
    assert app.suggested_groups(scores_table(42)) == 4
    assert app.suggested_groups(scores_table(5)) == 2 and app.suggested_groups(scores_table(52002)) == 100
    fake = types.SimpleNamespace(scores=scores_table(42))
    with pytest.raises(LPSelectError, match=r"^Choose between 2 and 42 groups for these 42 scored rows\.$"):
        app._selection(fake, "lp1-hard", 10, True, 100)  # before the fix: "choose K <= 43 (--per-cluster)"


def test_a_million_row_upload_keeps_only_the_rows_to_score(app_module, tmp_path):
    app, sessions = app_module
    big = tmp_path / "million.jsonl"
    with big.open("w") as out:
        for i in range(1_000_000):
            out.write(f'{{"instruction": "q{i}", "output": "a{i}"}}\n')
    kept = Path(app._prepare_source(str(big), "", sessions / "v1", 100))
    assert kept.is_relative_to(sessions / "v1") and len(kept.read_text().splitlines()) == 100
    assert kept.stat().st_size < 5_000  # bounded: not a copy of the 30 MB upload


def test_a_parquet_file_that_expands_too_far_is_one_sentence_and_leaves_nothing(app_module, tmp_path, monkeypatch):
    app, sessions = app_module
    bomb = tmp_path / "bomb.parquet"
    pq.write_table(
        pa.table({"instruction": ["x" * 1000] * 5000, "output": ["y" * 1000] * 5000}),
        bomb,
        compression="zstd",
        use_dictionary=False,
    )
    assert bomb.stat().st_size < 200_000  # 10 MB of text, a small file
    monkeypatch.setitem(app._prepare_source.__globals__, "MAX_PARQUET_BYTES", 1 << 20)
    with pytest.raises(LPSelectError) as caught:
        app._prepare_source(str(bomb), "", sessions / "v2", 100)
    assert str(caught.value).startswith("bomb.parquet expands to") and str(caught.value).count(". ") == 0
    assert not any((sessions / "v2" / "uploads").iterdir())  # the visitor's upload folder is cleaned
    monkeypatch.setitem(app._prepare_source.__globals__, "MAX_PARQUET_BYTES", 512 << 20)
    kept = Path(app._prepare_source(str(bomb), "", sessions / "v2", 100))
    assert pq.read_metadata(kept).num_rows == 100


def dictionary_bomb(path: Path, rows: int, value_bytes: int = 100_000, store_schema: bool = False) -> Path:
    """A Parquet file whose two columns repeat one ``value_bytes`` string in every row, dictionary-encoded:
    the file is ~0.1 MB, its metadata says ~0.2 MB, and it decodes to 2 * rows * value_bytes."""
    letters = np.random.default_rng(0).integers(97, 123, value_bytes, dtype=np.uint8).tobytes().decode()
    column = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)), pa.array([letters]))
    # without the Arrow schema (as most writers other than pyarrow write it), a reader decodes the dictionary
    pq.write_table(
        pa.table({"instruction": column, "output": column}), path, compression="zstd", store_schema=store_schema
    )
    return path


MEASURE = """
import resource, runpy, sys
from pathlib import Path
app = runpy.run_path(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kept = app["_prepare_source"](sys.argv[2], "", Path(sys.argv[3]), 100)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
import pyarrow.parquet as pq
print(pq.read_metadata(kept).num_rows, grown // 1024)
"""


def test_a_dictionary_bomb_is_read_only_as_far_as_its_first_rows_in_bounded_memory(tmp_path):
    """134 KB that decodes to 600 MB: before, every row group was decoded whole (the server grew by the
    full 600 MB and more) before the first 100 rows were kept; now 64 rows are decoded at a time."""
    bomb = dictionary_bomb(tmp_path / "bomb.parquet", rows=3_000)
    assert bomb.stat().st_size < 200_000
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(APP), str(bomb), str(tmp_path / "visitor")],
        env={**os.environ, "LPSELECT_SPACE_DIR": str(tmp_path / "sessions")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    kept, grown_mb = map(int, done.stdout.split()[-2:])
    assert kept == 100
    assert grown_mb < 128, f"reading the first 100 rows grew the server by {grown_mb} MB"  # README: 512 MB at most


@pytest.mark.parametrize("store_schema", [False, True], ids=["decoded-when-read", "kept-encoded-when-read"])
def test_a_dictionary_bomb_whose_first_rows_decode_too_far_is_one_sentence(
    app_module, tmp_path, monkeypatch, store_schema
):
    """Its metadata says ~0.2 MB; its first 1,000 rows decode to 200 MB, over a limit of 64 MB (with the Arrow
    schema stored, pyarrow reads the column dictionary-encoded: the scorer would decode it later)."""
    app, sessions = app_module
    bomb = dictionary_bomb(tmp_path / "bomb.parquet", rows=3_000, store_schema=store_schema)
    monkeypatch.setitem(app._prepare_source.__globals__, "MAX_PARQUET_BYTES", 64 << 20)
    with pytest.raises(LPSelectError) as caught:
        app._prepare_source(str(bomb), "", sessions / f"v3-{store_schema}", 1_000)
    assert str(caught.value) == (
        "bomb.parquet expands to more than this Space can open (64 MB in memory for the first 1,000 rows); "
        "upload fewer or shorter rows."
    )
    assert not any((sessions / f"v3-{store_schema}" / "uploads").iterdir())


def test_a_broken_csv_names_no_library(app_module, tmp_path):
    app, sessions = app_module
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00not,a\ncsv\x00")
    import gradio as gr

    with pytest.raises(gr.Error) as caught:
        app.friendly(app._prepare_source)(str(bad), "", sessions / "v3", 10)
    assert caught.value.message == "bad.csv is not a readable CSV file; check the file."


# ----------------------------------------------------------------------------- ZeroGPU


def test_zerogpu_decorates_the_scoring_function_the_score_tab_calls(tmp_path, tiny_model_dir, monkeypatch):
    """A stand-in `spaces` module (ZeroGPU exists only on a Hugging Face Space): its GPU decorator
    records what it wraps and each call; the app is loaded with it, then the Score tab's function runs."""
    decorated, calls = [], []

    def GPU(duration=60):  # noqa: N802  (spaces.GPU's name)
        def wrap(fn):
            decorated.append(fn.__name__)

            def on_gpu(*args, **kwargs):
                calls.append((args, duration(*args, **kwargs) if callable(duration) else duration))
                return fn(*args, **kwargs)

            return on_gpu

        return wrap

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=GPU))
    monkeypatch.setenv("LPSELECT_SPACE_DIR", str(tmp_path / "sessions"))
    app = types.SimpleNamespace(**runpy.run_path(str(APP)))
    assert decorated == ["_run_scorer"]  # the scoring function only: browsing never holds a GPU
    score_fn = next(block.fn for block in app.demo.fns.values() if block.api_name == "score")
    assert score_fn is app.score_dataset  # the Score tab calls score_dataset …

    import hf_lpselect.scoring.scorer_run as run_module

    seen = {}
    real_score = run_module.score

    def recording_score(*args, **kwargs):
        seen.update(kwargs)
        return real_score(*args, **kwargs)

    monkeypatch.setattr(run_module, "score", recording_score)
    data = write_jsonl(
        tmp_path / "mine.jsonl", [{"instruction": f"Say {i}.", "output": f"{i} it is."} for i in range(10)]
    )
    outputs = score_fn(str(data), "", str(tiny_model_dir), 0, 10, Visitor("gpu"), progress=lambda *a, **k: None)
    assert "Scored 10 rows (10 ok)" in outputs[8]
    assert len(calls) == 1 and calls[0][1] == 60 + 2 * int(
        app.estimate_seconds(10, 0, "gpu")
    )  # … through the GPU wrapper
    # the device decides precision and batching (hardware.py, passes.device_batching): nothing forced here
    assert not {"bf16", "fp16", "score_batch_size", "per_device_train_batch_size"} & set(seen)


def test_the_gpu_time_asked_for_is_bounded(app_module):
    app, _ = app_module
    assert app._gpu_seconds("x", None, "default", 3, 5000, None) == 900  # ZeroGPU's calls are bounded
    assert app._gpu_seconds("x", None, "default", 0, 10, None) < 120


def test_a_visitor_who_leaves_mid_run_leaves_no_folder_behind(app_module, tmp_path, tiny_model_dir):
    """gradio calls the folder State's delete_callback (app._remove) when a session ends; here it is
    called mid-run, from the progress bar, as if the visitor closed the tab while the scorer trained.
    Before the fix the scorer wrote its run back into the removed folder, which then stayed forever."""
    app, sessions = app_module
    visitor = Visitor("leaves")
    folder = Path(app.session_start(visitor))  # page load: the State holds the folder from the start
    assert folder == sessions / "leaves" and folder.is_dir()
    data = write_jsonl(
        tmp_path / "mine.jsonl", [{"instruction": f"Say {i}.", "output": f"{i} it is."} for i in range(10)]
    )

    def progress(fraction, desc=""):
        if desc.startswith("Training epoch"):
            app._remove(str(folder))  # the visitor leaves now

    try:
        app.score_dataset(str(data), "", str(tiny_model_dir), 1, 10, visitor, progress=progress)
    except Exception as err:  # whatever the run said after its folder vanished, it is one sentence
        assert "Traceback" not in str(err)
    assert not folder.exists()


def test_per_cluster_selection_works_for_a_pushed_dataset_and_matches_a_run(app_module):
    """Before: "Per-cluster selection … needs a run directory". The shipped example is a pushed folder;
    its rows are embedded with the cluster model (MiniLM, offline) and clustered as a run's would be."""
    from hf_lpselect.space import sources

    app, _ = app_module
    example = sources.open_scored(str(app.EXAMPLE))
    selection = sources.select_subset(example, "lp1-hard", 0.1, per_cluster=4)
    assert selection.per_cluster and len(set(selection.rows)) == len(selection.rows) >= 12
    clusters = sources.pushed_clusters(example, 4)
    assert sorted(clusters.unique()) == [0, 1, 2, 3] and len(clusters) == 120
    assert {int(clusters[r]) for r in selection.rows} == {0, 1, 2, 3}  # every group gives its share
    assert sources.pushed_clusters(example, 4).equals(clusters)  # cached embeddings, the same groups
    baseline = sources.baseline_for(example, selection, per_cluster=4)
    assert baseline is not None and baseline.per_cluster
    with pytest.raises(LPSelectError, match="Choose between 2 and 120 groups"):
        sources.select_subset(example, "lp1-hard", 0.1, per_cluster=500)


def test_a_signed_in_visitors_dataset_cache_goes_when_their_session_ends(app_module):
    """A token is new at every sign-in, and its reads are cached in a folder of its own: before the fix
    those folders (full copies of the datasets read) stayed forever. gradio calls the folder State's
    delete_callback (app._remove) when a session ends; a folder unused for READER_HOURS goes when the
    next reader's folder is made, for what a restarted server no longer knows about."""
    import os
    import time

    import gradio as gr

    from hf_lpselect.space import sources

    app, _ = app_module
    visitor, other = Visitor("reader"), Visitor("other-reader")
    for who in (visitor, other):
        app.session_start(who)
    token = gr.OAuthToken(token="hf_oauth_of_this_sign_in", scope="openid", expires_at=0)
    assert app._read_token(visitor, token) == "hf_oauth_of_this_sign_in"
    assert app._read_token(other, token) == "hf_oauth_of_this_sign_in"  # the same person in a second tab
    cache = Path(sources.reader_cache("hf_oauth_of_this_sign_in"))
    (cache / "copy.arrow").write_bytes(b"rows")
    app._remove(str(app.session_folder(visitor)))
    assert cache.is_dir()  # still used by the other tab
    app._remove(str(app.session_folder(other)))
    assert not cache.exists()

    stale = Path(sources.reader_cache("hf_an_old_sign_in"))
    hours_ago = time.time() - (sources.READER_HOURS + 1) * 3600
    os.utime(stale, (hours_ago, hours_ago))
    anonymous = Path(sources.reader_cache(False))
    assert not stale.exists() and anonymous.is_dir() and anonymous.name == "anonymous"
    assert sources.reader_cache(None) is None  # run locally: this machine's login, the default cache
