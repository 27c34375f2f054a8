"""The batched, length-sorted, response-only scoring pass equals a naive one-row-at-a-time loop
that uses the plain transformers loss, for every template and several batch sizes."""

import numpy as np
import pytest
import torch
from conftest import make_tiny_model
from datasets import Dataset, concatenate_datasets
from test_templates import CHAT

from hf_lpselect.data import canonicalize
from hf_lpselect.scoring.demo_data import demo_dataset
from hf_lpselect.scoring.passes import length_batches, score_pass
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


@pytest.mark.parametrize("template", ["alpaca", "plain", "chat"])
@pytest.mark.parametrize("batch_size", [1, 5, 16])
def test_batched_pass_equals_naive_loop(tokenizer, model, template, batch_size):
    data = tokenized(tokenizer, template)
    frame = score_pass(model, data, pad_token_id=tokenizer.pad_token_id, batch_size=batch_size)
    assert frame["row"].tolist() == data["row"]
    expected = np.array([naive_nll(model, row) for row in data])
    np.testing.assert_allclose(frame["nll"].to_numpy(), expected, rtol=0, atol=1e-5)
    assert frame["n_tokens"].tolist() == data["n_response_tokens"]


def test_bf16_autocast_pass_is_close_to_fp32(tokenizer, model):
    data = tokenized(tokenizer, "alpaca")
    fp32 = score_pass(model, data, pad_token_id=tokenizer.pad_token_id, batch_size=8)
    bf16 = score_pass(model, data, pad_token_id=tokenizer.pad_token_id, batch_size=8, autocast_dtype=torch.bfloat16)
    np.testing.assert_allclose(bf16["nll"], fp32["nll"], rtol=2e-2)


def test_pass_leaves_training_mode_as_it_found_it(tokenizer, model):
    data = tokenized(tokenizer, "alpaca", n=4)
    model.train()
    score_pass(model, data, pad_token_id=tokenizer.pad_token_id)
    assert model.training
    model.eval()


def test_length_batches_cover_every_index_once_longest_first():
    lengths = np.array([3, 9, 1, 7, 7, 2, 8])
    batches = length_batches(lengths, 3)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(7))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert lengths[batches[0]].tolist() == [9, 8, 7]
