"""`lpselect eval` against a judge that misbehaves: a real OpenAI-compatible server on
127.0.0.1 that fails on purpose (tests/judge_server.py), asked by the real `openai` client.

Timeouts, 429 and 5xx, garbage and empty bodies are asked again (bounded, with backoff) and never
turned into a verdict; replies with no scores are counted as unparseable; a judge that dies mid-run
stops eval with one sentence, and the same command then asks only for what is missing; answers and
replies cached before a kill -9 are reused."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
from eval_models import ANY, bigram_model
from judge_server import MisbehavingJudge

from hf_lpselect.errors import EvalError
from hf_lpselect.eval import EvalArguments, evaluate


pytest.importorskip("openai", reason="an endpoint judge needs the openai client (pip install 'hf-lpselect[eval]')")

QUESTIONS = ["Is water wet?", "Is the sky green?", "Do cats purr?", "Is ice cold?"]
N_REQUESTS = 2 * len(QUESTIONS)  # one pair per question, both orders


@pytest.fixture(scope="module")
def models(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("judge_faults")
    yes = bigram_model(tokenizer, root / "yes", {ANY: "yes"})
    no = bigram_model(tokenizer, root / "no", {ANY: "no"})
    (root / "q.jsonl").write_text(
        "".join(json.dumps({"id": f"q{i}", "prompt": q}) + "\n" for i, q in enumerate(QUESTIONS))
    )
    return root, yes, no


def arguments(models, eval_dir, base_url, **extra) -> EvalArguments:
    root, yes, no = models
    return EvalArguments(
        models=[f"yes={yes}", f"no={no}"],
        test_sets=[str(root / "q.jsonl")],
        eval_dir=str(eval_dir),
        max_new_tokens=3,
        judge_base_url=base_url,
        judge_model="loopback-judge",
        judge_workers=1,
        judge_timeout=1.0,
        **extra,
    )


def cli(models, eval_dir, base_url) -> list[str]:
    root, yes, no = models
    return [
        sys.executable,
        "-m",
        "hf_lpselect.cli",
        "eval",
        "--models",
        f"yes={yes}",
        f"no={no}",
        "--test_sets",
        str(root / "q.jsonl"),
        "--eval_dir",
        str(eval_dir),
        "--max_new_tokens",
        "3",
        "--judge_base_url",
        base_url,
        "--judge_model",
        "loopback-judge",
        "--judge_workers",
        "1",
        "--judge_timeout",
        "1",
    ]


def judgments(eval_dir) -> list[dict]:
    return [json.loads(line) for line in (eval_dir / "judgments.jsonl").read_text().splitlines()]


def test_transient_failures_are_asked_again_and_never_become_a_verdict(models, tmp_path):
    script = ["429", "500", "garbage", "empty", "slow", "503"]
    with MisbehavingJudge(script, slow_seconds=3) as judge:
        result = evaluate(arguments(models, tmp_path / "out", judge.base_url))
    assert len(judge.asked) == N_REQUESTS + len(script)  # each failure asked again once
    records = judgments(tmp_path / "out")
    assert len(records) == N_REQUESTS and {tuple(r["scores"]) for r in records} == {(9, 2)}
    # "9 2" in both orders: the answer shown first wins each time, so every pair is a tie
    assert result.to_dict()["pairwise"][0] == {
        "model": "yes",
        "baseline": "no",
        "test_set": "q",
        "win": 0,
        "tie": 4,
        "lose": 0,
        "unparseable": 0,
        "total": 4,
        "winning_score": 1.0,
    }


def test_replies_without_scores_are_counted_unparseable_never_as_ties(models, tmp_path):
    with MisbehavingJudge(["unparseable", "ok", "ok", "empty-content"]) as judge:  # pairs 1 and 2 lose one order each
        result = evaluate(arguments(models, tmp_path / "out", judge.base_url))
    pairwise = result.to_dict()["pairwise"][0]
    assert (pairwise["unparseable"], pairwise["tie"], pairwise["total"]) == (2, 2, 2)  # total: pairs with a verdict
    assert sum(r["scores"] is None for r in judgments(tmp_path / "out")) == 2
    assert len(judge.asked) == N_REQUESTS  # a reply is a reply: not asked again


def test_a_judge_that_keeps_failing_is_one_sentence_on_its_own_line(models, tmp_path):
    with MisbehavingJudge(default="500") as judge:
        done = subprocess.run(
            cli(models, tmp_path / "out", judge.base_url), capture_output=True, text=True, timeout=600
        )
    assert done.returncode == 2, done.stderr[-3000:]
    assert re.search(
        r"(?m)^Error: The judge at \S+ kept failing \(HTTP 500.*\) after 4 tries; the replies already given are kept",
        done.stderr,
    )
    assert "Traceback" not in done.stderr
    assert len(judge.asked) == 4  # bounded: 1 + 3 retries


def test_a_judge_that_dies_mid_run_resumes_asking_only_for_what_is_missing(models, tmp_path):
    out = tmp_path / "out"
    with MisbehavingJudge(["ok", "ok", "ok", "die"]) as judge:
        port = judge.port
        with pytest.raises(EvalError, match="Could not reach the judge .* the replies already given are kept"):
            evaluate(arguments(models, out, judge.base_url))
    assert len(judgments(out)) == 3  # what it answered before it died
    with MisbehavingJudge(port=port) as judge:  # back up, at the same address
        result = evaluate(arguments(models, out, judge.base_url))
    assert len(judge.asked) == N_REQUESTS - 3
    assert [g["n_generated"] for g in result.to_dict()["generation"]] == [0, 0]  # the answers came from the cache
    with MisbehavingJudge() as judge:
        straight = evaluate(arguments(models, tmp_path / "straight", judge.base_url))
    assert result.to_dict()["pairwise"] == straight.to_dict()["pairwise"]


def test_cached_answers_and_replies_survive_kill_9(models, tmp_path):
    out = tmp_path / "out"
    with MisbehavingJudge(["ok", "ok", "slow"], slow_seconds=30) as judge:
        port = judge.port
        process = subprocess.Popen(
            cli(models, out, judge.base_url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 300
        while len(judge.asked) < 3 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert len(judge.asked) == 3, "the run never reached its third judge request"
        process.kill()  # SIGKILL, while the third reply is awaited
        process.wait()
    generations = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    assert len(generations) == 2 * len(QUESTIONS) and len(judgments(out)) == 2
    with MisbehavingJudge(port=port) as judge:
        done = subprocess.run(cli(models, out, judge.base_url), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(judge.asked) == N_REQUESTS - 2
    results = json.loads((out / "results.json").read_text())
    assert [g["n_generated"] for g in results["generation"]] == [0, 0]
    assert results["pairwise"][0]["total"] == 4 and results["pairwise"][0]["unparseable"] == 0


def test_with_no_retries_the_error_counts_one_try():
    """--judge_max_retries 0 once said "(1 tries)"."""
    import socket

    from hf_lpselect.eval.judge import EndpointJudge

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    judge = EndpointJudge(f"http://127.0.0.1:{port}/v1", "judge", max_retries=0, timeout=5)
    with pytest.raises(EvalError, match=r"^Could not reach the judge at \S+ \(1 try\); start the server"):
        judge._ask("Which answer is better?")
