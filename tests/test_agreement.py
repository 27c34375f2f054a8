"""Agreement between two scorer runs on constructed rankings with hand-computed statistics."""

import json
import math

import pandas as pd
import pytest

from hf_lpselect.selection.agreement import agreement


NAN = float("nan")


def scores(lp1, ppl_0=None, ids=None, status=None) -> pd.DataFrame:
    n = len(lp1)
    return pd.DataFrame(
        {
            "row": range(n),
            "id": ids or [f"q{i}" for i in range(n)],
            "status": status or ["ok"] * n,
            "lp1": lp1,
            "ppl_0": ppl_0 if ppl_0 is not None else [float(i + 1) for i in range(n)],
        }
    )


def overlaps(result, column="lp1"):
    return {t["fraction"]: t["overlap"] for t in result["results"][column]["top"]}


def test_identical_rankings_agree_fully():
    a = scores([i / 10 for i in range(10)])
    result = agreement(a, a.copy())
    lp1 = result["results"]["lp1"]
    assert lp1["spearman"] == pytest.approx(1.0) and lp1["kendall_tau_b"] == pytest.approx(1.0)
    assert set(overlaps(result).values()) == {1.0}
    assert result["n_matched"] == 10 and result["n_dropped"] == {"a": 0, "b": 0}


def test_reversed_rankings():
    a = scores([i / 10 for i in range(10)])
    b = scores([1 - i / 10 for i in range(10)])
    lp1 = agreement(a, b)["results"]["lp1"]
    assert lp1["spearman"] == pytest.approx(-1.0) and lp1["kendall_tau_b"] == pytest.approx(-1.0)
    # hardest 33 % = 3 rows (3.3 rounds to 3): {q0, q1, q2} in a, {q9, q8, q7} in b
    top33 = lp1["top"][-1]
    assert (top33["k"], top33["n_common"], top33["overlap"]) == (3, 0, 0.0)


def test_one_swapped_adjacent_pair_among_four():
    # a ranks q0 < q1 < q2 < q3; b swaps q0 and q1.
    # Kendall: 6 pairs, 5 concordant, 1 discordant -> tau = (5 - 1) / 6 = 2/3.
    # Spearman: rank differences d = (1, 1, 0, 0), rho = 1 - 6 * 2 / (4 * (16 - 1)) = 0.8.
    a = scores([0.1, 0.2, 0.3, 0.4])
    b = scores([0.2, 0.1, 0.3, 0.4])
    lp1 = agreement(a, b)["results"]["lp1"]
    assert lp1["kendall_tau_b"] == pytest.approx(2 / 3)
    assert lp1["spearman"] == pytest.approx(0.8)


def test_kendall_is_tau_b_with_ties():
    # b ties q0 and q1. tau-b = (n_c - n_d) / sqrt((n0 - t_a) (n0 - t_b)), n0 = 6 pairs:
    # the tied pair is neither concordant nor discordant, the other 5 are concordant, t_a = 0, t_b = 1
    # -> 5 / sqrt(6 * 5) = 0.9129
    a = scores([0.1, 0.2, 0.3, 0.4])
    b = scores([0.1, 0.1, 0.3, 0.4])
    assert agreement(a, b)["results"]["lp1"]["kendall_tau_b"] == pytest.approx(5 / math.sqrt(30))


def test_top_overlap_against_random_expectation():
    # hardest 3 of 10 in a: q0, q1, q2; in b: q0, q1, q3 (q2 and q3 swapped) -> overlap 2/3
    a = scores([i / 10 for i in range(10)])
    b_lp1 = [i / 10 for i in range(10)]
    b_lp1[2], b_lp1[3] = b_lp1[3], b_lp1[2]
    result = agreement(a, scores(b_lp1), top=(0.1, 0.3))
    top10, top30 = result["results"]["lp1"]["top"]
    assert top10 == {"fraction": 0.1, "k": 1, "n_common": 1, "overlap": 1.0, "expected_random": 0.1}
    assert top30 == {"fraction": 0.3, "k": 3, "n_common": 2, "overlap": 2 / 3, "expected_random": 0.3}


