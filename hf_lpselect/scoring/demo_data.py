"""A small instruction dataset that the project generates itself, for `lpselect demo`.

The demo has to run offline on a fresh install, fine-tuning a tiny model on 2 CPU cores in a few
minutes, so it cannot download a dataset and its rows must be short. This module builds Alpaca-format
rows from six task families of varied difficulty (arithmetic, multi-step word problems, string
manipulation, unit conversion, simple facts, list operations). Every answer is computed by code, so
the labels are known to be right, except for a few rows (about 3%) whose computed answer is
deliberately perturbed and flagged `deliberately_wrong=True`: a model cannot learn them from the
pattern of the task, so learning-percentage selection should rank them among the hardest.
"""

from __future__ import annotations

import random

import datasets


WRONG_FRACTION = 0.03
FAMILIES = ("arithmetic", "word_problem", "string", "unit_conversion", "fact", "list")

WORDS = (
    "apple",
    "garden",
    "river",
    "planet",
    "window",
    "pencil",
    "rabbit",
    "orange",
    "silver",
    "candle",
    "forest",
    "guitar",
    "butter",
    "mirror",
    "ticket",
    "yellow",
    "monkey",
    "basket",
    "island",
    "banana",
    "tomato",
    "doctor",
    "summer",
    "winter",
    "castle",
    "bridge",
    "pocket",
    "rocket",
    "spider",
    "turtle",
    "violin",
    "wallet",
    "zebra",
    "lemon",
    "cloud",
    "horse",
    "train",
    "music",
    "paper",
    "tiger",
)
NAMES = ("Anna", "Ben", "Carla", "Dev", "Emma", "Felix", "Grace", "Hugo", "Ivy", "Jonas")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
UNITS = (  # (from, to, factor)
    ("kilometers", "meters", 1000),
    ("meters", "centimeters", 100),
    ("kilograms", "grams", 1000),
    ("hours", "minutes", 60),
    ("minutes", "seconds", 60),
    ("days", "hours", 24),
)


def _answer(value, rng: random.Random, wrong: bool):
    """Return the computed answer, or a plausible but certainly different one when `wrong`."""
    if not wrong:
        return value
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.randint(1, 6)  # 1..6 so a day-of-week index stays wrong modulo 7
    shuffled = list(value)  # a word (shuffle letters) or a list (shuffle items)
    while shuffled == list(value):
        rng.shuffle(shuffled)
    return shuffled if isinstance(value, list) else "".join(shuffled)


def _arithmetic(rng: random.Random, wrong: bool) -> tuple[str, str, str]:
    op = rng.choice("+-*")
    if op == "*":
        a, b = rng.randint(2, 12), rng.randint(2, 19)
    else:
        a, b = sorted((rng.randint(1, 99), rng.randint(1, 99)), reverse=True)
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    word = {"+": "plus", "-": "minus", "*": "times"}[op]
    instruction, input_ = rng.choice(
        [
            (f"What is {a} {op} {b}?", ""),
            (f"Calculate {a} {word} {b}.", ""),
            ("Compute the result of this expression.", f"{a} {op} {b}"),
        ]
    )
    return instruction, input_, str(_answer(value, rng, wrong))


def _word_problem(rng: random.Random, wrong: bool) -> tuple[str, str, str]:
    name, kind = rng.choice(NAMES), rng.randrange(4)
    if kind == 0:
        k, m, g = rng.randint(2, 6), rng.randint(6, 12), rng.randint(1, 9)
        r = _answer(k * m - g, rng, wrong)
        question = f"{name} buys {k} boxes of {m} pencils and gives away {g}. How many pencils are left?"
        steps = f"{k} * {m} = {k * m}; {k * m} - {g} = {r}"
    elif kind == 1:
        c, h = rng.randint(2, 9), rng.randint(2, 9)
        r = _answer(4 * c + 2 * h, rng, wrong)
        question = f"{name}'s farm has {c} cows and {h} hens. How many legs do they have in total?"
        steps = f"4 * {c} = {4 * c}; 2 * {h} = {2 * h}; {4 * c} + {2 * h} = {r}"
    elif kind == 2:
        c, each = rng.randint(2, 5), rng.randint(2, 9)
        a = rng.randint(2, c * each - 2)
        r = _answer(each, rng, wrong)
        question = (
            f"{name} has {a} apples, buys {c * each - a} more, and shares them equally among "
            f"{c} friends. How many apples does each friend get?"
        )
        steps = f"{a} + {c * each - a} = {c * each}; {c * each} / {c} = {r}"
    else:
        p, k = rng.randint(2, 8), rng.randint(2, 6)
        r = _answer(50 - k * p, rng, wrong)
        question = f"Pens cost {p} dollars each. {name} buys {k} pens with a 50-dollar note. How much change is left?"
        steps = f"{k} * {p} = {k * p}; 50 - {k * p} = {r}"
    return question, "", f"{steps}. The answer is {r}."


