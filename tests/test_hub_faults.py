"""`lpselect push-scores` against a Hub that fails, with fault injection in the loopback Hub
(tests/hub_server/, `LoopbackHub.fail`): 429 / 5xx in the middle of an upload, a connection lost
mid-answer, a commit whose answer is lost although it landed, someone else's push landing first.

Transient failures are asked again (bounded, with backoff) and the push completes; anything else is
one sentence. Nothing half-published reaches `main`: the push is one commit (or a pull request) or
nothing, and the same command completes once the Hub behaves."""

import re
import subprocess
import sys

import pytest
from conftest import FAST, write_jsonl

from hf_lpselect.scoring.demo_data import make_demo_rows
from hf_lpselect.scoring.scorer_run import score


REPO = "me/faults"
COMMIT = rf"^/api/datasets/{REPO}/commit/"


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir):
    base = tmp_path_factory.mktemp("hub_faults")
    data = write_jsonl(
        base / "d.jsonl", [{k: r[k] for k in ("instruction", "input", "output")} for r in make_demo_rows(8, seed=7)]
    )
    score(data, out=base / "run", model=str(tiny_model_dir), epochs=1, max_length=64, **FAST)
    return base / "run"


@pytest.fixture(scope="module")
def other_run(tmp_path_factory, tiny_model_dir):
    """A finished run of another dataset (other rows, another file)."""
    base = tmp_path_factory.mktemp("hub_faults_other")
    data = write_jsonl(
        base / "other.jsonl",
        [{k: r[k] for k in ("instruction", "input", "output")} for r in make_demo_rows(8, seed=21)],
    )
    score(data, out=base / "run", model=str(tiny_model_dir), epochs=1, max_length=64, **FAST)
    return base / "run"


def push(hub, run, *extra: str, subsets: str = "none") -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "hf_lpselect.cli",
            "push-scores",
            REPO,
            "--run",
            str(run),
            "--subsets",
            subsets,
            *extra,
        ],
        env=hub.env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def ours(hub) -> list[str]:
    return [m for m in hub.commit_messages(REPO) if m.startswith("Add ")]


def one_sentence(done: subprocess.CompletedProcess, pattern: str) -> None:
    assert done.returncode == 2, done.stderr[-3000:]
    assert re.search(rf"(?m)^Error: {pattern}", done.stderr), done.stderr[-3000:]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "fault",
    [
        {"method": "POST", "path": COMMIT, "status": 429, "times": 2, "retry_after": 1},  # rate-limited twice
        {"method": "POST", "path": COMMIT, "status": 503, "times": 1},
        {"method": "PUT", "path": "^/api/loopback/lfs/", "status": 500, "times": 1},  # mid-upload: an LFS object
        {"method": "POST", "path": COMMIT, "action": "drop", "times": 1},  # the connection is lost
    ],
)
def test_a_transient_failure_is_asked_again_and_the_push_completes(loopback_hub, run, fault):
    loopback_hub.fail(**{"action": "status", **fault})
    done = push(loopback_hub, run)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [r.get("used", 0) for r in loopback_hub.faults()] == [fault["times"]]  # the fault did happen
    assert len(ours(loopback_hub)) == 1  # one commit
    assert any(f.startswith("data/train-") for f in loopback_hub.files(REPO))


def test_a_commit_that_landed_but_whose_answer_was_lost_is_not_pushed_twice(loopback_hub, run):
    assert push(loopback_hub, run, subsets="lp_app_hard_50pct").returncode == 0  # the next push has a parent commit
    loopback_hub.fail("POST", COMMIT, "after-status", status=502)
    done = push(loopback_hub, run)  # other content (no subset): a real commit
    assert done.returncode == 0, done.stderr[-3000:]
    assert loopback_hub.faults()[0]["used"] == 1
    assert not [f for f in loopback_hub.files(REPO) if f.startswith("lpselect/subsets/")]
    assert len(ours(loopback_hub)) == 2  # the first push and this one, once


def test_a_hub_that_keeps_failing_is_one_sentence_nothing_lands_and_the_same_command_completes(loopback_hub, run):
    loopback_hub.fail("POST", COMMIT, status=500, times=100)
    done = push(loopback_hub, run)
    one_sentence(done, rf"Pushing to {REPO} failed after 4 tries .*no commit was made, re-run the same command\.")
    assert loopback_hub.faults()[0]["used"] == 4  # bounded
    assert ours(loopback_hub) == [] and not [f for f in loopback_hub.files(REPO) if f.startswith("data/")]
    loopback_hub.clear_faults()
    again = push(loopback_hub, run)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(ours(loopback_hub)) == 1


