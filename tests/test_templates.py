"""The response mask is exact at the token level, on SmolLM2's real tokenizer (docs/method.md §5)."""

import datasets
import pytest

from hf_lpselect.ingest import canonicalize
from hf_lpselect.templates import TemplateError, resolve_template, tokenize_rows


ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n### Instruction:\nTranslate to French."
    "\n\n### Input:\nGood morning\n\n### Response:"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    "\n\n### Instruction:\nName a primary colour.\n\n### Response:"
)


def rows_of(records):
    return canonicalize(datasets.Dataset.from_list(records))


ALPACA = [
    {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
    {"instruction": "Name a primary colour.", "input": "", "output": "Red."},
]
CHAT = [
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "2 + 2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "And times 3?"},
            {"role": "assistant", "content": "12, since 4 x 3 = 12."},
        ]
    },
    {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there!"}]},
]


def scored_and_unscored(tokenizer, row):
    ids, labels = row["input_ids"], row["labels"]
    assert len(ids) == len(labels)
    assert all(lab in (-100, tok) for tok, lab in zip(ids, labels))
    return [tok for tok, lab in zip(ids, labels) if lab != -100], [tok for tok, lab in zip(ids, labels) if lab == -100]


def test_alpaca_prompt_is_the_papers_and_only_the_response_plus_eos_is_scored(tokenizer):
    out = tokenize_rows(rows_of(ALPACA), tokenizer, template="alpaca", max_length=512)
    for row, prompt, response in zip(out, (ALPACA_WITH_INPUT, ALPACA_NO_INPUT), ("Bonjour", "Red.")):
        scored, unscored = scored_and_unscored(tokenizer, row)
        expected_prompt = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        expected_response = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        assert unscored == expected_prompt
        assert scored == expected_response  # the EOS that ends the response is scored, though pad == EOS
        assert row["input_ids"] == expected_prompt + expected_response
        assert row["n_prompt_tokens"] == len(expected_prompt)
        assert row["n_response_tokens"] == len(expected_response)
        assert tokenizer.decode(scored) == response + tokenizer.eos_token
        assert row["status"] == "ok" and not row["truncated"]


def test_plain_template(tokenizer):
    out = tokenize_rows(rows_of(ALPACA[:1]), tokenizer, template="plain", max_length=512)
    scored, unscored = scored_and_unscored(tokenizer, out[0])
    assert tokenizer.decode(unscored) == "Translate to French.\nGood morning\n"
    assert tokenizer.decode(scored) == "Bonjour" + tokenizer.eos_token


def test_chat_scores_every_assistant_turn_and_nothing_else(tokenizer):
    out = tokenize_rows(rows_of(CHAT), tokenizer, template="chat", max_length=512)
    first, second = out[0], out[1]
    scored_text = tokenizer.decode(scored_and_unscored(tokenizer, first)[0])
    assert scored_text == "4<|im_end|>12, since 4 x 3 = 12.<|im_end|>"
    # the whole sequence is the chat template's own rendering, tokenized the same way as a whole
    rendered = tokenizer.apply_chat_template(CHAT[0]["messages"], tokenize=False).rstrip()
    assert first["input_ids"] == tokenizer(rendered, add_special_tokens=False)["input_ids"]
    # scored runs are contiguous per assistant turn: two turns, two runs
    runs = sum(1 for a, b in zip([-100] + first["labels"], first["labels"]) if a == -100 and b != -100)
    assert runs == 2
    assert tokenizer.decode(scored_and_unscored(tokenizer, second)[0]) == "Hello there!<|im_end|>"


def test_single_turn_rows_through_chat_template(tokenizer):
    out = tokenize_rows(rows_of(ALPACA[:1]), tokenizer, template="chat", max_length=512)
    scored, unscored = scored_and_unscored(tokenizer, out[0])
    assert tokenizer.decode(scored) == "Bonjour<|im_end|>"
    assert "Translate to French.\n\nGood morning" in tokenizer.decode(unscored)


def test_truncation_never_scores_a_row_with_no_response_token(tokenizer):
    long_prompt = {"instruction": "word " * 300, "input": "", "output": "Short answer."}
    out = tokenize_rows(rows_of([long_prompt, ALPACA[1]]), tokenizer, template="alpaca", max_length=64)
    assert out[0]["status"] == "excluded"
    assert "max_length=64" in out[0]["reason"]
    assert out[0]["n_response_tokens"] == 0 and out[0]["truncated"]
    assert out[1]["status"] == "ok"
    # a partly truncated response is still scored on what is left
    full = tokenize_rows(rows_of(ALPACA[1:]), tokenizer, template="alpaca", max_length=512)[0]
    keep = full["n_prompt_tokens"] + 1
    cut = tokenize_rows(rows_of(ALPACA[1:]), tokenizer, template="alpaca", max_length=keep)[0]
    assert cut["truncated"] and cut["status"] == "ok" and cut["n_response_tokens"] == 1
    assert cut["input_ids"] == full["input_ids"][:keep]


def test_multi_turn_rows_are_excluded_under_single_turn_templates(tokenizer):
    out = tokenize_rows(rows_of(CHAT), tokenizer, template="alpaca", max_length=512)
    assert out[0]["status"] == "excluded" and "--template chat" in out[0]["reason"]
    assert out[1]["status"] == "ok"  # a single user/assistant exchange is a single turn


def test_invalid_rows_pass_through_untouched(tokenizer):
    out = tokenize_rows(
        rows_of([{"instruction": "x", "input": "", "output": ""}]), tokenizer, template="alpaca", max_length=64
    )
    assert out[0]["status"] == "invalid" and out[0]["input_ids"] == [] and out[0]["n_response_tokens"] == 0


def test_auto_template(tokenizer):
    assert resolve_template("auto", tokenizer, rows_of(CHAT)) == "chat"
    assert resolve_template("auto", tokenizer, rows_of(ALPACA)) == "alpaca"
    with pytest.raises(TemplateError, match="Unknown template"):
        resolve_template("llama", tokenizer, rows_of(ALPACA))


def test_a_row_the_chat_template_refuses_is_excluded_with_its_message(tokenizer_dir):
    """One conversation the template cannot render (here: a tool turn) must not stop the others."""
    import datasets
    from transformers import AutoTokenizer

    from hf_lpselect.ingest import canonicalize
    from hf_lpselect.templates import tokenize_rows

    strict = AutoTokenizer.from_pretrained(tokenizer_dir)
    strict.chat_template = strict.chat_template.replace(
        "{% for message in messages %}",
        "{% for message in messages %}{% if message['role'] == 'tool' %}{{ raise_exception('tool turns are not supported') }}{% endif %}",
        1,
    )
    assert "raise_exception" in strict.chat_template
    chats = [
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}],
        [
            {"role": "user", "content": "Weather?"},
            {"role": "tool", "content": "sunny"},
            {"role": "assistant", "content": "Sunny."},
        ],
    ]
    rows = canonicalize(datasets.Dataset.from_list([{"messages": m} for m in chats]))
    out = tokenize_rows(rows, strict, template="chat", max_length=128)
    assert out["status"] == ["ok", "excluded"]
    assert out["reason"][1] == "the tokenizer's chat template cannot render this row: tool turns are not supported"
    assert out["n_response_tokens"][0] > 0 and out["input_ids"][1] == []
