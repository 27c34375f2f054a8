"""EvalArguments parse with HfArgumentParser and TrlParser (--config YAML), and refuse bad settings."""

from __future__ import annotations

import pytest
from transformers import HfArgumentParser
from trl import TrlParser

from hf_lpselect.errors import EvalError
from hf_lpselect.eval import EvalArguments


def test_hf_argument_parser_reads_every_kind_of_field():
    (args,) = HfArgumentParser(EvalArguments).parse_args_into_dataclasses(
        [
            "--models",
            "hard=runs/hard",
            "runs/full",
            "--test_sets",
            "vicuna.jsonl",
            "koala=k.jsonl",
            "--limit",
            "5",
            "--max_new_tokens",
            "64",
            "--do_sample",
            "--temperature",
            "0.7",
            "--judge_base_url",
            "http://127.0.0.1:8000/v1",
            "--judge_model",
            "judge",
            "--template",
            "alpaca",
        ]
    )
    assert args.models == ["hard=runs/hard", "runs/full"]
    assert args.test_sets == ["vicuna.jsonl", "koala=k.jsonl"]
    assert (args.limit, args.max_new_tokens, args.do_sample, args.temperature) == (5, 64, True, 0.7)
    assert (args.judge_base_url, args.judge_model, args.template) == ("http://127.0.0.1:8000/v1", "judge", "alpaca")
    assert (args.baseline, args.eval_dir, args.reference_sets, args.judge_api_key_env) == (
        None,
        "eval",
        [],
        "OPENAI_API_KEY",
    )


def test_every_field_has_help():
    from dataclasses import fields

    assert all(f.metadata.get("help") for f in fields(EvalArguments))


def test_trl_parser_reads_a_yaml_config_and_command_line_overrides_it(tmp_path):
    config = tmp_path / "eval.yaml"
    config.write_text(
        "models:\n  - hard=runs/hard\n  - runs/full\ntest_sets: [vicuna.jsonl]\nmax_new_tokens: 32\njudge_model: judge\n"
    )
    (args,) = TrlParser(EvalArguments).parse_args_and_config(["--config", str(config), "--max_new_tokens", "16"])
    assert args.models == ["hard=runs/hard", "runs/full"]
    assert args.test_sets == ["vicuna.jsonl"]
    assert (args.max_new_tokens, args.judge_model) == (16, "judge")


def test_choices_are_enforced_by_the_parser():
    with pytest.raises(SystemExit):
        HfArgumentParser(EvalArguments).parse_args_into_dataclasses(
            ["--models", "m", "--test_sets", "t", "--template", "llama"]
        )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"models": []}, "at least one model"),
        ({"test_sets": []}, "at least one test set"),
        ({"judge_base_url": "http://x/v1"}, "needs --judge_model"),
        ({"batch_size": 0}, "--batch_size must be at least 1"),
        ({"limit": 0}, "--limit must be at least 1"),
        ({"dtype": "int8"}, "--dtype must be one of"),
    ],
)
def test_bad_settings_are_refused_with_one_sentence(kwargs, message):
    with pytest.raises(EvalError, match=message):
        EvalArguments(**{"models": ["m"], "test_sets": ["t.jsonl"], **kwargs})