def _string(rng: random.Random, wrong: bool) -> tuple[str, str, str]:
    w, kind = rng.choice(WORDS), rng.randrange(5)
    if kind == 0:
        output = _answer(w[::-1], rng, wrong)
        instruction, input_ = rng.choice(
            [
                ("Reverse the letters of this word.", w),
                ("Write this word backwards.", w),
                (f"Spell '{w}' backwards.", ""),
            ]
        )
    elif kind == 1:
        output = str(_answer(sum(ch in "aeiou" for ch in w), rng, wrong))
        instruction, input_ = rng.choice(
            [
                ("How many vowels are in this word?", w),
                (f"Count the vowels in the word '{w}'.", ""),
            ]
        )
    elif kind == 2:
        letter = rng.choice(w if rng.random() < 0.8 else "abcdefghijklmnopqrstuvwxyz")
        output = str(_answer(w.count(letter), rng, wrong))
        instruction, input_ = rng.choice(
            [
                (f"How many times does the letter '{letter}' appear in this word?", w),
                (f"Count the letter '{letter}' in '{w}'.", ""),
            ]
        )
    else:
        words = rng.sample(WORDS, rng.randint(2, 4))
        if kind == 3:
            output = " ".join(_answer([x.upper() for x in words], rng, wrong))
            phrasings = ["Convert this phrase to uppercase.", "Rewrite the text in capital letters."]
            sep = " "
        else:
            output = ", ".join(_answer(sorted(words), rng, wrong))
            phrasings = ["Sort these words alphabetically.", "Put the following words in alphabetical order."]
            sep = ", "
        instruction, input_ = rng.choice(phrasings), sep.join(words)
    return instruction, input_, output


def _unit_conversion(rng: random.Random, wrong: bool) -> tuple[str, str, str]:
    src, dst, factor = rng.choice(UNITS)
    x = rng.randint(2, 120)
    instruction, input_ = rng.choice(
        [
            (f"How many {dst} are in {x} {src}?", ""),
            (f"Convert {x} {src} to {dst}.", ""),
            (f"Convert the following to {dst}.", f"{x} {src}"),
        ]
    )
    return instruction, input_, f"{_answer(x * factor, rng, wrong)} {dst}"


def _fact(rng: random.Random, wrong: bool) -> tuple[str, str, str]:
    kind = rng.randrange(5)
    if kind == 0:
        start, days = rng.randrange(7), rng.randint(2, 20)
        output = DAYS[_answer(start + days, rng, wrong) % 7]
        instruction = rng.choice(
            [
                f"If today is {DAYS[start]}, what day will it be in {days} days?",
                f"What day of the week is it {days} days after {DAYS[start]}?",
            ]
        )
        return instruction, "", output
    if kind == 1:
        x = rng.randint(2, 60)
        prime = _answer(all(x % d for d in range(2, x)), rng, wrong)
        return (
            rng.choice([f"Is {x} a prime number?", f"Is {x} prime? Answer yes or no."]),
            "",
            "Yes" if prime else "No",
        )
    if kind == 2:
        x = rng.randint(1, 199)
        even = _answer(x % 2 == 0, rng, wrong)
        instruction = rng.choice([f"Is {x} even or odd?", f"Tell whether {x} is an even or an odd number."])
        return instruction, "", "Even" if even else "Odd"
    if kind == 3:
        a, b = rng.sample(range(1, 100), 2)
        instruction = rng.choice([f"Which is larger, {a} or {b}?", f"Which number is bigger: {a} or {b}?"])
        return instruction, "", str(_answer(max(a, b), rng, wrong))
    a, d = rng.randint(1, 30), rng.randint(2, 9)
    instruction = rng.choice(
        ["What number comes next in this sequence?", "Continue the arithmetic sequence with the next number."]
    )
    return instruction, ", ".join(str(a + i * d) for i in range(4)), str(_answer(a + 4 * d, rng, wrong))


def _list(rng: random.Random, wrong: bool) -> tuple[str, str, str]:
    nums = rng.sample(range(1, 50), rng.randint(4, 6))
    op = rng.choice(["sum", "max", "min", "sort"])
    instruction = rng.choice(
        {
            "sum": ["What is the sum of these numbers?", "Add up the numbers in the list."],
            "max": ["Find the largest number in the list.", "What is the maximum of these numbers?"],
            "min": ["Find the smallest number in the list.", "What is the minimum of these numbers?"],
            "sort": ["Sort these numbers in ascending order.", "Arrange the numbers from lowest to highest."],
        }[op]
    )
    value = _answer({"sum": sum, "max": max, "min": min, "sort": sorted}[op](nums), rng, wrong)
    output = ", ".join(map(str, value)) if op == "sort" else str(value)
    return instruction, ", ".join(map(str, nums)), output


_GENERATORS = {
    "arithmetic": _arithmetic,
    "word_problem": _word_problem,
    "string": _string,
    "unit_conversion": _unit_conversion,
    "fact": _fact,
    "list": _list,
}


def make_demo_rows(n: int = 240, seed: int = 0) -> list[dict]:
    """Return `n` distinct Alpaca rows, the families in equal shares (±1), deterministic per (n, seed).

    Each row is {"instruction", "input", "output", "family", "deliberately_wrong"}; `input` is "" for
    rows without input. round(n * WRONG_FRACTION) rows (at least 2 once n >= 60) carry a perturbed
    answer and deliberately_wrong=True. No two rows share the same (instruction, input).
    """
    rng = random.Random(seed)
    families = [FAMILIES[i % len(FAMILIES)] for i in range(n)]
    rng.shuffle(families)
    wrong_rows = set(rng.sample(range(n), round(n * WRONG_FRACTION)))
    rows, seen = [], set()
    for i, family in enumerate(families):
        for _ in range(1000):
            instruction, input_, output = _GENERATORS[family](rng, i in wrong_rows)
            if (instruction, input_) not in seen:
                break
        else:
            raise ValueError(f"cannot make {n} distinct demo rows")
        seen.add((instruction, input_))
        rows.append(
            {
                "instruction": instruction,
                "input": input_,
                "output": output,
                "family": family,
                "deliberately_wrong": i in wrong_rows,
            }
        )
    return rows


def demo_dataset(n: int = 240, seed: int = 0) -> datasets.Dataset:
    """The demo rows as a `datasets.Dataset`."""
    return datasets.Dataset.from_list(make_demo_rows(n, seed))
