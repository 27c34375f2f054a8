"""Pairwise verdicts: read a judge's two scores, combine both orders, tally win / tie / lose.

The arithmetic is docs/method.md §8, exactly. Each pair (model answer, baseline answer) is judged twice,
once with the model's answer shown first and once with it shown second. Per order the model wins,
ties or loses on the two 1-10 scores; the two orders combine as

    win  = win + win,  or win + tie
    tie  = tie + tie,  or win + lose
    lose = lose + lose, or lose + tie

and ``winning score = (win - lose) / total + 1`` (1.0 = parity, 2.0 = every pair won). A reply
whose scores cannot be read makes its pair *unparseable*: counted and reported, never a tie, and
left out of ``total``. Pure: no torch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from ..errors import EvalError


OUTCOMES = ("win", "tie", "lose")
SCORE_RANGE = (1.0, 10.0)

_NUMBER = r"(\d+(?:\.\d+)?)"
_SCORE_LINE = re.compile(rf"{_NUMBER}\s*(?:,|\s|/|;)\s*{_NUMBER}")
_DECORATION = "*`'\" \t"


def parse_scores(text: str) -> tuple[float, float] | None:
    """The two scores on the first non-empty line of a judge reply, or None when it holds no such pair.

    The line must be exactly two numbers in ``[1, 10]`` separated by a space, comma, slash or
    semicolon (markdown bold or quotes around it are ignored); anything else is unparseable.

    Args:
        text (`str`): the judge's raw reply.

    Returns:
        `tuple[float, float] | None`: (score of the answer shown first, score of the one shown second).

    Example:
        >>> parse_scores("8 6\\nAssistant 1 is more detailed.")
        (8.0, 6.0)
        >>> parse_scores("Assistant 1 is better.") is None
        True
    """
    line = next((line for line in text.splitlines() if line.strip()), "").strip(_DECORATION)
    match = _SCORE_LINE.fullmatch(line)
    if match is None:
        return None
    scores = float(match.group(1)), float(match.group(2))
    low, high = SCORE_RANGE
    if not all(low <= s <= high for s in scores):
        return None
    return scores


def order_outcome(model_score: float, baseline_score: float) -> str:
    """``win``, ``tie`` or ``lose`` for the model in one order."""
    if model_score > baseline_score:
        return "win"
    if model_score < baseline_score:
        return "lose"
    return "tie"


def combine(first: str, second: str) -> str:
    """The pair's outcome from the model's outcomes in the two orders (docs/method.md §8).

    Example:
        >>> combine("win", "tie"), combine("win", "lose"), combine("tie", "lose")
        ('win', 'tie', 'lose')
    """
    both = {first, second}
    if not both <= set(OUTCOMES):
        raise EvalError(f"outcomes must be among {OUTCOMES}, got {first!r} and {second!r}")
    if both in ({"win"}, {"win", "tie"}):
        return "win"
    if both in ({"lose"}, {"lose", "tie"}):
        return "lose"
    return "tie"  # tie + tie, or win + lose


def pair_outcome(model_first: tuple[float, float] | None, model_second: tuple[float, float] | None) -> str | None:
    """Outcome of one pair from the parsed scores of its two orders; None when either is unparseable.

    Args:
        model_first (`tuple[float, float] | None`): scores of the order with the model's answer first.
        model_second (`tuple[float, float] | None`): scores of the order with the model's answer second.

    Example:
        >>> pair_outcome((8, 6), (7, 7))   # wins shown first, ties shown second
        'win'
        >>> pair_outcome((8, 6), (9, 5))   # the judge prefers whichever answer comes first
        'tie'
    """
    if model_first is None or model_second is None:
        return None
    return combine(order_outcome(model_first[0], model_first[1]), order_outcome(model_second[1], model_second[0]))


@dataclass(frozen=True)
class Tally:
    """Counts of one comparison (a model against the baseline on one test set)."""

    win: int
    tie: int
    lose: int
    unparseable: int

    @property
    def total(self) -> int:
        """Pairs with a verdict (unparseable ones are not counted)."""
        return self.win + self.tie + self.lose

    @property
    def winning_score(self) -> float:
        """``(win - lose) / total + 1``; NaN when no pair has a verdict."""
        return (self.win - self.lose) / self.total + 1 if self.total else math.nan

    def to_dict(self) -> dict[str, float | int | None]:
        """The counts, ``total`` and ``winning_score`` (None when NaN, so it is valid JSON)."""
        score = self.winning_score
        return {**asdict(self), "total": self.total, "winning_score": None if math.isnan(score) else score}


def tally(outcomes: Iterable[str | None]) -> Tally:
    """Count pair outcomes (``None`` = unparseable).

    Example:
        >>> t = tally(["win", "win", "tie", "lose", None])
        >>> t.total, t.unparseable, t.winning_score
        (4, 1, 1.25)
    """
    outcomes = list(outcomes)
    unknown = {o for o in outcomes if o is not None and o not in OUTCOMES}
    if unknown:
        raise EvalError(f"unknown outcomes {sorted(unknown)}")
    return Tally(*(outcomes.count(o) for o in OUTCOMES), unparseable=outcomes.count(None))
