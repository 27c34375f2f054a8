"""The documentation is built and its code runs.

- ``mkdocs build --strict`` passes (every page in the nav, every link and anchor between pages resolves, the
  generated CLI and API reference pages build from the code);
- every relative link of README.md and docs/*.md points at a file of the repository (and at a heading there);
- every ```python and ```bash block of README.md and docs/*.md runs as written, or is marked, in the line
  before it, with ``<!-- no-run: REASON -->`` and one of the REASONS below (docs/writing-docs.md).

Blocks run page by page, in order, in a fresh folder that holds what the pages say it holds: ``data.jsonl``
(24 short Alpaca rows) and ``tiny-llama/`` (a 2-layer random Llama with SmolLM2's tokenizer). Python blocks of a
page share one namespace, as a reader's session would; bash blocks run in bash with this environment's
``lpselect`` first on PATH.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
# README first, then the pages in the order of the site's navigation, then any page the navigation leaves out
NAV = re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), re.M)
PAGES = [ROOT / "README.md"] + sorted(
    (page for page in (ROOT / "docs").glob("*.md")),
    key=lambda page: (NAV.index(page.name) if page.name in NAV else len(NAV), page.name),
)
# what a test machine lacks, said in the marker before a block that is not run
REASONS = (
    "needs a GPU",
    "needs the Hub",
    "needs the network",
    "needs your data",
    "installs packages",
    "takes minutes",
    "serves until stopped",
)
MARK = re.compile(r"^<!--\s*no-run:\s*(.+?)\s*-->$")
TESTED = re.compile(r"^<!--\s*tested:\s*(.+?)\s*-->$")  # a test in tests/ reads the block by this name and runs it
FENCE = re.compile(r"^```\s*([\w+-]*)")
RUN = {"python": "python", "py": "python", "bash": "bash", "sh": "bash", "shell": "bash"}
GENERATED = ("cli.md", "api.md")  # written by docs/hooks/reference.py at build time; the strict build checks them
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def expanded(page: Path) -> str:
    """The page's text with each included file (a ``--8<-- "path"`` line, pymdownx.snippets) in its place."""
    text = page.read_text(encoding="utf-8")
    return re.sub(r'(?m)^--8<-- "(.+)"$', lambda m: (ROOT / m.group(1)).read_text(encoding="utf-8"), text)


