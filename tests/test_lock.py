"""The lock (constraints.txt): one file with the exact versions the tests pass with, and the files generated
from it. CI installs from it; the Space installs the part of it the package needs (scripts/lock.py)."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version


REPO_ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("lock", REPO_ROOT / "scripts" / "lock.py")
lock = importlib.util.module_from_spec(spec)
sys.modules["lock"] = lock  # check_latest imports it by this name
spec.loader.exec_module(lock)
PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def test_the_space_pins_and_its_gradio_are_generated_from_the_lock():
    """Fails when hf_lpselect/space/repo/requirements.txt or its README's sdk_version differ from the lock."""
    assert lock.stale(lock.read_lock()) == [], "run python scripts/lock.py after changing constraints.txt"


def test_the_space_installs_every_dependency_of_the_package_and_not_the_package():
    pins = dict(
        line.split("==") for line in lock.SPACE_REQUIREMENTS.read_text().splitlines() if line and line[0] != "#"
    )
    needed = {lock.canonical(Requirement(r).name) for r in PROJECT["dependencies"]}
    assert needed <= set(pins) and "hf-lpselect" not in pins  # it travels beside app.py
    assert (
        re.search(r"^sdk_version: (\S+)$", lock.SPACE_README.read_text(), re.M).group(1) == lock.read_lock()["gradio"]
    )


@pytest.mark.parametrize("extra", [None, *PROJECT["optional-dependencies"]])
def test_every_requirement_is_locked_within_its_bounds(extra):
    pins = lock.read_lock()
    for text in PROJECT["dependencies"] if extra is None else PROJECT["optional-dependencies"][extra]:
        requirement = Requirement(text)
        name = lock.canonical(requirement.name)
        assert name in pins, f"{name} ({extra or 'dependencies'}) has no version in constraints.txt"
        assert requirement.specifier.contains(Version(pins[name])), f"the lock's {name} {pins[name]} breaks {text}"


def test_the_lock_reads_and_writes_one_pin_a_line(tmp_path):
    text = lock.lock_text({"torch": "2.13.0", "huggingface-hub": "2.5.0"})
    path = tmp_path / "constraints.txt"
    path.write_text(text)
    assert lock.read_lock(path) == {"huggingface-hub": "2.5.0", "torch": "2.13.0"}
    assert text.splitlines()[-2:] == ["huggingface-hub==2.5.0", "torch==2.13.0"]
    assert lock.canonical("Huggingface_Hub") == "huggingface-hub"


def test_check_latest_names_what_moved_and_what_broke(tmp_path):
    spec = importlib.util.spec_from_file_location("check_latest", REPO_ROOT / "scripts" / "check_latest.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    assert check.moved({"a": "1", "b": "2", "gone": "3"}, {"a": "1", "b": "2.1", "new": "4"}) == {
        "b": {"lock": "2", "newest": "2.1"},
        "gone": {"lock": "3", "newest": None},
        "new": {"lock": None, "newest": "4"},
    }
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuites><testsuite><testcase classname="tests.test_x" name="test_ok"/>'
        '<testcase classname="tests.test_x" name="test_bad"><failure message="x"/></testcase>'
        '<testcase classname="tests.test_y" name="test_err"><error message="y"/></testcase></testsuite></testsuites>'
    )
    assert check.failures(junit) == ["tests/test_x.py::test_bad", "tests/test_y.py::test_err"]


def test_every_install_reads_the_lock_and_ci_runs_the_readmes_second_command():
    readme = (REPO_ROOT / "README.md").read_text()
    first, second = (b for b in re.findall(r"```bash\n(.*?)\n```", readme, re.S) if "python3 -m venv" in b)
    for command in (first, second):
        installs = [part for part in command.split("&&") if "pip install" in part]
        assert all("-c constraints.txt" in part or "--no-deps" in part for part in installs), command
    assert (REPO_ROOT / ".ci" / "run").read_text().rstrip().splitlines()[-1] == second
