"""IFD (Cherry LLM / Superfiltering) from the one-pass ``--epochs 0 --ifd`` run equals a naive
two-pass reference: each response scored after its prompt and after a lone BOS token."""

import json

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from hf_lpselect.scoring.demo_data import make_demo_rows
from hf_lpselect.scoring.scorer_run import score
from hf_lpselect.templates import prompt_text


def mean_nll(model, context: list[int], response: list[int]) -> float:
    ids = torch.tensor([context + response])
    labels = torch.tensor([[-100] * len(context) + response])
    with torch.no_grad():
        return model(input_ids=ids, labels=labels).loss.item()


def test_ifd_equals_naive_two_pass_reference(tmp_path, tiny_model_dir):
    records = make_demo_rows(10, seed=4)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = score(
        str(data),
        out=tmp_path / "run",
        model=str(tiny_model_dir),
        epochs=0,
        ifd=True,
        template="alpaca",
        max_length=256,
        bf16=False,
    )
    scores = result.scores.set_index("row")
    assert pd.read_parquet(result.run_dir.pass_path(0, "alone"))["row"].tolist() == list(range(10))

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    for row, r in enumerate(records):
        prompt = tok(prompt_text(r["instruction"], r["input"], "alpaca"), add_special_tokens=False)["input_ids"]
        response = tok(r["output"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        with_prompt = mean_nll(model, prompt, response)
        alone = mean_nll(model, [tok.bos_token_id], response)  # SmolLM2 adds no BOS itself: its BOS stands alone
        assert np.isclose(scores.loc[row, "nll_alone"], alone, atol=1e-5)
        assert np.isclose(scores.loc[row, "ifd_nll"], with_prompt / alone, rtol=1e-5)
        assert np.isclose(scores.loc[row, "ifd_ppl"], np.exp(with_prompt) / np.exp(alone), rtol=1e-4)
    assert "lp1" not in scores  # one pass, no training: the Superfiltering use
