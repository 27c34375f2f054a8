"""Test sets of every common shape read to (id, instruction, input, reference)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hf_lpselect.errors import EvalError
from hf_lpselect.eval.testsets import TestItem, default_name, load_test_set


SHARED_EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval"


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.mark.parametrize(
    "row, shape, item",
    [
        ({"question_id": 7, "text": "Why?", "category": "generic"}, "vicuna", TestItem("7", "Why?")),
        ({"id": "koala_3", "prompt": "Tell me."}, "prompt", TestItem("koala_3", "Tell me.")),
        (
            {"idx": 2, "Skill": "Math", "Difficulty": 3, "Instruction": "Add 2 and 2."},
            "wizardlm",
            TestItem("2", "Add 2 and 2."),
        ),
        (
            {"id": "t0", "instruction": "Fix it.", "instances": [{"input": "teh cat", "output": "the cat"}]},
            "self-instruct",
            TestItem("t0", "Fix it.", "teh cat", "the cat"),
        ),
        ({"conversations": "A LIMA prompt"}, "sharegpt", TestItem("0", "A LIMA prompt")),
        ({"conversations": ["Q?", "A."]}, "sharegpt", TestItem("0", "Q?", "", "A.")),
        (
            {"conversations": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}]},
            "sharegpt",
            TestItem("0", "Q?", "", "A."),
        ),
        (
            {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]},
            "messages",
            TestItem("0", "Q?", "", "A."),
        ),
        (
            {"dataset": "vicuna", "instruction": "Q?", "output": "Ref.", "generator": "gpt4"},
            "alpaca",
            TestItem("0", "Q?", "", "Ref."),
        ),
        ({"instruction": "Sum.", "context": "1, 2", "response": "3"}, "alpaca", TestItem("0", "Sum.", "1, 2", "3")),
        ({"question": "2+2?", "answer": "#### 4"}, "question", TestItem("0", "2+2?", "", "#### 4")),
        (
            {"question_id": 81, "category": "writing", "turns": ["Write.", "Rewrite."]},
            "mt-bench",
            TestItem("81", "Write."),
        ),
    ],
)
def test_each_shape(tmp_path, row, shape, item):
    test_set = load_test_set(_jsonl(tmp_path / "set.jsonl", [row]))
    assert test_set.shape == shape
    assert test_set.items == [item]


def test_question_joins_instruction_and_input_as_the_scorer_does():
    assert TestItem("1", "Fix it.", "teh cat").question == "Fix it.\n\nteh cat"
    assert TestItem("1", "Why?").question == "Why?"


def test_names_limit_and_empty_reference(tmp_path):
    path = _jsonl(
        tmp_path / "koala_test_set.jsonl", [{"id": f"k{i}", "prompt": f"p{i}", "output": ""} for i in range(5)]
    )
    assert load_test_set(path).name == "koala"
    named = load_test_set(f"mine={path}", limit=2)
    assert named.name == "mine"
    assert [i.id for i in named.items] == ["k0", "k1"]
    assert named.items[0].reference is None  # an empty reference answer is no reference


def test_default_names():
    assert default_name("x/vicuna_test_set.jsonl") == "vicuna"
    assert default_name("x/WizardLM_testset.jsonl") == "WizardLM"
    assert default_name("tatsu-lab/alpaca_eval") == "alpaca_eval"


def test_unknown_shape_empty_prompt_and_repeated_ids_are_refused(tmp_path):
    with pytest.raises(EvalError, match="no field we read as the prompt"):
        load_test_set(_jsonl(tmp_path / "a.jsonl", [{"foo": "bar"}]))
    with pytest.raises(EvalError, match="row 1 has an empty prompt"):
        load_test_set(_jsonl(tmp_path / "b.jsonl", [{"text": "ok"}, {"text": " "}]))
    with pytest.raises(EvalError, match="repeated ids"):
        load_test_set(_jsonl(tmp_path / "c.jsonl", [{"id": 1, "text": "a"}, {"id": 1, "text": "b"}]))
    with pytest.raises(EvalError, match="Test set 'd'"):
        load_test_set(str(tmp_path / "d.jsonl"))


@pytest.mark.skipif(not SHARED_EVAL.is_dir(), reason="../shared/data/eval is absent (the real test sets)")
@pytest.mark.parametrize(
    "path, name, n_items, n_references",
    [
        ("cherry_llm_test_data/vicuna_test_set.jsonl", "vicuna", 80, 0),
        ("cherry_llm_test_data/koala_test_set.jsonl", "koala", 180, 0),
        ("cherry_llm_test_data/wizardlm_test_set.jsonl", "wizardlm", 218, 0),
        ("cherry_llm_test_data/sinstruct_test_set.jsonl", "sinstruct", 252, 252),
        ("cherry_llm_test_data/lima_test_set.jsonl", "lima", 300, 0),
        ("alpaca_eval/gpt4_1106_preview_model_outputs.json", "gpt4_1106_preview_model_outputs", 805, 805),
    ],
)
def test_the_real_sets(path, name, n_items, n_references):
    test_set = load_test_set(str(SHARED_EVAL / path))
    assert (test_set.name, len(test_set.items), sum(i.reference is not None for i in test_set.items)) == (
        name,
        n_items,
        n_references,
    )
    assert all(item.instruction.strip() for item in test_set.items)
