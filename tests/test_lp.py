"""LP formulas on a hand-computed table (docs/method.md §2), NaN rules included (§5)."""

import math

import numpy as np
import pandas as pd
import pytest

from hf_lpselect.lp import NO_DROP_REASON, NOT_SCORED_REASON, learning_percentages
from hf_lpselect.scoring.scorer_run import build_scores


NAN = float("nan")

# P_0, P_1, P_2, P_3 per row, and what the paper's formulas give by hand
TABLE = [
    # P                      lp_1   lp_2   lp_3   lp_app  reason
    ([10.0, 6.0, 4.0, 2.0], 0.5, 0.25, 0.25, 0.4, ""),
    ([5.0, 5.0, 5.0, 5.0], NAN, NAN, NAN, 0.0, NO_DROP_REASON),  # learned nothing: LP undefined
    ([4.0, 2.0, 3.0, 3.0], 2.0, -1.0, 0.0, 0.5, ""),  # LP(1) > 1: kept and flagged
    ([4.0, 5.0, 3.0, 2.0], -0.5, 1.0, 0.5, -0.25, ""),  # LP(1) < 0: kept and flagged
    ([3.0, 2.0, 2.5, 4.0], NAN, NAN, NAN, 1 / 3, NO_DROP_REASON),  # got worse overall
    ([NAN, NAN, NAN, NAN], NAN, NAN, NAN, NAN, NOT_SCORED_REASON),  # excluded row
]


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)


def test_learning_percentages_hand_table():
    lp = learning_percentages(np.array([p for p, *_ in TABLE]))
    for i, (_, lp1, lp2, lp3, lp_app, reason) in enumerate(TABLE):
        assert _same(lp.loc[i, "lp_1"], lp1)
        assert _same(lp.loc[i, "lp_2"], lp2)
        assert _same(lp.loc[i, "lp_3"], lp3)
        assert _same(lp.loc[i, "lp1"], lp1)
        assert _same(lp.loc[i, "lp_app"], lp_app)
        assert lp.loc[i, "lp_reason"] == reason
    assert lp["lp1_above_1"].tolist() == [False, False, True, False, False, False]
    assert lp["lp1_below_0"].tolist() == [False, False, False, True, False, False]


def test_lp_per_epoch_shares_sum_to_one_where_defined():
    lp = learning_percentages(np.array([p for p, *_ in TABLE]))
    total = lp[["lp_1", "lp_2", "lp_3"]].sum(axis=1, skipna=False)
    defined = lp["lp1"].notna()
    assert np.allclose(total[defined], 1.0)


def test_lp_never_turns_undefined_into_zero():
    # the reference code's bug: 0/0 became LP = 0 and ranked those rows hardest
    lp = learning_percentages(np.array([[1.0, 1.0, 1.0], [NAN, NAN, NAN]]))
    assert lp["lp1"].isna().all()


def test_build_scores_keeps_every_input_row():
    rows = pd.DataFrame(
        {
            "row": [0, 1, 2, 3],
            "id": ["a", "b", "c", "d"],
            "status": ["ok", "excluded", "ok", "invalid"],
            "reason": ["", "no response token left", "", "empty response"],
            "n_response_tokens": [3, 0, 5, 0],
        }
    )
    nll = {0: [math.log(10), math.log(4), math.log(2)], 2: [math.log(8), math.log(2), math.log(4)]}
    passes = [pd.DataFrame({"row": [0, 2], "nll": [nll[0][k], nll[2][k]], "n_tokens": [3, 5]}) for k in range(3)]
    scores = build_scores(rows, passes)
    assert scores["row"].tolist() == [0, 1, 2, 3]
    assert scores.loc[0, "ppl_0"] == pytest.approx(10)
    assert scores.loc[0, "lp1"] == pytest.approx(6 / 8)
    assert scores.loc[0, "lp_app"] == pytest.approx(0.6)
    assert scores.loc[2, "lp1"] == pytest.approx(6 / 4) and scores.loc[2, "lp1_above_1"]
    for unscored in (1, 3):
        assert scores.loc[unscored, ["nll_0", "ppl_0", "lp1", "lp_app"]].isna().all()
        assert scores.loc[unscored, "lp_reason"] == NOT_SCORED_REASON
        assert scores.loc[unscored, "status"] == rows.loc[unscored, "status"]
