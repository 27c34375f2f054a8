"""A TRL user's own trainer: ScorerTrainer takes any dataset SFTTrainer takes, and the
LearningPercentageCallback records the same passes inside a plain SFTTrainer script."""

from pathlib import Path

import datasets
import pandas as pd
import pytest
from conftest import lpselect, make_tiny_model
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import SFTConfig, SFTTrainer

import hf_lpselect
from hf_lpselect.errors import ConfigError, RunError
from hf_lpselect.ingest import canonicalize, content_id, content_ids, load_rows
from hf_lpselect.record import RunRecord
from hf_lpselect.scoring.demo_data import make_demo_rows
from hf_lpselect.scoring.trainer import LearningPercentageCallback, ScorerConfig, ScorerTrainer, scoring_rows
from hf_lpselect.templates import tokenize_rows


RECIPE = dict(
    num_train_epochs=2,
    per_device_train_batch_size=4,
    gradient_accumulation_steps=1,
    learning_rate=1e-3,
    lr_scheduler_type="cosine",
    warmup_steps=0.03,
    weight_decay=0.0,
    activation_checkpointing=False,
    bf16=False,
    max_length=96,
    report_to="none",
    disable_tqdm=True,
    seed=7,
    data_seed=7,
)


def alpaca_rows(n=8):
    return datasets.Dataset.from_list(
        [{k: r[k] for k in ("instruction", "input", "output")} for r in make_demo_rows(n, seed=9)]
    )


def ok_tokens(raw, tokenizer, template):
    tokenized = tokenize_rows(canonicalize(raw), tokenizer, template=template, max_length=96)
    return tokenized.filter(lambda s: s == "ok", input_columns="status").select_columns(
        ["row", "input_ids", "labels", "length"]
    )


def passes(folder, epochs=2):
    return [pd.read_parquet(folder / "passes" / f"epoch_{k}.parquet") for k in range(epochs + 1)]


def test_the_callback_in_a_plain_sft_trainer_writes_the_same_passes_as_the_scorer_trainer(tmp_path, tokenizer):
    rows = ok_tokens(alpaca_rows(), tokenizer, "alpaca")
    scorer = ScorerTrainer(
        model=make_tiny_model(len(tokenizer)),
        args=ScorerConfig(str(tmp_path / "scorer"), **RECIPE),
        train_dataset=rows,
        processing_class=tokenizer,
    )
    scorer.train()

    # the user's own script: three lines added to a plain SFTTrainer
    plain = SFTTrainer(
        model=make_tiny_model(len(tokenizer)),
        processing_class=tokenizer,
        train_dataset=rows,
        args=SFTConfig(str(tmp_path / "plain"), dataset_kwargs={"skip_prepare_dataset": True}, **RECIPE),
    )
    plain.add_callback(LearningPercentageCallback(rows, trainer=plain))
    plain.train()

    for ours, theirs in zip(passes(tmp_path / "scorer"), passes(tmp_path / "plain")):
        pd.testing.assert_frame_equal(ours, theirs)


@pytest.mark.parametrize("shape", ["alpaca", "messages"])
def test_a_raw_dataset_is_tokenised_with_the_scorers_exact_masks(tmp_path, tokenizer, shape):
    raw = alpaca_rows(6)
    if shape == "messages":
        raw = datasets.Dataset.from_list(
            [
                {
                    "messages": [
                        {"role": "user", "content": r["instruction"]},
                        {"role": "assistant", "content": r["output"]},
                    ]
                }
                for r in raw
            ]
        )
    template = "alpaca" if shape == "alpaca" else "chat"
    trainer = ScorerTrainer(
        model=make_tiny_model(len(tokenizer)),
        processing_class=tokenizer,
        train_dataset=raw,
        args=ScorerConfig(str(tmp_path / shape), template="auto", **RECIPE),
    )
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
    trainer = ScorerTrainer(
        model=make_tiny_model(len(tokenizer)),
        processing_class=tokenizer,
        train_dataset=alpaca_rows(),
        args=ScorerConfig(str(tmp_path / "r"), template="alpaca", **RECIPE),
        callbacks=[logs],
    )
    trainer.train()
    logged = [entry for entry in logs.seen if "lpselect/mean_nll" in entry]
    assert [entry["lpselect/pass"] for entry in logged] == [0, 1, 2]
    first = pd.read_parquet(tmp_path / "r" / "passes" / "epoch_0.parquet")
    assert logged[0]["lpselect/mean_nll"] == pytest.approx(first["nll"].mean())
    assert "lpselect/ppl_drop_q50" in logged[1] and "lpselect/ppl_drop_q50" not in logged[0]


