"""`lpselect select` and `lpselect compare` on a real (tiny-model) run: outputs re-load with
`datasets` in every format, in selection order, with the score columns added."""

import json
import subprocess

import datasets
import pandas as pd
import pytest
from conftest import FAST, lpselect

from hf_lpselect.scoring.demo_data import make_demo_rows
from hf_lpselect.scoring.scorer_run import score
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
    result = lpselect(*args)
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
    invoke(
        "select", run.run_dir.path, "--strategy", "lp1-hard", "--fraction", "0.2", "--clusters", clusters, "--out", out
    )
    subset = load(out)
    assert sorted(pd.Series(subset["selection_cluster"]).value_counts().tolist()) == [
        1,
        1,
        1,
        1,
    ]  # ceil(5 / 5) per cluster


def test_select_with_the_official_codes_per_cluster_counts(run, tmp_path):
    """--cluster_rows all counts every row of a cluster, the invalid row 20 too: ceil(6 / 5) = 2 from cluster 0."""
    clusters = tmp_path / "clusters.csv"
    pd.DataFrame({"row": range(21), "cluster": [r % 4 for r in range(21)]}).to_csv(clusters, index=False)
    assert run.scores["lp1"].notna().sum() == 20  # every ok row has an LP(1): 5 eligible rows per cluster
    args = ("select", run.run_dir.path, "--strategy", "lp1-hard", "--fraction", "0.2", "--clusters", clusters)
    output = invoke(*args, "--cluster_rows", "all")
    written = run.run_dir.path / "selections" / "lp1-hard-20pct-per-cluster-all-rows.jsonl"
    assert written.is_file() and "all the rows of each cluster" in output
    assert sorted(pd.Series(load(written)["selection_cluster"]).value_counts().tolist()) == [1, 1, 1, 2]
    invoke(*args)  # the default, eligible rows: ceil(5 / 5) = 1 per cluster, written under another name
    eligible = load(run.run_dir.path / "selections" / "lp1-hard-20pct-per-cluster.jsonl")
    assert sorted(pd.Series(eligible["selection_cluster"]).value_counts().tolist()) == [1, 1, 1, 1]


def test_cluster_rows_without_clusters_is_one_sentence(run):
    result = lpselect(
        "select", str(run.run_dir.path), "--strategy", "lp1-hard", "--fraction", "0.1", "--cluster_rows", "all"
    )
    assert result.exit_code == 2 and "Traceback" not in result.output and "add --per_cluster K" in result.output


def test_select_bad_request_is_one_sentence(run):
    result = lpselect("select", str(run.run_dir.path), "--strategy", "nope", "--fraction", "0.1")
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
    assert subset["lp1"].tolist() == pytest.approx(
        run.scores.set_index("row").loc[list(expected.rows), "lp1"].tolist()
    )


@pytest.mark.parametrize("name", ["subset.tsv", "subset.xlsx", "subset.TXT"])
def test_select_refuses_an_extension_it_does_not_write(run, tmp_path, name):
    result = lpselect(
        "select",
        str(run.run_dir.path),
        "--strategy",
        "lp1-hard",
        "--fraction",
        "0.25",
        "--out",
        str(tmp_path / name),
    )
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
    with pytest.raises(
        DataError,
        match=r"^CSV holds only flat columns but messages hold lists or records; write \.jsonl or \.parquet instead\.$",
    ):
        write_dataset(rows, "never-written.csv")


