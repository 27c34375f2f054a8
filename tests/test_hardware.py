"""Precision, batching and kernels follow the hardware a run lands on (hf_lpselect.core.hardware).

This machine has one CPU; a CPU without native bf16 is made by turning torch's two x86 feature probes
(AMX, AVX-512 BF16) off, which is exactly what such a CPU reports. No GPU runs here: the accelerator
token budget is checked as arithmetic on SmolLM2's shapes.
"""

import json
import logging
import platform

import huggingface_hub.constants as hub_constants
import pytest
import torch
from conftest import FAST, write_jsonl

import hf_lpselect.models
from hf_lpselect.core import hardware
from hf_lpselect.core.hardware import inference_dtype, probe, resolve_bf16
from hf_lpselect.errors import RunError
from hf_lpselect.models import load_model
from hf_lpselect.scoring.demo_data import make_demo_rows
from hf_lpselect.scoring.passes import (
    CPU_MAX_ROWS,
    CPU_TOKEN_BUDGET,
    Batching,
    accelerator_token_budget,
    activation_bytes_per_token,
    device_batching,
)
from hf_lpselect.scoring.scorer_run import score
from hf_lpselect.scoring.trainer import ScorerConfig
from hf_lpselect.training.arguments import TrainConfig


x86_only = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="the CPU is simulated through torch's x86 probes"
)


@pytest.fixture(autouse=True)
def fresh_probe(monkeypatch):
    """Each test probes afresh and hears each one-line announcement again, on the CPU it simulates: the suite may
    run under HF_LPSELECT_BF16=0, which these tests set themselves where they mean it."""
    monkeypatch.delenv("HF_LPSELECT_BF16", raising=False)
    probe.cache_clear()
    hardware.say_once.cache_clear()
    yield
    probe.cache_clear()
    hardware.say_once.cache_clear()


@pytest.fixture
def cpu_without_bf16(monkeypatch):
    """This machine as an AVX2-only CPU (AMD EPYC Zen 1, Intel before Cooper Lake) reports itself."""
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)


@pytest.fixture
def cpu_with_amx(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)


def test_the_cpu_probe_reads_torchs_feature_flags():
    hw = probe("cpu")
    assert hw.device == "cpu" and hw.memory_bytes is None and hw.name
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert hw.native_bf16 == (torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    assert json.loads(json.dumps(hw.to_dict()))["why"] == hw.why


def test_the_switch_makes_any_device_report_no_native_bf16(monkeypatch, cpu_with_amx):
    monkeypatch.setenv("HF_LPSELECT_BF16", "0")
    hw = probe("cpu")
    assert (
        hw.native_bf16 is False
        and hw.why == "HF_LPSELECT_BF16=0 is set, so this device is treated as having no native bf16"
    )
    assert resolve_bf16(None, device="cpu") is False
    probe.cache_clear()
    monkeypatch.setenv("HF_LPSELECT_BF16", "1")  # any other value leaves the probe to the hardware
    assert probe("cpu") == hardware._probe("cpu")


@x86_only
def test_a_cpu_without_native_bf16_trains_and_scores_in_float32_and_says_why_in_one_line(cpu_without_bf16, caplog):
    with caplog.at_level(logging.WARNING, logger="hf_lpselect"):
        scorer = ScorerConfig(output_dir="unused")
        target = TrainConfig(output_dir="unused")
    assert scorer.bf16 is False and target.bf16 is False
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("hf_lpselect")]
    assert len(lines) == 1  # said once, not once per config
    assert lines[0].startswith("Training in float32, not bf16: this CPU has neither AMX nor AVX-512 BF16")
    assert "\n" not in lines[0]


@x86_only
def test_an_explicit_bf16_on_such_a_cpu_runs_with_a_warning(cpu_without_bf16, caplog):
    with caplog.at_level(logging.WARNING, logger="hf_lpselect"):
        assert ScorerConfig(output_dir="unused", bf16=True).bf16 is True
    assert any(
        "in bf16 as asked" in r.getMessage() and "--bf16 false is faster here" in r.getMessage()
        for r in caplog.records
    )


@x86_only
def test_a_cpu_with_amx_keeps_bf16_quietly(cpu_with_amx, caplog):
    with caplog.at_level(logging.WARNING, logger="hf_lpselect"):
        assert ScorerConfig(output_dir="unused").bf16 is True
    assert not [r for r in caplog.records if r.name.startswith("hf_lpselect")]


