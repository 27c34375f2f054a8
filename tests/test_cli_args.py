"""One declaration of every argument: `lpselect score` is TRL's parser over ScoreArguments,
ScorerConfig and ScorerModelConfig, so TRL spellings, aliases and `--config` YAML all work."""

import os
import subprocess
import sys

import pytest
from conftest import lpselect
from transformers import HfArgumentParser
from trl import TrlParser

from hf_lpselect.errors import ConfigError
from hf_lpselect.scoring.arguments import SCORE_DATACLASSES, parse_score_args, run_identity
from hf_lpselect.scoring.trainer import ScorerConfig


def test_scorer_config_parses_with_transformers_and_trl_parsers(tmp_path):
    (args,) = HfArgumentParser(ScorerConfig).parse_args_into_dataclasses(["--output_dir", "x", "--report_to", "none"])
    assert args.output_dir == "x" and args.learning_rate == 2e-5 and args.gradient_accumulation_steps == 8
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("learning_rate: 1.0e-4\nnum_train_epochs: 2\nreport_to: none\n")
    (args,) = TrlParser(ScorerConfig).parse_args_and_config(["--config", str(recipe), "--output_dir", "y"])
    assert (args.learning_rate, args.num_train_epochs, args.output_dir) == (1e-4, 2, "y")


