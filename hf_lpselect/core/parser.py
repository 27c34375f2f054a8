"""One argument parser for every command: TRL's ``TrlParser``, with one spelling rule and one vocabulary.

- A field's flag works in TRL's spelling (``--output_dir``) and with dashes (``--output-dir``). The short
  names of a concept (:data:`ALIASES`: ``--out``, ``--epochs``, ``--model``, ``--batch_size`` …) are declared
  once, here, and work in every command whose dataclasses have the field; the same names work as keys
  of a ``--config`` YAML file (``out: runs/x``, ``epochs: 3``) and as keyword arguments of the Python API
  (:func:`field_names`). A deprecated spelling (:data:`DEPRECATED`) still works and says, in one line, what
  replaces it.
- A field whose metadata says ``"positional": True`` is also taken as a bare word, before or after the
  flags, in declaration order (``lpselect select RUN --strategy …`` is ``--run RUN --strategy …``).
- A ``bool`` field may be given bare (``--bf16`` is ``--bf16 true``), and one whose metadata says
  ``"negatable": True`` also takes ``--no_X`` / ``--no-X`` for false, also when it defaults to None.
- ``--help`` lists the command's own options first (every field an hf_lpselect dataclass declares, also
  where it overrides a TRL field), then TRL's and transformers' by dataclass. Every option has a help
  text (a field we override keeps TRL's) and shows its default once; a default we changed names TRL's.
- An unknown flag or YAML key is one :class:`~hf_lpselect.errors.ConfigError` with the closest names
  ("did you mean"), as is any other usage error argparse finds (a missing required argument, a value
  outside the choices), and an unreadable ``--config`` file is one sentence; no other library's message
  text is matched.

Light: TRL's parser imports neither torch nor transformers, so a command whose dataclasses are light
answers ``--help`` and a mistyped flag in a fraction of a second.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, get_type_hints

import yaml
from trl import TrlParser

from ..errors import ConfigError
from .flags import remember, unknown_options


_PACKAGE = __name__.split(".")[0]  # hf_lpselect: a dataclass declared here is ours


# The short names of one concept, declared once: in every command whose dataclasses have the field (the key),
# each name works as a flag (with underscores or dashes), a --config key and a keyword of the Python API.
ALIASES: dict[str, tuple[str, ...]] = {
    "model_name_or_path": ("model",),
    "model_revision": ("revision",),
    "use_peft": ("lora",),
    "output_dir": ("out",),
    "num_train_epochs": ("epochs",),
    "per_device_train_batch_size": ("batch_size",),
    "gradient_accumulation_steps": ("grad_accum",),
    "dataset_config": ("subset",),
    "dataset_train_split": ("split",),
}
# Old spellings that keep working, with a one-line warning, where they name no field of their own:
# old name -> the field it sets. (In `lpselect train`, --seed is the training seed: TRL's own field.)
DEPRECATED: dict[str, str] = {"seed": "selection_seed"}
# the fields a user sets first: listed first among the command's own options in `--help`, also TRL's
_FIRST = (
    "dataset_name",
    "run",
    "repo_id",
    "strategy",
    "fraction",
    "count",
    "model_name_or_path",
    "template",
    "output_dir",
    "num_train_epochs",
)
# the group of `--help` that lists a TRL dataclass's options, by its name
_TRL_GROUPS = {
    "SFTConfig": "TRL/transformers training options (SFTConfig, TrainingArguments)",
    "ModelConfig": "TRL model options (ModelConfig)",
    "ScriptArguments": "TRL script options (ScriptArguments)",
    "DatasetMixtureConfig": "TRL dataset mixture options (DatasetMixtureConfig)",
}


def field_names(dataclass_types: Iterable[type]) -> dict[str, str]:
    """Every keyword the Python API takes for these dataclasses → the field it sets: each field's name and
    the :data:`ALIASES` of the fields present (``epochs`` → ``num_train_epochs``); :data:`DEPRECATED` names
    are not included (a function that still takes one says so: :func:`~hf_lpselect.core.deprecation.renamed_keyword`).

    Example:

    ```python
    >>> field_names([SubsetArguments])["per_cluster"]
    'per_cluster'
    ```
    """
    names = {f.name: f.name for dtype in dataclass_types for f in dataclasses.fields(dtype) if f.init}
    for name in list(names):
        names.update({alias: name for alias in ALIASES.get(name, ()) if alias not in names})
    return names


def _warn_deprecated(prog: str, old: str, new: str) -> None:
    sys.stderr.write(f"Warning: {old} is deprecated in `{prog}`; use {new} (the same value).\n")


class _DeprecatedAlias(argparse._StoreAction):
    """An old flag: stores into the field it names, and says in one line what replaces it."""

    def __call__(self, parser, namespace, values, option_string=None):
        if option_string not in parser.warned:  # once, though the parser reads the arguments twice
            parser.warned.add(option_string)
            _warn_deprecated(parser.prog, option_string, f"--{self.dest}")
        setattr(namespace, self.dest, values)


_SAYS_DEFAULT = re.compile(r"\bdefaults?\b( ?:| to\b| is\b)|%\(default\)", re.IGNORECASE)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """TRL's help format, with an option's default shown once: not where its help already speaks of it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if _SAYS_DEFAULT.search(text) or action.default is argparse.SUPPRESS or action.nargs == 0:
            return text
        return f"{text} (default: %(default)s)"


