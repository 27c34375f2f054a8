"""The wheel is the product: built as a user's pip builds it, installed into a fresh venv outside the checkout, and
run there as a user runs it (score -> select -> push-scores --dry-run -> train -> eval on a tiny model; the Space
answering on its API; space deploy --dry-run).

`python -m build` makes the sdist, then the wheel FROM the sdist, so a file the sdist leaves out fails here too.
The build reads setuptools from PyPI (pip's isolated build environment) and skips without a network. The fresh
venv borrows the test environment's third-party packages as plain sys.path entries (their .pth files, the
editable install of this checkout among them, do not run), so only hf_lpselect itself comes from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from conftest import fresh_venv, write_jsonl
from test_space import launch_app

from hf_lpselect import __version__
from hf_lpselect.scoring.demo_data import make_demo_rows


REPO_ROOT = Path(__file__).resolve().parent.parent
FAST = ["--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1", "--bf16", "false"]


def tracked_files() -> list[str]:
    """The checkout's files as git sees them (tracked, or new and not ignored): what a clone holds."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
    )
    return [name for name in listed.stdout.decode().split("\0") if name]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """sdist + wheel of a copy of the checkout (so the build leaves nothing in it)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    for name in tracked_files():
        path = REPO_ROOT / name
        if path.is_symlink() or path.is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / name, follow_symlinks=False)
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(root / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if built.returncode != 0 and "Could not find a version that satisfies" in built.stdout + built.stderr:
        pytest.skip("python -m build needs setuptools from PyPI for its isolated build, and PyPI is not reachable")
    assert built.returncode == 0, (built.stdout + built.stderr)[-4000:]
    return root / "dist"


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory) -> dict:
    """A fresh venv with the wheel installed (no deps: it borrows them), and an environment to run it in."""
    root = tmp_path_factory.mktemp("installed")
    python = fresh_venv(root / "venv")
    wheel = next(dist.glob("hf_lpselect-*.whl"))
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{root / 'venv' / 'bin'}{os.pathsep}{env['PATH']}"
    work = root / "work"  # outside the checkout: nothing of it is importable from here
    work.mkdir()
    return {"python": python, "env": env, "work": work, "bin": root / "venv" / "bin"}


def run(installed: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``lpselect ARGS`` from the installed wheel, in a folder outside the checkout."""
    done = subprocess.run(
        [str(installed["bin"] / "lpselect"), *map(str, args)],
        cwd=installed["work"],
        env=installed["env"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"lpselect {' '.join(map(str, args))}:\n{(done.stdout + done.stderr)[-4000:]}"
    return done


def test_the_sdist_and_the_wheel_carry_the_package_data(dist):
    names = zipfile.ZipFile(next(dist.glob("hf_lpselect-*.whl"))).namelist()
    for needed in (
        "hf_lpselect/cards/dataset_card.md",
        "hf_lpselect/cards/model_card.md",
        "hf_lpselect/eval/judge_prompt.txt",
        "hf_lpselect/space/app.py",
        "hf_lpselect/space/repo/app.py",
        "hf_lpselect/space/repo/README.md",
        "hf_lpselect/space/repo/requirements.txt",
        "hf_lpselect/space/repo/evidence.json",
        "hf_lpselect/space/repo/examples/demo-smollm2-2-epochs/README.md",
    ):
        assert needed in names, f"the wheel lacks {needed}"
    assert f"hf_lpselect-{__version__}.dist-info/METADATA" in names
    # every module of the package is in the wheel: a package missing from the list is found here
    modules = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "hf_lpselect").rglob("*.py")}
    assert modules <= set(names), f"not in the wheel: {sorted(modules - set(names))}"
    assert next(dist.glob("hf_lpselect-*.tar.gz"))


def test_the_installed_package_is_the_wheel_not_the_checkout(installed):
    where = subprocess.run(
        [str(installed["python"]), "-c", "import hf_lpselect; print(hf_lpselect.__file__, hf_lpselect.__version__)"],
        cwd=installed["work"],
        env=installed["env"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert Path(where[0]).is_relative_to(installed["bin"].parent) and where[1] == __version__
    assert __version__ in run(installed, "--version").stdout
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["dynamic"]["version"]
    assert version == {"attr": "hf_lpselect.__version__"}  # one source for the version


def test_a_user_scores_selects_pushes_trains_and_evaluates_from_the_wheel(installed, tiny_model_dir):
    work = installed["work"]
    rows = make_demo_rows(16, seed=3)
    data = write_jsonl(work / "data.jsonl", [{k: r[k] for k in ("instruction", "input", "output")} for r in rows])
    run(
        installed,
        "score",
        data,
        "--model",
        tiny_model_dir,
        "--epochs",
        "2",
        "--max_length",
        "64",
        "--out",
        "run",
        *FAST,
    )
    assert json.loads((work / "run" / "run.json").read_text())["complete"] is True
    run(installed, "select", "run", "--strategy", "lp1-hard", "--fraction", "0.25", "--out", "hard")
    pushed = run(installed, "push-scores", "me/toy", "--run", "run", "--dry-run", "--local-dir", "pushed")
    assert (work / "pushed" / "README.md").is_file() and "pushed" in pushed.stdout
    run(
        installed,
        "train",
        "--model_name_or_path",
        tiny_model_dir,
        "--run",
        "run",
        "--strategy",
        "lp1-hard",
        "--fraction",
        "0.5",
        "--output_dir",
        "trained",
        "--num_train_epochs",
        "1",
        "--learning_rate",
        "1e-3",
        "--warmup_steps",
        "0",
        "--max_length",
        "64",
        *FAST,
    )
    assert (work / "trained" / "model.safetensors").is_file()
    questions = write_jsonl(work / "q.jsonl", [{"id": "q0", "prompt": rows[0]["instruction"]}])
    run(
        installed,
        "eval",
        "--models",
        f"base={tiny_model_dir}",
        f"trained={work / 'trained'}",
        "--test_sets",
        questions,
        "--reference_sets",
        data,
        "--eval_dir",
        "eval",
        "--max_new_tokens",
        "4",
    )
    assert json.loads((work / "eval" / "results.json").read_text())


def test_the_space_answers_and_deploys_from_the_wheel(installed, tmp_path):
    deployed = run(installed, "space", "deploy", "me/lpselect", "--dry-run", "--local-dir", tmp_path / "space")
    files = {p.relative_to(tmp_path / "space").as_posix() for p in (tmp_path / "space").rglob("*") if p.is_file()}
    assert {"README.md", "app.py", "requirements.txt", "evidence.json", "hf_lpselect/space/app.py"} <= files
    assert f"hf_lpselect-{__version__}.dist-info/METADATA" in files and "dry run" in deployed.stdout
    env = {**installed["env"], "LPSELECT_SPACE_DIR": str(tmp_path / "sessions")}
    proc, url = launch_app(
        env, tmp_path / "app.log", cwd=installed["work"], command=[str(installed["bin"] / "lpselect"), "space"]
    )
    try:
        from gradio_client import Client

        opened = Client(url, download_files=str(tmp_path / "downloads")).predict(
            "example demo-smollm2-2-epochs", api_name="/open"
        )
        assert "120" in json.dumps(opened, default=str)  # the shipped example's rows, read from the installed package
    finally:
        proc.terminate()
        proc.wait(timeout=30)
