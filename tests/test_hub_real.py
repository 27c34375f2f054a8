"""Opt-in smoke test against the REAL Hugging Face Hub: what the loopback Hub cannot prove (Xet
storage, auth, the Hub's own card and YAML checks).

Skipped unless ``LPSELECT_HUB_SMOKE_NAMESPACE`` names a user or org you can write to and a token is
available (``HF_TOKEN`` or ``hf auth login``). It pushes a tiny scored dataset to a new PRIVATE repo
``NAMESPACE/lpselect-smoke-<random>``, loads every config back by repo id, and deletes the repo.

    LPSELECT_HUB_SMOKE_NAMESPACE=my-user python -m pytest tests/test_hub_real.py
"""

import json
import os
import subprocess
import sys
import textwrap
import uuid

import pytest

from hf_lpselect.hub.columns import DEFAULT_SUBSETS
from hf_lpselect.scoring.demo_data import make_demo_rows


NAMESPACE = os.environ.get("LPSELECT_HUB_SMOKE_NAMESPACE")
pytestmark = pytest.mark.skipif(not NAMESPACE, reason="opt-in: set LPSELECT_HUB_SMOKE_NAMESPACE (and a token) to run")

CLIENT = textwrap.dedent("""
    import json, sys
    import datasets
    from huggingface_hub import HfApi, get_token
    import hf_lpselect
    repo, run = sys.argv[1:3]
    if not get_token():
        print(json.dumps({"skip": "no Hugging Face token"})); sys.exit(0)
    api = HfApi()
    try:
        plan = hf_lpselect.push_scores(repo, run=run, private=True)
        out = {"url": plan.url, "configs": plan.configs, "loaded": {}}
        for name in plan.configs:
            out["loaded"][name] = datasets.load_dataset(repo, name, split="train").num_rows
        out["commits"] = [c.title for c in api.list_repo_commits(repo, repo_type="dataset")]
    finally:
        api.delete_repo(repo, repo_type="dataset", missing_ok=True)
    print(json.dumps(out))
""")


def test_push_to_the_real_hub_and_load_every_config(tmp_path, tiny_model_dir):
    from hf_lpselect.scoring.scorer_run import score

    data = tmp_path / "data.jsonl"
    data.write_text(
        "".join(
            json.dumps({k: r[k] for k in ("instruction", "input", "output")}) + "\n"
            for r in make_demo_rows(30, seed=1)
        )
    )
    run = score(
        str(data),
        out=tmp_path / "run",
        model=str(tiny_model_dir),
        epochs=2,
        max_length=128,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        learning_rate=1e-3,
        bf16=False,
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    repo = f"{NAMESPACE}/lpselect-smoke-{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [sys.executable, "-c", CLIENT, repo, str(run.run_dir.path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    if "skip" in out:
        pytest.skip(out["skip"])
    assert set(out["configs"]) == {"default", *DEFAULT_SUBSETS}
    assert out["loaded"] == out["configs"]
    assert out["commits"][0].startswith("Add learning-percentage scores")
