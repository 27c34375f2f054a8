"""The batched, length-sorted, response-only scoring pass equals a naive one-row-at-a-time loop
that uses the plain transformers loss, for every template and several token budgets and row caps;
batches fill a token budget (rows x the longest row), longest first."""

import numpy as np
import pytest
import torch
from conftest import make_tiny_model
from datasets import Dataset, concatenate_datasets
from test_templates import CHAT

from hf_lpselect.ingest import canonicalize
from hf_lpselect.scoring.demo_data import demo_dataset
from hf_lpselect.scoring.passes import batch_nll, computed_tokens, length_batches, score_pass
from hf_lpselect.templates import tokenize_rows


@pytest.fixture(scope="module")
def model(tokenizer):
    return make_tiny_model(len(tokenizer), seed=1).eval()


def naive_nll(model, row) -> float:
    """How peers score: one row at a time, full logits, the model's own mean cross-entropy."""
    with torch.no_grad():
        out = model(input_ids=torch.tensor([row["input_ids"]]), labels=torch.tensor([row["labels"]]))
    return out.loss.item()


def tokenized(tokenizer, template, n=24):
    rows = canonicalize(demo_dataset(n=n, seed=3))
    if template == "chat":  # multi-turn rows plus single-turn rows rendered by the chat template
        rows = concatenate_datasets([canonicalize(Dataset.from_list(CHAT)), rows])
        rows = rows.map(lambda _, i: {"row": i}, with_indices=True)
    return tokenize_rows(rows, tokenizer, template=template, max_length=96)


# token_budget 1: every row alone (no padding, so no attention mask); 300: a few rows of mixed
# lengths per batch; batch_size: the optional row cap under a budget that never binds
@pytest.mark.parametrize("template", ["alpaca", "plain", "chat"])
@pytest.mark.parametrize(
    "batching",
    [{"token_budget": 1}, {"token_budget": 300}, {"token_budget": 10**6, "batch_size": 5}, {"token_budget": 10**6}],
)
def test_batched_pass_equals_naive_loop(tokenizer, model, template, batching):
    data = tokenized(tokenizer, template)
    frame = score_pass(model, data, pad_token_id=tokenizer.pad_token_id, **batching)
    assert frame["row"].tolist() == data["row"]
    expected = np.array([naive_nll(model, row) for row in data])
    np.testing.assert_allclose(frame["nll"].to_numpy(), expected, rtol=0, atol=1e-5)
    assert frame["n_tokens"].tolist() == data["n_response_tokens"]


def test_bf16_autocast_pass_is_close_to_fp32(tokenizer, model):
    data = tokenized(tokenizer, "alpaca")
    fp32 = score_pass(model, data, pad_token_id=tokenizer.pad_token_id, token_budget=400)
    bf16 = score_pass(
        model, data, pad_token_id=tokenizer.pad_token_id, token_budget=400, autocast_dtype=torch.bfloat16
    )
    np.testing.assert_allclose(bf16["nll"], fp32["nll"], rtol=2e-2)


def test_pass_with_a_tiny_budget_equals_a_pass_with_a_huge_one(tokenizer, model):
    data = tokenized(tokenizer, "alpaca")
    alone = score_pass(model, data, pad_token_id=tokenizer.pad_token_id, token_budget=1)  # 24 batches of one row
    together = score_pass(model, data, pad_token_id=tokenizer.pad_token_id, token_budget=10**6)  # one batch of 24
    np.testing.assert_allclose(alone["nll"], together["nll"], rtol=0, atol=1e-5)
    assert alone["n_tokens"].tolist() == together["n_tokens"].tolist()


def test_bf16_pass_in_one_autocast_region_equals_batch_by_batch(tokenizer, model):
    """The whole pass runs in one autocast region (so autocast's cache can cast each weight once):
    it gives the same numbers as autocasting every batch on its own. (It does not count the casts.)"""
    data = tokenized(tokenizer, "alpaca")
    frame = score_pass(
        model, data, pad_token_id=tokenizer.pad_token_id, token_budget=400, autocast_dtype=torch.bfloat16
    )
    expected = np.empty(len(data))
    for indices in length_batches(np.asarray(data["length"]), token_budget=400):
        batch = data[indices]
        expected[indices] = batch_nll(
            model,
            batch["input_ids"],
            batch["labels"],
            pad_token_id=tokenizer.pad_token_id,
            autocast_dtype=torch.bfloat16,
        )[0]
    np.testing.assert_array_equal(frame["nll"].to_numpy(), expected)


def test_pass_leaves_training_mode_as_it_found_it(tokenizer, model):
    data = tokenized(tokenizer, "alpaca", n=4)
    model.train()
    score_pass(model, data, pad_token_id=tokenizer.pad_token_id)
    assert model.training
    model.eval()


def test_length_batches_fill_a_token_budget_longest_first():
    lengths = np.array([3, 9, 1, 7, 7, 2, 8])
    # budget 20: 2 rows of 9 (18), 2 rows of 7 (14), then 3 x 3 = 9 holds every row left
    batches = length_batches(lengths, token_budget=20)
    assert [lengths[b].tolist() for b in batches] == [[9, 8], [7, 7], [3, 2, 1]]
    assert sorted(np.concatenate(batches).tolist()) == list(range(7))
    assert computed_tokens(lengths, batches) == 2 * 9 + 2 * 7 + 3 * 3  # 41 computed for 37 real tokens


def test_length_batches_put_a_row_longer_than_the_budget_alone():
    lengths = np.array([50, 4, 30, 4])
    assert [lengths[b].tolist() for b in length_batches(lengths, token_budget=16)] == [[50], [30], [4, 4]]


def test_length_batches_row_cap_splits_a_batch_the_budget_would_allow():
    lengths = np.array([5, 5, 5, 5, 5])
    assert [len(b) for b in length_batches(lengths, token_budget=100)] == [5]
    assert [len(b) for b in length_batches(lengths, token_budget=100, max_rows=2)] == [2, 2, 1]
