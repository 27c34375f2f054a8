"""One vocabulary: the same concept has the same flag, the same keyword and the same meaning in every command,
one dispatcher answers a mistyped flag before torch is imported, and `--help` lists what matters first."""

import inspect
import os
import re
import subprocess
import sys
import warnings

import pandas as pd
import pytest
from conftest import lpselect

import hf_lpselect
from hf_lpselect.core.parser import ALIASES, ArgumentParser
from hf_lpselect.errors import ConfigError, EvalError, TrainError
from hf_lpselect.hub.arguments import PushArguments
from hf_lpselect.scoring.arguments import build_score_args, parse_score_args, score_parser
from hf_lpselect.selection.arguments import SelectArguments
from hf_lpselect.selection.strategies import select
from hf_lpselect.training.arguments import make_parser, parse_train_args, train_arguments


TRAIN = ["--model_name_or_path", "m", "--dataset_name", "d"]


@pytest.mark.parametrize("parser", [score_parser, make_parser], ids=["score", "train"])
def test_every_short_name_works_in_every_command_that_has_the_field(parser):
    parser = parser()
    options = {option: action.dest for action in parser._actions for option in action.option_strings}
    present = [name for name in ALIASES if name in options.values()]
    assert len(present) == len(ALIASES)  # score and train both have every aliased field
    for name in present:
        for alias in ALIASES[name]:
            assert options[f"--{alias}"] == options[f"--{alias.replace('_', '-')}"] == name


def test_train_takes_the_short_names_score_takes():
    """Before: `lpselect train --epochs 1` was refused (the short names were declared for `score` only)."""
    short = parse_train_args(
        [
            "--model",
            "m",
            "--dataset_name",
            "d",
            "--epochs",
            "1",
            "--out",
            "o",
            "--batch-size",
            "2",
            "--grad_accum",
            "3",
        ]
    )
    long = parse_train_args(
        [
            *TRAIN,
            "--num_train_epochs",
            "1",
            "--output_dir",
            "o",
            "--per_device_train_batch_size",
            "2",
            "--gradient_accumulation_steps",
            "3",
        ]
    )
    for args in (short, long):
        assert (args.model.model_name_or_path, args.training.num_train_epochs, args.training.output_dir) == (
            "m",
            1,
            "o",
        )
        assert (args.training.per_device_train_batch_size, args.training.gradient_accumulation_steps) == (2, 3)
    lora = parse_train_args([*TRAIN, "--lora", "--split", "dev", "--subset", "lp1_hard_5pct", "--revision", "v1"])
    assert (lora.model.use_peft, lora.script.dataset_train_split, lora.script.dataset_config) == (
        True,
        "dev",
        "lp1_hard_5pct",
    )
    assert lora.model.model_revision == "v1"


def test_the_python_api_takes_the_same_short_names():
    args = train_arguments(model="m", dataset_name="d", epochs=1, batch_size=2, out="o")
    assert (args.model.model_name_or_path, args.training.num_train_epochs) == ("m", 1)
    assert (args.training.per_device_train_batch_size, args.training.output_dir) == (2, "o")
    _, config, model = build_score_args(dataset_name="d.jsonl", model="m", epochs=2, grad_accum=3, lora=True)
    assert (model.model_name_or_path, config.num_train_epochs, config.gradient_accumulation_steps) == ("m", 2, 3)
    assert model.use_peft is True
    with pytest.raises(TrainError, match="Unknown argument"):
        train_arguments(model="m", epoch=1)


def test_seed_is_the_training_seed_and_selection_seed_the_selections_in_train(capsys):
    args = parse_train_args([*TRAIN, "--run", "r", "--seed", "7", "--selection_seed", "9"])
    assert (args.training.seed, args.selection.selection_seed) == (7, 9)
    assert "deprecated" not in capsys.readouterr().err  # TRL's own --seed, not the old spelling


@pytest.mark.parametrize(
    "dataclass, prog, words",
    [
        (SelectArguments, "lpselect select", ["runs/x", "--strategy", "random", "--fraction", "0.1"]),
        (PushArguments, "lpselect push-scores", ["org/alpaca"]),
    ],
)
def test_the_old_seed_flag_still_sets_the_selection_seed_and_warns_in_one_line(capsys, dataclass, prog, words):
    parse = ArgumentParser(dataclass, prog=prog).parse
    assert parse([*words, "--selection_seed", "3"])[0].selection_seed == 3
    assert parse([*words, "--selection-seed", "3"])[0].selection_seed == 3
    assert capsys.readouterr().err == ""
    assert parse([*words, "--seed", "3"])[0].selection_seed == 3
    assert capsys.readouterr().err.splitlines() == [
        f"Warning: --seed is deprecated in `{prog}`; use --selection_seed (the same value)."
    ]
    assert parse(words)[0].selection_seed == 42