def blocks(page: Path) -> list[tuple[int, str, str, str | None]]:
    """``(line, language, code, no-run reason or None)`` for every fenced block of ``page``."""
    found, lines, at = [], expanded(page).splitlines(), 0
    while at < len(lines):
        opened = FENCE.match(lines[at])
        if not opened:
            at += 1
            continue
        start, language, body = at, opened.group(1).lower(), []
        at += 1
        while at < len(lines) and not lines[at].startswith("```"):
            body.append(lines[at])
            at += 1
        before = next((lines[i].strip() for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        mark, tested = MARK.match(before), TESTED.match(before)
        reason = mark.group(1) if mark else f"tested: {tested.group(1)}" if tested else None
        found.append((start + 1, language, "\n".join(body) + "\n", reason))
        at += 1
    return found


def slug(heading: str) -> str:
    """The anchor GitHub and mkdocs give a heading (for the headings these pages use: words, code, punctuation)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return re.sub(r"\s", "-", text)


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings, those of a file it includes (``--8<-- "path"``) too."""
    outside, names = True, set()
    for line in page.read_text(encoding="utf-8").splitlines():
        included = re.match(r'^--8<-- "(.+)"$', line)
        if line.startswith("```"):
            outside = not outside
        elif outside and included:
            names |= anchors(ROOT / included.group(1))
        elif outside and line.startswith("#"):
            names.add(slug(line.lstrip("#")))
    return names


def write_workspace(path: Path, tiny_model_dir: Path) -> Path:
    """The folder the pages' examples run in: ``data.jsonl`` and ``tiny-llama/``."""
    rows = (
        [
            {"instruction": f"What is {a} plus {b}?", "input": "", "output": f"{a} plus {b} is {a + b}."}
            for a, b in zip(range(3, 15), range(20, 8, -1))
        ]
        + [
            {"instruction": "Reverse the word.", "input": word, "output": word[::-1]}
            for word in ("garden", "planet", "window", "pencil", "rabbit", "orange")
        ]
        + [
            {"instruction": f"Name a colour that starts with {c}.", "input": "", "output": colour}
            for c, colour in zip("bgrypw", ("blue", "green", "red", "yellow", "purple", "white"))
        ]
    )
    path.mkdir(parents=True, exist_ok=True)
    (path / "data.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    (path / "tiny-llama").symlink_to(tiny_model_dir, target_is_directory=True)
    return path


def test_every_block_is_run_or_marked():
    tests = "".join(path.read_text(encoding="utf-8") for path in (ROOT / "tests").glob("test_*.py"))
    problems = []
    for page in PAGES:
        for line, language, _, reason in blocks(page):
            where = f"{page.relative_to(ROOT)}:{line}"
            if reason is not None and reason.startswith("tested: "):
                if f'"{reason.removeprefix("tested: ")}"' not in tests:
                    problems.append(f"{where}: no test in tests/ reads the block marked {reason!r}")
            elif reason is not None and not any(reason.startswith(known) for known in REASONS):
                problems.append(f"{where}: no-run reason {reason!r} is none of {REASONS}")
            if reason is not None and language not in RUN:
                problems.append(f"{where}: a no-run mark before a ```{language} block, which never runs")
    assert not problems, "\n".join(problems)


def test_links_point_at_files_and_headings():
    problems = []
    for page in PAGES:
        for match in LINK.finditer(page.read_text(encoding="utf-8")):
            target = match.group(1) or match.group(2)
            if re.match(r"^[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            if page.parent.name == "docs" and file in GENERATED:
                continue
            resolved = (page.parent / file).resolve() if file else page
            if not resolved.exists():
                problems.append(f"{page.relative_to(ROOT)}: {target} does not exist")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                problems.append(f"{page.relative_to(ROOT)}: {target} names no heading of {resolved.name}")
    assert not problems, "\n".join(problems)


def lpselect_commands(page: Path) -> list[tuple[int, str]]:
    """``(line, command)`` for every ``lpselect …`` command of the page's bash blocks, run or not."""
    found = []
    for line, language, code, _ in blocks(page):
        if RUN.get(language) != "bash":
            continue
        for offset, text in enumerate(code.replace("\\\n", " ").splitlines()):
            for part in re.split(r"&&|\|\||;", text.split(" # ")[0]):
                part = part.strip().strip("()")
                if part.startswith("lpselect ") and "..." not in part and "…" not in part:
                    found.append((line + 1 + offset, part))
    return found


def test_every_lpselect_command_in_the_docs_parses():
    """Each command line, marked no-run or not, is parsed by the parser `lpselect` builds: every flag and value
    the pages name is one the command takes (a --config file the pages do not make is left out)."""
    spec = importlib.util.spec_from_file_location("docs_reference", ROOT / "docs" / "hooks" / "reference.py")
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    parsers, problems = {}, []
    for page in PAGES:
        for line, command in lpselect_commands(page):
            words = shlex.split(command)[1:]
            name = " ".join(words[:2]) if words[:2] == ["space", "deploy"] else words[0]
            argv = words[len(name.split()) :]
            if "--config" in argv:
                continue
            if name not in parsers:
                parsers[name] = reference.command_parser(name)
            try:
                parsers[name].parse(argv)
            except Exception as err:
                problems.append(f"{page.relative_to(ROOT)}:{line}: {command}: {err}")
    assert not problems, "\n".join(problems)


def test_readme_is_short():
    """At most 250 lines of at most 119 characters; the install and test commands stay one line each, as typed."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    commands = {code.strip() for _, _, code, reason in blocks(ROOT / "README.md") if reason == "installs packages"}
    assert len(lines) <= 250
    assert [n + 1 for n, line in enumerate(lines) if len(line) > 119 and line not in commands] == []


def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    cli = (site / "cli" / "index.html").read_text(encoding="utf-8")
    assert "lpselect score" in cli and "--strategy" in cli and "lpselect space deploy" in cli
    assert "ScorerConfig" in (site / "api" / "index.html").read_text(encoding="utf-8")


def test_page_blocks_run(tmp_path, tiny_model_dir, monkeypatch):
    """Every page's unmarked python and bash blocks, in order, in one folder (a page may use what an earlier made)."""
    work = write_workspace(tmp_path / "work", tiny_model_dir)
    monkeypatch.chdir(work)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for page in PAGES:
        namespace: dict = {"__name__": "__docs__"}
        for line, language, code, reason in blocks(page):
            if language not in RUN or reason:
                continue
            where = f"{page.relative_to(ROOT)}:{line}"
            if RUN[language] == "python":
                exec(compile(code, where, "exec"), namespace)
                continue
            done = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", code], cwd=work, env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, f"{where} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