class _Into:
    """Where ``HfArgumentParser`` adds one field's options: our rules, into the group of ``--help`` it belongs in."""

    def __init__(self, parser: ArgumentParser, group: argparse._ArgumentGroup, inherited: dict[str, Any]) -> None:
        self.parser, self.group, self.inherited = parser, group, inherited

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        if not kwargs.get("help") and "help" in self.inherited:
            kwargs["help"] = self.inherited["help"]
        if "changed" in self.inherited and kwargs.get("help") not in (None, argparse.SUPPRESS):
            kwargs["help"] = f"{kwargs['help'].rstrip()} {self.inherited['changed']}"
        return self.parser._add(self.group, *args, **kwargs)


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
        kwargs.setdefault("formatter_class", _HelpFormatter)
        self._help_groups: dict[str, argparse._ArgumentGroup] = {}
        self.warned: set[str] = set()  # the deprecated spellings already warned of
        super().__init__(*args, **kwargs)
        super().add_argument(
            "--config",
            metavar="FILE.yaml",
            default=argparse.SUPPRESS,  # read (and removed) before argparse parses
            help="Set any option below from a YAML mapping of its names to values; the command line wins.",
        )
        for old, new in DEPRECATED.items():
            action = next((a for a in self._actions if a.dest == new and a.option_strings), None)
            if action is not None and f"--{old}" not in self._option_string_actions:
                super().add_argument(
                    f"--{old}",
                    dest=new,
                    type=action.type,
                    action=_DeprecatedAlias,
                    default=argparse.SUPPRESS,
                    help=argparse.SUPPRESS,
                )
        ours = self._help_groups.get(f"{self.prog} options")
        if ours is not None:  # the fields a user sets first, first; the rest in declaration order
            rank = {f"--{name}": at for at, name in enumerate(_FIRST)}
            ours._group_actions.sort(key=lambda action: rank.get(action.option_strings[0], len(rank)))

    def _add_dataclass_arguments(self, dtype: type) -> None:
        # HfArgumentParser's loop, with each field's options put in the group of --help they belong in: ours first
        # (argparse lists the groups in the order they were made, and leaves out an empty one)
        if not self._help_groups:
            self._help_groups[f"{self.prog} options"] = self.add_argument_group(f"{self.prog} options")
        hints = get_type_hints(dtype)
        trl = next(
            (c for c in dtype.__mro__ if dataclasses.is_dataclass(c) and not c.__module__.startswith(_PACKAGE)), None
        )
        for field in dataclasses.fields(dtype):
            if not field.init:
                continue
            field.type = hints[field.name]
            owner = next((c for c in dtype.__mro__ if field.name in vars(c).get("__annotations__", {})), dtype)
            theirs = trl.__dataclass_fields__.get(field.name) if trl is not None else None
            inherited: dict[str, Any] = {}
            if owner.__module__.startswith(_PACKAGE) or field.name in _FIRST:
                title = f"{self.prog} options"
                if theirs is not None and theirs is not field:
                    if theirs.metadata.get("help"):
                        inherited["help"] = theirs.metadata["help"]
                    ours_default, their_default = _default(field), _default(theirs)
                    if ours_default != their_default:
                        inherited["changed"] = f"(default: {ours_default}; TRL's: {their_default})".replace("%", "%%")
            else:
                title = _TRL_GROUPS.get(trl.__name__, f"{trl.__name__} options")
            if title not in self._help_groups:
                self._help_groups[title] = self.add_argument_group(title)
            self._parse_dataclass_field(_Into(self, self._help_groups[title], inherited), field)

    def _names(self) -> dict[str, str]:
        """Every accepted name (without dashes, underscores for dashes) → the field it sets. A ``--no_X`` flag sets X to
        false, so it is no YAML key: ``no_X: true`` would read as ``X: true``."""
        names = {}
        for action in self._actions:
            if isinstance(action, (argparse._StoreFalseAction, argparse._StoreConstAction)) or action.dest == "config":
                continue
            for option in action.option_strings:
                if option.startswith("--"):
                    names[option[2:].replace("-", "_")] = action.dest
        return names

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        return self._add(self, *args, **kwargs)

    def _add(self, container: argparse._ActionsContainer, *args: Any, **kwargs: Any) -> argparse.Action:
        """Add one field's options to ``container`` (this parser or one of its groups), with our rules."""
        kwargs.pop("positional", None)  # our metadata keys (HfArgumentParser hands every key to argparse)
        negatable = kwargs.pop("negatable", False)
        # a bool | None field: bare --X means true too (TRL's parser, like transformers', reads bools with string_to_bool)
        if getattr(kwargs.get("type"), "__name__", None) == "string_to_bool" and "nargs" not in kwargs:
            kwargs.update(nargs="?", const=True)
        if args and args[0].startswith("--") and kwargs.get("action") != "store_false":
            dest = kwargs.get("dest", args[0][2:])
            given = set(args)
            args += tuple(
                option
                for alias in ALIASES.get(dest, ())
                for option in dict.fromkeys((f"--{alias}", f"--{alias.replace('_', '-')}"))
                if option not in self._option_string_actions and option not in given
            )
        action = argparse._ActionsContainer.add_argument(container, *args, **kwargs)
        if negatable:
            name = action.dest
            argparse._ActionsContainer.add_argument(
                container,
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
        for key in kwargs:
            name = str(key).replace("-", "_")
            if name in DEPRECATED and names[name] == DEPRECATED[name]:  # not where the old name is a field's own
                _warn_deprecated(self.prog, f"the --config key {key!r}", repr(DEPRECATED[name]))
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
        self._refuse(self.parse_known_args(argv)[1])  # a typo is named before any dataclass checks its values
        *parsed, remaining = self.parse_args_and_config(argv, return_remaining_strings=True)
        self._refuse(remaining)  # the --config file's keys
        return tuple(parsed)

    def _refuse(self, remaining: list[str]) -> None:
        flags = [item for item in remaining if item.startswith("--")]
        if flags:
            raise self._unknown(flags)
        if remaining:
            raise ConfigError(f"Unexpected argument(s) {remaining}; `{self.prog} --help` lists every option.")


def _default(field: dataclasses.Field) -> Any:
    """A field's default, also where a factory makes it."""
    return field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default


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