def test_the_old_seed_config_key_warns_too(tmp_path, capsys):
    recipe = tmp_path / "select.yaml"
    recipe.write_text("run: runs/x\nstrategy: random\nfraction: 0.1\nseed: 5\n")
    (args,) = ArgumentParser(SelectArguments, prog="lpselect select").parse(["--config", str(recipe)])
    assert args.selection_seed == 5
    assert "the --config key 'seed' is deprecated in `lpselect select`" in capsys.readouterr().err


def _scores(n=10):
    return pd.DataFrame({"row": range(n), "status": "ok", "lp1": [i / n for i in range(n)]})


def test_the_old_seed_keyword_still_works_with_a_future_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = select(_scores(), "random", count=3, selection_seed=1)
    with pytest.warns(FutureWarning, match=r"select\(seed=\.\.\.\) is deprecated; use selection_seed"):
        old = select(_scores(), "random", count=3, seed=1)
    assert old.rows == new.rows and old != select(_scores(), "random", count=3, selection_seed=2)
    for function in (hf_lpselect.select, hf_lpselect.push_scores, hf_lpselect.load_scored, hf_lpselect.select_run):
        parameters = inspect.signature(function).parameters
        assert parameters["selection_seed"].default == 42 and parameters["seed"].default is None, function


def test_one_calling_shape_a_config_object_or_keywords():
    for function in (hf_lpselect.train, hf_lpselect.evaluate):
        first, rest = list(inspect.signature(function).parameters.values())[0], inspect.signature(function).parameters
        assert (first.name, first.kind, first.default) == ("args", inspect.Parameter.POSITIONAL_ONLY, None)
        assert rest["kwargs"].kind == inspect.Parameter.VAR_KEYWORD
    with pytest.raises(EvalError, match="Unknown argument.*modles"):
        hf_lpselect.evaluate(modles=["a"])
    with pytest.raises(EvalError, match="either EvalArguments or keyword arguments"):
        hf_lpselect.evaluate(hf_lpselect.EvalArguments(models=["a"], test_sets=["t.jsonl"]), models=["b"])
    for name in ("score", "select", "push_scores", "load_scored", "train", "evaluate"):
        assert name in hf_lpselect.__all__


def _run(code: str, cache) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_LPSELECT_CACHE": str(cache)},
    )
    return done.stdout.splitlines() + [line for line in done.stderr.splitlines() if line.startswith("Error")]


TYPO = (
    "import sys\nfrom hf_lpselect.cli import main\n"
    "try:\n    main({argv!r})\nexcept SystemExit as exit:\n    print('exit', exit.code)\n"
    "print('torch' in sys.modules, 'typer' in sys.modules)\n"
)


def test_a_mistyped_flag_is_answered_before_torch_is_imported(tmp_path):
    """`lpselect select` parses with nothing heavy imported; `lpselect score` (TRL's SFTConfig imports torch)
    answers from the names its parser took last time."""
    said = _run(TYPO.format(argv=["select", "a", "--scor", "lp1"]), tmp_path)  # nothing remembered yet
    assert said == [
        "exit 2",
        "False False",
        "Error: Unknown option(s): --scor; `lpselect select --help` lists every option.",
    ]
    assert _run(TYPO.format(argv=["select", "a", "--scor", "lp1"]), tmp_path) == said  # and with the names kept
    _run("from hf_lpselect.scoring.arguments import parse_score_args\nparse_score_args(['d.jsonl'])", tmp_path)
    assert _run(TYPO.format(argv=["score", "d.jsonl", "--learnig_rate", "1"]), tmp_path) == [
        "exit 2",
        "False False",
        "Error: Unknown option(s): --learnig_rate (did you mean --learning_rate?); `lpselect score --help` lists "
        "every option.",
    ]