def test_a_refusal_is_not_retried(loopback_hub, run):
    loopback_hub.fail("POST", COMMIT, status=403, times=100)
    done = push(loopback_hub, run)
    one_sentence(done, rf"Pushing to {REPO} failed \(")
    assert loopback_hub.faults()[0]["used"] == 1


def test_someone_elses_push_in_between_is_kept_and_the_same_command_pushes_on_top(loopback_hub, run):
    assert push(loopback_hub, run, subsets="lp_app_hard_50pct").returncode == 0  # the next push changes files
    before = loopback_hub.commit_messages(REPO)
    loopback_hub.fail("POST", COMMIT, "commit-first", repo_id=REPO, path_in_repo="NOTES.md")
    done = push(loopback_hub, run)
    one_sentence(done, rf"Someone else pushed to {REPO} while this push was being made, so nothing was pushed")
    assert loopback_hub.commit_messages(REPO) == ["Someone else's push", *before]  # theirs, nothing of ours
    again = push(loopback_hub, run)
    assert again.returncode == 0, again.stderr[-3000:]
    assert loopback_hub.commit_messages(REPO)[1] == "Someone else's push" and "NOTES.md" in loopback_hub.files(REPO)


def test_a_pull_request_that_fails_leaves_main_alone(loopback_hub, run):
    assert push(loopback_hub, run, subsets="lp_app_hard_50pct").returncode == 0  # the PR would change files
    main = loopback_hub.repo(REPO).resolve("main")
    loopback_hub.fail("POST", COMMIT, status=500, times=100)
    one_sentence(push(loopback_hub, run, "--create-pr"), rf"Pushing to {REPO} failed after 4 tries")
    assert loopback_hub.repo(REPO).resolve("main") == main


def test_someone_elses_commit_on_a_first_push_is_kept_and_the_same_command_completes(loopback_hub, run):
    """The repo was just made (`hf repo create`), empty. Before: the re-run was refused with "already holds
    another dataset": datasets counts their OTHER.md as a data file."""
    with loopback_hub.repo(REPO).locked():
        loopback_hub.repo(REPO).create()
    loopback_hub.fail("POST", COMMIT, "commit-first", repo_id=REPO, path_in_repo="OTHER.md")
    done = push(loopback_hub, run)
    one_sentence(done, rf"Someone else pushed to {REPO} while this push was being made, so nothing was pushed")
    assert ours(loopback_hub) == [] and "OTHER.md" in loopback_hub.files(REPO)
    again = push(loopback_hub, run)
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(ours(loopback_hub)) == 1 and "OTHER.md" in loopback_hub.files(REPO)


def test_a_push_onto_the_pushed_scores_of_another_dataset_is_refused(loopback_hub, run, other_run):
    """Before: exit 0, and the default config became the other dataset's rows (our own tag exempted the repo)."""
    assert push(loopback_hub, run).returncode == 0
    files = loopback_hub.files(REPO)
    done = push(loopback_hub, other_run)
    one_sentence(
        done,
        rf"{REPO} holds the pushed scores of another dataset, d\.jsonl \(local\), not of the one the run scored "
        r"\(other\.jsonl \(local\)\); push to a new repo, or score d\.jsonl \(local\) to update its scores\.$",
    )
    assert len(ours(loopback_hub)) == 1 and loopback_hub.files(REPO) == files  # nothing of the other run landed
    again = push(loopback_hub, run, subsets="lp_app_hard_50pct")  # the repo's own dataset, scored again: pushed
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(ours(loopback_hub)) == 2


def test_a_target_card_with_a_broken_yaml_header_is_one_sentence(tmp_path):
    """Before: ``yaml.parser.ParserError`` and a traceback (only a header that is YAML but no mapping was caught).
    A stand-in for HfApi: the loopback Hub itself cannot serve a repo whose card it cannot parse."""
    from types import SimpleNamespace

    from hf_lpselect.errors import DataError
    from hf_lpselect.hub.push import read_target

    card = tmp_path / "README.md"
    card.write_text("---\nconfigs: [unclosed\n  b: :\n---\nOur notes.\n")
    api = SimpleNamespace(
        dataset_info=lambda repo_id: SimpleNamespace(sha="0" * 40), hf_hub_download=lambda *a, **k: card
    )
    with pytest.raises(
        DataError, match=rf"^The dataset card of {REPO} cannot be parsed \(.*\); fix its YAML header\.$"
    ):
        read_target(api, REPO, detect=False)