def docs_block(marker: str, page: str = "docs/trl.md") -> str:
    """The Python block that follows ``<!-- tested: MARKER -->`` in ``page`` (a path from the repository root)."""
    text = (Path(__file__).resolve().parents[1] / page).read_text(encoding="utf-8")
    after = text.split(f"<!-- tested: {marker} -->", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def prompt_completion_rows(n=12):
    return datasets.Dataset.from_list(
        [{"prompt": r["instruction"], "completion": r["output"]} for r in make_demo_rows(n, seed=4)]
    )


def test_the_documented_trl_script_ends_in_a_run_that_lpselect_select_takes(tmp_path, tokenizer, monkeypatch):
    """Run docs/trl.md's block as written, with two stand-ins: load_model gives a tiny model, and TrainConfig gets
    this file's fast recipe (a tiny random model learns nothing at the paper's 2e-5 in 3 epochs of 12 rows); it is
    still hf_lpselect's TrainConfig. Before: the block's SFTConfig("out", num_train_epochs=3) raised on a CPU
    ("Your setup doesn't support bf16/gpu"), and the run left the trainer's last checkpoint in the run folder."""
    import hf_lpselect.models
    import hf_lpselect.training.arguments as arguments
    from hf_lpselect.models import LoadedModel

    monkeypatch.chdir(tmp_path)
    fast = {k: v for k, v in RECIPE.items() if k not in ("num_train_epochs", "max_length")}
    real = arguments.TrainConfig
    monkeypatch.setattr(arguments, "TrainConfig", lambda output_dir, **kw: real(output_dir, **{**fast, **kw}))
    tiny = LoadedModel(model=make_tiny_model(len(tokenizer)), tokenizer=tokenizer)
    monkeypatch.setattr(hf_lpselect.models, "load_model", lambda spec: tiny)
    raw = prompt_completion_rows()
    exec(docs_block("the TRL script"), {"raw": raw})

    out = tmp_path / "out"
    scores = pd.read_parquet(out / "scores.parquet")
    assert scores["row"].tolist() == list(range(12)) and (scores["status"] == "ok").all()
    assert scores["lp1"].notna().sum() >= 10
    record = RunRecord.load(out)
    assert record.complete and record.epochs == 3 and record.dataset.stored and record.format == "prompt-completion"
    assert record.identity["learning_rate"] == RECIPE["learning_rate"] and record.template == "trl"
    assert not list(out.glob("checkpoint-*"))

    result = lpselect("select", str(out), "--strategy", "lp1-hard", "--fraction", "0.25")
    assert result.exit_code == 0, result.output
    picked = pd.read_parquet(next((out / "selections").glob("lp1-hard*")))
    hardest = scores.dropna(subset=["lp1"]).sort_values(["lp1", "row"])["row"].head(len(picked)).tolist()
    assert sorted(picked["completion"]) == sorted(raw.select(hardest)["completion"])


def test_the_readmes_trl_script_is_the_documented_one():
    assert docs_block("the TRL script", "README.md") == docs_block("the TRL script")


@pytest.mark.slow
def test_the_documented_trl_script_runs_as_written_with_the_default_model(tmp_path, monkeypatch):
    """No stand-in: the default model, the paper's recipe, on this machine's CPU."""
    monkeypatch.chdir(tmp_path)
    exec(docs_block("the TRL script"), {"raw": prompt_completion_rows()})
    record = RunRecord.load(tmp_path / "out")
    assert record.complete and record.model_name == "HuggingFaceTB/SmolLM2-135M-Instruct" and record.template == "trl"
    assert not list((tmp_path / "out").glob("checkpoint-*"))


def test_trls_labels_are_the_response_tokens_the_callback_scores(tokenizer):
    raw = prompt_completion_rows(4)
    trainer = SFTTrainer(
        model=make_tiny_model(len(tokenizer)),
        processing_class=tokenizer,
        train_dataset=raw,
        args=SFTConfig("unused", **RECIPE),
    )
    rows = scoring_rows(trainer.train_dataset)
    assert rows["row"] == [0, 1, 2, 3] and rows["labels"] == trainer.train_dataset["labels"]
    for ids, labels, completion in zip(rows["input_ids"], rows["labels"], raw["completion"]):
        response = [t for t in labels if t != -100]
        assert response == ids[len(ids) - len(response) :]  # the end of the row, after the prompt
        assert response[:-1] == tokenizer(completion, add_special_tokens=False)["input_ids"]
        assert response[-1] == tokenizer.eos_token_id  # the EOS that ends the response is scored


def test_rows_trl_leaves_out_are_matched_by_number_not_position(tmp_path, tokenizer):
    """TRL drops a row whose response is truncated away: positions then name the wrong rows (before: silently)."""
    raw = prompt_completion_rows(6)
    raw = datasets.Dataset.from_list(
        [*raw.select(range(2)), {"prompt": "word " * 80, "completion": "late"}, *raw.select(range(2, 6))]
    )
    config = SFTConfig(str(tmp_path / "out"), **{**RECIPE, "max_length": 48})
    trainer = SFTTrainer(
        model=make_tiny_model(len(tokenizer)), processing_class=tokenizer, train_dataset=raw, args=config
    )
    assert len(trainer.train_dataset) == 6
    with pytest.raises(ConfigError, match="cannot be matched by position.*lpselect_row"):
        LearningPercentageCallback(trainer.train_dataset, source=raw, trainer=trainer)

    numbered = raw.add_column("lpselect_row", list(range(len(raw))))
    trainer = SFTTrainer(
        model=make_tiny_model(len(tokenizer)), processing_class=tokenizer, train_dataset=numbered, args=config
    )
    trainer.add_callback(LearningPercentageCallback(trainer.train_dataset, source=numbered, trainer=trainer))
    trainer.train()
    scores = pd.read_parquet(tmp_path / "out" / "scores.parquet")
    assert scores["row"].tolist() == list(range(7))
    assert scores["status"].tolist() == ["ok", "ok", "excluded", "ok", "ok", "ok", "ok"]
    assert scores.loc[2, "reason"].startswith("left out of training by the trainer") and pd.isna(
        scores.loc[2, "nll_0"]
    )
    first = pd.read_parquet(tmp_path / "out" / "passes" / "epoch_0.parquet")
    assert first["row"].tolist() == [0, 1, 3, 4, 5, 6]


@pytest.mark.parametrize(
    "dataset, says",
    [
        (prompt_completion_rows(3), "needs tokenised rows with labels"),  # the raw rows, not the trainer's
        (datasets.Dataset.from_dict({"input_ids": [[1, 2, 3]], "labels": [[1, 2, 3]]}), "labels mask no token"),
        (
            datasets.Dataset.from_dict({"input_ids": [[1, 2, 3]], "labels": [[-100, 2, 3]], "seq_lengths": [[1, 2]]}),
            "cannot score packed rows",
        ),
    ],
)
def test_a_dataset_the_callback_cannot_score_is_one_sentence_when_it_is_made(dataset, says):
    """Before: the callback was made, then failed at on_train_begin with `Column 'length' doesn't exist`."""
    with pytest.raises(ConfigError, match=says):
        LearningPercentageCallback(dataset)


def test_a_callback_run_never_mixes_its_passes_with_another_runs(tmp_path, tokenizer):
    """Before: pass files already in output_dir were reused whatever run wrote them (another learning rate, model or data)."""
    raw = prompt_completion_rows(6)

    def trainer_for(dataset, **recipe):
        trainer = SFTTrainer(
            model=make_tiny_model(len(tokenizer)),
            processing_class=tokenizer,
            train_dataset=dataset,
            args=SFTConfig(str(tmp_path / "out"), **{**RECIPE, **recipe}),
        )
        trainer.add_callback(LearningPercentageCallback(trainer.train_dataset, source=dataset, trainer=trainer))
        return trainer

    trainer_for(raw).train()
    first = pd.read_parquet(tmp_path / "out" / "scores.parquet")
    trainer_for(raw).train()  # the same run again: resumes, nothing re-scored
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "scores.parquet"), first)
    with pytest.raises(RunError, match=r"holds the passes of a different run \(learning_rate differ\)"):
        trainer_for(raw, learning_rate=5e-4).train()
    with pytest.raises(RunError, match=r"\(dataset content differ\)"):
        trainer_for(prompt_completion_rows(7)).train()
    (tmp_path / "out" / "run.json").unlink()
    with pytest.raises(RunError, match="holds pass files but no run.json"):
        trainer_for(raw).train()


