"""Reference NLL of reference answers equals a naive one-row loop over the model's own loss."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hf_lpselect.eval.reference import reference_nll, reference_rows, summarize_nll
from hf_lpselect.eval.testsets import TestItem, TestSet
from hf_lpselect.templates import prompt_text, tokenize_rows


ITEMS = [
    TestItem("q1", "Name a colour.", "", "Blue."),
    TestItem("q2", "Add the numbers.", "2 and 3", "2 + 3 = 5, so the sum is five."),
    TestItem("q3", "Say hi.", "", None),  # no reference: not scored
    TestItem(
        "q4",
        "Write a haiku about autumn leaves falling in the evening light. " * 6,
        "",
        "Red leaves drift and fall / the evening light grows thin / a cold wind follows",
    ),
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), AutoTokenizer.from_pretrained(tiny_model_dir)


def naive_nll(model, tokenizer, item: TestItem) -> float:
    """One row at a time, the textbook way: prompt ids + answer ids + EOS, the model's own mean loss over the answer."""
    prompt = tokenizer(prompt_text(item.instruction, item.input, "alpaca"), add_special_tokens=False)["input_ids"]
    answer = tokenizer(item.reference, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = torch.tensor([prompt + answer])
    labels = torch.tensor([[-100] * len(prompt) + answer])
    with torch.no_grad():
        return model(input_ids=ids, labels=labels).loss.item()


def test_reference_nll_equals_a_naive_one_row_loop(tiny):
    model, tokenizer = tiny
    rows = reference_rows(TestSet("t", "t.jsonl", "alpaca", ITEMS))
    assert rows["id"] == ["q1", "q2", "q4"]
    table = reference_nll(model, tokenizer, rows, template="alpaca", batch_size=2)
    expected = [naive_nll(model, tokenizer, ITEMS[i]) for i in (0, 1, 3)]
    assert table["nll"].tolist() == pytest.approx(expected, abs=1e-5)
    summary = summarize_nll(table)
    assert summary["mean_nll"] == pytest.approx(sum(expected) / 3, abs=1e-5)
    weights = table["n_tokens"].tolist()
    pooled = sum(w * e for w, e in zip(weights, expected)) / sum(weights)
    assert summary["ppl"] == pytest.approx(math.exp(pooled), rel=1e-5)
    assert (summary["n_rows"], summary["n_scored"], summary["not_scored"]) == (3, 3, {})


def test_rows_truncated_away_are_counted_not_scored(tiny):
    model, tokenizer = tiny
    rows = reference_rows(TestSet("t", "t.jsonl", "alpaca", ITEMS))
    n_prompt_q4 = len(
        tokenizer(prompt_text(ITEMS[3].instruction, "", "alpaca"), add_special_tokens=False)["input_ids"]
    )
    assert n_prompt_q4 > max(
        len(ids) for ids in tokenize_rows(rows, tokenizer, template="alpaca", max_length=4096)["input_ids"][:2]
    )
    table = reference_nll(model, tokenizer, rows, template="alpaca", max_length=n_prompt_q4)
    assert table.loc[table["id"] == "q4", "status"].item() == "excluded"
    assert math.isnan(table.loc[table["id"] == "q4", "nll"].item())
    summary = summarize_nll(table)
    assert summary["n_scored"] == 2
    assert summary["not_scored"] == {
        f"excluded: no response token left after truncation to max_length={n_prompt_q4}": 1
    }


def test_chat_template_rows_score_too(tiny):
    model, tokenizer = tiny
    table = reference_nll(model, tokenizer, reference_rows(TestSet("t", "t.jsonl", "alpaca", ITEMS)), template="chat")
    assert table["nll"].notna().all() and (table["n_tokens"] > 0).all()


def test_no_reference_no_rows():
    assert reference_rows(TestSet("t", "t.jsonl", "vicuna", [ITEMS[2]])) is None
