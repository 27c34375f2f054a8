"""mkdocs hook: the reference pages, built from the code at every build so they cannot drift.

- ``cli.md``: every ``lpselect`` command's options, read from the parser each command builds from its argument
  dataclasses. The parser is caught as ``lpselect COMMAND --help`` asks it for its help text, so the page goes
  through the same entry point as a user (``hf_lpselect.cli.main``) and names no module of ours.
- ``api.md``: one mkdocstrings ``:::`` entry for every public name of ``hf_lpselect`` (its ``__all__``), at the
  module that defines it, grouped by stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import sys
from contextlib import redirect_stdout
from io import StringIO

from mkdocs.structure.files import File


# the commands, in the order a user meets them
COMMANDS = (
    "score",
    "demo",
    "select",
    "compare",
    "report",
    "push-scores",
    "train",
    "eval",
    "space",
    "space deploy",
)
STAGES = {
    "scoring": "Score",
    "selection": "Select, compare, report",
    "hub": "Push scores and load them",
    "training": "Train the target",
    "eval": "Evaluate",
    "space": "The Space",
}


class _Caught(BaseException):
    """Raised from ``format_help`` once the parser is caught: nothing is printed, nothing runs."""


def command_parser(command: str) -> argparse.ArgumentParser:
    """The parser ``lpselect COMMAND`` builds, caught when ``--help`` asks it for its help text."""
    from hf_lpselect.cli import main

    caught = []

    def format_help(self: argparse.ArgumentParser) -> str:
        caught.append(self)
        raise _Caught

    original, argv = argparse.ArgumentParser.format_help, sys.argv
    argparse.ArgumentParser.format_help = format_help
    sys.argv = ["lpselect", *command.split(), "--help"]
    try:
        with redirect_stdout(StringIO()):
            main()
    except (_Caught, SystemExit):
        pass
    finally:
        argparse.ArgumentParser.format_help, sys.argv = original, argv
    if not caught:
        raise RuntimeError(f"`lpselect {command} --help` asked no argument parser for its help")
    return caught[-1]


def _owner(dtype: type, name: str) -> type:
    """The class that declares field ``name`` (the most derived one that annotates it)."""
    for cls in dtype.__mro__:
        if name in vars(cls).get("__annotations__", {}):
            return cls
    return dtype


def _inherited_help(owner: type, name: str) -> str:
    """The help of field ``name`` in the nearest base class of ``owner`` that documents it."""
    for base in owner.__mro__[1:]:
        field = getattr(base, "__dataclass_fields__", {}).get(name)
        if field is not None and field.metadata.get("help"):
            return field.metadata["help"]
    return ""


def _cell(text: object) -> str:
    """Help text as one Markdown line: ``|`` and ``[`` escaped (``[--out PATH]`` is no link)."""
    parts = " ".join(str(text).split()).replace("|", "\\|").split("`")
    return "`".join(part if odd else part.replace("[", "\\[") for odd, part in zip([0, 1] * len(parts), parts))


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return "required"
    return "–" if value is None else f"`{' '.join(str(value).split())}`"


def command_markdown(command: str) -> str:
    """One command's section: usage, description, a table of the options hf_lpselect declares, and the names of
    the options it inherits from TRL and transformers."""
    parser = command_parser(command)
    actions = {}
    for action in parser._actions:
        if action.option_strings:
            actions.setdefault(action.dest, action)  # the field's own flag, before a --no_X that shares its dest
    lines = [f"## `lpselect {command}`", ""]
    if parser.usage:
        lines += ["```text", f"{parser.usage}", "```", ""]
    if parser.description:
        lines += [_cell(parser.description).replace("\\|", "|"), ""]
    ours, inherited = [], {}  # ours: (action, default, positional) for each option hf_lpselect declares
    for dtype in getattr(parser, "dataclass_types", ()):
        for field in dataclasses.fields(dtype):
            action = actions.get(field.name)
            if action is None or action.help == argparse.SUPPRESS:
                continue
            owner = _owner(dtype, field.name)
            package = owner.__module__.split(".")[0]
            if package == "hf_lpselect":
                if not action.help:  # a TRL / transformers field given our default: its own help says what it is
                    action.help = f"{_inherited_help(owner, field.name)} (hf_lpselect's default)".lstrip()
                ours.append((action, _default(field), bool(field.metadata.get("positional"))))
            else:
                classes, names = inherited.setdefault(package, ([], []))
                if not owner.__name__.startswith("_") and owner.__name__ not in classes:
                    classes.append(owner.__name__)
                names.append(field.name)
    if not hasattr(parser, "dataclass_types"):  # a plain argparse parser: every option it has
        for action in actions.values():
            if action.help != argparse.SUPPRESS and not isinstance(action, argparse._HelpAction):
                default = "–" if action.default in (None, argparse.SUPPRESS) else f"`{action.default}`"
                ours.append((action, default, False))
    if ours:
        lines += ["| option | default | what it does |", "|---|---|---|"]
        for action, default, positional in ours:
            names = ", ".join(f"`{option}`" for option in action.option_strings)
            if positional:
                names += " (or the bare word)"
            negated = [a for a in parser._actions if a.dest == action.dest and a is not action and a.option_strings]
            names += "".join(f", `{a.option_strings[0]}`" for a in negated)
            choices = f" One of: {', '.join(f'`{c}`' for c in action.choices)}." if action.choices else ""
            text = _cell(action.help or "").replace("%%", "%")
            lines.append(f"| {names} | {default} | {text}{choices} |")
        lines.append("")
    for package, (classes, names) in inherited.items():
        flags = ", ".join(f"`--{name}`" for name in names)
        owners = ", ".join(f"`{package}.{name}`" for name in classes)
        lines += [f"Also {len(names)} options of {owners}, as that library documents them: {flags}.", ""]
    return "\n".join(lines)


def cli_markdown() -> str:
    """The whole command-line reference page."""
    head = [
        "# Command line reference",
        "",
        "Built from the code at every documentation build: each command's options are read from the parser that",
        "`lpselect COMMAND --help` shows, which is built from the command's argument dataclasses. Every option",
        "also works with dashes for underscores, and as a key of a `--config FILE.yaml` file.",
        "",
    ]
    return "\n".join(head + [command_markdown(command) for command in COMMANDS])


def api_markdown() -> str:
    """The Python API page: each public name of hf_lpselect rendered from its docstring by mkdocstrings."""
    import hf_lpselect

    groups: dict[str, list[str]] = {}
    others = []
    for name in hf_lpselect.__all__:
        obj = getattr(hf_lpselect, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            others.append(name)
            continue
        stage = obj.__module__.split(".")[1] if obj.__module__.count(".") else ""
        groups.setdefault(STAGES.get(stage, "Shared pieces"), []).append(f"::: {obj.__module__}.{name}")
    lines = [
        "# Python API reference",
        "",
        "Every name below is importable from `hf_lpselect` (`import hf_lpselect; hf_lpselect.score(...)`); the",
        "page is generated from the docstrings at every documentation build.",
        "",
    ]
    for title in [*STAGES.values(), "Shared pieces"]:
        if title in groups:
            lines += [f"## {title}", "", *(f"{entry}\n" for entry in groups[title])]
    if others:
        lines += ["## Registries", "", *(f"- `hf_lpselect.{name}`" for name in others), ""]
    return "\n".join(lines)


def on_files(files, config):
    for name, text in (("cli.md", cli_markdown()), ("api.md", api_markdown())):
        files.append(File.generated(config, name, content=text))
    return files
