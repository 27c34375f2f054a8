"""`lpselect push-scores` end to end over HTTP, with the real clients, against the loopback Hub
(tests/hub_server/: olah's read routes + test-owned write routes, on 127.0.0.1).

An existing dataset `org/alpaca` (a train and a test split, a card with a license and its own
text) is scored by id with `lpselect score org/alpaca`, pushed back with `lpselect push-scores
org/alpaca` (run found under runs/), and every config is loaded by repo id with
`datasets.load_dataset`. Every client runs in a subprocess: huggingface_hub reads HF_ENDPOINT at
import time.

What this cannot prove (see tests/hub_server/): Xet storage (uploads take the LFS path,
HF_HUB_DISABLE_XET=1), auth (any token is accepted), and the real Hub's server-side checks (its
card/YAML schema validation, the dataset viewer, size limits). test_hub_real.py is the opt-in
smoke test against the real Hub.
"""

import json
import socket
import subprocess
import sys
import textwrap

import datasets
import pandas as pd
import pytest
from huggingface_hub import DatasetCard

from hf_lpselect.hub.columns import DEFAULT_SUBSETS, parse_subset, select_scored
from hf_lpselect.scoring.demo_data import make_demo_rows


REPO = "org/alpaca"
RECORDS = [
    {"instruction": r["instruction"], "input": r["input"], "output": r["output"], "category": r["family"]}
    for r in make_demo_rows(40, seed=5)
]
RECORDS.append({"instruction": "Say nothing.", "input": "", "output": "", "category": "bad"})  # invalid
TEST_ROWS = [{"instruction": "Add 1 and 1.", "input": "", "output": "2", "category": "held-out"}]
CARD = """---
dataset_info:
  features:
  - name: instruction
    dtype: string
  - name: input
    dtype: string
  - name: output
    dtype: string
  - name: category
    dtype: string
license: cc-by-nc-4.0
language:
- en
task_categories:
- text-generation
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
  - split: test
    path: data/test-*
---
# Alpaca (toy)

The original card text, written by the dataset's authors.
"""
SCORE_ARGS = [
    "--epochs",
    "2",
    "--max-length",
    "128",
    "--learning-rate",
    "1e-3",
    "--batch-size",
    "4",
    "--grad-accum",
    "1",
    "--bf16",
    "false",
    "--out",
    "runs/alpaca",
]
LOADER = textwrap.dedent("""
    import json, sys
    import datasets, hf_lpselect
    repo, configs = sys.argv[1], sys.argv[2].split(",")
    out = {}
    for name in configs:
        data = datasets.load_dataset(repo, name, split="train")
        out[name] = {"output": list(data["output"]), "columns": data.column_names}
    out["test"] = list(datasets.load_dataset(repo, "default", split="test")["output"])
    out["load_scored"] = list(hf_lpselect.load_scored(repo, strategy="lp1-hard", fraction=0.07)["output"])
    print(json.dumps(out))
""")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(hub, cwd, *args, **env):
    """``python -m hf_lpselect.cli ARGS`` (or ``python -c CODE`` for args[0] == "-c") as a Hub client."""
    command = [sys.executable, *args] if args[0] == "-c" else [sys.executable, "-m", "hf_lpselect.cli", *args]
    return subprocess.run(command, cwd=cwd, env=hub.env(**env), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    pytest.importorskip("olah", reason="the loopback Hub needs olah (pip install olah==0.5.4)")
    from hub_server import LoopbackHub

    with LoopbackHub(tmp_path_factory.mktemp("loopback")) as server:
        yield server


def seed_alpaca(hub, folder, records, message):
    """Commit the dataset's original layout (train + test + card) onto main, as its maintainers would."""
    (folder / "data").mkdir(parents=True)
    datasets.Dataset.from_list(records).to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    datasets.Dataset.from_list(TEST_ROWS).to_parquet(str(folder / "data" / "test-00000-of-00001.parquet"))
    (folder / "README.md").write_text(CARD)
    return hub.seed(REPO, folder, message=message)


@pytest.fixture(scope="module")
def pushed(hub, tmp_path_factory, tiny_model_dir):
    """org/alpaca seeded, scored by id, pushed back; returns the work folder and every output."""
    seed_sha = seed_alpaca(hub, tmp_path_factory.mktemp("seed"), RECORDS, "Upload Alpaca")
    work = tmp_path_factory.mktemp("work")
    scored = run(hub, work, "score", REPO, "--model", str(tiny_model_dir), *SCORE_ARGS)
    assert scored.returncode == 0, scored.stderr[-3000:]
    push = run(hub, work, "push-scores", REPO)  # the run: the latest of org/alpaca under runs/
    assert push.returncode == 0, push.stderr[-3000:]
    loaded = run(hub, work, "-c", LOADER, REPO, ",".join(["default", *DEFAULT_SUBSETS]))
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    return {
        "work": work,
        "outputs": [scored, push, loaded],
        "loaded": json.loads(loaded.stdout),
        "seed_sha": seed_sha,
        "scores": pd.read_parquet(work / "runs" / "alpaca" / "scores.parquet"),
    }


def test_every_config_loads_by_repo_id_with_the_selected_rows(pushed):
    loaded, scores = pushed["loaded"], pushed["scores"]
    assert loaded["default"]["output"] == [r["output"] for r in RECORDS]
    assert loaded["default"]["columns"][:4] == ["instruction", "input", "output", "category"]
    assert {"lp1", "ppl_e0", "ppl_e2", "lp1_rank", "lpselect_status"} <= set(loaded["default"]["columns"])
    for name in DEFAULT_SUBSETS:
        spec = parse_subset(name)
        expected = select_scored(scores, spec.strategy, fraction=spec.fraction)
        assert loaded[name]["output"] == [RECORDS[r]["output"] for r in expected.rows], name
    expected = select_scored(scores, "lp1-hard", fraction=0.07)
    assert loaded["load_scored"] == [RECORDS[r]["output"] for r in expected.rows]
    assert loaded["test"] == ["2"]  # the split that was not scored is still in the default config


def test_the_run_records_the_config_and_commit_it_read(pushed):
    """so a later push re-reads exactly the scored rows, though the repo has changed since."""
    dataset = json.loads((pushed["work"] / "runs" / "alpaca" / "run.json").read_text())["dataset"]
    assert (dataset["config"], dataset["revision"]) == ("default", pushed["seed_sha"])


def test_one_commit_names_the_scorer_and_binaries_travel_as_lfs(hub, pushed):
    messages = hub.commit_messages(REPO)
    assert messages[1].startswith("Upload Alpaca")  # exactly one commit on top of the seed
    assert messages[0].startswith("Add learning-percentage scores from ") and "tiny_model" in messages[0]
    files = hub.files(REPO)
    assert "data/test-00000-of-00001.parquet" in files and "lpselect/figures/lp1_histogram.png" in files
    train = [f for f in files if f.startswith("data/train-")]  # ours, named by content; the seed's was replaced
    assert len(train) == 1 and train[0] != "data/train-00000-of-00001.parquet"
    assert hub.is_lfs(REPO, train[0]) and hub.is_lfs(REPO, "lpselect/figures/lp1_histogram.png")


def test_the_card_keeps_the_datasets_metadata_and_text(hub, pushed):
    card = DatasetCard(hub.read(REPO, "README.md").decode())
    assert card.data.license == "cc-by-nc-4.0" and card.data.language == ["en"]
    assert {"lpselect", "data-selection"} <= set(card.data.tags)
    configs = {c["config_name"]: c for c in card.data.configs}
    assert list(configs) == ["default", *DEFAULT_SUBSETS]
    assert [f["split"] for f in configs["default"]["data_files"]] == ["train", "test"]
    assert card.text.count("The original card text") == 1
    assert card.text.index("lpselect:end") < card.text.index("The original card text")


def test_the_card_metadata_names_the_source_commit_the_scores_belong_to(hub, pushed):
    provenance = DatasetCard(hub.read(REPO, "README.md").decode()).data["lpselect"]
    assert provenance["source"] == REPO and provenance["source_commit"] == pushed["seed_sha"]
    assert provenance["template"] == "alpaca" and set(provenance["subsets"]) == set(DEFAULT_SUBSETS)


def test_the_token_is_never_printed_or_written(hub, pushed):
    from hub_server import FAKE_TOKEN

    for output in pushed["outputs"]:
        assert FAKE_TOKEN not in output.stdout + output.stderr
    for path in pushed["work"].rglob("*"):
        if path.is_file():
            assert FAKE_TOKEN.encode() not in path.read_bytes(), path
    for name in hub.files(REPO):
        assert FAKE_TOKEN.encode() not in hub.read(REPO, name), name


def test_create_pr_leaves_main_alone(hub, pushed):
    before = hub.git(REPO, "rev-parse", "main").strip()
    result = run(hub, pushed["work"], "push-scores", REPO, "--create-pr", "--subsets", "ppl_high_10pct")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pull request:" in result.stdout and "/discussions/" in result.stdout
    assert hub.git(REPO, "rev-parse", "main").strip() == before
    pr_card = DatasetCard(hub.read(REPO, "README.md", revision="refs/pr/1").decode())
    assert [c["config_name"] for c in pr_card.data.configs] == ["default", "ppl_high_10pct"]
    assert not any(f.startswith("lpselect/subsets/lp1_hard") for f in hub.files(REPO, revision="refs/pr/1"))


def test_dry_run_makes_no_network_call(hub, pushed):
    dead = f"http://127.0.0.1:{closed_port()}"  # nothing listens: any request would fail
    result = run(hub, pushed["work"], "push-scores", REPO, "--dry-run", "--local-dir", "dry", HF_ENDPOINT=dead)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(datasets.load_dataset(str(pushed["work"] / "dry"), "lp1_hard_10pct", split="train")) == 4


def test_an_unreachable_hub_is_one_sentence(hub, pushed):
    dead = f"http://127.0.0.1:{closed_port()}"
    result = run(hub, pushed["work"], "push-scores", REPO, HF_ENDPOINT=dead)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "org/alpaca" in errors[0] and "Connection refused" in errors[0]


def test_a_push_keeps_rows_added_since_the_run_and_refuses_edited_ones(hub, pushed, tmp_path):
    added = {"instruction": "Name a colour.", "input": "", "output": "Blue.", "category": "new"}
    seed_alpaca(hub, tmp_path / "v2", RECORDS + [added], "Add a row")
    result = run(hub, pushed["work"], "push-scores", REPO, "--subsets", "none")
    assert result.returncode == 0, result.stderr[-3000:]
    check = run(
        hub,
        pushed["work"],
        "-c",
        "import datasets, json; d = datasets.load_dataset('org/alpaca', split='train'); "
        "print(json.dumps([list(d['output']), list(d['lpselect_status'])]))",
    )
    outputs, statuses = json.loads(check.stdout)
    assert outputs == [r["output"] for r in RECORDS] + ["Blue."]  # the maintainers' new row is kept...
    assert statuses[-1] == "unscored" and statuses[-2] == "invalid"  # ...as a row the run did not score
    edited = [dict(r) for r in RECORDS]
    edited[2]["output"] = "A different answer."
    seed_alpaca(hub, tmp_path / "v3", edited, "Fix an answer")
    refused = run(hub, pushed["work"], "push-scores", REPO)
    assert (
        refused.returncode == 2 and "no longer holds the rows" in refused.stderr and "Traceback" not in refused.stderr
    )


DETECT = textwrap.dedent("""
    import json, sys
    from huggingface_hub import HfApi
    from hf_lpselect.hub.push import read_target
    target = read_target(HfApi(), sys.argv[1])
    print(json.dumps({"exists": target.exists, "sha": target.sha, "configs": target.detected_configs,
                      "card": target.card.text if target.card else None}))
""")


def test_a_repo_without_configs_has_its_splits_detected(hub, tmp_path):
    """A dataset whose card declares no configs (datasets finds its splits from file names)."""
    (tmp_path / "data").mkdir()
    for split in ("train", "validation"):
        datasets.Dataset.from_list(TEST_ROWS).to_parquet(str(tmp_path / "data" / f"{split}-00000-of-00001.parquet"))
    (tmp_path / "README.md").write_text("# No YAML\n")
    sha = hub.seed("org/auto", tmp_path)
    result = run(hub, tmp_path, "-c", DETECT, "org/auto")
    assert result.returncode == 0, result.stderr[-3000:]
    target = json.loads(result.stdout)
    assert target["exists"] and target["sha"] == sha and target["card"].strip() == "# No YAML"
    splits = {f["split"] for f in target["configs"][0]["data_files"]}
    assert splits == {"train", "validation"}
    missing = run(hub, tmp_path, "-c", DETECT, "org/never-created")
    assert json.loads(missing.stdout) == {"exists": False, "sha": None, "configs": None, "card": None}
