"""Padding-free training batches: TRL's ``padding_free`` works with our pre-truncated rows,
learns what padded batches learn, records each row's own training loss, and refuses models whose
attention would let packed rows see each other."""

import json
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from conftest import FAST, make_tiny_model, write_jsonl
from test_callback import RECIPE, alpaca_rows, ok_tokens
from transformers import OPTConfig, OPTForCausalLM

from hf_lpselect.errors import ConfigError
from hf_lpselect.padding_free import keeps_rows_apart
from hf_lpselect.scoring.demo_data import make_demo_rows
from hf_lpselect.scoring.scorer_run import RunError, score
from hf_lpselect.scoring.trainer import ScorerConfig, ScorerTrainer


def tiny_opt(vocab_size: int) -> OPTForCausalLM:
    """OPT (the paper's scorer family) derives positions from the attention mask, not from position ids."""
    torch.manual_seed(0)
    return OPTForCausalLM(
        OPTConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            ffn_dim=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            word_embed_proj_dim=32,
            max_position_embeddings=256,
        )
    )


def test_the_probe_tells_a_llama_from_an_opt():
    rows = [[5, 9, 3, 7, 2, 8], [4, 6, 1, 9]]
    ok, diff = keeps_rows_apart(make_tiny_model(64), rows)
    assert ok and diff < 1e-6
    ok, diff = keeps_rows_apart(tiny_opt(64), rows)
    assert not ok and diff > 1e-2


def trained(tmp_path, tokenizer, name, **overrides):
    rows = ok_tokens(alpaca_rows(12), tokenizer, "alpaca")
    trainer = ScorerTrainer(
        model=make_tiny_model(len(tokenizer)),
        args=ScorerConfig(str(tmp_path / name), **{**RECIPE, **overrides}),
        train_dataset=rows,
        processing_class=tokenizer,
    )
    trainer.train()
    return trainer


def test_padding_free_training_records_the_losses_and_passes_of_padded_training(tmp_path, tokenizer):
    # before the fix TRL refused padding_free with max_length set, although our rows are truncated already
    padded = trained(tmp_path, tokenizer, "padded")
    free = trained(tmp_path, tokenizer, "free", padding_free=True)
    assert "attention_mask" not in free.data_collator([free.train_dataset[0], free.train_dataset[1]])

    losses = [
        pd.read_parquet(t.run_dir.train_losses).sort_values(["epoch", "row"], ignore_index=True)
        for t in (padded, free)
    ]
    assert len(losses[0]) == 2 * 12
    first = losses[0]["step"] == 1  # the very first micro-batch: the same weights, so the same losses to fp32 rounding
    pd.testing.assert_series_equal(losses[1].loc[first, "loss"], losses[0].loc[first, "loss"], rtol=1e-5)
    pd.testing.assert_frame_equal(losses[1], losses[0], rtol=1e-3)  # and after 6 optimizer steps, fp32 drift only
    for k in range(3):
        ours, theirs = (pd.read_parquet(t.run_dir.pass_path(k)) for t in (free, padded))
        pd.testing.assert_frame_equal(ours, theirs, rtol=1e-3)
    # each row's recorded loss is its own, not the packed sequence's mean: rows differ
    assert losses[1].loc[first, "loss"].nunique() == first.sum()


def test_a_model_that_would_mix_packed_rows_is_refused(tmp_path, tokenizer):
    rows = ok_tokens(alpaca_rows(8), tokenizer, "alpaca")
    with pytest.raises(
        ConfigError, match="OPTForCausalLM does not .packed in the other order.*leave --padding_free off"
    ):
        ScorerTrainer(
            model=tiny_opt(len(tokenizer)),
            args=ScorerConfig(str(tmp_path / "opt"), **{**RECIPE, "padding_free": True}),
            train_dataset=rows,
            processing_class=tokenizer,
        )


def test_a_run_resumed_with_another_batch_layout_is_refused(tmp_path, tiny_model_dir):
    # under bf16 the layout moves LP(1) (benchmarks/results/bench_batching_lp.json), so it is part of the identity
    data = write_jsonl(tmp_path / "d.jsonl", make_demo_rows(8, seed=6))
    first = score(
        data, out=tmp_path / "run", model=str(tiny_model_dir), epochs=1, max_length=96, padding_free=True, **FAST
    )
    assert json.loads(first.run_dir.run_json.read_text())["identity"]["padding_free"] is True
    with pytest.raises(RunError, match="padding_free differ"):
        score(data, out=tmp_path / "run", model=str(tiny_model_dir), epochs=1, max_length=96, **FAST)


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"accelerator_config": {"split_batches": True}}, "cannot split between processes"),
        ({"data_collator": "mine"}, "pass no data_collator"),
    ],
)
def test_what_padding_free_cannot_be_combined_with_is_one_sentence(tmp_path, tokenizer, extra, message):
    rows = ok_tokens(alpaca_rows(8), tokenizer, "alpaca")
    config = {**RECIPE, "padding_free": True, **{k: v for k, v in extra.items() if k != "data_collator"}}
    collator = {"data_collator": extra["data_collator"]} if "data_collator" in extra else {}
    with pytest.raises(ConfigError, match=message):
        ScorerTrainer(
            model=make_tiny_model(len(tokenizer)),
            args=ScorerConfig(str(tmp_path / "x"), **config),
            train_dataset=rows,
            processing_class=tokenizer,
            **collator,
        )


def test_a_packed_batch_whose_rows_cannot_be_told_apart_stops_instead_of_crediting_the_wrong_row(tmp_path, tokenizer):
    # labels of two packed rows, but the batch names one row (e.g. had accelerate split `row` and not the sequence)
    rows = ok_tokens(alpaca_rows(8), tokenizer, "alpaca")
    trainer = ScorerTrainer(
        model=make_tiny_model(len(tokenizer)),
        args=ScorerConfig(str(tmp_path / "x"), **{**RECIPE, "padding_free": True}),
        train_dataset=rows,
        processing_class=tokenizer,
    )
    trainer._batch_rows, trainer._batch_segments = torch.tensor([3]), torch.tensor([[0, 0, 0, 1, 1]])
    packed = SimpleNamespace(label_mask=torch.tensor([[True, True, False, True]]), log_probs=torch.full((1, 4), -1.0))
    with pytest.raises(RunError, match="labels for more rows than the 1 it names"):
        trainer._record_row_losses(SimpleNamespace(training=True), (), packed)
    trainer._batch_segments = torch.tensor(
        [[0, 0, 0, 1, 2]]
    )  # the same batch padded (pad_to_multiple_of): no label past row 0
    trainer._record_row_losses(
        SimpleNamespace(training=True),
        (),
        SimpleNamespace(
            label_mask=torch.tensor([[True, True, False, False]]), log_probs=torch.tensor([[-1.0, -3.0, 0.0, 0.0]])
        ),
    )
    assert trainer._loss_records[-1][0] == 3 and trainer._loss_records[-1][3] == pytest.approx(2.0)
