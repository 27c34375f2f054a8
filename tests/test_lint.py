"""The tree is clean under ruff with the project's settings (TRL's: line length 119, isort), as CI checks it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed (it is in the test extra)")
@pytest.mark.parametrize("command", [["ruff", "check", "."], ["ruff", "format", "--check", "."]])
def test_ruff_finds_nothing(command):
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (
        f"`{' '.join(command)}` (fix with `ruff check --fix .` / `ruff format .`):\n"
        + (done.stdout + done.stderr)[-4000:]
    )
