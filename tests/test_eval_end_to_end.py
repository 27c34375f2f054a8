"""``evaluate`` end to end with local models: answers, reference NLL, a local judge in both orders,
results.json, the figure, and resuming.

The answer models and one judge are hand-wired bigram models (tests/eval_models.py), so every
answer and verdict is known in advance; the other judge is a random tiny model, whose replies
are garbage: every pair must then be counted unparseable, never a tie.
"""

from __future__ import annotations

import json

import pytest
from eval_models import ANY, bigram_model

from hf_lpselect.errors import EvalError, RunError
from hf_lpselect.eval import EvalArguments, evaluate
from hf_lpselect.eval.eval_result import PairwiseRow


QUESTIONS = [
    {"question_id": i, "text": text}
    for i, text in enumerate(["Is water wet?", "Is the sky green?", "Do cats purr?"], 1)
]
WITH_REFERENCES = [{"instruction": "Is fire hot?", "output": "yes"}, {"instruction": "Is ice hot?", "output": "no"}]
# The judge reads "{answer_2}" last, so the last prompt token is the answer shown second
JUDGE_PROMPT = "Question: {question}\nAnswer 1: {answer_1}\nAnswer 2: {answer_2}"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("eval_e2e")
    yes = bigram_model(tokenizer, root / "yes", {ANY: "yes"})
    no = bigram_model(tokenizer, root / "no", {ANY: "no"})
    last = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"][-1]  # noqa: E731
    # "no" shown second = the model was shown first: it scores "9 2" (first wins); "yes" shown second: "4,7" (second wins)
    judge = bigram_model(
        tokenizer, root / "judge", {last("Answer 2: no"): "9 2", last("Answer 2: yes"): "4,7"}, chat_template=False
    )
    (root / "judge_prompt.txt").write_text(JUDGE_PROMPT)
    (root / "vicuna_test_set.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    (root / "refs.json").write_text(json.dumps(WITH_REFERENCES))
    return root, yes, no, judge


def _args(root, yes, no, **kwargs) -> EvalArguments:
    return EvalArguments(
        models=[f"yes={yes}", f"no={no}"],
        test_sets=[str(root / "vicuna_test_set.jsonl"), f"refs={root / 'refs.json'}"],
        max_new_tokens=5,
        batch_size=2,
        **kwargs,
    )


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_judge_that_always_prefers_the_model_gives_winning_score_2(setup):
    root, yes, no, judge = setup
    args = _args(
        root,
        yes,
        no,
        eval_dir=str(root / "out"),
        judge_model=str(judge),
        judge_prompt=str(root / "judge_prompt.txt"),
        judge_max_new_tokens=6,
    )
    result = evaluate(args)
    r = result.to_dict()
    assert r["baseline"] == "no"
    generations = _lines(result.generations)
    assert len(generations) == 2 * (3 + 2)
    assert {(g["model"], g["answer"], g["finished"]) for g in generations} == {
        ("yes", "yes", True),
        ("no", "no", True),
    }
    judgments = _lines(result.judgments)
    assert len(judgments) == 2 * (3 + 2)  # both orders of every pair
    assert {(j["order"], j["reply"], tuple(j["scores"])) for j in judgments} == {
        ("model_first", "9 2", (9, 2)),
        ("model_second", "4,7", (4, 7)),
    }
    expected = {"win": 3, "tie": 0, "lose": 0, "unparseable": 0, "total": 3, "winning_score": 2.0}
    assert r["pairwise"][0] == {"model": "yes", "baseline": "no", "test_set": "vicuna", **expected}
    assert result.pairwise[0] == PairwiseRow(model="yes", baseline="no", test_set="vicuna", **expected)  # typed rows
    assert r["pairwise"][1]["test_set"] == "refs" and r["pairwise"][1]["winning_score"] == 2.0
    assert r["pairwise"][2] == {
        "model": "yes",
        "baseline": "no",
        "test_set": "all",
        "win": 5,
        "tie": 0,
        "lose": 0,
        "unparseable": 0,
        "total": 5,
        "winning_score": 2.0,
    }
    # the references ("yes", "no") of the refs set, scored under each model: each model finds its own word likelier
    ref = {(x["model"], x["set"]): x for x in r["reference"]}
    assert set(ref) == {("yes", "refs"), ("no", "refs")}
    assert ref["yes", "refs"]["n_scored"] == 2 and ref["yes", "refs"]["mean_nll"] > 0
    assert json.loads(result.results_json.read_text())["pairwise"] == r["pairwise"]
    assert result.figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (root / "out" / "reference_nll.parquet").is_file()
    summary = result.summary()
    assert "yes / vicuna: 3 0 0 (0) -> 2.000" in summary and "unparseable, not as ties" not in summary

    # the same command again: every answer and every reply comes from the files
    again = evaluate(args)
    assert [g["n_generated"] for g in again.to_dict()["generation"]] == [0, 0, 0, 0]
    assert len(_lines(result.judgments)) == 2 * (3 + 2)
    assert again.to_dict()["pairwise"] == r["pairwise"]


def test_garbage_judge_replies_are_counted_unparseable_never_ties(setup, tiny_model_dir):
    root, yes, no, _ = setup
    result = evaluate(
        _args(
            root,
            yes,
            no,
            eval_dir=str(root / "garbage"),
            judge_model=str(tiny_model_dir),
            judge_max_new_tokens=4,
            limit=2,
        )
    )
    judgments = _lines(result.judgments)
    assert len(judgments) == 2 * (2 + 2) and all(j["scores"] is None for j in judgments)
    assert result.to_dict()["pairwise"][-1] == {
        "model": "yes",
        "baseline": "no",
        "test_set": "all",
        "win": 0,
        "tie": 0,
        "lose": 0,
        "unparseable": 4,
        "total": 0,
        "winning_score": None,
    }
    assert "4 pair(s) had a judge reply without two readable scores" in result.summary()


def test_no_judge_gives_answers_and_reference_metrics_only(setup):
    root, yes, no, _ = setup
    result = evaluate(_args(root, yes, no, eval_dir=str(root / "nojudge"), baseline="yes"))
    assert result.to_dict()["judge"] is None and result.to_dict()["pairwise"] == [] and result.figure is None
    assert result.to_dict()["baseline"] == "yes"
    assert not result.judgments.exists()
    assert "No judge configured" in result.summary()
    assert "judgments.jsonl" not in result.summary().split("Written:")[1]


def test_reference_nll_only_names_no_answers_and_no_file_it_did_not_write(setup):
    """Before: an empty "Answers" header and "Written: generations.jsonl", though no answer was generated."""
    root, yes, no, _ = setup
    result = evaluate(
        EvalArguments(
            models=[f"yes={yes}"], reference_sets=[f"refs={root / 'refs.json'}"], eval_dir=str(root / "refonly")
        )
    )
    summary = result.summary()
    assert "Answers" not in summary and "Reference answers" in summary
    assert not result.generations.exists()
    assert summary.splitlines()[-1] == "Written: results.json"


def test_bad_baseline_and_prompt_fail_before_any_work(setup):
    root, yes, no, _ = setup
    with pytest.raises(EvalError, match="--baseline 'maybe' is not one of --models"):
        evaluate(_args(root, yes, no, eval_dir=str(root / "bad"), baseline="maybe"))
    (root / "bad_prompt.txt").write_text("Rate {answer_1} against {answer_2}.")
    with pytest.raises(EvalError, match=r"lacks \{question\}"):
        evaluate(
            _args(
                root, yes, no, eval_dir=str(root / "bad"), judge_model="j", judge_prompt=str(root / "bad_prompt.txt")
            )
        )
    assert not (root / "bad" / "generations.jsonl").exists()


SHARED_EVAL = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eval"


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_EVAL.is_dir(), reason="../shared/data/eval is absent (the real test sets)")
def test_the_default_model_answers_real_questions_and_scores_real_references(tmp_path):
    result = evaluate(
        EvalArguments(
            models=["default"],
            limit=2,
            max_new_tokens=48,
            eval_dir=str(tmp_path / "eval"),
            test_sets=[
                str(SHARED_EVAL / "cherry_llm_test_data/vicuna_test_set.jsonl"),
                f"alpaca_eval={SHARED_EVAL / 'alpaca_eval/gpt4_1106_preview_model_outputs.json'}",
            ],
        )
    )
    answers = _lines(result.generations)
    assert len(answers) == 4 and all(len(a["answer"].split()) >= 5 for a in answers)  # real sentences, chat template
    (ref,) = result.to_dict()["reference"]
    assert ref["set"] == "alpaca_eval" and ref["n_scored"] == 2
    assert (
        0.5 < ref["mean_nll"] < 3.0
    )  # GPT-4 answers are likely text for an instruct model, not noise (ln 49152 = 10.8)


def test_a_second_eval_into_the_same_eval_dir_is_refused_while_the_first_runs(setup, monkeypatch):
    """Before: both ran, the judge was asked twice for every reply and judgments.jsonl held duplicate keys.
    The second eval is started from inside the first one's generation, while the first holds the folder."""
    import hf_lpselect.eval.pipeline as pipeline

    root, yes, no, _ = setup
    args = _args(root, yes, no, eval_dir=str(root / "twice"), baseline="yes")
    started, refusals, generate = [], [], pipeline.generate_answers

    def generate_and_start_a_second_eval(*a, **k):
        if not started:
            started.append(True)
            with pytest.raises(RunError) as refused:
                evaluate(args)
            refusals.append(str(refused.value))
        return generate(*a, **k)

    monkeypatch.setattr(pipeline, "generate_answers", generate_and_start_a_second_eval)
    evaluate(args)
    assert refusals == [
        f"Another lpselect process is writing to {root / 'twice'}; wait for it to finish or pass another --eval_dir."
    ]
