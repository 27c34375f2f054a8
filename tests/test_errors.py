"""Specification of hf_lpselect.errors: one base class, each error also the type the libraries we extend raise
for that kind of problem, raised where the problem is found; a bug in a library below is never turned into
a user's sentence."""

import pickle

import httpx2
import pandas as pd
import pytest
from huggingface_hub.errors import HfHubHTTPError
from test_report import make_run

from hf_lpselect.errors import (
    ClusterError,
    ConfigError,
    DataError,
    EvalError,
    HubError,
    LPSelectError,
    LpselectError,
    ModelError,
    RunError,
    SelectionError,
    TemplateError,
    TrainError,
)
from hf_lpselect.eval.paired import bootstrap_ci
from hf_lpselect.hub.columns import parse_subset, scores_from_columns, select_scored
from hf_lpselect.selection.strategies import select
from hf_lpselect.selection.subsets import select_run


VALUE_ERRORS = (DataError, TemplateError, ModelError, RunError, ClusterError, SelectionError, TrainError, ConfigError)
VALUE_ERRORS += (EvalError,)


def test_one_base_class_under_both_spellings():
    assert LPSelectError is LpselectError
    for error in (*VALUE_ERRORS, HubError):
        assert issubclass(error, LpselectError), error


def test_a_bad_value_is_also_a_value_error():
    for error in VALUE_ERRORS:
        assert issubclass(error, ValueError), error
    assert not issubclass(LpselectError, ValueError)  # the base says nothing of the kind


def test_hub_error_is_huggingface_hubs_http_error():
    err = HubError("No Hugging Face token: run `hf auth login` or set HF_TOKEN, then push again.")
    assert isinstance(err, HfHubHTTPError) and isinstance(err, OSError) and not isinstance(err, ValueError)
    assert str(err).startswith("No Hugging Face token") and err.response is None and err.request_id is None
    answered = HubError(
        "Someone else pushed first.",
        response=httpx2.Response(412, headers={"x-request-id": "r-1"}, request=httpx2.Request("POST", "http://hub/")),
    )
    assert answered.response.status_code == 412 and answered.request_id == "r-1"
    again = pickle.loads(pickle.dumps(err))  # crosses a process boundary (accelerate, a Space worker) intact
    assert type(again) is HubError and str(again) == str(err)


SCORES = pd.DataFrame(
    {"row": [0, 1, 2], "id": ["a", "b", "c"], "status": ["ok"] * 3, "lp1": [0.1, 0.5, 0.9], "n_response_tokens": 4}
)


@pytest.mark.parametrize(
    "call, error, says",
    [
        (lambda: select(SCORES, "lp9-hard", fraction=0.5), SelectionError, "Unknown strategy 'lp9-hard'"),
        (lambda: select(SCORES, "lp1-hard", fraction=1.5), SelectionError, r"fraction must be a number in \(0, 1\]"),
        (lambda: select(SCORES, "ifd-nll", fraction=0.5), SelectionError, "no column 'ifd_nll'"),
        (
            lambda: select_scored(SCORES, "clustered-random", fraction=0.5),
            SelectionError,
            "cannot be selected from score",
        ),
        (lambda: parse_subset("lp1_hard_500pct"), ConfigError, r"percentage must be in \(0, 100\]"),
        (lambda: scores_from_columns(pd.DataFrame({"x": [1]})), DataError, "not pushed by `lpselect push-scores`"),
        (lambda: bootstrap_ci([1.0, float("nan")]), EvalError, "NaN"),
    ],
)
def test_raised_as_our_type_where_found(call, error, says):
    with pytest.raises(error, match=says):
        call()


def test_a_library_bug_below_a_stage_keeps_its_own_type(tmp_path, monkeypatch):
    """select_run does not re-wrap every ValueError as a user's mistake: one from pandas (here: made up) is a
    bug, and keeps its type and traceback."""
    run = make_run(tmp_path / "run", 2)

    def broken(*args, **kwargs):
        raise ValueError("Length mismatch: Expected axis has 3 elements")  # what a pandas bug says

    monkeypatch.setattr("hf_lpselect.selection.subsets.select", broken)
    with pytest.raises(ValueError, match="Length mismatch") as caught:
        select_run(run.path, "lp1-hard", fraction=0.5)
    assert not isinstance(caught.value, LpselectError)
