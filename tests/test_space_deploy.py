"""`lpselect space deploy` (hf_lpselect/space/deploy.py) and what the Space installs from.

End to end on the loopback Hub (tests/hub_server/, real huggingface_hub): the Space is deployed,
downloaded back with snapshot_download, and its files are installed into a FRESH virtualenv that
cannot see this checkout. Installing happens as on a Space: pip reads requirements.txt alone
(`--no-index`: nothing is fetched). The fresh virtualenv borrows the test environment's third-party
packages read-only through a path file (a download of torch and gradio per test run is not
possible here); that path file adds the folder to sys.path WITHOUT running the .pth files in it,
so the editable install of this checkout stays invisible, which the test checks. The app is then
launched from the downloaded folder, offline, and answers on its API.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import fresh_venv
from test_space import launch_app

from hf_lpselect.space import page_text


REPO_ROOT = Path(__file__).resolve().parent.parent
SPACES = REPO_ROOT / "hf_lpselect" / "space" / "repo"  # the Space repo's own files, in the package
EVIDENCE = SPACES / "evidence.json"
EVIDENCE_LINK = "../README.md#the-evidence-did-the-hard-subset-train-a-bigger-model-better-than-random"


def lpselect(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hf_lpselect.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


# ----------------------------------------------------------------------------- honest words


def test_the_space_ships_the_evidence_benchmarks_results():
    """The copy in the package (the Space's header, the deployed evidence.json) is the benchmark's file."""
    results = REPO_ROOT / "benchmarks" / "results" / "bench_evidence.json"
    assert EVIDENCE.read_bytes() == results.read_bytes(), "run benchmarks/bench_evidence.py, which writes both"


def test_the_header_and_the_space_readme_say_what_the_evidence_found():
    results = json.loads(EVIDENCE.read_text())
    readme = (SPACES / "README.md").read_text()
    assert page_text.with_evidence(readme, results, EVIDENCE_LINK) == readme, (
        "spaces/README.md's evidence block is stale: re-render it with page_text.with_evidence"
    )
    lp10 = results["verdicts"]["lp1-hard@0.1 vs random@0.1 on alpaca_heldout"]
    text = page_text.evidence_markdown(results, "#x")
    assert f"{lp10['mean_nll']:.3f}" in text and f"{lp10['random_mean_nll']:.3f}" in text and "160 Alpaca rows" in text
    assert "no: the hardest rows did not train the bigger model better" in text
    assert "works as well as on everything" not in readme  # the old promise
    # one source: when the evidence changes, the words change with it
    better = json.loads(json.dumps(results))
    for key, verdict in better["verdicts"].items():
        if key.startswith("lp1-hard@") and "alpaca_heldout" in key:
            verdict.update(verdict="beats random", mean_nll=1.5)
    changed = page_text.evidence_markdown(better, "#x")
    assert "did better than random rows" in changed and "1.500" in changed


def test_the_app_header_comes_from_the_same_template(tmp_path, monkeypatch):
    import runpy

    monkeypatch.setenv("LPSELECT_SPACE_DIR", str(tmp_path))
    monkeypatch.delitem(sys.modules, "spaces", raising=False)
    header = runpy.run_path(str(REPO_ROOT / "hf_lpselect" / "space" / "app.py"))["header"]()
    assert page_text.evidence_markdown(json.loads(EVIDENCE.read_text()), f"/gradio_api/file={EVIDENCE}") in header


# ----------------------------------------------------------------------------- deploy


def test_dry_run_writes_exactly_the_space_folder_and_nothing_in_the_checkout(tmp_path):
    before = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout
    out = tmp_path / "space"
    done = lpselect("space", "deploy", "me/lpselect", "--dry-run", "--local-dir", str(out), "--hardware", "zero-a10g")
    assert done.returncode == 0, done.stderr[-3000:]
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {
        "README.md",
        "app.py",
        "requirements.txt",
        "evidence.json",
        "hf_lpselect/__init__.py",
        "hf_lpselect/space/page_text.py",
        "hf_lpselect/cards/dataset_card.md",
        "hf_lpselect/space/repo/examples/demo-smollm2-2-epochs/README.md",
    } <= files
    assert any(re.fullmatch(r"hf_lpselect-[\d.]+\.dist-info/METADATA", f) for f in files)
    assert f"{len(files)} files (dry run: nothing was sent)" in done.stdout
    readme = (out / "README.md").read_text()
    assert "sdk: gradio" in readme and "suggested_hardware: zero-a10g" in readme.split("\n---\n")[0]
    assert "https://huggingface.co/spaces/me/lpselect/blob/main/evidence.json" in readme
    assert (out / "app.py").read_bytes() == (SPACES / "app.py").read_bytes()
    after = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout
    assert after == before  # the wheel is built from a copy: no build/ or egg-info left in the checkout
    again = lpselect("space", "deploy", "me/lpselect", "--dry-run", "--local-dir", str(out))
    assert again.returncode == 2 and "is not an empty folder" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.parametrize(
    "args, said",
    [
        (["not an id"], "Bad Space id"),
        (["me/x", "--hardware", "a-big-one"], "Unknown Space hardware 'a-big-one'"),
    ],
)
def test_bad_deploy_arguments_are_one_sentence(args, said, tmp_path):
    done = lpselect("space", "deploy", *args, "--dry-run", "--local-dir", str(tmp_path / "x"))
    assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x").exists()


def test_hardware_is_asked_for_on_a_new_space_and_on_an_existing_one(loopback_hub, tmp_path):
    """A new Space asks for it as it is created; an existing one through the Hub's hardware request
    (HfApi.request_space_hardware). Without --hardware an existing Space keeps what it has."""
    env = loopback_hub.env()
    runtime = (
        "from huggingface_hub import HfApi; print(HfApi().get_space_runtime('me/lpselect-gpu').requested_hardware)"
    )

    def requested() -> str:
        asked = subprocess.run([sys.executable, "-c", runtime], env=env, capture_output=True, text=True, timeout=120)
        assert asked.returncode == 0, asked.stderr[-3000:]
        return asked.stdout.strip()

    for args, hardware in (
        (["--hardware", "zero-a10g"], "zero-a10g"),  # new
        (["--hardware", "t4-small"], "t4-small"),  # existing
        ([], "t4-small"),
    ):  # existing, no --hardware
        done = lpselect("space", "deploy", "me/lpselect-gpu", *args, cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        assert requested() == hardware
    assert len(loopback_hub.commit_messages("me/lpselect-gpu", repo_type="space")) == 4  # initial + 3 deploys


def test_deployed_on_the_loopback_hub_it_installs_in_a_fresh_venv_and_answers_offline(loopback_hub, tmp_path):
    env = loopback_hub.env()
    done = lpselect("space", "deploy", "me/lpselect-space", "--private", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "deployed: " in done.stdout and "https://huggingface.co/spaces/me/lpselect-space" in done.stdout
    files = loopback_hub.files("me/lpselect-space", repo_type="space")
    assert {"README.md", "app.py", "requirements.txt", "hf_lpselect/__init__.py"} <= set(files)
    # a second deploy updates the same Space in one more commit
    again = lpselect("space", "deploy", "me/lpselect-space", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(loopback_hub.commit_messages("me/lpselect-space", repo_type="space")) >= 2

    space = tmp_path / "downloaded"
    fetch = (
        "from huggingface_hub import snapshot_download; "
        f"snapshot_download('me/lpselect-space', repo_type='space', local_dir={str(space)!r})"
    )
    got = subprocess.run([sys.executable, "-c", fetch], env=env, capture_output=True, text=True, timeout=300)
    assert got.returncode == 0, got.stderr[-3000:]
    shutil.rmtree(space / ".cache", ignore_errors=True)

    python = fresh_venv(tmp_path / "fresh")
    build = tmp_path / "build"  # a Space's build sees requirements.txt alone
    build.mkdir()
    shutil.copy2(space / "requirements.txt", build / "requirements.txt")
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "-r", "requirements.txt"],
        cwd=build,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    assert "Requirement already satisfied: torch==" in installed.stdout

    where = "import hf_lpselect; print(hf_lpselect.__file__)"
    outside = subprocess.run([str(python), "-c", where], cwd=tmp_path, env=clean, capture_output=True, text=True)
    assert (
        outside.returncode != 0 and "No module named 'hf_lpselect'" in outside.stderr
    )  # this checkout is not reachable
    inside = subprocess.run([str(python), "-c", where], cwd=space, env=clean, capture_output=True, text=True)
    assert inside.stdout.strip() == str(space / "hf_lpselect" / "__init__.py")

    offline = {
        **clean,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "LPSELECT_SPACE_DIR": str(tmp_path / "sessions"),
        "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
        # what a Space sets (its id; hf_oauth: true adds the OAuth app's settings; never contacted here)
        "SYSTEM": "spaces",
        "SPACE_ID": "me/lpselect-space",
        "OAUTH_CLIENT_ID": "loopback",
        "OAUTH_CLIENT_SECRET": "loopback",
        "OAUTH_SCOPES": "openid profile read-repos write-repos manage-repos",
        "OPENID_PROVIDER_URL": "http://127.0.0.1:9",
    }
    proc, url = launch_app(offline, tmp_path / "app.log", python=str(python), app=space / "app.py", cwd=space)
    try:
        from gradio_client import Client

        about, *_ = Client(url, verbose=False, download_files=str(tmp_path / "dl")).predict(api_name="/open_example")
        assert "120 rows" in about and "120 ok" in about
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # gradio's hot reloader for Spaces wants the `spaces` package, which every Space has and this machine
    # does not: its thread's traceback is expected here; none may come from the app or hf_lpselect
    log = (tmp_path / "app.log").read_text(errors="replace")
    assert 'app.py", line' not in log and f"{space}/hf_lpselect" not in log and "lpselect error" not in log.lower()
