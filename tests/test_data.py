"""Specification of hf_lpselect.ingest: any instruction dataset -> canonical rows (offline)."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path

import datasets
import pytest

from hf_lpselect.ingest import (
    FORMATS,
    DataError,
    canonicalize,
    content_id,
    detect_format,
    load_rows,
    map_columns,
    parse_column_map,
    read_source,
)


SHARED = Path(__file__).resolve().parents[1].parent / "shared"  # ../shared beside the repository
DOLLY_3K = SHARED / "data/train/dolly_subset_alpagasus/dolly_3k.json"
ALPACA = SHARED / "data/train/alpaca/alpaca_data.json"
COLUMNS = ["row", "id", "status", "reason", "instruction", "input", "output", "messages", "format"]

RECORDS = [
    {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
    {"instruction": "Name a colour.", "input": "", "output": "Blue."},
    {"instruction": "Say hi.", "input": "", "output": "Hi!"},
]


def sha16(record: dict) -> str:
    """The id as the spec defines it, written independently of the implementation."""
    text = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def canon(tmp_path: Path, records: list, format: str = "auto") -> list[dict]:
    """Canonical rows of `records` read through a JSONL file (the path real files take)."""
    return load_rows(str(write_jsonl(tmp_path / "data.jsonl", records)), format=format).to_list()


# ----------------------------------------------------------------------------- sources


def test_json_array_jsonl_and_json_lines_in_a_json_file_read_the_same(tmp_path):
    array = tmp_path / "a.json"
    array.write_text(json.dumps(RECORDS, indent=2), encoding="utf-8")
    lines = write_jsonl(tmp_path / "b.jsonl", RECORDS)
    lines_in_json = write_jsonl(tmp_path / "c.json", RECORDS)
    for path in (array, lines, lines_in_json):
        assert read_source(str(path)).to_list() == RECORDS


def test_parquet_source(tmp_path):
    path = tmp_path / "d.parquet"
    datasets.Dataset.from_list(RECORDS).to_parquet(str(path))
    assert read_source(str(path)).to_list() == RECORDS


def test_save_to_disk_directory(tmp_path):
    datasets.Dataset.from_list(RECORDS).save_to_disk(str(tmp_path / "saved"))
    assert read_source(str(tmp_path / "saved")).to_list() == RECORDS


def test_dataset_dict_directory_takes_the_split(tmp_path):
    dd = datasets.DatasetDict(train=datasets.Dataset.from_list(RECORDS), test=datasets.Dataset.from_list(RECORDS[:1]))
    dd.save_to_disk(str(tmp_path / "dd"))
    assert read_source(str(tmp_path / "dd")).num_rows == 3
    assert read_source(str(tmp_path / "dd"), split="test").to_list() == RECORDS[:1]
    with pytest.raises(DataError, match=r"has no split 'validation'; choose one of: train, test"):
        read_source(str(tmp_path / "dd"), split="validation")


def test_same_content_gets_the_same_ids_from_every_source_kind(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", RECORDS)
    datasets.Dataset.from_list(RECORDS).to_parquet(str(tmp_path / "a.parquet"))
    datasets.Dataset.from_list(RECORDS).save_to_disk(str(tmp_path / "saved"))
    ids = [load_rows(str(tmp_path / name))["id"] for name in ("a.jsonl", "a.parquet", "saved")]
    assert ids[0] == ids[1] == ids[2] == [sha16(r) for r in RECORDS]


@pytest.mark.parametrize("source", ["./nope.jsonl", "nope.json", "/no/such/dir/data.parquet", "~/nope", "../x"])
def test_missing_local_path_is_a_data_error(source):
    with pytest.raises(DataError, match=r"^No such file: "):
        read_source(source)


def test_unsupported_file_type_and_plain_directory(tmp_path):
    (tmp_path / "d.csv").write_text("instruction,output\na,b\n")
    with pytest.raises(DataError, match=r"d\.csv has an unsupported file type '\.csv'"):
        read_source(str(tmp_path / "d.csv"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match=r"not one written by save_to_disk"):
        read_source(str(tmp_path / "plain"))


def test_corrupt_parquet_is_a_data_error(tmp_path):
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"bad\.parquet is not a readable Parquet file"):
        read_source(str(tmp_path / "bad.parquet"))


def test_unreachable_hub_dataset_is_a_data_error(monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # never touch the network
    with pytest.raises(DataError, match=r"Could not load Hub dataset 'no-such-org/no-such-dataset'"):
        read_source("no-such-org/no-such-dataset")


# ----------------------------------------------------------------------------- JSON errors


def test_unparsable_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n\n{"instruction": "c" "output": "d"}\n')
    with pytest.raises(DataError) as err:
        read_source(str(path))
    assert str(err.value) == (f"{path} line 3 is not valid JSON (Expecting ',' delimiter); fix or remove that line.")


def test_unparsable_json_array_names_the_line(tmp_path):
    path = tmp_path / "data.json"
    text = json.dumps(RECORDS, indent=2).replace('"output": "Blue."', '"output": Blue.')
    path.write_text(text)
    bad_line = text.split("\n").index('    "output": Blue.') + 1
    with pytest.raises(DataError, match=rf"data\.json line {bad_line} is not valid JSON \(Expecting value\)"):
        read_source(str(path))


def test_trailing_garbage_after_json_array(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps(RECORDS) + "\n\n]")
    with pytest.raises(DataError, match=r"data\.json line 3 is not valid JSON \(Extra data\)"):
        read_source(str(path))


def test_non_object_jsonl_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n["a", "b"]\n')
    with pytest.raises(DataError, match=r"data\.jsonl line 2 holds a JSON list, not an object"):
        read_source(str(path))


def test_non_object_element_of_json_array_names_its_line(tmp_path):
    path = tmp_path / "data.json"
    path.write_text('[\n  {"instruction": "a", "output": "b"},\n\n  "just a string"\n]\n')
    with pytest.raises(DataError, match=r"data\.json line 4 holds a JSON str, not an object"):
        read_source(str(path))


def test_top_level_scalar_and_empty_file(tmp_path):
    (tmp_path / "scalar.json").write_text("42\n")
    with pytest.raises(DataError, match=r"scalar\.json line 1 holds a JSON int, not an object"):
        read_source(str(tmp_path / "scalar.json"))
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(DataError, match=r"empty\.json contains no records"):
        read_source(str(tmp_path / "empty.json"))


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"instruction": "a", "output": "b"}\n{"instruction": "\xff", "output": "b"}\n')
    with pytest.raises(DataError, match=r"data\.jsonl line 2 is not valid UTF-8"):
        read_source(str(path))


# ----------------------------------------------------------------------------- hostile files


def test_a_huge_integer_response_is_invalid_like_any_other_non_string(tmp_path):
    big = {"instruction": "a", "input": "", "output": 12345678901234567890123}  # beyond int64
    rows = canon(tmp_path, [big, RECORDS[0]])
    assert [(r["status"], r["reason"]) for r in rows] == [
        ("invalid", "field 'output' is not a string (int)"),
        ("ok", ""),
    ]
    assert rows[0]["id"] == sha16(big)  # hashed as the integer it is, not as the text "1234..."


def test_mixed_numbers_read_back_exactly(tmp_path):
    records = [
        {"instruction": "a", "output": "b", "x": 1.0000000000000002},
        {"instruction": "a", "output": "c", "x": "s"},
    ]
    rows = canon(tmp_path, records)
    assert [r["id"] for r in rows] == [sha16(r) for r in records]  # not 1.0, as datasets' ujson reads it


def test_a_zero_row_parquet_file_is_one_sentence(tmp_path):
    path = tmp_path / "empty.parquet"
    datasets.Dataset.from_dict({"instruction": [], "output": []}).to_parquet(str(path))
    with pytest.raises(
        DataError, match=r"^.*empty\.parquet holds no rows; give a Parquet file with at least one row\.$"
    ):
        read_source(str(path))


def test_a_zero_row_saved_dataset_is_one_sentence(tmp_path):
    datasets.Dataset.from_dict({"instruction": [], "output": []}).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(DataError, match=r"saved holds no rows; give a dataset with at least one row\.$"):
        read_source(str(tmp_path / "saved"))


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("d.jsonl", '{"instruction": "a", "output": "b"}\n\n{"instruction": "a", "output": "x\\ud800y"}\n', 3),
        ("d.json", '[\n{"instruction": "a", "output": "b"},\n{"instruction": "a", "output": "\\udc00"}\n]', 3),
    ],
)
def test_a_lone_surrogate_names_file_and_line(tmp_path, name, text, line):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")  # the escape is plain ASCII: the file itself is valid UTF-8
    with pytest.raises(
        DataError, match=rf"{name} line {line} holds a lone UTF-16 surrogate .*; fix or remove that line\.$"
    ):
        read_source(str(path))


def test_a_surrogate_pair_is_text(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"instruction": "a", "output": "\\ud83d\\ude00"}\n', encoding="utf-8")
    assert read_source(str(path))["output"] == ["\U0001f600"]


def nested(depth: int) -> str:
    """A record nesting ``depth`` JSON levels, the record itself being level 1."""
    return '{"instruction": "a", "output": "b", "x": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


@pytest.mark.parametrize("depth", [33, 5000])  # just over the limit; past Python's recursion limit
@pytest.mark.parametrize("array", [False, True])
def test_json_nested_too_deep_names_the_line(tmp_path, depth, array):
    path = tmp_path / ("d.json" if array else "d.jsonl")
    lines = ['{"instruction": "a", "output": "b"}', nested(depth)]
    path.write_text("[\n" + ",\n".join(lines) + "\n]" if array else "\n".join(lines), encoding="utf-8")
    line = 3 if array else 2
    with pytest.raises(DataError, match=rf"d\.jsonl? line {line} nests JSON more than 32 levels deep"):
        read_source(str(path))


def test_json_nested_32_levels_is_read(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(nested(32) + "\n", encoding="utf-8")
    assert load_rows(str(path))["status"] == ["ok"]


def test_rows_written_to_a_cache_dir_are_memory_mapped_and_the_same(tmp_path):
    records = [RECORDS[0], {"instruction": "a"}, RECORDS[0]]
    raw = read_source(str(write_jsonl(tmp_path / "d.jsonl", records)))
    rows = canonicalize(raw, cache_dir=tmp_path / "cache")
    assert rows.to_list() == canonicalize(raw).to_list()
    assert rows["status"] == ["ok", "invalid", "duplicate"]
    assert rows.cache_files and all(Path(f["filename"]).parent == tmp_path / "cache" for f in rows.cache_files)


@pytest.mark.parametrize("array", [False, True])
def test_reading_in_chunks_gives_what_one_chunk_gives(tmp_path, monkeypatch, array):
    records = [
        {"instruction": "a", "output": "b", "meta": None, "n": 1, "turns": [{"from": "human"}]},
        {"instruction": "c", "output": "d", "meta": None, "n": 2, "turns": []},
        {
            "instruction": "e",
            "output": 5,
            "meta": "x",
            "n": 3,
            "turns": [{"from": "gpt", "value": "v"}],
        },  # output: str and int
        {"instruction": "f", "output": "g", "meta": "y", "n": 12345678901234567890123, "turns": None},  # n: past int64
        {"instruction": "h", "output": "i", "extra": [1, "two"]},  # a list Arrow cannot type
    ]
    path = tmp_path / ("d.json" if array else "d.jsonl")
    path.write_text(json.dumps(records) if array else "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    whole = read_source(str(path))
    monkeypatch.setattr("hf_lpselect.ingest.CHUNK_ROWS", 2)  # chunks [0, 1], [2, 3], [4]
    chunked = read_source(str(path))
    assert chunked.features == whole.features and chunked.to_list() == whole.to_list()
    assert [r["status"] for r in canonicalize(chunked).to_list()] == ["ok", "ok", "invalid", "ok", "ok"]


def test_a_lone_surrogate_in_a_later_chunk_names_its_line(tmp_path, monkeypatch):
    monkeypatch.setattr("hf_lpselect.ingest.CHUNK_ROWS", 2)
    path = tmp_path / "d.jsonl"
    path.write_text(
        '{"instruction": "a", "output": "b"}\n' * 3 + '{"instruction": "a", "output": "\\ud800"}\n', encoding="utf-8"
    )
    with pytest.raises(DataError, match=r"d\.jsonl line 4 holds a lone UTF-16 surrogate"):
        read_source(str(path))


def test_worker_processes_give_the_same_rows(tmp_path):
    records = [RECORDS[0], {"instruction": "a"}, RECORDS[1], RECORDS[0], RECORDS[2], RECORDS[1]]
    path = str(write_jsonl(tmp_path / "d.jsonl", records))
    rows = load_rows(path, num_proc=2).to_list()  # rows 0-2 and 3-5 in two processes: duplicates span both
    assert rows == load_rows(path).to_list()
    assert [(r["status"], r["reason"]) for r in rows] == [
        ("ok", ""),
        ("invalid", "missing field 'output'"),
        ("ok", ""),
        ("duplicate", "duplicate of row 0"),
        ("ok", ""),
        ("duplicate", "duplicate of row 2"),
    ]


# ----------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["instruction", "input", "output"], "alpaca"),
        (["instruction", "output"], "alpaca"),
        (["instruction", "context", "response", "category"], "dolly"),
        (["instruction", "response"], "dolly"),
        (["conversations", "id"], "sharegpt"),
        (["messages"], "messages"),
        (["prompt", "completion"], "prompt-completion"),
    ],
)
def test_detect_format(columns, expected):
    assert detect_format(columns) == expected


def test_detect_format_ambiguous_or_unknown():
    with pytest.raises(DataError, match=r"ambiguous \(alpaca or dolly\).*--format with one of: alpaca, dolly"):
        detect_format(["instruction", "output", "response"])
    # before: "pass --format with one of: …", advice no format could follow
    with pytest.raises(
        DataError,
        match=r"columns \['answer', 'question'\] match no known format \(alpaca: instruction, "
        r"output; .*\); rename yours to one of them with --columns, e.g. --columns question=instruction",
    ):
        detect_format(["question", "answer"])


def test_column_map_parses_pairs_and_refuses_what_cannot_be_renamed():
    assert parse_column_map("question=instruction, answer=output") == {"question": "instruction", "answer": "output"}
    assert parse_column_map(None) == {}
    with pytest.raises(DataError, match="YOURS=FORMAT pairs"):
        parse_column_map("question")
    with pytest.raises(
        DataError, match=r"maps two columns to \['instruction'\]"
    ):  # before: datasets' ValueError, a traceback
        parse_column_map("q=instruction,r=instruction")
    raw = datasets.Dataset.from_dict({"question": ["q"], "answer": ["a"], "output": ["o"]})
    with pytest.raises(DataError, match=r"names \['query'\], which the dataset does not have"):
        map_columns(raw, {"query": "instruction"})
    with pytest.raises(DataError, match=r"renames to \['output'\], which the dataset already has"):
        map_columns(raw, {"question": "instruction", "answer": "output"})


def test_format_override_and_its_errors(tmp_path):
    rows = canon(tmp_path, [{"instruction": "a", "output": "alpaca answer", "response": "dolly answer"}], "dolly")
    assert (rows[0]["format"], rows[0]["output"]) == ("dolly", "dolly answer")
    with pytest.raises(DataError, match=r"ambiguous"):
        canon(tmp_path, [{"instruction": "a", "output": "b", "response": "c"}])
    missing = r"'messages' needs column\(s\) messages but the dataset has \['input', 'instruction', 'output'\]"
    with pytest.raises(DataError, match=missing):
        canon(tmp_path, RECORDS, "messages")
    with pytest.raises(DataError, match=r"Unknown format 'chatml'; choose one of: " + ", ".join(FORMATS)):
        canon(tmp_path, RECORDS, "chatml")


# ----------------------------------------------------------------------------- canonical values


def expected_row(record, row=0, format="alpaca", status="ok", reason="", *, instruction, input, output, messages):
    return {
        "row": row,
        "id": sha16(record),
        "status": status,
        "reason": reason,
        "instruction": instruction,
        "input": input,
        "output": output,
        "messages": messages,
        "format": format,
    }


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def system(text):
    return {"role": "system", "content": text}


def test_alpaca_rows_with_input_empty_input_and_no_input(tmp_path):
    with_input, empty_input, no_input = RECORDS[0], RECORDS[1], {"instruction": "Say bye.", "output": "Bye!"}
    rows = canon(tmp_path, [with_input, empty_input, no_input])
    assert rows == [
        expected_row(
            with_input,
            0,
            instruction="Add the numbers.",
            input="2 and 3",
            output="5",
            messages=[user("Add the numbers.\n\n2 and 3"), assistant("5")],
        ),
        expected_row(
            empty_input,
            1,
            instruction="Name a colour.",
            input="",
            output="Blue.",
            messages=[user("Name a colour."), assistant("Blue.")],
        ),
        expected_row(
            no_input,
            2,
            instruction="Say bye.",
            input="",
            output="Bye!",
            messages=[user("Say bye."), assistant("Bye!")],
        ),
    ]


def test_dolly_row(tmp_path):
    record = {"instruction": "Summarise.", "context": "A long text.", "response": "Short.", "category": "summ"}
    assert canon(tmp_path, [record]) == [
        expected_row(
            record,
            format="dolly",
            instruction="Summarise.",
            input="A long text.",
            output="Short.",
            messages=[user("Summarise.\n\nA long text."), assistant("Short.")],
        ),
    ]


def test_dolly_style_data_with_an_input_column_keeps_the_input(tmp_path):
    record = {"instruction": "Fix the code.", "input": "x = = 1", "response": "x = 1"}  # GPTeacher layout
    row = canon(tmp_path, [record])[0]
    assert (row["format"], row["input"]) == ("dolly", "x = = 1")
    assert row["messages"][0] == user("Fix the code.\n\nx = = 1")


def test_sharegpt_single_turn_with_system_and_multi_turn(tmp_path):
    single = {
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "Hi?"},
            {"from": "gpt", "value": "Hello."},
        ]
    }
    multi = {
        "conversations": [
            {"from": "human", "value": "2+2?"},
            {"from": "chatgpt", "value": "4"},
            {"from": "user", "value": "And 3+3?"},
            {"from": "model", "value": "6"},
        ]
    }
    assert canon(tmp_path, [single, multi]) == [
        expected_row(
            single,
            0,
            "sharegpt",
            instruction="Hi?",
            input="",
            output="Hello.",
            messages=[system("Be brief."), user("Hi?"), assistant("Hello.")],
        ),
        expected_row(
            multi,
            1,
            "sharegpt",
            instruction=None,
            input=None,
            output=None,
            messages=[user("2+2?"), assistant("4"), user("And 3+3?"), assistant("6")],
        ),
    ]


def test_messages_rows_are_taken_as_is(tmp_path):
    single = {"messages": [user("Hi?"), assistant("Hello.")]}
    trailing_user = {"messages": [user("Hi?"), assistant("Hello."), user("Thanks.")]}  # ok: last turn unscored
    assert canon(tmp_path, [single, trailing_user]) == [
        expected_row(
            single,
            0,
            "messages",
            instruction="Hi?",
            input="",
            output="Hello.",
            messages=[user("Hi?"), assistant("Hello.")],
        ),
        expected_row(
            trailing_user,
            1,
            "messages",
            instruction=None,
            input=None,
            output=None,
            messages=[user("Hi?"), assistant("Hello."), user("Thanks.")],
        ),
    ]


def test_prompt_completion_strings(tmp_path):
    record = {"prompt": "The sky is", "completion": " blue."}
    assert canon(tmp_path, [record]) == [
        expected_row(
            record,
            format="prompt-completion",
            instruction="The sky is",
            input="",
            output=" blue.",
            messages=[user("The sky is"), assistant(" blue.")],
        ),
    ]


def test_prompt_completion_conversational(tmp_path):
    record = {"prompt": [system("Be brief."), user("Hi?")], "completion": [assistant("Hello.")]}
    assert canon(tmp_path, [record]) == [
        expected_row(
            record,
            format="prompt-completion",
            instruction="Hi?",
            input="",
            output="Hello.",
            messages=[system("Be brief."), user("Hi?"), assistant("Hello.")],
        ),
    ]


def test_empty_instruction_is_allowed(tmp_path):
    assert canon(tmp_path, [{"instruction": "", "output": "Something."}])[0]["status"] == "ok"


# ----------------------------------------------------------------------------- invalid rows

GOOD = {
    "alpaca": {"instruction": "a", "input": "", "output": "b"},
    "dolly": {"instruction": "a", "context": "", "response": "b"},
    "sharegpt": {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]},
    "messages": {"messages": [user("a"), assistant("b")]},
    "prompt-completion": {"prompt": "a", "completion": "b"},
}


@pytest.mark.parametrize(
    ("format", "bad", "reason"),
    [
        ("alpaca", {"instruction": None, "input": "", "output": "b"}, "missing field 'instruction'"),
        ("alpaca", {"instruction": "a", "input": ""}, "missing field 'output'"),
        ("alpaca", {"instruction": "a", "input": "", "output": 7}, "field 'output' is not a string (int)"),
        ("alpaca", {"instruction": "a", "input": ["x"], "output": "b"}, "field 'input' is not a string (list)"),
        ("alpaca", {"instruction": "a", "input": "", "output": " \n\t"}, "empty response"),
        ("dolly", {"instruction": "a", "context": "", "response": 1.5}, "field 'response' is not a string (float)"),
        (
            "dolly",
            {"instruction": {"k": "v"}, "context": "", "response": "b"},
            "field 'instruction' is not a string (dict)",
        ),
        ("prompt-completion", {"prompt": "a", "completion": ""}, "empty response"),
        ("prompt-completion", {"prompt": [user("a")], "completion": "b"}, "field 'prompt' is not a string (list)"),
        (
            "sharegpt",
            {"conversations": [{"from": "human", "value": "a"}, {"from": "robot", "value": "b"}]},
            "unknown role 'robot'",
        ),
        ("sharegpt", {"conversations": [{"from": "human", "value": "a"}]}, "no assistant turn"),
        (
            "sharegpt",
            {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": " "}]},
            "empty response (turn 2)",
        ),
        ("sharegpt", {"conversations": "human: a"}, "field 'conversations' is not a list (str)"),
        ("sharegpt", {"conversations": None}, "missing field 'conversations'"),
        ("messages", {"messages": [user("a"), {"role": "assistant"}]}, "turn 2 has no 'content'"),
        ("messages", {"messages": [{"content": "a"}, assistant("b")]}, "turn 1 has no 'role'"),
        (
            "messages",
            {"messages": [{"role": "user", "content": 3}, assistant("b")]},
            "turn 1 'content' is not a string (int)",
        ),
        ("messages", {"messages": ["a", assistant("b")]}, "turn 1 is not an object (str)"),
        ("messages", {"messages": []}, "no assistant turn"),
        # the row's own defect is named, not the template's limits ("excluded: multi-turn …")
        ("messages", {"messages": [{"role": "banana", "content": "a"}, assistant("b")]}, "unknown role 'banana'"),
        ("messages", {"messages": [user("a"), assistant("b"), user("c"), assistant("")]}, "empty response (turn 4)"),
    ],
)
def test_invalid_rows_keep_their_place_with_a_reason(tmp_path, format, bad, reason):
    good = GOOD[format]
    rows = canon(tmp_path, [good, bad, good | {"note": "different content"}])
    assert [r["status"] for r in rows] == ["ok", "invalid", "ok"]
    assert [r["reason"] for r in rows] == ["", reason, ""]
    assert rows[1]["id"] == content_id(bad)
    assert [rows[1][k] for k in ("instruction", "input", "output", "messages")] == [None, None, None, []]
    assert {r["format"] for r in rows} == {format}


def test_mixed_type_field_is_kept_raw_and_only_that_row_is_invalid(tmp_path):
    path = tmp_path / "mixed.json"
    records = [
        RECORDS[0],
        {"instruction": "Count.", "input": "", "output": 3},
        RECORDS[1],
        {"instruction": "x"},
        {"instruction": "Halve 5.", "output": 2.5},
    ]
    path.write_text(json.dumps(records), encoding="utf-8")
    raw = read_source(str(path))
    assert raw["output"] == ["5", 3, "Blue.", None, 2.5]  # "5" stays a string, 3 an int: nothing coerced
    assert isinstance(raw[1]["output"], int)
    rows = canonicalize(raw).to_list()
    assert [(r["status"], r["reason"]) for r in rows] == [
        ("ok", ""),
        ("invalid", "field 'output' is not a string (int)"),
        ("ok", ""),
        ("invalid", "missing field 'output'"),
        ("invalid", "field 'output' is not a string (float)"),
    ]


def test_duplicates_point_at_the_first_ok_occurrence(tmp_path):
    a, b, bad = RECORDS[0], RECORDS[1], {"instruction": "a", "input": "", "output": ""}
    rows = canon(tmp_path, [a, b, a, bad, bad, dict(reversed(list(a.items())))])
    assert [(r["status"], r["reason"]) for r in rows] == [
        ("ok", ""),
        ("ok", ""),
        ("duplicate", "duplicate of row 0"),
        ("invalid", "empty response"),
        ("invalid", "empty response"),
        ("duplicate", "duplicate of row 0"),
    ]
    assert rows[2]["messages"] == rows[0]["messages"]  # duplicates keep their views


# ----------------------------------------------------------------------------- ids and shape


def test_content_id_is_stable_and_content_sensitive():
    record = {"instruction": "Übersetze: café", "input": "", "output": "Kaffee ☕"}
    assert content_id(record) == "2eb0072aa70896a1"  # sha256 of the sorted, compact, non-ASCII-escaped JSON
    assert content_id(record) == sha16(record)
    assert content_id(dict(reversed(list(record.items())))) == content_id(record)  # key order is not content
    assert content_id(record | {"output": "Kaffee"}) != content_id(record)
    assert content_id(record | {"extra": None}) == content_id(record)  # Arrow fills missing keys with None


def test_every_input_row_appears_once_in_order_with_the_declared_features(tmp_path):
    records = [RECORDS[0], {"instruction": "a"}, RECORDS[0], RECORDS[1], {"instruction": "b", "output": ""}] * 3
    ds = load_rows(str(write_jsonl(tmp_path / "d.jsonl", records)))
    assert ds.column_names == COLUMNS
    assert ds["row"] == list(range(len(records)))
    string = datasets.Value("string")
    assert ds.features["messages"] == datasets.List({"role": string, "content": string})
    assert {name: str(f) for name, f in ds.features.items() if name != "messages"} == {
        name: "Value('int64')" if name == "row" else "Value('string')" for name in COLUMNS if name != "messages"
    }


def test_canonical_rows_round_trip_through_disk_and_parquet(tmp_path):
    ds = load_rows(str(write_jsonl(tmp_path / "d.jsonl", RECORDS + [{"instruction": "a", "output": 1}])))
    ds.save_to_disk(str(tmp_path / "saved"))
    assert datasets.load_from_disk(str(tmp_path / "saved")).to_list() == ds.to_list()
    ds.to_parquet(str(tmp_path / "c.parquet"))
    back = datasets.Dataset.from_parquet(str(tmp_path / "c.parquet"))
    assert back.features == ds.features and back.to_list() == ds.to_list()


# ----------------------------------------------------------------------------- real data


@pytest.mark.skipif(not DOLLY_3K.exists(), reason="Dolly subset not present under ../shared/data")
def test_real_dolly_subset():
    ds = load_rows(str(DOLLY_3K))
    counts = Counter(ds["status"])
    assert ds.num_rows == 2996 and sum(counts.values()) == 2996
    assert ds["row"] == list(range(2996))
    assert set(counts) <= {"ok", "invalid", "duplicate"} and counts["ok"] > 2900


@pytest.mark.slow
@pytest.mark.skipif(not ALPACA.exists(), reason="Alpaca data not present under ../shared/data")
def test_real_alpaca_52k():
    ds = load_rows(str(ALPACA))
    assert ds.num_rows == 52002 and ds["row"] == list(range(52002))
    ok_ids = [i for i, s in zip(ds["id"], ds["status"]) if s == "ok"]
    assert len(ok_ids) == len(set(ok_ids)) > 51000
    assert all(r == "empty response" for r, s in zip(ds["reason"], ds["status"]) if s == "invalid")


def test_a_loaded_folder_is_cached_in_the_tests_own_home_not_the_users(tmp_path):
    """conftest's isolated_caches: nothing a test loads lands in ~/.cache/huggingface."""
    (tmp_path / "dry").mkdir()
    datasets.Dataset.from_list(RECORDS).to_parquet(str(tmp_path / "dry" / "train.parquet"))
    cached = Path(datasets.load_dataset(str(tmp_path / "dry"), split="train").cache_files[0]["filename"])
    assert cached.is_relative_to(os.environ["HF_HOME"]) and not cached.is_relative_to(Path.home() / ".cache")