def test_the_dispatcher_answers_help_version_and_an_unknown_command():
    overview = lpselect("--help")
    assert overview.exit_code == 0
    for name in ("score", "demo", "select", "compare", "report", "push-scores", "train", "eval", "space"):
        assert re.search(rf"(?m)^  {name} +\S", overview.stdout), name
    assert lpselect().exit_code == 2 and "commands:" in lpselect().stdout
    assert lpselect("--version").stdout == f"{hf_lpselect.__version__}\n"
    wrong = lpselect("selct", "runs/x")
    assert wrong.exit_code == 2
    assert (
        wrong.stderr
        == "Error: Unknown command 'selct' (did you mean select?); `lpselect --help` lists the commands.\n"
    )
    for command in ("select", "compare", "report", "push-scores", "space", "demo"):
        shown = lpselect(command, "--help")
        assert shown.exit_code == 0 and shown.stdout.startswith(f"usage: lpselect {command}"), command


def _blocks(text: str) -> dict[str, str]:
    """Each option's block of a --help text, by its first flag."""
    blocks = re.split(r"\n(?=  --)", text)
    return {block.split()[0]: block for block in blocks if block.startswith("  --")}


def test_score_help_lists_our_options_first_each_with_help_and_one_default():
    """Before: 701 lines with --template at line 622 and --model at 639; --seed, --warmup_steps and seven more with
    neither help nor default; lines saying "(default: …) (default: None)"."""
    text = score_parser().format_help()
    lines = text.splitlines()
    ours, trl = (
        lines.index("lpselect score options:"),
        lines.index("TRL/transformers training options (SFTConfig, TrainingArguments):"),
    )
    assert ours < trl and lines.index("TRL model options (ModelConfig):") > trl
    first = [line.split()[0] for line in lines[ours + 1 : ours + 30] if line.startswith("  --")]
    assert first[:5] == ["--dataset_name", "--model_name_or_path", "--template", "--output_dir", "--num_train_epochs"]
    blocks = _blocks(text)
    for flag, block in blocks.items():
        said = " ".join(block.split()[1:])
        assert len(re.findall(r"\(default:", said)) <= 1, block
        assert re.search(r"[a-z]{3}", said.replace(flag, "")), f"{flag} has no help"
    for flag, default, theirs in [
        ("--warmup_steps", "0.03", "0"),
        ("--lr_scheduler_type", "cosine", "linear"),
        ("--per_device_train_batch_size", "4", "8"),
        ("--gradient_accumulation_steps", "8", "1"),
        ("--max_length", "512", "1024"),
        ("--save_strategy", "epoch", "steps"),
    ]:
        said = " ".join(blocks[flag].split())
        assert f"(default: {default}; TRL's: {theirs})" in said, said
    assert "(default: 42)" in " ".join(blocks["--seed"].split())
    assert "Random seed" in blocks["--seed"]  # TRL's help, kept where we override the field


def test_train_help_lists_the_selection_first_and_select_help_cites_no_uninstalled_file():
    text = make_parser().format_help()
    assert text.index("lpselect train options:") < text.index("TRL/transformers training options")
    ours = [
        line.split()[0]
        for line in text.split("lpselect train options:")[1].split("\n\n")[0].splitlines()
        if line.startswith("  --")
    ]
    assert ours[:7] == [
        "--dataset_name",
        "--run",
        "--strategy",
        "--fraction",
        "--count",
        "--model_name_or_path",
        "--template",
    ]
    assert "--selection_seed" in ours and "--seed" not in ours  # TRL's training seed stays among TRL's options
    select_help = lpselect("select", "--help").stdout
    assert "docs/method.md" not in select_help and "method page of the documentation" in select_help
    assert "--seed" not in select_help  # the old spelling works but is not offered


def test_push_scores_hands_the_selection_seed_on_under_its_new_keyword(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        result = lpselect("push-scores", "org/never-scored", "--dry-run", "--selection_seed", "3")
    assert result.exit_code == 2 and result.stderr.count("Error:") == 1 and "Traceback" not in result.output


def test_a_config_key_and_a_flag_share_the_short_names(tmp_path):
    recipe = tmp_path / "train.yaml"
    recipe.write_text("model: m\ndataset_name: d\nepochs: 2\ngrad-accum: 4\n")
    args = parse_train_args(["--config", str(recipe)])
    assert (args.model.model_name_or_path, args.training.num_train_epochs) == ("m", 2)
    assert args.training.gradient_accumulation_steps == 4
    with pytest.raises(ConfigError, match=r"Unknown option\(s\): --epoch \(did you mean --epochs\?\)"):
        parse_score_args(["d.jsonl", "--epoch", "2"])
