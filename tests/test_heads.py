"""The compact LM head: TRL's fused head projects only labeled positions on a CPU too,
with the same per-token log-probs, loss and gradients as TRL's full path."""

import pytest
import torch
import trl.trainer.utils as trl_utils
from conftest import make_tiny_model
from trl.trainer.utils import add_fused_lm_head

from hf_lpselect.heads import compact_lm_head


@pytest.fixture
def batch():
    torch.manual_seed(0)
    ids = torch.randint(3, 90, (3, 12))
    attention = torch.ones_like(ids)
    attention[1, 9:] = 0  # padding
    labels = ids.clone()
    labels[:, :5] = -100  # the prompt
    labels[attention == 0] = -100
    return {"input_ids": ids, "attention_mask": attention, "labels": labels}


def forward_and_grads(batch, compact):
    model = make_tiny_model(96)
    add_fused_lm_head(model)
    with compact_lm_head(enabled=compact):
        out = model(**batch, fused_lm_head=True)
    out.loss.backward()
    return out.log_probs.detach(), out.loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def test_compact_head_gives_the_full_paths_log_probs_loss_and_gradients(batch):
    full_lp, full_loss, full_grads = forward_and_grads(batch, compact=False)
    lp, loss, grads = forward_and_grads(batch, compact=True)
    torch.testing.assert_close(lp, full_lp, rtol=0, atol=1e-6)
    torch.testing.assert_close(loss, full_loss, rtol=0, atol=1e-6)
    for name, grad in full_grads.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-5, atol=1e-7, msg=name)


def test_only_labeled_positions_reach_the_vocabulary_projection(batch, monkeypatch):
    rows_projected = []
    original = trl_utils._ChunkedLogProbFunction.apply

    def spy(hidden, *args):  # records the shape only, then runs TRL's function
        rows_projected.append(hidden.shape[0])
        return original(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", spy)
    forward_and_grads(batch, compact=False)
    forward_and_grads(batch, compact=True)
    # full: 3 rows x 11 shifted positions; compact: tokens 5..11 of rows 0 and 2, tokens 5..8 of row 1
    assert rows_projected == [3 * 11, 7 + 4 + 7]


def test_the_device_test_is_restored_after_the_context():
    original = trl_utils._use_triton
    with compact_lm_head():
        assert trl_utils._use_triton(torch.device("cpu"))
    assert trl_utils._use_triton is original and not original(torch.device("cpu"))
    with pytest.raises(RuntimeError), compact_lm_head():
        raise RuntimeError("a failing step")
    assert trl_utils._use_triton is original