def test_dataset_fingerprint_is_the_hash_of_the_ordered_ids_from_a_list_or_a_column():
    from hf_lpselect.ingest import dataset_fingerprint

    expected = hashlib.sha256(b"a1\nb2\ncc\n").hexdigest()[:16]
    assert dataset_fingerprint(["a1", "b2", "cc"]) == expected
    assert dataset_fingerprint(datasets.Dataset.from_dict({"id": ["a1", "b2", "cc"]})["id"]) == expected
    assert dataset_fingerprint(["b2", "a1", "cc"]) != expected


def test_content_ids_are_the_ids_canonicalize_gives(tmp_path):
    """The fast id-only path (used to verify a run's source) against the full canonicalisation."""
    from hf_lpselect.ingest import content_ids

    records = [
        {"instruction": "a", "input": "", "output": "b", "extra": 1},
        {"instruction": "a", "input": "", "output": "b", "extra": 1},  # duplicate: same id
        {"instruction": "c", "output": 7},  # invalid row: still has an id
        {"instruction": "d", "input": None, "output": "e", "lp1": 0.3},  # our pushed columns are not content
    ]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    raw = read_source(str(path))
    assert content_ids(raw) == canonicalize(raw)["id"]
    assert content_ids(raw)[0] == content_ids(raw)[1] != content_ids(raw)[2]
