"""`lpselect select` and `lpselect compare` on a real (tiny-model) run: outputs re-load with
`datasets` in every format, in selection order, with the score columns added."""

import json

import datasets
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import FAST
from hf_lpselect.cli import app
from hf_lpselect.scoring.demo_data import make_demo_rows
from hf_lpselect.scoring.run import score
from hf_lpselect.selection.strategies import select

RECORDS = [{k: r[k] for k in ("instruction", "input", "output")} for r in make_demo_rows(20, seed=8)]
RECORDS.append({"instruction": "Say nothing.", "input": "", "output": ""})  # invalid: never selected


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir):
    base = tmp_path_factory.mktemp("select")
    data = base / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    result = score(str(data), out=base / "run", model=str(tiny_model_dir), epochs=2, max_length=128, ifd=True, **FAST)
    return result


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def load(path):
    path = str(path)
    if path.endswith((".json", ".jsonl")):
        return datasets.load_dataset("json", data_files=path, split="train")
    if path.endswith(".parquet"):
        return datasets.load_dataset("parquet", data_files=path, split="train")
    return datasets.load_from_disk(path)


@pytest.mark.parametrize("name", ["hard.json", "hard.jsonl", "hard.parquet", "hard_dir"])
def test_select_writes_a_loadable_subset_in_every_format(run, tmp_path, name):
    out = tmp_path / name
    output = invoke("select", run.run_dir.path, "--strategy", "lp1-hard", "--fraction", "0.25", "--out", out)
    expected = select(run.scores, "lp1-hard", fraction=0.25)
    subset = load(out)
    assert len(subset) == len(expected.rows) == 5  # 25 % of the 20 eligible rows
    assert {"instruction", "input", "output", "lp1", "ppl_0", "ifd_ppl", "selection_rank"} <= set(subset.column_names)
    assert subset["row"] == list(expected.rows)
    assert [RECORDS[r]["output"] for r in expected.rows] == subset["output"]
    assert subset["lp1"] == sorted(subset["lp1"])  # hardest (lowest LP(1)) first
    assert "skipped" in output and "status invalid" in output
    assert "mean response length" in output


def test_select_defaults_to_the_source_format_inside_the_run(run):
    output = invoke("select", run.run_dir.path, "--strategy", "longest", "--count", "3")
    written = run.run_dir.path / "selections" / "longest-3rows.jsonl"
    assert written.is_file() and str(written) in output.replace("\n", "")
    assert len(load(written)) == 3


def test_select_with_a_clustering_made_elsewhere(run, tmp_path):
    clusters = tmp_path / "clusters.csv"
    pd.DataFrame({"row": range(20), "cluster": [r % 4 for r in range(20)]}).to_csv(clusters, index=False)
    out = tmp_path / "c.parquet"
    invoke("select", run.run_dir.path, "--strategy", "lp1-hard", "--fraction", "0.2", "--clusters", clusters, "--out", out)
    subset = load(out)
    assert sorted(pd.Series(subset["selection_cluster"]).value_counts().tolist()) == [1, 1, 1, 1]  # ceil(5 / 5) per cluster


def test_select_bad_request_is_one_sentence(run):
    result = CliRunner().invoke(app, ["select", str(run.run_dir.path), "--strategy", "nope", "--fraction", "0.1"])
    assert result.exit_code == 2 and "Traceback" not in result.output and "lp1-hard" in result.output


def test_compare_a_run_with_itself_agrees_perfectly(run, tmp_path):
    invoke("compare", run.run_dir.path, run.run_dir.path, "--out", tmp_path / "cmp")
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert result["n_matched"] == 20
    assert result["results"]["lp1"]["spearman"] == pytest.approx(1.0)
    assert result["results"]["lp1"]["kendall_tau_b"] == pytest.approx(1.0)
    assert (tmp_path / "cmp" / "scatter.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_writes_figures_and_markdown(run, tmp_path):
    output = invoke("report", run.run_dir.path, "--out", tmp_path / "rep")
    markdown = (tmp_path / "rep" / "report.md").read_text()
    pngs = sorted(p.name for p in (tmp_path / "rep").glob("*.png"))
    assert pngs and all(name in markdown for name in pngs)
    assert "report.md" in output
    assert RECORDS[0]["instruction"][:20] in markdown or any(r["instruction"][:20] in markdown for r in RECORDS)


def test_select_writes_csv_that_pandas_reads_back(run, tmp_path):
    out = tmp_path / "subset.csv"
    invoke("select", run.run_dir.path, "--strategy", "lp1-hard", "--fraction", "0.25", "--out", out)
    expected = select(run.scores, "lp1-hard", fraction=0.25)
    assert out.is_file()  # a file, not a save_to_disk folder named subset.csv
    subset = pd.read_csv(out, keep_default_na=False)
    assert subset["row"].tolist() == list(expected.rows)
    assert subset["output"].tolist() == [RECORDS[r]["output"] for r in expected.rows]
    assert subset["lp1"].tolist() == pytest.approx(run.scores.set_index("row").loc[list(expected.rows), "lp1"].tolist())


@pytest.mark.parametrize("name", ["subset.tsv", "subset.xlsx", "subset.TXT"])
def test_select_refuses_an_extension_it_does_not_write(run, tmp_path, name):
    result = CliRunner().invoke(app, ["select", str(run.run_dir.path), "--strategy", "lp1-hard", "--fraction", "0.25",
                                      "--out", str(tmp_path / name)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"Cannot write {name}:" in result.output and ".json, .jsonl, .parquet or .csv" in result.output
    assert not (tmp_path / name).exists()


def test_a_fractional_percent_folder_name_is_still_a_folder(run, tmp_path):
    out = tmp_path / "hard-2.5pct"  # what select names a default output for --fraction 0.025
    invoke("select", run.run_dir.path, "--strategy", "lp1-hard", "--fraction", "0.25", "--out", out)
    assert len(datasets.load_from_disk(str(out))) == 5


def test_csv_refuses_nested_columns():
    from hf_lpselect.errors import DataError
    from hf_lpselect.selection.subsets import write_dataset

    rows = datasets.Dataset.from_dict({"messages": [[{"role": "user", "content": "Hi"}]], "lp1": [0.5]})
    with pytest.raises(DataError, match=r"^CSV holds only flat columns but messages hold lists or records; write \.jsonl or \.parquet instead\.$"):
        write_dataset(rows, "never-written.csv")


def test_compare_runs_with_no_common_rows_is_one_sentence(run, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    scores = run.scores.copy()
    scores["id"] = [f"elsewhere{i}" for i in range(len(scores))]  # another dataset: no content id in common
    scores.to_parquet(other / "scores.parquet")
    result = CliRunner().invoke(app, ["compare", str(run.run_dir.path), str(other), "--out", str(tmp_path / "cmp")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "have 0 row(s) with lp1 in both" in result.output and "compare two runs over the same data" in result.output
    assert not (tmp_path / "cmp").exists()  # no empty plot