def test_compare_runs_with_no_common_rows_is_one_sentence(run, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    scores = run.scores.copy()
    scores["id"] = [f"elsewhere{i}" for i in range(len(scores))]  # another dataset: no content id in common
    scores.to_parquet(other / "scores.parquet")
    result = lpselect("compare", str(run.run_dir.path), str(other), "--out", str(tmp_path / "cmp"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "have 0 row(s) with lp1 in both" in result.output and "compare two runs over the same data" in result.output
    assert not (tmp_path / "cmp").exists()  # no empty plot


def test_every_command_reads_a_config_file_with_the_command_line_winning(run, tmp_path):
    """One CLI pattern: select, compare and report parse dataclasses with TRL's parser, so --config YAML works."""
    recipe = tmp_path / "select.yaml"
    recipe.write_text(
        f"run: {run.run_dir.path}\nstrategy: lp1-hard\nfraction: 0.5\nseed: 3\nout: {tmp_path / 'from-yaml.jsonl'}\n"
    )
    invoke("select", "--config", recipe, "--fraction", "0.25")
    assert len(load(tmp_path / "from-yaml.jsonl")) == 5  # 25 % of 20 eligible rows: the flag won over the file
    compare_yaml = tmp_path / "compare.yaml"
    compare_yaml.write_text(
        f"run_a: {run.run_dir.path}\nrun_b: {run.run_dir.path}\nscore: ppl_0\nout: {tmp_path / 'cmp'}\n"
    )
    assert "ppl_0: Spearman 1.000" in invoke("compare", "--config", compare_yaml)


def test_a_strategy_outside_the_registry_is_one_sentence_naming_the_choices(run):
    result = lpselect("select", str(run.run_dir.path), "--strategy", "lp1-har", "--fraction", "0.1")
    assert result.exit_code == 2 and "Traceback" not in result.output and "usage:" not in result.output
    assert "invalid choice: 'lp1-har'" in result.output and "'lp-app-hard'" in result.output


def test_a_third_bare_word_is_one_sentence(run):
    result = lpselect("compare", str(run.run_dir.path), str(run.run_dir.path), "extra")
    assert result.exit_code == 2 and "Unexpected argument(s) extra;" in result.output


def test_select_without_a_run_says_what_to_give():
    result = lpselect("select", "--strategy", "lp1-hard", "--fraction", "0.1")
    assert result.exit_code == 2 and "Give the run directory to select from" in result.output


def test_selection_stats_are_typed_and_hand_checkable(run):
    """describe_selection returns a SelectionStats whose numbers follow from the scores table."""
    from hf_lpselect.selection.subsets import SelectionStats, describe_selection

    selection = select(run.scores, "longest", count=4)
    stats = describe_selection(selection, run.scores)
    ok = run.scores[run.scores["status"] == "ok"]
    longest = ok.sort_values(["n_response_tokens", "row"], ascending=[False, True]).head(4)["n_response_tokens"]
    assert isinstance(stats, SelectionStats)
    assert (stats.n_selected, stats.n_eligible, stats.n_input) == (4, 20, 21)
    assert stats.real_fraction == pytest.approx(4 / 20) and stats.real_fraction_of_input == pytest.approx(4 / 21)
    assert stats.mean_response_tokens == pytest.approx(longest.mean())
    assert stats.length_ratio == pytest.approx(longest.mean() / ok["n_response_tokens"].mean())
    assert stats.skipped == {"status invalid": 1}
    assert "longest: 4 of 20 eligible rows (requested 4 rows" in stats.summary()


def test_compare_result_is_typed_and_its_file_keeps_the_agreement_keys(run, tmp_path):
    from hf_lpselect.selection.compare import CompareResult, compare_runs

    result = compare_runs(run.run_dir.path, run.run_dir.path, out=tmp_path / "cmp")
    assert isinstance(result, CompareResult)
    assert result.results["lp1"].spearman == pytest.approx(1.0) and result.results["lp1"].top[0].overlap == 1.0
    written = json.loads(result.files[0].read_text())
    assert written == json.loads(json.dumps(result.to_dict()))
    assert {
        "score",
        "reference",
        "n_a",
        "n_b",
        "n_matched",
        "n_dropped",
        "dropped",
        "results",
        "runs",
        "files",
    } <= set(written)
    assert written["n_dropped"] == {"a": 1, "b": 1}  # the invalid row, in both
    assert result.summary().startswith("20 rows matched by id (dropped: 1 from the first run, 1 from the second)")


@pytest.fixture()
def read_only(tmp_path):
    """A read-only file system (a tmpfs mounted ``ro``): chmod would not stop root, who runs the tests in CI."""
    folder = tmp_path / "ro"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here ({done.stderr.decode().strip()}): needs root")
    yield folder
    subprocess.run(["umount", str(folder)], check=False)


@pytest.mark.parametrize(
    "command, out",
    [
        (["select", "--strategy", "lp1-hard", "--fraction", "0.25", "--out"], "hard.parquet"),
        (["select", "--strategy", "lp1-hard", "--fraction", "0.25", "--out"], "hard_dir"),
        (["report", "--out"], "rep"),
        (["compare", "RUN", "--out"], "cmp"),
        (["push-scores", "me/x", "--dry-run", "--run", "RUN", "--local-dir"], "repo"),
    ],
    ids=["select-file", "select-folder", "report", "compare", "push-dry-run"],
)
def test_a_read_only_output_folder_is_one_sentence(run, read_only, command, out):
    """Before: ``OSError: [Errno 30] Read-only file system`` with a traceback, and for push-scores
    "… check your connection"."""
    path = run.run_dir.path
    args = [str(path) if a == "RUN" else a for a in command]
    if args[0] != "push-scores":
        args.insert(1, str(path))
    result = lpselect(*args, str(read_only / out))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "connection" not in result.output
    assert f"Cannot write into {read_only}: it is on a read-only file system;" in " ".join(result.output.split())
