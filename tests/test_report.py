"""The run report on a synthetic run directory: scores built by build_scores from hand-made passes, no model."""

import math

import numpy as np
import pandas as pd
import pytest


pytest.importorskip("matplotlib")
from matplotlib.figure import Figure
from matplotlib.image import imread

from hf_lpselect.core.io import write_parquet
from hf_lpselect.record import DatasetRecord, RunRecord
from hf_lpselect.rundir import RunDir
from hf_lpselect.scoring.scorer_run import build_scores
from hf_lpselect.selection.report import (
    FIGURE_FILES,
    examples,
    lp1_histogram,
    lp1_tertiles,
    lp_display_range,
    make_report,
    p0_histogram,
    score_vs_length,
    spearman,
    status_counts,
    trajectory_by_tertile,
)


PNG = b"\x89PNG\r\n\x1a\n"
N_OK = 60
STATUS = ["ok"] * N_OK + ["excluded"] * 3 + ["invalid"] * 2 + ["duplicate"]
REASON = (
    [""] * N_OK
    + ["response truncated away (max_length=64)"] * 3
    + ["empty response", "no assistant turn"]
    + ["duplicate of row 0"]
)


def rows_table() -> pd.DataFrame:
    n = len(STATUS)
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "row": range(n),
            "id": [f"{i:016x}" for i in range(n)],
            "status": STATUS,
            "reason": REASON,
            "n_prompt_tokens": rng.integers(10, 60, n),
            "n_response_tokens": [int(t) for t in rng.integers(3, 400, N_OK)] + [0, 0, 0, 0, 0, 12],
            "truncated": [False] * N_OK + [True] * 3 + [False] * 3,
        }
    )


def passes(epochs: int) -> list[pd.DataFrame]:
    """ppl_0 in [5, 50]; each row keeps a share of its drop per epoch. Row 1: LP(1) > 1 (overshoot), row 2:
    LP(1) < 0, row 3: no drop at all (LP NaN), row 0: LP(1) = 2.5, far outside the plotted range."""
    rng = np.random.default_rng(1)
    p0 = rng.uniform(5, 50, N_OK)
    final = p0 * rng.uniform(0.2, 0.6, N_OK)
    share = rng.uniform(0.4, 0.95, N_OK)  # LP(1)
    final[0] = 0.9 * p0[0]  # a small total drop, so that P_1 = P_0 - 2.5 x drop stays positive
    ppl = np.empty((N_OK, epochs + 1))
    ppl[:, 0] = p0
    for k in range(1, epochs + 1):
        ppl[:, k] = final if k == epochs else p0 - (p0 - final) * (share + (1 - share) * (k - 1) / (epochs - 1 or 1))
    if epochs >= 2:
        ppl[1, 1] = final[1] * 0.9  # below P_n after epoch 1: LP(1) > 1
        ppl[2, 1] = p0[2] * 1.05  # above P_0 after epoch 1: LP(1) < 0
        ppl[0, 1] = p0[0] - 2.5 * (p0[0] - final[0])  # LP(1) = 2.5
        ppl[3, :] = p0[3]  # no drop
    return [pd.DataFrame({"row": range(N_OK), "nll": np.log(ppl[:, k]), "n_tokens": 1}) for k in range(epochs + 1)]


def make_run(path, epochs: int, with_json: bool = True) -> RunDir:
    run = RunDir(path)
    table = rows_table()
    scores = build_scores(table, passes(epochs))
    write_parquet(table, run.rows)
    write_parquet(scores, run.scores)
    if with_json:
        counts = {s: STATUS.count(s) for s in ("ok", "excluded", "invalid", "duplicate")}
        RunRecord(
            identity={"model_name_or_path": "default"},
            dataset=DatasetRecord(source="data/alpaca.json", n_rows=len(table)),
            format="alpaca",
            template="alpaca",
            epochs=epochs,
            model={"model": "SmolLM2-135M-Instruct", "source": "gguf"},
            counts={**counts, "truncated": 3},
            complete=True,
        ).save(run.path)
    return run


@pytest.fixture()
def run3(tmp_path):
    return make_run(tmp_path / "run3", 3)


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 1000
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300
    assert image[..., :3].std() > 0.01  # not blank


