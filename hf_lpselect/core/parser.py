"""One argument parser for every command that takes dataclasses: TRL's ``TrlParser``, with one spelling rule.

- A field's flag works in TRL's spelling (``--output_dir``), with dashes (``--output-dir``) and under
  the short aliases its metadata declares (``--out``); the same names work as keys of a ``--config``
  YAML file (``out: runs/x``, ``epochs: 3``).
- A field whose metadata says ``"positional": True`` is also taken as a bare word, before or after the
  flags, in declaration order (``lpselect select RUN --strategy …`` is ``--run RUN --strategy …``).
- A ``bool`` field may be given bare (``--bf16`` is ``--bf16 true``), and one whose metadata says
  ``"negatable": True`` also takes ``--no_X`` / ``--no-X`` for false, also when it defaults to None.
- An unknown flag or YAML key is one :class:`~hf_lpselect.errors.ConfigError` with the closest names
  ("did you mean"), as is any other usage error argparse finds (a missing required argument, a value
  outside the choices), and an unreadable ``--config`` file is one sentence; no other library's message
  text is matched. The option names are remembered (:mod:`hf_lpselect.core.flags`), so the next call
  answers a mistyped flag before importing torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from trl import TrlParser

from ..errors import ConfigError
from .flags import remember, unknown_options


class ArgumentParser(TrlParser):
    """``TrlParser`` whose flags and ``--config`` keys share one set of names, and whose errors are ours.

    Example:

    ```python
    >>> parser = ArgumentParser((ScoreArguments, ScorerConfig, ScorerModelConfig), prog="lpselect score")
    >>> script, args, model = parser.parse(["--dataset_name", "d.jsonl", "--epochs", "2"])
    ```
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # a prefix of a flag is a typo to name, not another flag to guess
        super().__init__(*args, **kwargs)

    def _names(self) -> dict[str, str]:
        """Every accepted name (without dashes, underscores for dashes) → the field it sets. A ``--no_X`` flag sets X to
        false, so it is no YAML key: ``no_X: true`` would read as ``X: true``."""
        names = {}
        for action in self._actions:
            if isinstance(action, (argparse._StoreFalseAction, argparse._StoreConstAction)):
                continue
            for option in action.option_strings:
                if option.startswith("--"):
                    names[option[2:].replace("-", "_")] = action.dest
        return names

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        kwargs.pop("positional", None)  # our metadata keys (HfArgumentParser hands every key to argparse)
        negatable = kwargs.pop("negatable", False)
        # a bool | None field: bare --X means true too (TRL's parser, like transformers', reads bools with string_to_bool)
        if getattr(kwargs.get("type"), "__name__", None) == "string_to_bool" and "nargs" not in kwargs:
            kwargs.update(nargs="?", const=True)
        action = super().add_argument(*args, **kwargs)
        if negatable:
            name = action.dest
            super().add_argument(
                f"--no_{name}",
                f"--no-{name.replace('_', '-')}",
                dest=name,
                action="store_const",
                const=False,
                help=f"Same as --{name} false.",
            )
        return action

    def _positional(self) -> list[dataclasses.Field]:
        """The fields that also take a bare word, in declaration order."""
        return [f for dtype in self.dataclass_types for f in dataclasses.fields(dtype) if f.metadata.get("positional")]

    def _bare_words_as_flags(self, argv: list[str]) -> list[str]:
        """The bare words that are no flag's value, given to the positional fields in order, as flags."""
        actions = {option: action for action in self._actions for option in action.option_strings}
        bare, flags, at = [], [], 0
        while at < len(argv):
            item = argv[at]
            at += 1
            if not item.startswith("-") or item == "-":
                bare.append(item)
                continue
            flags.append(item)
            if "=" in item:
                continue
            action = actions.get(item)
            takes = action.nargs if action is not None else None  # an unknown flag (or --config) takes one value
            values = len(argv) - at if takes in ("+", "*") else 0 if takes == 0 else 1
            while values and at < len(argv) and not argv[at].startswith("-"):
                if takes == "?" and not _reads(action, argv[at]):  # --dry_run RUN: RUN is not the bool's value
                    break
                flags.append(argv[at])
                at += 1
                values -= 1
        positional = self._positional()
        if len(bare) > len(positional):
            extra = " ".join(bare[len(positional) :])
            raise ConfigError(f"Unexpected argument(s) {extra}; `{self.prog} --help` lists every option.")
        return [item for field, value in zip(positional, bare) for item in (f"--{field.name}", value)] + flags

    def error(self, message: str) -> None:  # argparse's usage errors: ours, one sentence, no usage block
        raise ConfigError(f"{message[0].upper()}{message[1:]}; `{self.prog} --help` lists every option.")

    def _unknown(self, given: Iterable[str]) -> ConfigError:
        return unknown_options(self.prog, given, {"--" + name for name in self._names()})

    def set_defaults_with_config(self, **kwargs: Any) -> list[str]:
        names = self._names()
        unknown = [key for key in kwargs if str(key).replace("-", "_") not in names]
        if unknown:
            raise self._unknown(f"--{key}" for key in unknown)
        return super().set_defaults_with_config(
            **{names[str(key).replace("-", "_")]: value for key, value in kwargs.items()}
        )

    def parse(self, argv: list[str] | None = None) -> tuple[Any, ...]:
        """Parse command-line strings (``--config FILE.yaml`` included) into the dataclasses.

        Args:
            argv (`list[str]` or `None`, *optional*, defaults to `None`): the arguments after the command's
                name (``None``: ``sys.argv[1:]``).

        Returns:
            `tuple`: one instance of each dataclass, in the order given to the parser.
        """
        argv = self._bare_words_as_flags(list(argv) if argv is not None else sys.argv[1:])
        if "--config" in argv:
            at = argv.index("--config")
            if at + 1 == len(argv):
                raise ConfigError("--config needs a YAML file.")
            _read_config(Path(argv[at + 1]))
        remember(self.prog, [option for action in self._actions for option in action.option_strings])
        *parsed, remaining = self.parse_args_and_config(argv, return_remaining_strings=True)
        flags = [item for item in remaining if item.startswith("--")]
        if flags:
            raise self._unknown(flags)
        if remaining:
            raise ConfigError(f"Unexpected argument(s) {remaining}; `{self.prog} --help` lists every option.")
        return tuple(parsed)


def _reads(action: argparse.Action, word: str) -> bool:
    """Whether ``word`` is a value the flag's type reads (``true`` for a bool; ``runs/x`` is not)."""
    try:
        (action.type or str)(word)
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        return False
    return True


def _read_config(path: Path) -> dict[str, Any]:
    """The YAML mapping of a ``--config`` file; anything else is one sentence."""
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"Cannot read the --config file {path}: {str(err).splitlines()[0]}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"The --config file {path} must be a YAML mapping of argument names to values.")
    return config
