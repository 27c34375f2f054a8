"""The endpoint judge through a REAL OpenAI-compatible server on loopback: ``transformers serve``
(shipped with transformers; needs fastapi, uvicorn and openai, ``pip install 'hf-lpselect[test]'``)
serving a tiny local model folder offline, queried with the ``openai`` client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from eval_models import ANY, bigram_model
from transformers.utils.import_utils import is_serve_available

from hf_lpselect.errors import EvalError
from hf_lpselect.eval import EvalArguments, evaluate
from hf_lpselect.eval.judge import EndpointJudge


pytestmark = pytest.mark.skipif(
    not is_serve_available(),
    reason="transformers serve needs fastapi, uvicorn and openai (pip install 'hf-lpselect[test]')",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served_judge(tmp_path_factory, tokenizer):
    """A judge that always replies "9 2" (prefers whichever answer it is shown first), served on 127.0.0.1."""
    root = tmp_path_factory.mktemp("served")
    judge = bigram_model(tokenizer, root / "judge", {ANY: "9 2"})
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(root / "hf_home")}
    log = (root / "serve.log").open("w")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("transformers")),
            "serve",
            str(judge),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--device",
            "cpu",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            if server.poll() is not None:
                pytest.fail(f"transformers serve exited: {(root / 'serve.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("transformers serve did not answer /health within a minute")
        yield root, judge, f"{url}/v1"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_eval_through_transformers_serve(served_judge, tokenizer):
    root, judge, base_url = served_judge
    yes = bigram_model(tokenizer, root / "yes", {ANY: "yes"})
    no = bigram_model(tokenizer, root / "no", {ANY: "no"})
    (root / "q.jsonl").write_text(
        "".join(json.dumps({"id": f"q{i}", "prompt": p}) + "\n" for i, p in enumerate(["Hello?", "Ready?"]))
    )
    result = evaluate(
        EvalArguments(
            models=[f"yes={yes}", f"no={no}"],
            test_sets=[str(root / "q.jsonl")],
            eval_dir=str(root / "out"),
            max_new_tokens=4,
            judge_base_url=base_url,
            judge_model=str(judge),
            judge_max_new_tokens=6,
            judge_workers=2,
        )
    )
    judgments = [json.loads(line) for line in result.judgments.read_text().splitlines()]
    assert len(judgments) == 4
    assert {(j["reply"], tuple(j["scores"])) for j in judgments} == {("9 2", (9, 2))}
    assert {j["judge"]["backend"] for j in judgments} == {"endpoint"}
    # shown first it wins, shown second it loses: win + lose = tie, every pair
    assert result.to_dict()["pairwise"] == [
        {
            "model": "yes",
            "baseline": "no",
            "test_set": "q",
            "win": 0,
            "tie": 2,
            "lose": 0,
            "unparseable": 0,
            "total": 2,
            "winning_score": 1.0,
        }
    ]


def test_an_unknown_model_on_the_endpoint_is_one_sentence(served_judge):
    _, _, base_url = served_judge
    judge = EndpointJudge(base_url, "no/such-model", max_tokens=2)
    with pytest.raises(EvalError, match="answered HTTP 4.. for model 'no/such-model'"):
        list(judge.replies(["Hi"]))


def test_an_unreachable_endpoint_is_one_sentence():
    judge = EndpointJudge(f"http://127.0.0.1:{_free_port()}/v1", "m", max_tokens=2)
    judge.client = judge.client.with_options(max_retries=0)
    with pytest.raises(EvalError, match="Could not reach the judge"):
        list(judge.replies(["Hi"]))