def test_report_writes_every_figure_and_names_it(run3):
    scores = pd.read_parquet(run3.scores)
    assert scores.loc[0, "lp1"] == pytest.approx(2.5) and scores.loc[1, "lp1"] > 1 and scores.loc[2, "lp1"] < 0
    assert math.isnan(scores.loc[3, "lp1"])
    texts = {r: f"Instruction {r} | with a pipe\nand a newline" for r in range(N_OK)}
    result = make_report(run3, texts=texts)
    assert result.out_dir == run3.path / "report"
    assert set(result.figures) == {"status_counts", "lp1_histogram", "p0_histogram", "trajectory", "lp1_vs_length"}
    for path in result.figures.values():
        assert_png(path)
    md = result.markdown.read_text()
    for path in result.figures.values():
        assert f"]({path.name})" in md
    for status, n in (("ok", 60), ("excluded", 3), ("invalid", 2), ("duplicate", 1)):
        assert f"| {status} | {n} |" in md
    assert "3 × excluded: response truncated away (max_length=64)" in md
    assert "1 × invalid: empty response" in md
    assert "1 × no perplexity drop" in md  # row 3: scored, LP NaN with its reason
    assert "3 row(s) had their prompt or response truncated" in md
    assert "SmolLM2-135M-Instruct" in md and "3 training epoch(s)" in md
    # hardest: lowest LP(1) first (row 2, LP < 0); easiest: row 0 (LP 2.5); texts on one line, pipes escaped
    hardest = md.split("## Hardest rows")[1].split("## Easiest rows")[0]
    easiest = md.split("## Easiest rows")[1]
    assert hardest.splitlines()[4].startswith("| 2 | `0000000000000002` |")
    assert easiest.splitlines()[4].startswith("| 0 | `0000000000000000` | 2.500 |")
    assert "Instruction 2 \\| with a pipe and a newline" in hardest
    s = result.stats
    assert s["counts"] == {"ok": 60, "excluded": 3, "invalid": 2, "duplicate": 1}
    assert s["lp1"]["n"] == 59 and s["lp1"]["above_1"] == 2 and s["lp1"]["below_0"] == 1
    # plotted range [0, 1.5]: the 0.5 % quantile is above 0, the 99.5 % one above 1.5 -> LP -0.09 and 2.5 outside
    assert s["lp1"]["plot_range"] == [0.0, 1.5] and s["lp1"]["outside_plot"] == 2
    assert f"{s['lp1']['median']:.3f}" in md
    assert s["spearman_lp1_length"] == pytest.approx(spearman(scores)[0])
    assert f"Spearman ρ = {s['spearman_lp1_length']:.3f}" in md


def test_epochs_0_run_gets_counts_and_p0_only(tmp_path):
    run = make_run(tmp_path / "run0", 0)
    result = make_report(run, out_dir=tmp_path / "out")
    assert set(result.figures) == {"status_counts", "p0_histogram", "p0_vs_length"}
    for path in result.figures.values():
        assert_png(path)
    md = result.markdown.read_text()
    assert "trained for 0 epochs: there is no LP(1)" in md
    assert "## Most surprising rows (highest P_0)" in md
    assert "| ok | 60 |" in md and "lp1" not in result.stats


def test_report_without_run_json_and_stale_figures_removed(tmp_path):
    run = make_run(tmp_path / "run", 2, with_json=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / FIGURE_FILES["p0_vs_length"]).write_bytes(b"old")  # from an earlier epochs-0 report
    result = make_report(run, out_dir=out)
    assert "lp1_vs_length" in result.figures and not (out / FIGURE_FILES["p0_vs_length"]).exists()
    assert "2 training epoch(s)" in result.markdown.read_text()


def test_run_where_no_row_has_an_lp(tmp_path):
    run = make_run(tmp_path / "run", 1)
    scores = pd.read_parquet(run.scores)
    scores["lp1"] = np.nan
    write_parquet(scores, run.scores)
    result = make_report(run)
    assert "lp1_histogram" not in result.figures and "trajectory" not in result.figures
    assert "No row has an LP(1)" in result.markdown.read_text()


def test_figure_functions_return_figures(run3):
    scores = pd.read_parquet(run3.scores)
    for function in (lp1_histogram, p0_histogram, trajectory_by_tertile, status_counts):
        assert isinstance(function(scores), Figure)
    fig = score_vs_length(scores)
    rho, n = spearman(scores)
    assert n == 59 and f"ρ = {rho:+.3f}" in fig.axes[0].get_title()
    title = lp1_histogram(scores).axes[0].get_title()
    assert "59 scored rows: 1 below 0, 2 above 1" in title and "2 value(s) outside [0, 1.5]" in title
    assert lp_display_range(scores["lp1"]) == (0.0, 1.5)
    assert lp_display_range(pd.Series([-0.3] * 5 + [0.8] * 5 + [1.2] * 5)) == (-0.3, 1.2)
    assert lp_display_range(pd.Series([-3.0, 0.5, 9.0])) == (-0.5, 1.5)
    assert isinstance(score_vs_length(scores, "ppl_0"), Figure)
    with pytest.raises(ValueError, match="No finite LP"):
        lp1_histogram(scores.assign(lp1=np.nan))


def test_tertiles_and_examples_tie_break_by_row():
    scores = pd.DataFrame(
        {
            "row": range(7),
            "id": list("abcdefg"),
            "lp1": [0.5, 0.1, 0.5, np.nan, 0.9, 0.3, 0.5],
            "ppl_0": 10.0,
            "ppl_1": 5.0,
            "n_response_tokens": 5,
        }
    )
    thirds = lp1_tertiles(scores)
    # ascending by (lp1, row): 1, 5, 0, 2, 6, 4 -> thirds of 2
    assert thirds.tolist() == ["medium", "hard", "medium", np.nan, "easy", "hard", "easy"]
    hardest, easiest = examples(scores, n=3)
    assert hardest["row"].tolist() == [1, 5, 0]
    assert easiest["row"].tolist() == [4, 0, 2]
    assert hardest.columns.tolist() == ["row", "id", "lp1", "ppl_0", "ppl_1", "n_response_tokens", "text"]


