import calendar
import operator
import re
from collections import Counter

import datasets
import pytest

from hf_lpselect.scoring.demo_data import FAMILIES, WRONG_FRACTION, demo_dataset, make_demo_rows


# Enough rows that every family gets several deliberately wrong ones.
MANY = make_demo_rows(1200, seed=3)


def ints(text):
    return [int(x) for x in re.findall(r"\d+", text)]


def arithmetic_ok(row):
    text = f"{row['instruction']} {row['input']}"
    a, b = ints(text)
    if re.search(r"\+|plus", text):
        expected = a + b
    elif re.search(r" - |minus", text):
        expected = a - b
    else:
        expected = a * b
    return row["output"] == str(expected)


def word_problem_ok(row):
    q, out = row["instruction"], row["output"]
    nums = ints(q)
    if "boxes" in q:
        expected = nums[0] * nums[1] - nums[2]
    elif "cows" in q:
        expected = 4 * nums[0] + 2 * nums[1]
    elif "apples" in q:
        expected = (nums[0] + nums[1]) // nums[2]
    else:
        expected = 50 - nums[0] * nums[1]
    ops = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.floordiv}
    steps = re.findall(r"(\d+) ([-+*/]) (\d+) = (\d+)", out)
    steps_hold = all(ops[op](int(a), int(b)) == int(c) for a, op, b, c in steps)
    return out.endswith(f"The answer is {expected}.") and steps_hold


def string_ok(row):
    ins = row["instruction"]
    quoted = re.findall(r"'(\w+)'", ins)
    text = row["input"] or quoted[-1]
    if "backwards" in ins or "Reverse" in ins:
        expected = text[::-1]
    elif "vowels" in ins:
        expected = str(sum(text.count(v) for v in "aeiou"))
    elif "uppercase" in ins or "capital" in ins:
        expected = text.upper()
    elif "letter" in ins:
        expected = str(text.count(quoted[0]))
    else:
        expected = ", ".join(sorted(text.split(", ")))
    return row["output"] == expected


FACTORS = {
    ("kilometers", "meters"): 1000,
    ("meters", "centimeters"): 100,
    ("kilograms", "grams"): 1000,
    ("hours", "minutes"): 60,
    ("minutes", "seconds"): 60,
    ("days", "hours"): 24,
}


def unit_conversion_ok(row):
    text = f"{row['instruction']} {row['input']}"
    x, src = re.search(r"(\d+) (\w+)", text).groups()
    dst = re.search(r"(?:How many|to) (\w+)", row["instruction"]).group(1)
    return row["output"] == f"{int(x) * FACTORS[src, dst]} {dst}"


def fact_ok(row):
    ins, days = row["instruction"], list(calendar.day_name)
    nums = ints(ins)
    if row["input"]:
        seq = ints(row["input"])
        expected = str(2 * seq[-1] - seq[-2])
    elif any(d in ins for d in days):
        start = next(d for d in days if d in ins)
        expected = days[(days.index(start) + nums[0]) % 7]
    elif "prime" in ins:
        expected = "Yes" if all(nums[0] % k for k in range(2, int(nums[0] ** 0.5) + 1)) else "No"
    elif "even" in ins:
        expected = "Odd" if nums[0] % 2 else "Even"
    else:
        expected = str(max(nums))
    return row["output"] == expected


def list_ok(row):
    ins, nums = row["instruction"].lower(), ints(row["input"])
    if "sum" in ins or "add up" in ins:
        expected = str(sum(nums))
    elif "largest" in ins or "maximum" in ins:
        expected = str(max(nums))
    elif "smallest" in ins or "minimum" in ins:
        expected = str(min(nums))
    else:
        expected = ", ".join(map(str, sorted(nums)))
    return row["output"] == expected


CHECKERS = {
    "arithmetic": arithmetic_ok,
    "word_problem": word_problem_ok,
    "string": string_ok,
    "unit_conversion": unit_conversion_ok,
    "fact": fact_ok,
    "list": list_ok,
}


@pytest.mark.parametrize("family", FAMILIES)
def test_answers_are_right_unless_deliberately_wrong(family):
    rows = [r for r in MANY if r["family"] == family]
    assert any(r["deliberately_wrong"] for r in rows)
    for row in rows:
        assert CHECKERS[family](row) is not row["deliberately_wrong"], row


def test_deterministic_per_seed():
    assert make_demo_rows(60, seed=1) == make_demo_rows(60, seed=1)
    assert make_demo_rows(60, seed=1) != make_demo_rows(60, seed=2)


@pytest.mark.parametrize("n", [1, 7, 60, 240])
def test_exact_size_and_balanced_families(n):
    counts = Counter(r["family"] for r in make_demo_rows(n))
    assert sum(counts.values()) == n
    assert set(counts) <= set(FAMILIES)
    assert all(n // len(FAMILIES) <= counts[f] <= n // len(FAMILIES) + 1 for f in FAMILIES)


def test_record_shape_and_no_duplicates():
    rows = make_demo_rows()
    assert {r["family"] for r in rows} == set(FAMILIES)
    for r in rows:
        assert set(r) == {"instruction", "input", "output", "family", "deliberately_wrong"}
        assert isinstance(r["input"], str) and isinstance(r["deliberately_wrong"], bool)
        assert isinstance(r["output"], str) and r["output"].strip()
        assert len(r["instruction"].split()) <= 30 and len(r["output"].split()) <= 30
    assert len({(r["instruction"], r["input"]) for r in rows}) == len(rows)
    assert any(r["input"] for r in rows) and any(not r["input"] for r in rows)


@pytest.mark.parametrize("n", [60, 240, 1000])
def test_deliberately_wrong_count(n):
    wrong = sum(r["deliberately_wrong"] for r in make_demo_rows(n))
    assert wrong == round(n * WRONG_FRACTION)
    assert 2 <= wrong <= 0.04 * n


def test_dataset_round_trip(tmp_path):
    ds = demo_dataset(30, seed=5)
    assert isinstance(ds, datasets.Dataset)
    ds.save_to_disk(str(tmp_path / "demo"))
    assert datasets.load_from_disk(str(tmp_path / "demo")).to_list() == make_demo_rows(30, seed=5)