def test_trl_spellings_aliases_and_a_config_file_with_overrides(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("learning_rate: 3.0e-4\nlora_r: 8\nuse_peft: true\nmax_length: 128\ntemplate: plain\n")
    script, args, model = parse_score_args(
        [
            "data.jsonl",
            "--config",
            str(recipe),
            "--model",
            "my/model",
            "--epochs",
            "2",
            "--out",
            "runs/x",
            "--lora_r",
            "4",
            "--batch-size",
            "2",
            "--grad-accum",
            "3",
            "--limit",
            "10",
        ]
    )
    assert (script.dataset_name, args.template, script.limit) == ("data.jsonl", "plain", 10)
    assert (args.learning_rate, args.num_train_epochs, args.output_dir, args.max_length) == (3e-4, 2, "runs/x", 128)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (2, 3)
    assert (model.model_name_or_path, model.use_peft, model.lora_r) == ("my/model", True, 4)  # command line beats file
    same = parse_score_args(
        [
            "--dataset_name",
            "data.jsonl",
            "--model_name_or_path",
            "my/model",
            "--num_train_epochs",
            "2",
            "--output_dir",
            "runs/x",
            "--learning_rate",
            "3e-4",
            "--use_peft",
            "--lora_r",
            "4",
            "--per_device_train_batch_size",
            "2",
            "--gradient_accumulation_steps",
            "3",
            "--max_length",
            "128",
            "--template",
            "plain",
            "--limit",
            "10",
        ]
    )
    assert run_identity(*same) == run_identity(script, args, model)


def test_the_identity_covers_every_field_that_changes_scores_and_nothing_that_cannot():
    script, args, model = parse_score_args(["data.jsonl"])
    identity = run_identity(script, args, model)
    for name in (
        "dataset_name",
        "template",
        "format",
        "limit",
        "ifd",
        "learning_rate",
        "seed",
        "max_length",
        "per_device_train_batch_size",
        "bf16",
        "score_precision",
        "model_name_or_path",
        "lora_r",
        "lora_alpha",
        "use_peft",
        "load_in_4bit",
        "lora_target_modules",
        "weight_decay",
        "lr_scheduler_type",
    ):
        assert name in identity, name
    for name in (
        "output_dir",
        "report_to",
        "run_name",
        "logging_steps",
        "disable_tqdm",
        "keep_checkpoints",
        "push_to_hub",
    ):
        assert name not in identity, name
    other_paths = parse_score_args(
        ["data.jsonl", "--out", "elsewhere", "--report_to", "tensorboard", "--logging_steps", "1"]
    )
    assert run_identity(*other_paths) == identity


def test_score_help_lists_trl_flags_and_ours():

    result = lpselect("score", "--help")
    assert result.exit_code == 0
    for flag in (
        "--learning_rate",
        "--model_name_or_path",
        "--model",
        "--epochs",
        "--out",
        "--lora_r",
        "--template",
        "--score_batch_size",
        "--config",
    ):
        assert flag in result.output, flag
    assert "--max_steps" not in result.output  # refused (passes belong to epoch ends), so not offered


@pytest.mark.parametrize(
    "argv, sentence",
    [
        (["--batch-size", "0"], "--per_device_train_batch_size must be 1 or more"),
        (["--limit", "0"], "--limit must be 1 or more"),
        (["--max_steps", "5"], "--max_steps is not supported"),
        (["--config", "missing.yaml"], "missing.yaml"),
        (["--fp32"], "Unknown option(s): --fp32 (did you mean --bf16 false"),
        (["--learnig_rate", "1e-4"], "Unknown option(s): --learnig_rate (did you mean --learning_rate?)"),
        (["--warmup_ratio", "0.1"], "--warmup_ratio (did you mean --warmup_steps (a value below 1 is a share"),
        (["--epoch", "2"], "Unknown option(s): --epoch (did you mean --epochs?)"),  # before: taken as an abbreviation
    ],
)
def test_a_bad_argument_is_one_red_sentence_without_warnings(tmp_path, argv, sentence):
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "a", "output": "b"}\n')
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    done = subprocess.run(
        [sys.executable, "-m", "hf_lpselect.cli", "score", str(data), *argv, "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 2
    assert sentence in done.stderr
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr, done.stderr
    assert not (tmp_path / "r").exists()


def test_an_unknown_keyword_is_our_error():
    from hf_lpselect.scoring.arguments import build_score_args

    with pytest.raises(ConfigError, match="Unknown argument"):
        build_score_args(learning_rat=1e-4)
    assert len(SCORE_DATACLASSES) == 3


def test_config_yaml_takes_the_same_names_as_the_command_line(tmp_path):
    """README's own names (model, epochs, out) and dashed spellings work as YAML keys; before, they were refused."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("model: default\nepochs: 2\nout: runs/x\nlearning-rate: 1.0e-4\nbatch-size: 2\n")
    script, args, model = parse_score_args(["d.jsonl", "--config", str(recipe), "--epochs", "1"])
    assert (model.model_name_or_path, args.num_train_epochs, args.output_dir) == (
        "default",
        1,
        "runs/x",
    )  # the command line wins
    assert (args.learning_rate, args.per_device_train_batch_size) == (1e-4, 2)
    recipe.write_text("no_remove_unused_columns: true\n")  # --no_X is a flag, not a key: it read as X: true
    with pytest.raises(ConfigError, match=r"Unknown option\(s\): --no_remove_unused_columns"):
        parse_score_args(["d.jsonl", "--config", str(recipe)])
    recipe.write_text("lernig_rate: 1.0e-4\n")
    with pytest.raises(ConfigError, match=r"Unknown option\(s\): --lernig_rate \(did you mean --learning_rate\?\)"):
        parse_score_args(["d.jsonl", "--config", str(recipe)])


def test_select_takes_the_spellings_train_takes(tmp_path):

    result = lpselect("select", "--help")
    for flag in ("--per-cluster", "--per_cluster", "--selection_seed", "lp1-hard", "variability"):
        assert flag in result.output, flag


def test_a_mistyped_flag_is_answered_before_torch_is_imported(tmp_path, monkeypatch):
    """Before: 4-14 s of imports, then the error. The option names of the last parse are remembered in the cache."""
    from hf_lpselect.core import flags

    parse_score_args(["d.jsonl", "--epochs", "1"])  # a parse remembers the names
    code = (
        "import sys\nfrom hf_lpselect.core.flags import check_early\n"
        "try:\n    check_early('lpselect score', ['d.jsonl', '--learnig_rate', '1', '--epochs', '2'])\n"
        "except Exception as err:\n    print(err)\nprint('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines() == [
        "Unknown option(s): --learnig_rate (did you mean --learning_rate?); `lpselect score --help` lists every option.",
        "False False",
    ]
    monkeypatch.setattr(flags, "_key", lambda: "another version or an edited option file")
    flags.check_early("lpselect score", ["--a_flag_added_since"])  # stale names: the parser decides


def test_one_column_mapping_has_one_spelling_in_a_runs_identity():
    from hf_lpselect.scoring.arguments import ScoreArguments

    assert (
        ScoreArguments(dataset_name="d.jsonl", columns=" q=instruction, a=output ").columns == "q=instruction,a=output"
    )
    with pytest.raises(ConfigError, match="YOURS=FORMAT pairs"):
        ScoreArguments(dataset_name="d.jsonl", columns="question")


def test_demo_and_space_take_the_same_parser():
    """One parser for every command: a bool that may stay unset (the demo's precision), and a port that must be a number."""
    from hf_lpselect.core.parser import ArgumentParser
    from hf_lpselect.scoring.demo import DemoArguments
    from hf_lpselect.space.arguments import DeployArguments, ServeArguments

    demo = ArgumentParser(DemoArguments, prog="lpselect demo")
    assert demo.parse([])[0].bf16 is None and demo.parse(["--bf16", "false"])[0].bf16 is False
    deploy = ArgumentParser(DeployArguments, prog="lpselect space deploy").parse(
        ["me/space", "--dry-run", "--local-dir", "x"]
    )[0]
    assert (deploy.repo_id, deploy.dry_run, deploy.local_dir) == ("me/space", True, "x")
    with pytest.raises(
        ConfigError,
        match=r"^Argument --port: invalid int value: 'eighty'; `lpselect space --help` lists every option\.$",
    ):
        ArgumentParser(ServeArguments, prog="lpselect space").parse(["--port", "eighty"])


@pytest.mark.parametrize(
    "argv",
    [
        ["org/alpaca", "--run", "runs/x", "--dry-run"],
        ["--run", "runs/x", "org/alpaca", "--dry-run"],
        ["--run", "runs/x", "--dry-run", "org/alpaca"],  # a bare word after a bool flag is no bool: the positional
    ],
)
def test_bare_words_are_positional_before_or_after_the_flags(argv):
    """The bare word a command takes may come before or after the flags."""
    from hf_lpselect.core.parser import ArgumentParser
    from hf_lpselect.hub.arguments import PushArguments

    (args,) = ArgumentParser(PushArguments, prog="lpselect push-scores").parse(argv)
    assert (args.repo_id, args.run, args.dry_run) == ("org/alpaca", "runs/x", True)


@pytest.mark.parametrize(
    "argv, expected",
    [([], None), (["--bf16"], True), (["--bf16", "false"], False), (["--no-bf16"], False), (["--no_bf16"], False)],
)
def test_the_demo_precision_flag_keeps_its_old_spellings(argv, expected):
    """`lpselect demo --no-bf16` and a bare `--bf16` worked before the demo's arguments became a dataclass."""
    from hf_lpselect.core.parser import ArgumentParser
    from hf_lpselect.scoring.demo import DemoArguments

    assert ArgumentParser(DemoArguments, prog="lpselect demo").parse(argv)[0].bf16 is expected