def test_minimal_scores_table_from_another_tool(tmp_path):
    """Only id and score columns (the compare contract): the report still works."""
    run = make_run(tmp_path / "run", 2, with_json=False)
    scores = pd.read_parquet(run.scores)
    write_parquet(scores[["id", "ppl_0", "ppl_1", "ppl_2", "lp1"]], run.scores)
    result = make_report(run)
    assert set(result.figures) == {"status_counts", "lp1_histogram", "p0_histogram", "trajectory"}
    assert "| ok | 66 |" in result.markdown.read_text()


def test_a_missing_run_directory_is_one_sentence(tmp_path):
    from hf_lpselect.errors import RunError

    with pytest.raises(
        RunError, match=r"^No run directory at .*nowhere; give the --out folder of a finished `lpselect score`\.$"
    ):
        make_report(tmp_path / "nowhere")


def test_a_directory_without_scores_is_one_sentence(tmp_path):
    from hf_lpselect.errors import RunError

    (tmp_path / "started").mkdir()
    with pytest.raises(RunError, match=r"started holds no scores\.parquet, so it is not a finished scorer run"):
        make_report(tmp_path / "started")
    assert not (tmp_path / "started" / "report").exists()


def test_the_summary_table_never_cuts_a_number():
    """Before: a P_0 of 615.38 printed as "615.…" in an 80-column terminal."""
    from rich.console import Console

    from hf_lpselect.scoring.summary import print_summary

    example = {"row": 12345, "lp1": -0.123, "ppl_0": 615.38, "text": "a long instruction " * 20}
    summary = {
        "run_dir": "r",
        "n_rows": 1,
        "counts": {"ok": 1, "excluded": 0, "invalid": 0, "duplicate": 0, "truncated": 0},
        "excluded_reasons": {},
        "files": [],
        "lp1": {
            "n": 1,
            "nan": 0,
            "above_1": 0,
            "below_0": 1,
            "quantiles": dict.fromkeys((0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0), -0.123),
            "histogram": {"counts": [1], "edges": [-0.5, 1.5]},
        },
        "hardest": [example],
        "easiest": [example],
    }
    console = Console(width=60, record=True)
    print_summary(summary, console)
    text = console.export_text()
    assert "615.4" in text and "12345" in text and "-0.123" in text


def test_the_summary_tables_first_column_shows_every_row_number():
    """Before: in an 80-column terminal, five long rows with P_0 near 5e4 squeezed the row column to nothing
    (rich shrinks every column alike when a table is too wide): `││ 0.476 │ 5.306e+04 │ Put the …`."""
    from rich.console import Console

    from hf_lpselect.scoring.summary import print_summary

    examples = [
        {"row": row, "lp1": lp1, "ppl_0": ppl, "text": "Put the following words in alphabetical order. " * 3}
        for row, lp1, ppl in ((20, 0.476, 53060.0), (12, 0.582, 39970.0), (0, 0.584, 48830.0), (16, 0.592, 51810.0))
    ]
    summary = {
        "run_dir": "r",
        "n_rows": 4,
        "counts": {"ok": 4, "excluded": 0, "invalid": 0, "duplicate": 0, "truncated": 0},
        "excluded_reasons": {},
        "files": [],
        "lp1": {
            "n": 4,
            "nan": 0,
            "above_1": 0,
            "below_0": 0,
            "quantiles": dict.fromkeys((0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0), 0.5),
            "histogram": {"counts": [4], "edges": [-0.5, 1.5]},
        },
        "hardest": examples,
        "easiest": examples[::-1],
    }
    console = Console(width=80, record=True)
    print_summary(summary, console)
    lines = [line for line in console.export_text().splitlines() if "5.306e+04" in line]
    assert len(lines) == 2 and all(line.startswith("│  20 │ 0.476 │ 5.306e+04 │ Put the") for line in lines)
    assert all(len(line) <= 80 for line in console.export_text().splitlines())


def test_the_easiest_rows_leave_out_rows_flagged_lp1_above_1(run3):
    """Before: the Easiest table was headed by row 0 (LP(1) 2.5) and row 1 (above 1): out of range, not easy."""
    from rich.console import Console

    from hf_lpselect.scoring.summary import print_summary, summarize

    summary = summarize(run3)
    scores = pd.read_parquet(run3.scores)
    assert summary["easiest_left_out"] == int(scores["lp1_above_1"].sum()) == 2
    expected = scores[~scores["lp1_above_1"]].dropna(subset=["lp1"]).sort_values(["lp1", "row"]).tail(5)
    assert [ex["row"] for ex in summary["easiest"]] == expected["row"].tolist()[::-1]
    assert all(ex["lp1"] <= 1 for ex in summary["easiest"])
    console = Console(width=100, record=True)
    print_summary(summary, console)
    easiest = console.export_text().split("Easiest (highest LP(1))")[1]
    assert "  2 row(s) flagged LP(1) above 1 left out: out of range, not easy" in easiest
