"""The Gradio Space (spaces/app.py), driven with gradio_client over HTTP on 127.0.0.1.

The app runs as a real server in a subprocess pointed at the loopback Hub (tests/hub_server/), so
the push goes through the real gr.OAuthToken injection (a plain token stands in for the OAuth one:
gradio_client's ``oauth_token=``) and the real huggingface_hub / datasets clients. The data is a
tiny-model run of 16 rows (12 ok, 4 not) and the folder `lpselect push-scores --dry-run` makes of it.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import datasets
import pandas as pd
import pytest
from conftest import FAST, write_jsonl

from hf_lpselect.errors import DataError, HubError
from hf_lpselect.hub.materialize import materialize
from hf_lpselect.scoring.demo_data import make_demo_rows
from hf_lpselect.scoring.scorer_run import score
from hf_lpselect.selection.strategies import default_mirror, select
from hf_lpselect.space import page_text, sources
from hf_lpselect.space.estimate import estimate_seconds, estimate_text


REPO_ROOT = Path(__file__).resolve().parent.parent
APP = REPO_ROOT / "spaces" / "app.py"
GOOD = [{k: r[k] for k in ("instruction", "input", "output")} for r in make_demo_rows(12, seed=5)]
BAD = [
    {"instruction": "Say nothing.", "input": "", "output": ""},  # invalid: empty response
    {"instruction": "Count.", "input": "", "output": 7},  # invalid: not a string
    dict(GOOD[0]),  # duplicate of row 0
    {"instruction": "word " * 200, "input": "", "output": "Too late."},  # excluded at max_length=96
]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir):
    base = tmp_path_factory.mktemp("space_run")
    data = write_jsonl(base / "toy.jsonl", GOOD + BAD)
    return score(str(data), out=base / "run", model=str(tiny_model_dir), epochs=2, max_length=96, **FAST)


@pytest.fixture(scope="module")
def folder(run, tmp_path_factory):
    """What `lpselect push-scores org/toy --dry-run --local-dir DIR` writes for the run."""
    out = tmp_path_factory.mktemp("space_folder") / "toy-lp"
    materialize(run.run_dir, "org/toy", out)
    return out


def table_of(output: dict) -> dict:
    """The table's headers and data from what /open returns (an update: its value, with its heading as label)."""
    return output.get("value", output)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_app(
    env: dict[str, str],
    log: Path,
    timeout: float = 120,
    *,
    python: str = sys.executable,
    app: Path = APP,
    cwd: Path = REPO_ROOT,
    command: list[str] | None = None,
) -> tuple[subprocess.Popen, str]:
    """``python spaces/app.py`` (or another ``app`` with another ``python``, or ``command``, e.g.
    ``["lpselect", "space"]``) on a free loopback port; returns the process and its URL once it answers."""
    port = free_port()
    env = {
        **env,
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    handle = open(log, "wb")
    proc = subprocess.Popen(
        [*(command or [python, str(app)]), "--port", str(port)],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=cwd,
    )
    url = f"http://127.0.0.1:{port}/"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with opener.open(url + "gradio_api/info", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"the app did not start:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    pytest.importorskip("olah", reason="the loopback Hub needs olah (pip install olah==0.5.4)")
    from hub_server import LoopbackHub

    with LoopbackHub(tmp_path_factory.mktemp("space_hub")) as server:
        yield server


@pytest.fixture(scope="module")
def app(hub, tmp_path_factory):
    """The Space on 127.0.0.1, with the loopback Hub as its Hub; yields (url, the sessions' folder)."""
    work = tmp_path_factory.mktemp("space_work")
    env = hub.env(LPSELECT_SPACE_DIR=str(work / "sessions"), GRADIO_TEMP_DIR=str(work / "gradio"))
    proc, url = launch_app(env, work / "app.log")
    yield url, work / "sessions"
    proc.terminate()
    proc.wait(timeout=20)


def client(url: str, downloads: Path, **kwargs):
    """A new gradio_client session (its own session hash) that saves downloaded files in ``downloads``."""
    from gradio_client import Client

    return Client(url, verbose=False, download_files=str(downloads), **kwargs)


@pytest.fixture()
def opened(app, folder, tmp_path):
    """A client session with the materialised folder open in Explore; returns (client, explore outputs)."""
    c = client(app[0], downloads=tmp_path)
    return c, c.predict(str(folder), api_name="/open")


# ----------------------------------------------------------------------------- explore


def test_explore_shows_counts_reasons_plots_and_the_hardest_rows(opened, run):
    _, (about, histogram, by_length, statuses, table, strategies, groups) = opened
    assert "16 rows" in about and "12 ok, 1 excluded, 2 invalid, 1 duplicate" in about
    assert "1 × invalid: empty response" in about and "1 × duplicate: duplicate of row 0" in about
    assert "low LP(1)" in about.replace("**", "")
    for plot in (histogram, by_length, statuses):
        assert plot["type"] == "matplotlib" and plot["plot"].startswith("data:image/webp;base64,")
    assert table["label"] == "All 12 scored rows, hardest first (by LP(1)) (search to filter)"
    table = table_of(table)
    rows = pd.DataFrame(table["data"], columns=table["headers"])
    assert list(rows.columns) == ["which", "row", "instruction", "response", "LP(1)", "response tokens"]
    hardest = run.scores.dropna(subset=["lp1"]).sort_values(["lp1", "row"])
    assert rows["row"].tolist() == hardest["row"].tolist()  # 12 rows: all hardest-first, none repeated as easiest
    assert rows.loc[0, "response"] == GOOD[int(hardest["row"].iloc[0])]["output"]
    assert rows.loc[0, "LP(1)"] == pytest.approx(hardest["lp1"].iloc[0], abs=1e-4)
    assert strategies["value"] == "lp1-hard"
    assert groups["value"] == 2  # sized to the data: 12 scored rows, about 10 a group, at least 2
    assert set(rows["which"]) == {"harder half", "easier half"}  # 12 rows: not all "hardest"


def test_a_run_directory_opens_with_the_same_table(app, run, tmp_path):
    table = table_of(client(app[0], downloads=tmp_path).predict(str(run.run_dir.path), api_name="/open")[4])
    hardest = run.scores.dropna(subset=["lp1"]).sort_values(["lp1", "row"])
    assert [r[1] for r in table["data"]] == hardest["row"].tolist()


def test_a_wrong_source_is_one_sentence(app, tmp_path):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        client(app[0], tmp_path).predict(str(tmp_path), api_name="/open")
    message = str(caught.value)
    assert "has no scores" in message and "Traceback" not in message and message.count(".") <= 2


def test_a_100000_character_source_is_one_sentence_that_does_not_echo_it(app, tmp_path):
    """Before: "[Errno 36] File name too long: 'xxxx…'" with the whole input in it."""
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        client(app[0], tmp_path).predict("x" * 100_000, api_name="/open")
    assert str(caught.value) == (
        "That is not a Hub dataset id, web address or folder: it is 100,000 characters long (at most 1,000)."
    )


@pytest.mark.parametrize(
    "api_name, args, sentence",
    [
        ("/estimate", ("abc", 100), "Epochs: give a number from 0 to 3."),
        ("/estimate", (2, None), "Rows: give a number from 10 to "),
        ("/summarize", ("lp1-hard", "abc", False, 100), "How many: give a number from 0.5 to 100."),
        ("/summarize", ("lp1-hard", 5, True, None), "Number of groups: give a number of at least 2."),
        ("/score", (None, "me/toy", "default", "abc", 100), "Epochs: give a number from 0 to 3."),
        ("/score", (None, "me/toy", None, 2, None), "Rows: give a number from 10 to "),
    ],
    ids=["epochs-word", "rows-null", "percent-word", "groups-null", "score-epochs-word", "score-nulls"],
)
def test_a_wrong_type_sent_to_the_api_is_one_sentence(app, tmp_path, api_name, args, sentence):
    """Before: gradio's own input checks fired first and the error came back with an empty message."""
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        client(app[0], tmp_path).predict(*args, api_name=api_name)
    assert str(caught.value).startswith(sentence), str(caught.value)


def test_the_hub_id_box_suggests_datasets_pushed_by_lpselect_and_no_other(app, hub, run, folder, tmp_path):
    pushed = subprocess.run(
        [
            sys.executable,
            "-m",
            "hf_lpselect.cli",
            "push-scores",
            "me/toy-suggested",
            "--run",
            str(run.run_dir.path),
            "--subsets",
            "none",
        ],
        env=hub.env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    plain = tmp_path / "plain"  # a dataset without the lpselect tag
    plain.mkdir()
    (plain / "README.md").write_text("---\nlicense: mit\n---\nNot scored.\n")
    pd.DataFrame(GOOD).to_parquet(plain / "train.parquet")
    hub.seed("me/not-scored", plain)
    hub.seed("me/private-scores", folder, private=True)  # tagged, but private: never shown to every visitor

    suggested = client(app[0], tmp_path).predict(api_name="/suggest")
    ids = [value for _, value in suggested["choices"]]
    assert "me/toy-suggested" in ids and suggested["visible"] is True
    assert "me/not-scored" not in ids and "me/private-scores" not in ids
    about = client(app[0], tmp_path / "picked").predict("me/toy-suggested", api_name="/open")[
        0
    ]  # what picking one opens
    assert "16 rows" in about


def silent_port() -> socket.socket:
    """A listening socket that never answers: a Hub that hangs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock


@pytest.mark.parametrize("hub_is", ["offline", "unreachable", "hanging"])
def test_without_a_hub_there_are_no_suggestions_and_nothing_is_said(hub_is, hub, tmp_path):
    env = hub.env()
    with silent_port() as hanging:
        if hub_is == "offline":
            env["HF_HUB_OFFLINE"] = "1"
        else:
            port = free_port() if hub_is == "unreachable" else hanging.getsockname()[1]
            env["HF_ENDPOINT"] = f"http://127.0.0.1:{port}"
        code = (
            "import json, time; from hf_lpselect.space import sources; t = time.monotonic(); "
            "found = sources.recent_scored(timeout=1.0); print(json.dumps([found, time.monotonic() - t]))"
        )
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]  # the log may note retries
    found, seconds = json.loads(done.stdout)
    assert found == [] and seconds < 2


def test_the_figures_name_the_scores_as_the_page_does(run, tmp_path):
    """One display-name map (hf_lpselect.core.schema.display_name) for the page and every figure the Space draws:
    LP(1) and P_0, never the column names lp1 and ppl_0 (before the fix the Compare plot's axes said "lp1")."""
    from hf_lpselect.core.schema import display_name
    from hf_lpselect.selection.compare import compare_runs, scatter_figure
    from hf_lpselect.selection.report import lp1_histogram, p0_histogram, score_vs_length

    figures = [
        scatter_figure(run.scores, run.scores, "lp1", ("first", "second")),
        lp1_histogram(run.scores),
        p0_histogram(run.scores),
        score_vs_length(run.scores, "lp1"),
        score_vs_length(run.scores, "ppl_0"),
    ]
    said = [text for fig in figures for ax in fig.axes for text in (ax.get_xlabel(), ax.get_ylabel(), ax.get_title())]
    assert not [text for text in said if "lp1" in text or "ppl_" in text]
    assert figures[0].axes[0].get_xlabel() == "LP(1) percentile, first"
    assert figures[4].axes[0].get_ylabel() == "P_0 (perplexity before training)"
    assert page_text.examples_frame(run.scores, 5)[2].endswith("(by LP(1))")
    compared = page_text.compare_markdown(compare_runs(run.run_dir.path, run.run_dir.path, out=tmp_path))
    assert "agreement (same order) on LP(1)" in compared and "P_0 (perplexity before training) agrees" in compared
    # a run's column and its pushed name read the same
    assert display_name("ppl_0") == display_name("ppl_e0") == "P_0" and display_name("lp_2") == "LP(2)"


# ----------------------------------------------------------------------------- select


def test_the_summary_follows_the_slider(opened, run):
    c, _ = opened
    text = c.predict("lp1-hard", 25, False, 100, api_name="/summarize")
    expected = select(run.scores, "lp1-hard", fraction=0.25)
    assert len(expected.rows) == 3  # 25 % of the 12 rows with an LP(1)
    assert "**Hardest for the small model**: 3 rows = 25.0% of the 12 rows it could pick" in text
    assert "Random baseline" in text
    assert "4 rows" in c.predict("lp1-hard", 33.5, False, 100, api_name="/summarize")


def test_per_cluster_selection_of_a_run_takes_from_every_group(app, run, tmp_path):
    """The paper's way: MiniLM embeddings, k-means into 3 groups, ceil(n_c / 4) rows from each at 25 %."""
    c = client(app[0], downloads=tmp_path)
    c.predict(str(run.run_dir.path), api_name="/open")
    text = c.predict("lp1-hard", 25, True, 3, api_name="/summarize")
    assert "Per group: rows taken from 3 of 3 groups" in text and "Random baseline" in text


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_the_downloaded_subset_holds_the_selected_rows(opened, run, fmt):
    c, _ = opened
    path = c.predict("lp1-hard", 25, False, 100, fmt, api_name="/download")
    assert path.endswith(f"lp1-hard-25pct.{fmt}")
    loaded = datasets.load_dataset(
        "csv" if fmt == "csv" else "json" if fmt == "jsonl" else fmt, data_files=path, split="train"
    )
    expected = select(run.scores, "lp1-hard", fraction=0.25)
    assert loaded["output"] == [GOOD[r]["output"] for r in expected.rows]
    assert list(loaded["selection_rank"]) == [1, 2, 3]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_a_run_and_its_pushed_folder_download_the_same_columns(app, run, folder, fmt, tmp_path):
    """The score columns are named as on the Hub (ppl_e0, lpselect_status …) whichever source the rows come from:
    before the fix a run's download said ppl_0, nll_0, n_response_tokens where its pushed folder's said ppl_e0 and
    lpselect_response_tokens."""
    loaded = []
    for source in (run.run_dir.path, folder):
        c = client(app[0], downloads=tmp_path / source.name)
        c.predict(str(source), api_name="/open")
        path = c.predict("lp1-hard", 50, False, 100, fmt, api_name="/download")
        loaded.append(
            datasets.load_dataset(
                "csv" if fmt == "csv" else "json" if fmt == "jsonl" else fmt,
                data_files=path,
                split="train",
                cache_dir=str(tmp_path / "cache"),
            )
        )
    from_run, from_folder = loaded
    assert from_run.column_names == from_folder.column_names
    assert {"ppl_e0", "ppl_e2", "lp1", "lp1_rank", "lpselect_status", "selection_rank"} <= set(from_run.column_names)
    assert not {"ppl_0", "nll_0", "n_response_tokens"} & set(from_run.column_names)
    assert from_run["output"] == from_folder["output"] and from_run["lp1"] == pytest.approx(from_folder["lp1"])
    assert from_run["lpselect_status"] == from_folder["lpselect_status"] == ["ok"] * 6


def test_random_is_drawn_from_the_rows_lp_could_pick(opened, run, tmp_path):
    c, _ = opened
    path = c.predict("random", 50, False, 100, "jsonl", api_name="/download")
    expected = select(run.scores, "random", fraction=0.5, mirror=default_mirror("random", run.scores))
    assert [json.loads(line)["output"] for line in Path(path).read_text().splitlines()] == [
        GOOD[r]["output"] for r in expected.rows
    ]


def test_every_session_has_its_own_folder(app, folder, tmp_path):
    sessions = [client(app[0], downloads=tmp_path / str(i)) for i in range(2)]
    for c in sessions:
        c.predict(str(folder), api_name="/open")
        c.predict("lp1-hard", 25, False, 100, "jsonl", api_name="/download")
    mine = {c.session_hash for c in sessions}
    assert len(mine) == 2
    for session in mine:
        assert (app[1] / session / "downloads" / "lp1-hard-25pct.jsonl").is_file()


# ----------------------------------------------------------------------------- push


def test_push_uses_the_signed_in_token_and_the_config_loads_by_id(app, folder, hub, run, tmp_path):
    from hub_server import FAKE_TOKEN

    c = client(app[0], oauth_token=FAKE_TOKEN, downloads=tmp_path)
    c.predict(str(folder), api_name="/open")
    message = c.predict("lp1-hard", 25, False, 100, "me/toy-hard", False, api_name="/push")
    assert message.startswith("Pushed: ") and "me/toy-hard" in message
    loader = "import datasets, json; print(json.dumps(list(datasets.load_dataset('me/toy-hard', 'lp1_hard_25pct', split='train')['output'])))"
    loaded = subprocess.run([sys.executable, "-c", loader], env=hub.env(), capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    expected = select(run.scores, "lp1-hard", fraction=0.25)
    assert json.loads(loaded.stdout) == [GOOD[r]["output"] for r in expected.rows]
    assert FAKE_TOKEN not in (app[1].parent / "app.log").read_text(errors="replace")


def test_a_subset_pushed_to_the_scored_repo_is_listed_in_its_cards_lpselect_block(app, folder, hub, tmp_path):
    """lpselect train reads a subset's strategy and fraction from the card's lpselect: block; before the fix
    a subset pushed from the Space was a config the block did not list."""
    from hub_server import FAKE_TOKEN
    from huggingface_hub import DatasetCard

    from hf_lpselect.hub.provenance import CardProvenance

    hub.seed("me/toy-listed", folder)
    c = client(app[0], oauth_token=FAKE_TOKEN, downloads=tmp_path)
    c.predict("me/toy-listed", api_name="/open")
    assert "Pushed: " in c.predict("lp1-hard", 25, False, 100, "me/toy-listed", False, api_name="/push")
    readme = tmp_path / "README.md"
    readme.write_bytes(hub.read("me/toy-listed", "README.md"))
    card = DatasetCard.load(readme)
    provenance = CardProvenance.from_card(card, where="me/toy-listed")
    assert provenance.subsets["lp1_hard_25pct"] == {"strategy": "lp1-hard", "fraction": 0.25}
    assert "lp1_hard_25pct" in [config["config_name"] for config in card.data["configs"]]
    assert provenance.scorer == CardProvenance.from_card(DatasetCard.load(folder / "README.md"), where="toy").scorer


def test_a_run_is_pushed_with_its_scores_and_the_subset_config_and_opens_by_hub_id(app, run, hub, tmp_path):
    from hub_server import FAKE_TOKEN

    c = client(app[0], oauth_token=FAKE_TOKEN, downloads=tmp_path)
    c.predict(str(run.run_dir.path), api_name="/open")
    assert "Pushed: " in c.predict("lp1-hard", 50, False, 100, "me/toy-run", False, api_name="/push")
    files = hub.files("me/toy-run")
    assert any(f.startswith("lpselect/subsets/lp1_hard_50pct/train-") for f in files) and "README.md" in files
    table = table_of(
        client(app[0], tmp_path / "reader").predict("me/toy-run", api_name="/open")[4]
    )  # opened by Hub id
    hardest = run.scores.dropna(subset=["lp1"]).sort_values(["lp1", "row"])
    assert [r[1] for r in table["data"]] == hardest["row"].tolist()


def test_on_a_space_only_the_signed_in_persons_token_is_used(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_the_space_owners_token")
    with pytest.raises(HubError, match="Sign in with Hugging Face first"):
        sources.push_token(None, on_space=True)
    assert sources.push_token("hf_oauth", on_space=True) == "hf_oauth"
    assert sources.push_token(None, on_space=False) == "hf_the_space_owners_token"  # run locally: your own login


@pytest.fixture(scope="module")
def space_app(hub, tmp_path_factory):
    """The app as on a Space: what a Space sets (SYSTEM, SPACE_ID; hf_oauth: true adds the OAuth app's
    settings, never contacted here), with the Space's own token in HF_TOKEN as a Space secret would put
    it there; yields its URL."""
    work = tmp_path_factory.mktemp("space_on_a_space")
    env = hub.env(
        LPSELECT_SPACE_DIR=str(work / "sessions"),
        GRADIO_TEMP_DIR=str(work / "gradio"),
        SYSTEM="spaces",
        SPACE_ID="me/lpselect",
        OAUTH_CLIENT_ID="loopback",
        OAUTH_CLIENT_SECRET="loopback",
        OAUTH_SCOPES="openid profile read-repos write-repos manage-repos",
        OPENID_PROVIDER_URL="http://127.0.0.1:9",
    )
    proc, url = launch_app(env, work / "app.log")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_on_a_space_a_hub_dataset_opens_with_the_signed_in_visitors_token_only(space_app, hub, folder, tmp_path):
    """The sign-in is gradio's real gr.OAuthToken injection, given a plain token by gradio_client's oauth_token=
    (no Hub OAuth here). The loopback Hub hides a private repo from a request without a token."""
    from gradio_client.exceptions import AppError
    from hub_server import FAKE_TOKEN

    hub.seed("me/private-toy", folder, private=True)
    hub.seed("me/public-toy", folder)
    signed_in = client(space_app, tmp_path / "signed-in", oauth_token=FAKE_TOKEN)
    assert "16 rows" in signed_in.predict("me/private-toy", api_name="/open")[0]
    stranger = client(space_app, tmp_path / "stranger")
    # neither the Space's own token nor the copy the signed-in visitor opened reaches someone else
    with pytest.raises(AppError) as caught:
        stranger.predict("me/private-toy", api_name="/open")
    assert str(caught.value) == "That Hub dataset does not exist or is private; check its name (owner/name)."
    assert "16 rows" in stranger.predict("me/public-toy", api_name="/open")[0]
    assert sources.read_token(None, on_space=False) is None  # run locally: this machine's own login


def test_on_a_space_the_score_tab_reads_a_hub_dataset_as_explore_does(
    space_app, hub, folder, tiny_model_dir, tmp_path
):
    """Before the fix the Score tab read a Hub id with the Space's own login (HF_TOKEN, a Space secret): a
    signed-out visitor scored its owner's private dataset, then browsed and downloaded its rows."""
    from gradio_client.exceptions import AppError
    from hub_server import FAKE_TOKEN

    hub.seed("me/private-to-score", folder, private=True)
    hub.seed("me/public-to-score", folder)
    stranger = client(space_app, tmp_path / "stranger")
    with pytest.raises(AppError) as caught:
        stranger.predict(None, "me/private-to-score", str(tiny_model_dir), 0, 10, api_name="/score")
    assert str(caught.value) == "That Hub dataset does not exist or is private; check its name (owner/name)."
    assert (
        "Scored 10 rows ("
        in stranger.predict(None, "me/public-to-score", str(tiny_model_dir), 0, 10, api_name="/score")[7]
    )
    signed_in = client(space_app, tmp_path / "signed-in", oauth_token=FAKE_TOKEN)
    assert (
        "Scored 10 rows ("
        in signed_in.predict(
            None, "https://huggingface.co/datasets/me/private-to-score", str(tiny_model_dir), 0, 10, api_name="/score"
        )[7]
    )


def test_an_anonymous_read_is_never_served_from_a_cache_a_read_with_a_token_filled(hub, folder, tmp_path):
    """datasets falls back to a cached copy when the Hub refuses a repo: before the fix an anonymous read
    shared the default cache with this machine's login (HF_TOKEN here), so the private copy opened."""
    hub.seed("me/private-cached", folder, private=True)
    code = (
        "from hf_lpselect.space import sources; from hf_lpselect.errors import DataError\n"
        "print(len(sources.open_scored('me/private-cached').scores))\n"  # this machine's login: the default cache
        "try:\n    sources.open_scored('me/private-cached', token=False)\n"
        "except DataError as err:\n    print('refused', err)\nelse:\n    print('served')"
    )
    done = subprocess.run([sys.executable, "-c", code], env=hub.env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    opened, anonymous = done.stdout.splitlines()[-2:]
    assert opened == "16" and anonymous.startswith("refused")


def test_on_a_space_other_folders_cannot_be_opened(folder, tmp_path):
    with pytest.raises(DataError, match="not a folder this Space may read"):
        sources.open_scored(str(folder), allowed_roots=[tmp_path])
    assert sources.open_scored(str(folder), allowed_roots=[folder.parent]).kind == "folder"


def test_scores_pushed_for_another_split_than_train_open_from_a_folder_and_by_hub_id(folder, hub, run, tmp_path):
    # before the fix the Space read only a `train` split: "has no scores" for the folder, a load error on the Hub
    other = tmp_path / "toy-test-split"
    shutil.copytree(folder, other)
    card = other / "README.md"
    card.write_text(card.read_text().replace("split: train", "split: test"))
    assert sources.open_scored(str(other)).scores["row"].tolist() == run.scores["row"].tolist()
    hub.seed("me/toy-test-split", other)
    opener = (
        "from hf_lpselect.space.sources import open_scored; "
        "print(open_scored('me/toy-test-split').scores['row'].tolist())"
    )
    opened = subprocess.run([sys.executable, "-c", opener], env=hub.env(), capture_output=True, text=True, timeout=300)
    assert opened.returncode == 0, opened.stderr[-3000:]
    assert json.loads(opened.stdout) == run.scores["row"].tolist()


def test_the_split_opened_is_the_only_one_else_train_else_refused():
    assert sources._scored_split(["test"], "me/x") == "test"
    assert sources._scored_split(["test", "train"], "me/x") == "train"
    with pytest.raises(DataError, match=r"me/x has several splits \(test, validation\) and none is 'train'"):
        sources._scored_split(["test", "validation"], "me/x")


# ----------------------------------------------------------------------------- score


def test_an_upload_is_scored_one_run_at_a_time_with_progress_and_opens_in_explore(app, tiny_model_dir, tmp_path):
    from gradio_client import handle_file
    from gradio_client.utils import Status

    upload = tmp_path / "mine.csv"
    pd.DataFrame(GOOD[:6] + BAD[:1]).to_csv(upload, index=False)
    c = client(app[0], downloads=tmp_path)
    job = c.submit(handle_file(str(upload)), "", str(tiny_model_dir), 1, 10, api_name="/score")
    other = client(app[0], tmp_path / "other")  # someone else scores at the same time: one run at a time
    waiting = other.submit(handle_file(str(upload)), "", str(tiny_model_dir), 0, 10, api_name="/score")
    seen, places = set(), set()  # what the progress bar said; the other person's place in the queue
    while not job.done():
        seen.update(unit.desc for unit in job.status().progress_data or [])
        status = waiting.status()
        if status.code == Status.IN_QUEUE and status.rank is not None:
            places.add(status.rank)
        time.sleep(0.02)
    outputs = job.result(timeout=300)
    assert places and "6 ok" in waiting.result(timeout=300)[0]
    about, table, message = outputs[0], table_of(outputs[4]), outputs[7]
    assert "7 rows" in about and "6 ok" in about and "1 × invalid: empty response" in about
    assert len(table["data"]) == 6
    assert "Scored 7 rows (6 ok)" in message
    assert (
        "Scoring pass 0 of 1 (before training) → Training epoch 1 of 1 → Scoring pass 1 of 1 (after epoch 1)"
        in message
    )
    assert seen & {
        "Loading the data and the scorer model",
        "Scoring pass 0 of 1 (before training)",
        "Training epoch 1 of 1",
    }


def test_a_bad_upload_is_one_sentence(app, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{not json\n')
    with pytest.raises(AppError) as caught:
        client(app[0], tmp_path).predict(handle_file(str(bad)), "", "default", 1, 10, api_name="/score")
    assert (
        "broken.jsonl" in str(caught.value) and "line 2" in str(caught.value) and "Traceback" not in str(caught.value)
    )


def test_the_time_estimate_counts_loading_epochs_and_passes():
    assert estimate_seconds(100, 2, "cpu") == pytest.approx(17 + 100 * (2 * 1.0 + 3 * 0.11))
    assert estimate_text(100, 2, "cpu").startswith("About 4 min on this CPU")
    assert "1 epoch of training, 2 scoring passes" in estimate_text(10, 1, "cpu")
    # before the fix: "About 1 s" for 10 rows and 0 epochs, which took 18.7 s (loading the model was not counted)
    assert estimate_text(10, 0, "cpu").startswith("About 18 s")


# ----------------------------------------------------------------------------- compare


def test_a_run_compared_with_its_own_pushed_scores_agrees_fully(opened, run):
    c, _ = opened
    text, scatter = c.predict("", str(run.run_dir.path), api_name="/compare")  # empty first: the open dataset
    assert "**12 rows** were scored by both" in text and "Spearman ρ = +1.000" in text and "a strong agreement" in text
    assert "**100%** are also among the hardest" in text
    assert Path(scatter).read_bytes()[:4] == b"\x89PNG"


def test_plain_strategy_names_only_offer_what_the_scores_allow(run):
    assert "lp1-hard" in page_text.usable_strategies(run.scores) and "ifd-nll" not in page_text.usable_strategies(
        run.scores
    )
    no_training = run.scores[["row", "id", "status", "reason", "n_response_tokens", "nll_0", "ppl_0"]]
    assert page_text.usable_strategies(no_training) == ["random", "longest", "ppl-high", "ppl-low", "ppl-mid"]


# ----------------------------------------------------------------------------- hostile visitors


def test_an_upload_over_the_size_limit_is_refused_and_stored_nowhere(app, tmp_path):
    from gradio_client import handle_file

    big = tmp_path / "huge.jsonl"
    with big.open("wb") as out:
        out.truncate(51 * 2**20)  # over the Space's 50 MB: sparse, costs no disk here
    c = client(app[0], tmp_path)
    with pytest.raises(Exception) as caught:
        c.predict(handle_file(str(big)), "", "default", 0, 10, api_name="/score")
    assert "Traceback" not in str(caught.value)
    assert not (app[1] / c.session_hash / "uploads").exists()


def test_a_model_repo_given_as_a_dataset_is_one_plain_sentence(app, hub, tiny_model_dir, tmp_path):
    from gradio_client.exceptions import AppError

    hub.seed("me/tiny-model", tiny_model_dir, repo_type="model")
    with pytest.raises(AppError) as caught:
        client(app[0], tmp_path).predict("https://huggingface.co/me/tiny-model", api_name="/open")
    said = str(caught.value)
    assert said == "That Hub dataset does not exist or is private; check its name (owner/name)."
