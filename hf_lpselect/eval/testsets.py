"""Test sets of any common shape → one list of items: id, instruction, input, reference answer.

The sets of this line of work each name their fields differently (``../shared/data/eval``):

| shape | prompt | reference answer | id |
|---|---|---|---|
| Vicuna 80 | ``text`` | – | ``question_id`` |
| Koala 180 | ``prompt`` | ``completion`` / ``response`` / ``output`` if present | ``id`` |
| WizardLM 218 | ``Instruction`` | – | ``idx`` |
| Self-Instruct 252 | ``instruction`` + each of ``instances[].input`` | ``instances[].output`` | ``id`` |
| LIMA 300 | ``conversations`` (a string, or a list whose first turn is the prompt) | the second turn | – |
| AlpacaEval 805, Alpaca, Dolly | ``instruction`` + ``input`` / ``context`` | ``output`` / ``response`` | ``id`` |
| GSM8K | ``question`` | ``answer`` | – |
| MT-Bench | ``turns[0]`` | – | ``question_id`` |
| OpenAI messages / ShareGPT | the first user turn | the first assistant turn | ``id`` |

Only the first turn of a conversation is asked. Rows without an id are numbered from 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, EvalError
from ..ingest import read_source


_ID_FIELDS = ("id", "question_id", "idx")
_SUFFIX = re.compile(r"(_test_?set|_testset|_test|_questions?)$", re.IGNORECASE)
_USER_ROLES = ("user", "human")
_ASSISTANT_ROLES = ("assistant", "gpt", "model", "chatgpt")


@dataclass(frozen=True)
class TestItem:
    """One question of a test set; ``reference`` is None when the set has no reference answer."""

    __test__ = False  # not a pytest class

    id: str
    instruction: str
    input: str = ""
    reference: str | None = None

    @property
    def question(self) -> str:
        """The user turn: the instruction, then the input after a blank line (as the scorer builds it)."""
        return f"{self.instruction}\n\n{self.input}" if self.input else self.instruction


@dataclass(frozen=True)
class TestSet:
    """A test set read by :func:`load_test_set`."""

    __test__ = False  # not a pytest class

    name: str
    source: str
    shape: str
    items: list[TestItem]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _turns(value: Any) -> list[tuple[str, str]]:
    """(role, text) of a conversation given as a string, a list of strings, or a list of turn objects."""
    if isinstance(value, str):
        return [("user", value)]
    turns = []
    for number, turn in enumerate(value or []):
        if isinstance(turn, str):
            turns.append(("user" if number % 2 == 0 else "assistant", turn))
        elif isinstance(turn, dict):
            role = turn.get("role", turn.get("from", ""))
            turns.append((role, _text(turn.get("content", turn.get("value")))))
    return turns


def _conversation_item(turns: list[tuple[str, str]]) -> tuple[str, str | None]:
    question = next((text for role, text in turns if role in _USER_ROLES), "")
    answer = next((text for role, text in turns if role in _ASSISTANT_ROLES), None)
    return question, answer


# (shape, the fields that identify it); the first shape whose fields are all present wins.
SHAPES: list[tuple[str, tuple[str, ...]]] = [
    ("self-instruct", ("instruction", "instances")),
    ("alpaca", ("instruction",)),
    ("wizardlm", ("Instruction",)),
    ("prompt", ("prompt",)),
    ("question", ("question",)),
    ("vicuna", ("text",)),
    ("mt-bench", ("turns",)),
    ("sharegpt", ("conversations",)),
    ("messages", ("messages",)),
]


def detect_shape(columns: list[str]) -> str:
    """The first shape of :data:`SHAPES` whose fields are all among ``columns``; EvalError if none."""
    for shape, fields in SHAPES:
        if set(fields) <= set(columns):
            return shape
    known = ", ".join(f"{shape} ({'+'.join(fields)})" for shape, fields in SHAPES)
    raise EvalError(
        f"A test set with columns {sorted(columns)} has no field we read as the prompt; give one of: {known}."
    )


def _items(shape: str, record: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(instruction, input, reference) of one record; Self-Instruct gives one per instance."""
    if shape == "self-instruct":
        instances = record.get("instances") or [{}]
        return [(_text(record["instruction"]), _text(i.get("input")), i.get("output")) for i in instances]
    if shape == "alpaca":
        return [
            (
                _text(record["instruction"]),
                _text(record.get("input") or record.get("context")),
                record.get("output", record.get("response")),
            )
        ]
    if shape == "wizardlm":
        return [(_text(record["Instruction"]), "", record.get("Output"))]
    if shape == "prompt":
        return [(_text(record["prompt"]), "", record.get("completion", record.get("response", record.get("output"))))]
    if shape == "question":
        return [(_text(record["question"]), "", record.get("answer"))]
    if shape == "vicuna":
        return [(_text(record["text"]), "", None)]
    if shape == "mt-bench":
        turns = record["turns"] or [""]
        return [(_text(turns[0]), "", None)]
    key = "conversations" if shape == "sharegpt" else "messages"
    question, answer = _conversation_item(_turns(record[key]))
    return [(question, "", answer)]


