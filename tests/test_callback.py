"""A TRL user's own trainer: ScorerTrainer takes any dataset SFTTrainer takes, and the
LearningPercentageCallback records the same passes inside a plain SFTTrainer script (issue 9)."""

import datasets
import pandas as pd
import pytest
from transformers import TrainerCallback
from trl import SFTConfig, SFTTrainer

from conftest import make_tiny_model
from hf_lpselect.data import canonicalize
from hf_lpselect.scoring.demo_data import make_demo_rows
from hf_lpselect.templates import tokenize_rows
from hf_lpselect.scoring.trainer import LearningPercentageCallback, ScorerConfig, ScorerTrainer

RECIPE = dict(num_train_epochs=2, per_device_train_batch_size=4, gradient_accumulation_steps=1, learning_rate=1e-3,
              lr_scheduler_type="cosine", warmup_steps=0.03, weight_decay=0.0, activation_checkpointing=False,
              bf16=False, max_length=96, report_to="none", disable_tqdm=True, seed=7, data_seed=7)


def alpaca_rows(n=8):
    return datasets.Dataset.from_list([{k: r[k] for k in ("instruction", "input", "output")} for r in make_demo_rows(n, seed=9)])


def ok_tokens(raw, tokenizer, template):
    tokenized = tokenize_rows(canonicalize(raw), tokenizer, template=template, max_length=96)
    return tokenized.filter(lambda s: s == "ok", input_columns="status").select_columns(["row", "input_ids", "labels", "length"])


def passes(folder, epochs=2):
    return [pd.read_parquet(folder / "passes" / f"epoch_{k}.parquet") for k in range(epochs + 1)]


def test_the_callback_in_a_plain_sft_trainer_writes_the_same_passes_as_the_scorer_trainer(tmp_path, tokenizer):
    rows = ok_tokens(alpaca_rows(), tokenizer, "alpaca")
    scorer = ScorerTrainer(model=make_tiny_model(len(tokenizer)), args=ScorerConfig(str(tmp_path / "scorer"), **RECIPE),
                           train_dataset=rows, processing_class=tokenizer)
    scorer.train()

    # the user's own script: three lines added to a plain SFTTrainer
    plain = SFTTrainer(model=make_tiny_model(len(tokenizer)), processing_class=tokenizer, train_dataset=rows,
                       args=SFTConfig(str(tmp_path / "plain"), dataset_kwargs={"skip_prepare_dataset": True}, **RECIPE))
    plain.add_callback(LearningPercentageCallback(rows, trainer=plain))
    plain.train()

    for ours, theirs in zip(passes(tmp_path / "scorer"), passes(tmp_path / "plain")):
        pd.testing.assert_frame_equal(ours, theirs)


@pytest.mark.parametrize("shape", ["alpaca", "messages"])
def test_a_raw_dataset_is_tokenised_with_the_scorers_exact_masks(tmp_path, tokenizer, shape):
    raw = alpaca_rows(6)
    if shape == "messages":
        raw = datasets.Dataset.from_list([
            {"messages": [{"role": "user", "content": r["instruction"]}, {"role": "assistant", "content": r["output"]}]} for r in raw
        ])
    template = "alpaca" if shape == "alpaca" else "chat"
    trainer = ScorerTrainer(model=make_tiny_model(len(tokenizer)), processing_class=tokenizer, train_dataset=raw,
                            args=ScorerConfig(str(tmp_path / shape), template="auto", **RECIPE))
    expected = ok_tokens(raw, tokenizer, template)
    assert trainer.train_dataset["input_ids"] == expected["input_ids"]
    assert trainer.train_dataset["labels"] == expected["labels"]
    trainer.train()
    scored = passes(tmp_path / shape)
    assert [p["row"].tolist() for p in scored] == [expected["row"]] * 3
    assert (scored[2]["nll"] < scored[0]["nll"]).mean() > 0.5  # it learned


class Logs(TrainerCallback):
    def __init__(self):
        self.seen = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.seen.append(dict(logs or {}))


def test_each_pass_is_logged_to_the_trackers(tmp_path, tokenizer):
    logs = Logs()
    trainer = ScorerTrainer(model=make_tiny_model(len(tokenizer)), processing_class=tokenizer, train_dataset=alpaca_rows(),
                            args=ScorerConfig(str(tmp_path / "r"), template="alpaca", **RECIPE), callbacks=[logs])
    trainer.train()
    logged = [entry for entry in logs.seen if "lpselect/mean_nll" in entry]
    assert [entry["lpselect/pass"] for entry in logged] == [0, 1, 2]
    first = pd.read_parquet(tmp_path / "r" / "passes" / "epoch_0.parquet")
    assert logged[0]["lpselect/mean_nll"] == pytest.approx(first["nll"].mean())
    assert "lpselect/ppl_drop_q50" in logged[1] and "lpselect/ppl_drop_q50" not in logged[0]