def test_a_duplicate_the_trainer_trained_on_is_still_a_duplicate_in_the_scores(tmp_path, tokenizer):
    raw = prompt_completion_rows(5)
    raw = datasets.Dataset.from_list([*raw, raw[1]])
    trainer = SFTTrainer(
        model=make_tiny_model(len(tokenizer)),
        processing_class=tokenizer,
        train_dataset=raw,
        args=SFTConfig(str(tmp_path / "out"), **RECIPE),
    )
    trainer.add_callback(LearningPercentageCallback(trainer.train_dataset, source=raw, trainer=trainer))
    trainer.train()
    scores = pd.read_parquet(tmp_path / "out" / "scores.parquet")
    assert scores["status"].tolist() == ["ok"] * 5 + ["duplicate"] and scores.loc[5, "reason"] == "duplicate of row 1"
    assert RunRecord.load(tmp_path / "out").counts["duplicate"] == 1


def test_load_rows_output_is_taken_wherever_raw_rows_are(tmp_path, tokenizer):
    """Before: `LearningPercentageCallback(source=hf_lpselect.load_rows(...))` was refused ("match none of the
    formats hf_lpselect reads"): canonical rows are read as they are, with the raw rows' ids and format."""
    raw = alpaca_rows(8)
    data = tmp_path / "d.jsonl"
    raw.to_json(str(data))
    rows = load_rows(str(data))
    assert canonicalize(rows)["id"] == canonicalize(raw)["id"] and content_ids(rows) == content_ids(raw)
    tokens = ok_tokens(rows, tokenizer, "alpaca")
    assert tokens["input_ids"] == ok_tokens(raw, tokenizer, "alpaca")["input_ids"]
    trainer = SFTTrainer(
        model=make_tiny_model(len(tokenizer)),
        processing_class=tokenizer,
        train_dataset=tokens,
        args=SFTConfig(str(tmp_path / "out"), dataset_kwargs={"skip_prepare_dataset": True}, **RECIPE),
    )
    trainer.add_callback(LearningPercentageCallback(tokens, source=rows, trainer=trainer, template="alpaca"))
    trainer.train()
    scores = pd.read_parquet(tmp_path / "out" / "scores.parquet")
    assert scores["row"].tolist() == list(range(8)) and (scores["status"] == "ok").all()
    assert RunRecord.load(tmp_path / "out").format == "alpaca"
    assert canonicalize(rows.select([5, 2]))["row"] == [0, 1]  # some of its rows: numbered again, in order


