"""Judge arithmetic (docs/method.md §8) on hand-made verdict tables: both orders → win / tie / lose →
winning score = (win - lose) / total + 1; an unreadable reply is counted, never a tie."""

from __future__ import annotations

import math

import pytest

from hf_lpselect.eval.verdicts import Tally, combine, pair_outcome, parse_scores, tally


@pytest.mark.parametrize(
    "reply, scores",
    [
        ("8 6\nAssistant 1 gave more detail.", (8.0, 6.0)),
        ("7,7", (7.0, 7.0)),
        ("  \n**9 / 4**\nexplanation", (9.0, 4.0)),
        ("8.5 10", (8.5, 10.0)),
    ],
)
def test_parse_scores_reads_the_first_line(reply, scores):
    assert parse_scores(reply) == scores


@pytest.mark.parametrize(
    "reply",
    ["", "\n\n\n", "Assistant 1 is better.", "8", "8 6 5", "Scores: 8 and 6", "0 5", "11 3", "8 6 because"],
)
def test_parse_scores_refuses_anything_else(reply):
    assert parse_scores(reply) is None


@pytest.mark.parametrize(
    "first, second, outcome",
    [
        ("win", "win", "win"),
        ("win", "tie", "win"),
        ("tie", "win", "win"),
        ("tie", "tie", "tie"),
        ("win", "lose", "tie"),
        ("lose", "win", "tie"),
        ("lose", "lose", "lose"),
        ("lose", "tie", "lose"),
        ("tie", "lose", "lose"),
    ],
)
def test_combine_is_the_method_table(first, second, outcome):
    assert combine(first, second) == outcome


def test_pair_outcome_reads_the_second_order_mirrored():
    # order 1 shows the model first, order 2 shows it second: (score of first shown, score of second shown)
    assert pair_outcome((8, 6), (6, 8)) == "win"  # preferred in both orders
    assert pair_outcome((8, 6), (7, 7)) == "win"  # win + tie
    assert pair_outcome((8, 6), (9, 5)) == "tie"  # the judge always prefers the first answer: win + lose
    assert pair_outcome((5, 5), (5, 5)) == "tie"
    assert pair_outcome((4, 6), (6, 4)) == "lose"
    assert pair_outcome((4, 6), (5, 5)) == "lose"  # lose + tie


def test_an_unparseable_order_makes_the_pair_unparseable_not_a_tie():
    assert pair_outcome(None, (6, 8)) is None
    assert pair_outcome((8, 6), None) is None
    counts = tally([None, None, "win"])
    assert (counts.win, counts.tie, counts.lose, counts.unparseable, counts.total) == (1, 0, 0, 2, 1)
    assert counts.winning_score == 2.0  # one judged pair, won: the unparseable two do not dilute it


def test_tally_on_a_hand_made_table():
    # ten pairs of (order 1 scores, order 2 scores), the verdict written next to each
    table = [
        ((9, 3), (3, 9)),  # win
        ((8, 7), (7, 7)),  # win
        ((7, 7), (6, 8)),  # win (tie + win)
        ((6, 6), (6, 6)),  # tie
        ((8, 5), (8, 5)),  # tie (win + lose)
        ((5, 8), (5, 8)),  # tie (lose + win)
        ((3, 9), (9, 3)),  # lose
        ((5, 5), (8, 4)),  # lose (tie + lose)
        ((9, 2), None),  # unparseable
        (None, None),  # unparseable
    ]
    counts = tally(pair_outcome(a, b) for a, b in table)
    assert counts == Tally(win=3, tie=3, lose=2, unparseable=2)
    assert counts.total == 8
    assert counts.winning_score == pytest.approx((3 - 2) / 8 + 1)  # 1.125
    assert counts.to_dict() == {"win": 3, "tie": 3, "lose": 2, "unparseable": 2, "total": 8, "winning_score": 1.125}


def test_winning_score_bounds():
    assert tally(["win"] * 4).winning_score == 2.0
    assert tally(["lose"] * 4).winning_score == 0.0
    assert tally(["tie"] * 4).winning_score == 1.0
    assert tally(["win", "lose"]).winning_score == 1.0


def test_no_judged_pair_gives_no_score():
    counts = tally([None, None])
    assert math.isnan(counts.winning_score)
    assert counts.to_dict()["winning_score"] is None


def test_unknown_outcomes_are_refused():
    with pytest.raises(ValueError):
        tally(["win", "draw"])
    with pytest.raises(ValueError):
        combine("win", "draw")