def split_named(spec: str) -> tuple[str | None, str]:
    """``NAME=SOURCE`` → ``(NAME, SOURCE)``; a plain source (or an existing path with ``=`` in it) → ``(None, spec)``."""
    if "=" in spec and not Path(spec).exists():
        name, _, source = spec.partition("=")
        if name and source:
            return name, source
    return None, spec


def default_name(source: str) -> str:
    """``vicuna`` for ``.../vicuna_test_set.jsonl``; the last part of a Hub id."""
    stem = Path(source.rstrip("/")).name
    stem = stem.rsplit(".", 1)[0] if Path(stem).suffix else stem
    return _SUFFIX.sub("", stem) or stem


def load_test_set(spec: str, *, split: str = "test", limit: int | None = None) -> TestSet:
    """Read a test set: ``SOURCE`` or ``NAME=SOURCE``, where SOURCE is a file, a saved dataset or a Hub id.

    Args:
        spec (`str`): the source, optionally prefixed by the name to show in results (``vicuna=vicuna.jsonl``).
        split (`str`, defaults to `"test"`): split of a Hub dataset or DatasetDict folder.
        limit (`int | None`, defaults to `None`): only the first N items.

    Returns:
        `TestSet`: its name, source, detected shape and items, in file order.

    Example:
        >>> vicuna = load_test_set("../shared/data/eval/cherry_llm_test_data/vicuna_test_set.jsonl")
        >>> vicuna.name, vicuna.shape, len(vicuna.items)
        ('vicuna', 'vicuna', 80)
    """
    name, source = split_named(spec)
    name = name or default_name(source)
    try:
        raw = read_source(source, split=split)
    except DataError as err:
        raise EvalError(f"Test set {name!r}: {err}") from err
    shape = detect_shape(raw.column_names)
    items: list[TestItem] = []
    for number, record in enumerate(raw.to_list()):
        row_id = next((str(record[f]) for f in _ID_FIELDS if record.get(f) is not None), str(number))
        parts = _items(shape, record)
        for k, (instruction, input_, reference) in enumerate(parts):
            if not instruction.strip():
                raise EvalError(f"Test set {name!r} row {number} has an empty prompt; fix or remove that row.")
            item_id = row_id if len(parts) == 1 else f"{row_id}-{k}"
            reference = reference if isinstance(reference, str) and reference.strip() else None
            items.append(TestItem(item_id, instruction, input_, reference))
        if limit is not None and len(items) >= limit:
            items = items[:limit]
            break
    if len({item.id for item in items}) != len(items):
        raise EvalError(f"Test set {name!r} has repeated ids; give each row a unique 'id'.")
    return TestSet(name=name, source=source, shape=shape, items=items)