def test_hardest_is_low_lp1_and_high_ppl0():
    # lp1: low is hardest; ppl_0: high is hardest. In both tables q0 has the lowest lp1 and q9 the
    # highest ppl_0, and everything else is scrambled between the two tables.
    a = scores([0.0, 0.9, 0.2, 0.7, 0.4, 0.5, 0.6, 0.3, 0.8, 0.1], ppl_0=[1, 9, 3, 7, 5, 4, 6, 2, 8, 10])
    b = scores([0.0, 0.1, 0.8, 0.3, 0.6, 0.5, 0.4, 0.7, 0.2, 0.9], ppl_0=[1, 2, 8, 3, 6, 5, 4, 7, 9, 10])
    result = agreement(a, b, top=(0.1,))
    assert result["results"]["lp1"]["hardest"] == "low" and overlaps(result)[0.1] == 1.0
    assert result["results"]["ppl_0"]["hardest"] == "high" and overlaps(result, "ppl_0")[0.1] == 1.0
    # told that HIGH lp1 is hardest, the top-1 sets are a's highest lp1 (q1) and b's (q9): disjoint
    assert overlaps(agreement(a, b, top=(0.1,), hardest="high"))[0.1] == 0.0


def test_reference_answers_does_p0_agree_more_than_lp():
    a = scores([i / 10 for i in range(10)], ppl_0=[float(i) for i in range(10)])
    b = scores([1 - i / 10 for i in range(10)], ppl_0=[float(i) for i in range(10)])
    result = agreement(a, b)
    assert result["results"]["lp1"]["spearman"] == pytest.approx(-1.0)
    assert result["results"]["ppl_0"]["spearman"] == pytest.approx(1.0)
    assert result["reference"] == "ppl_0"
    assert list(agreement(a, b, reference=None)["results"]) == ["lp1"]


def test_matching_by_id_ignores_row_order():
    a = scores([0.4, 0.1, 0.3, 0.2, 0.5, 0.9])
    b = a.sample(frac=1, random_state=3).reset_index(drop=True)
    b["row"] = range(len(b))  # another run may number its rows differently
    b["lp1"] = b["lp1"] + 0.01  # same ranking, other values
    result = agreement(a, b)
    assert result["n_matched"] == 6
    assert result["results"]["lp1"]["spearman"] == pytest.approx(1.0)
    assert result["results"]["lp1"]["kendall_tau_b"] == pytest.approx(1.0)


def test_dropped_rows_are_counted_by_reason():
    a = scores(
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, NAN],
        ids=["q0", "q1", "q2", "q3", "q4", "q1", "q6"],  # q1 again in row 5: a later duplicate
        status=["ok", "ok", "ok", "invalid", "ok", "ok", "ok"],
    )
    b = scores(
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        ppl_0=[1.0, 2.0, NAN, 4.0, 5.0, 6.0],
        ids=["q0", "q1", "q2", "q3", "q4", "q9"],
    )
    result = agreement(a, b)
    # matched: q0, q1, q4. a drops q3 (invalid), row 5 (duplicate q1), q6 (lp1 NaN), q2 (its b row has
    # NaN ppl_0); b drops q2 (ppl_0 NaN), q3 (invalid in a) and q9 (absent from a).
    assert result["n_a"] == 7 and result["n_b"] == 6 and result["n_matched"] == 3
    assert result["dropped"]["a"] == {
        "status invalid": 1,
        "duplicate id (later rows dropped)": 1,
        "lp1 is NaN": 1,
        "no usable match in the other table": 1,
    }
    assert result["dropped"]["b"] == {"ppl_0 is NaN": 1, "no usable match in the other table": 2}
    assert result["n_dropped"] == {"a": 4, "b": 3}
    assert result["n_a"] - result["n_dropped"]["a"] == result["n_matched"]


def test_result_is_plain_json_even_when_undefined():
    a = scores([0.5, 0.5, 0.5])  # constant: correlations undefined -> None, never NaN
    result = agreement(a, a.copy())
    assert result["results"]["lp1"]["spearman"] is None
    assert json.loads(json.dumps(result, allow_nan=False)) == result


def test_errors():
    a = scores([0.1, 0.2])
    with pytest.raises(ValueError, match="reference=None"):
        agreement(a, a.drop(columns="ppl_0"))
    with pytest.raises(ValueError, match="top fraction"):
        agreement(a, a, top=(0.0,))
    with pytest.raises(ValueError, match="hard end"):
        agreement(a.assign(rouge=1.0), a.assign(rouge=1.0), score="rouge")