def test_bf16_false_and_fp16_are_kept_as_asked():
    assert resolve_bf16(False) is False
    assert resolve_bf16(None, fp16=True) is False


@x86_only
def test_run_json_records_the_device_and_precision_and_a_resume_under_another_precision_is_refused(
    tmp_path, tiny_model_dir, cpu_without_bf16
):
    """Before, every CPU run autocast to bf16 (TRL's default); on this CPU the run is float32 throughout."""
    data = write_jsonl(tmp_path / "d.jsonl", make_demo_rows(6, seed=1))
    fast = {k: v for k, v in FAST.items() if k != "bf16"}  # the default precision, chosen by the hardware
    result = score(data, out=tmp_path / "r", model=str(tiny_model_dir), epochs=1, max_length=64, **fast)
    record = json.loads(result.run_dir.run_json.read_text())
    assert record["identity"]["bf16"] is False
    assert record["hardware"]["device"] == "cpu" and record["hardware"]["native_bf16"] is False
    assert record["hardware"]["name"] == hardware.cpu_name()
    assert record["hardware"]["precision"] == {"training": "fp32", "scoring": "fp32"}
    with pytest.raises(
        RunError, match=r"was scored in float32 and this run would be bf16 .*pass --bf16 false to resume"
    ):
        score(data, out=tmp_path / "r", model=str(tiny_model_dir), epochs=1, max_length=64, **fast, bf16=True)


def test_scoring_batches_on_a_cpu_are_the_measured_ones(tiny_model_dir):
    model = load_model(str(tiny_model_dir)).model
    assert (
        device_batching(model) == Batching(token_budget=CPU_TOKEN_BUDGET, max_rows=CPU_MAX_ROWS) == Batching(2048, 8)
    )
    assert device_batching(model, 512, 0) == Batching(512, None)  # 0: no row cap
    assert device_batching(model, None, 3) == Batching(2048, 3)


def test_accelerator_token_budget_by_hand():
    """3 GiB of float32 activations at 4 x (4 hidden + 3 intermediate) bytes a token, floored to a power of two."""
    smollm2_135m, smollm2_1_7b = 4 * (4 * 576 + 3 * 1536), 4 * (4 * 2048 + 3 * 8192)
    assert smollm2_135m == 27_648 and smollm2_1_7b == 131_072
    assert accelerator_token_budget(smollm2_135m) == 65_536  # 3 GiB / 27,648 = 116,508: capped at 65,536
    assert accelerator_token_budget(smollm2_1_7b) == 16_384  # 3 GiB / 131,072 = 24,576 → 16,384
    assert accelerator_token_budget(smollm2_1_7b, free_bytes=2 << 30) == 8_192  # half of 2 GiB / 131,072 = 8,192
    assert accelerator_token_budget(smollm2_1_7b, free_bytes=10 << 20) == 2_048  # never below the CPU budget


def test_activation_bytes_come_from_the_models_shape(tiny_model_dir):
    config = load_model(str(tiny_model_dir)).model.config
    assert activation_bytes_per_token(config) == 4 * (4 * config.hidden_size + 3 * config.intermediate_size)


def test_offline_the_hub_kernels_are_off_in_one_line(tiny_model_dir, monkeypatch, caplog):
    """transformers turns its Hub kernels on by default; offline on a GPU they fail at the first step."""
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.delenv("USE_HUB_KERNELS", raising=False)
    monkeypatch.setattr(hf_lpselect.models, "has_accelerator", lambda: True)  # the line is said where a GPU is used
    with caplog.at_level(logging.WARNING, logger="hf_lpselect"):
        model = load_model(str(tiny_model_dir)).model
    assert model.use_kernels is False
    assert any(r.getMessage().startswith("Offline: transformers' Hub kernels are off") for r in caplog.records)


def test_use_hub_kernels_set_by_the_user_is_left_to_transformers(tiny_model_dir, monkeypatch):
    from hf_lpselect.models import hub_kernels_kwargs

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("USE_HUB_KERNELS", "1")
    assert hub_kernels_kwargs({}) == {}
    monkeypatch.delenv("USE_HUB_KERNELS")
    assert hub_kernels_kwargs({"use_kernels": True}) == {}
    assert hub_kernels_kwargs({}) == {"use_kernels": False}


def test_eval_keeps_float32_weights_on_a_cpu():
    assert inference_dtype("auto", "cpu") == "float32"
    assert inference_dtype("bfloat16", "cpu") == "bfloat16"