def test_a_callback_run_records_trls_formatting_and_train_run_formats_the_rows_so_again(tmp_path, tiny_model_dir):
    """Before: run.json recorded template "" and `lpselect train --run` wrapped TRL's prompt/completion rows in the
    Alpaca prompt ("Below is an instruction ... ### Instruction:\\n<the prompt>"); the card showed template ''."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    raw = prompt_completion_rows(12)
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        processing_class=tokenizer,
        train_dataset=raw,
        args=SFTConfig(str(tmp_path / "out"), **RECIPE),
    )
    trainer.add_callback(LearningPercentageCallback(trainer.train_dataset, source=raw, trainer=trainer))
    trainer.train()
    record = RunRecord.load(tmp_path / "out")
    assert record.template == "trl" and record.model_name == str(tiny_model_dir)

    step = dict(max_steps=1, warmup_steps=0, per_device_train_batch_size=4, gradient_accumulation_steps=1)
    result = hf_lpselect.train(
        model_name_or_path=str(tiny_model_dir),
        run=str(tmp_path / "out"),
        strategy="lp1-hard",
        fraction=0.5,
        output_dir=str(tmp_path / "hard"),
        bf16=False,
        save_strategy="no",
        **step,
    )
    assert result.record.template == "trl" and result.record.scorer["template"] == "trl"
    picked = [row for row in raw if content_id(row) in set(result.record.row_ids)]
    assert len(picked) == 6  # handed to TRL in their own columns, as the scorer's trainer had them: no Alpaca prompt
    key = lambda row: row["completion"]  # noqa: E731
    assert sorted(result.train_dataset.to_list(), key=key) == sorted(picked, key=key)
    card = (tmp_path / "hard" / "README.md").read_text()
    assert "| prompt template | `trl` (TRL's own formatting) |" in card and "(template `trl`)" in card
    assert f"- hf_lpselect: {hf_lpselect.__version__}" in card  # the version of the code that wrote the card


def test_rows_from_tokenize_rows_need_their_template_to_be_recorded(tokenizer):
    raw = alpaca_rows(4)
    rows = ok_tokens(raw, tokenizer, "plain")
    with pytest.raises(ConfigError, match="pass template= the template they were tokenised with"):
        LearningPercentageCallback(rows, source=raw)
    assert LearningPercentageCallback(rows, source=raw, template="plain").template == "plain"
    with pytest.raises(ConfigError, match="formatted and tokenised by TRL's trainer, not with the 'alpaca'"):
        LearningPercentageCallback(
            SFTTrainer(
                model=make_tiny_model(len(tokenizer)),
                processing_class=tokenizer,
                train_dataset=prompt_completion_rows(4),
                args=SFTConfig("unused", **RECIPE),
            ).train_dataset,
            template="alpaca",
        )


def test_a_model_loaded_from_the_cache_is_named_as_a_person_names_it(tmp_path):
    """Before: a callback run of load_model("default") recorded the converted folder in the cache as the scorer."""
    from hf_lpselect.core.cache import cache_dir
    from hf_lpselect.models import model_name

    converted = cache_dir() / "gguf"
    for folder in ("SmolLM2-135M-Instruct.Q4_1-0a1b2c3d4e5f", "mine.Q8_0-0a1b2c3d4e5f"):
        (converted / folder).mkdir(parents=True)
    assert model_name(str(converted / "SmolLM2-135M-Instruct.Q4_1-0a1b2c3d4e5f")) == (
        "HuggingFaceTB/SmolLM2-135M-Instruct"
    )
    assert model_name(str(converted / "mine.Q8_0-0a1b2c3d4e5f")) == "mine.Q8_0.gguf"
    assert model_name(str(tmp_path)) == str(tmp_path) and model_name("org/model") == "org/model"
