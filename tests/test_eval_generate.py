"""Batched generation (length-sorted, left-padded, greedy) gives the answers of a one-prompt loop,
prompts are the scorer's, and answers are cached per (model, settings, question) and resumed."""

from __future__ import annotations

import json

import datasets
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hf_lpselect.errors import EvalError
from hf_lpselect.eval.generate import (
    GenerationSettings,
    generate_answers,
    generate_batched,
    generation_config,
    generation_template,
    prompt_ids,
)
from hf_lpselect.eval.store import JsonlStore
from hf_lpselect.eval.testsets import TestItem
from hf_lpselect.ingest import canonicalize
from hf_lpselect.templates import tokenize_rows


QUESTIONS = [
    TestItem("a", "Name a colour."),
    TestItem(
        "b", "Summarise the text below in one sentence, keeping every name it mentions.", "Ada met Alan in London."
    ),
    TestItem("c", "Why is the sky blue? Explain it to a child, in two or three short sentences."),
    TestItem("d", "Hi"),
    TestItem("e", "Translate to French: good morning, my friend."),
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    return model, tokenizer


def test_template_auto_is_chat_when_the_tokenizer_has_one(tokenizer):
    assert generation_template(tokenizer) == "chat"
    assert generation_template(tokenizer, "alpaca") == "alpaca"
    plain = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    plain.chat_template = None
    assert generation_template(plain) == "alpaca"
    with pytest.raises(EvalError, match="needs a tokenizer with a chat template"):
        generation_template(plain, "chat")


@pytest.mark.parametrize("template", ["alpaca", "chat", "plain"])
def test_prompt_ids_are_the_scorers_prompt_tokens(tokenizer, template):
    item = QUESTIONS[1]
    rows = canonicalize(
        datasets.Dataset.from_dict(
            {"instruction": [item.instruction], "input": [item.input], "output": ["Ada and Alan met."]}
        )
    )
    scored = tokenize_rows(rows, tokenizer, template=template, max_length=512)[0]
    n_prompt = scored["labels"].index(next(x for x in scored["labels"] if x != -100))
    assert prompt_ids(tokenizer, template, item.instruction, item.input) == scored["input_ids"][:n_prompt]


def test_batched_left_padded_generation_equals_one_prompt_at_a_time(tiny):
    model, tokenizer = tiny
    settings = GenerationSettings(template="alpaca", max_new_tokens=6)
    config = generation_config(model, tokenizer, settings)
    prompts = [prompt_ids(tokenizer, "alpaca", q.instruction, q.input) for q in QUESTIONS]
    assert len({len(p) for p in prompts}) == len(prompts)  # every batch needs padding
    batched: dict[int, list[int]] = {}
    for indices, new_ids, _ in generate_batched(model, prompts, config=config, batch_size=3):
        assert [len(prompts[i]) for i in indices] == sorted((len(prompts[i]) for i in indices), reverse=True)
        batched.update(zip(indices, new_ids))
    stop = set(config.eos_token_id)
    for i, prompt in enumerate(prompts):
        out = model.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            generation_config=config,
        )
        alone = out[0, len(prompt) :].tolist()
        alone = alone[: next((k for k, t in enumerate(alone) if t in stop), len(alone))]
        assert batched[i] == alone


def test_answers_are_cached_and_resumed(tiny, tmp_path):
    model, tokenizer = tiny
    settings = GenerationSettings(template="chat", max_new_tokens=4)
    store = JsonlStore(tmp_path / "generations.jsonl")
    run = lambda store, items, settings=settings: generate_answers(  # noqa: E731
        model,
        tokenizer,
        items,
        model_label="tiny",
        model_key="k1",
        test_set="qs",
        settings=settings,
        store=store,
        batch_size=2,
    )
    first, stats = run(store, QUESTIONS[:3])
    assert (stats.n_answers, stats.n_generated, stats.new_tokens) == (3, 3, sum(r["n_new_tokens"] for r in first))
    assert [r["id"] for r in first] == ["a", "b", "c"]
    assert first[1]["question"] == QUESTIONS[1].question
    # a crash mid-write leaves a torn last line: it is dropped and that answer generated again
    path = tmp_path / "generations.jsonl"
    path.write_text(path.read_text() + '{"key": "torn", "ans')
    again, stats = run(JsonlStore(path), QUESTIONS)
    assert (stats.n_generated, [r["answer"] for r in again[:3]]) == (2, [r["answer"] for r in first])
    assert len(path.read_text().splitlines()) == 5
    assert all(json.loads(line)["key"] != "torn" for line in path.read_text().splitlines())
    # other settings are other answers
    _, stats = run(JsonlStore(path), QUESTIONS, GenerationSettings(template="chat", max_new_tokens=3))
    assert stats.n_generated == 5


def test_greedy_ignores_sampling_knobs_in_the_cache_key():
    greedy = GenerationSettings(template="chat", temperature=0.3, seed=1).key_parts()
    assert greedy == GenerationSettings(template="chat").key_parts()
    assert "temperature" in GenerationSettings(template="chat", do_sample=True).key_parts()
