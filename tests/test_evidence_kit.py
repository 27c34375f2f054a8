"""The GPU evidence kit (benchmarks/bench_evidence_gpu.py) at toy size on a CPU: every stage, resuming, the parts.

Tiny models from configs with a toy tokenizer and a few dozen real Alpaca rows (../shared): this checks the kit, it
measures nothing. The device calls are run in this process; each "call" is the same `run STAGE` command with the
parts it carried present under WORK/calls/.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest


sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_evidence_gpu as kit  # noqa: E402


pytestmark = pytest.mark.skipif(not kit.REPO.parent.joinpath("shared", "data").is_dir(), reason="needs ../shared/data")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on a shared 2-core machine: one torch thread is ~10x faster than two that wait for each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A toy kit whose bundles are cut into several parts (a 0.1 MiB chunk)."""
    work = tmp_path_factory.mktemp("evidence") / "work"
    kit.main(["prepare", "--toy", "--work", str(work), "--chunk-mib", "0.1"])
    return work


def call(step: str, *args: str, work: Path, results: Path, **options: str | list[str]) -> None:
    flags = [x for k, v in options.items() for x in (f"--{k.replace('_', '-')}", *([v] if isinstance(v, str) else v))]
    kit.main([step, *args, "--work", str(work), "--results", str(results), *flags])


def device(stage: str, work: Path, results: Path, store: Path, **options: str) -> None:
    call("run", stage, work=work, results=results, out=str(results), store=str(store), micro_batch="4", **options)


def test_toy_kit_runs_every_stage_resumes_and_reports(prepared, tmp_path, capsys):
    results, store = tmp_path / "results", tmp_path / "store"
    assert len(list((prepared / "calls" / "scorer").glob("*/part"))) > 1

    device("scorer", prepared, results, store)
    scored = results / "scorer" / "stage.json"
    assert scored.is_file() and (results / "scorer" / "scores.parquet").is_file()
    before = scored.stat().st_mtime_ns
    device("scorer", prepared, results, store)  # done: not run again
    assert scored.stat().st_mtime_ns == before
    assert "stage scorer is done" in capsys.readouterr().out
    device("scorer-seed2", prepared, results, store)

    call("select", work=prepared, results=results)  # the real run's fractions and seeds
    arms = json.loads((results / "arms.json").read_text())["arms"]
    assert {
        "base",
        "full",
        "random-s0@0.33",
        "lp1-hard@0.33",
        "lp1-hard-pc@0.33",
        "lp-app-hard@0.33",
        "lp-app-hard-pc@0.33",
        "clustered-random@0.33",
        "longest@0.33",
        "ifd-nll@0.33",
    } <= set(arms)
    assert len(arms) == 3 * 10 + 2  # 10 arms at each fraction, the full pool and the untrained base
    global_rows = {arms[a]["n_rows"] for a in arms if a.endswith("@0.33") and not arms[a]["per_cluster"]}
    assert len(global_rows) == 1  # every global arm takes as many rows as lp1-hard

    device("target", prepared, results, store, budget_s="0")  # a lease that ends after one arm
    assert [p.stem for p in (results / "target").glob("*.parquet")] == ["base"]
    report = tmp_path / "report.json"
    call("report", work=prepared, results=results, report=str(report))
    partial = json.loads(report.read_text())
    assert "base" not in partial["pending"] and "full" in partial["pending"]
    assert all("not measured yet" in v for v in partial["verdicts"].values())

    device("target", prepared, results, store)  # the next lease: the rest
    done = {p.stem for p in (results / "target").glob("*.parquet")}
    assert done == {kit.arm_file(a) for a in arms}
    device("target", prepared, results, store)
    assert "stage target is done" in capsys.readouterr().out
    call("plan", work=prepared, results=results)
    assert capsys.readouterr().out.splitlines() == ["scorer: done", "scorer-seed2: done", "target: done"]

    call("report", work=prepared, results=results, report=str(report))
    payload = json.loads(report.read_text())
    assert (
        payload["pending"] == [] and payload["fractions"] == [0.05, 0.1, 0.33] and payload["random_seeds"] == [0, 1, 2]
    )
    assert set(payload["verdicts"]) == set(payload["comparisons"]) == {"0.05", "0.1", "0.33"}
    assert set(payload["arms"]) == set(arms) and all(a["done"] for a in payload["arms"].values())
    compared = payload["comparisons"]["0.33"]
    assert set(compared) == {a for a in arms if a.endswith("@0.33") and not a.startswith("random-")} | {"full"}
    for sets in compared.values():
        for name in kit.SETS:
            c = sets[name]
            assert c["n_rows"] > 0 and c["ci_low"] <= c["mean_diff"] <= c["ci_high"]
            assert c["reading"] in ("lower", "higher", "no difference") and c["null_bound"] > 0
            assert c["verdict"] in ("lower", "higher", "no difference")
    for fraction, sentence in payload["verdicts"].items():
        assert sentence.startswith(f"At {float(fraction):.0%} of the pool") and sentence.endswith(".")
        assert "beyond what re-drawing the random subset changes" in sentence and " comparisons" in sentence
    null = payload["random_null"]["0.05"]["alpaca_heldout"]
    assert null["n_seeds"] == 3 and len(null["loo_diffs"]) == 3 and null["spread"] >= 0
    assert set(payload["per_cluster_vs_clustered_random"]["0.05"]) == {"lp1-hard-pc@0.05", "lp-app-hard-pc@0.05"}
    assert {"kendall_tau_b", "top"} <= set(payload["stability"])
    assert payload["stability"]["top"]["0.05"]["reading"] in ("seed noise", "partly stable")
    assert payload["size_ratio"]["ratio"] > 0 and "Yin & Rush" in payload["size_ratio"]["statement"]
    table = (results / "table.md").read_text()
    assert table.count("\n") == len(arms) + 2 + 1 + 3  # header, arms, a blank line, the null at each fraction
    full = next(line for line in table.splitlines() if line.startswith("| `full`"))
    assert all(f"vs random at {f}" in full for f in ("5%", "10%", "33%"))
    assert "Random vs random at 5% (held-out Alpaca: leave-one-out differences" in table


def only_parts(prepared: Path, tmp_path: Path, bundle: str, keep: list[int]) -> Path:
    """A copy of the kit's call folders as one call brings them: only the parts ``keep``."""
    work = tmp_path / "work"
    for index in keep:
        shutil.copytree(prepared / "calls" / bundle / str(index), work / "calls" / bundle / str(index))
    return work


def test_parts_carried_in_order_are_kept_until_all_are_here(prepared, tmp_path, capsys):
    n = len(list((prepared / "calls" / "target").glob("*/part")))
    store = tmp_path / "store"
    manifest = None
    for index in range(1, n):
        manifest, carried = kit.stash_parts(
            only_parts(prepared, tmp_path / str(index), "target", [index]), "target", store
        )
        assert carried == [index] and kit.check_parts(manifest, store, carried) is False
        assert f"calls/target/{index + 1}" in capsys.readouterr().out
    manifest, carried = kit.stash_parts(only_parts(prepared, tmp_path / "last", "target", [n]), "target", store)
    assert kit.check_parts(manifest, store, carried) is True
    assert (kit.unpack(manifest, store) / "kit.json").is_file()


def test_a_missing_part_names_the_calls_to_repeat(prepared, tmp_path):
    n = len(list((prepared / "calls" / "scorer").glob("*/part")))
    store = tmp_path / "store"  # a machine given back bare: part 1 is gone
    manifest, carried = kit.stash_parts(only_parts(prepared, tmp_path, "scorer", [n]), "scorer", store)
    with pytest.raises(
        kit.KitError, match=r"Part\(s\) 1, .* are missing on this machine .* again, back to back, then this one"
    ):
        kit.check_parts(manifest, store, carried)


def test_a_damaged_part_is_refused(prepared, tmp_path):
    work = only_parts(prepared, tmp_path, "scorer", [1])
    part = work / "calls" / "scorer" / "1" / "part"
    part.write_bytes(b"x" + part.read_bytes()[1:])
    with pytest.raises(kit.KitError, match="Part 1 of bundle 'scorer' arrived damaged"):
        kit.stash_parts(work, "scorer", tmp_path / "store")


def test_select_needs_two_random_seeds_for_the_null(prepared, tmp_path):
    with pytest.raises(kit.KitError, match="at least two --random-seeds"):
        call("select", work=prepared, results=tmp_path / "results", random_seeds=["0"])


def test_target_needs_the_committed_arms(prepared, tmp_path):
    with pytest.raises(kit.KitError, match="arms.json is missing: run `bench_evidence_gpu.py select` here"):
        device("target", prepared, tmp_path / "results", tmp_path / "store")


def judged(**arms: tuple[tuple[str, float], tuple[str, float]]) -> dict:
    """Comparisons at 5 % with the given (verdict, mean difference) on held-out Alpaca and on AlpacaEval per arm."""
    return {
        f"{arm.replace('_', '-')}@0.05": {name: {"verdict": v, "mean_diff": d} for name, (v, d) in zip(kit.SETS, pair)}
        for arm, pair in arms.items()
    }


SAME = ("no difference", 0.01)
NULLS = {name: {"n_seeds": 3, "spread": 0.02, "t": 4.302653} for name in kit.SETS}  # bound ±0.099 vs the 3 seeds
RULE = (
    "At 5% of the pool (500 rows), counting only differences beyond what re-drawing the random subset changes "
    "(±0.099 on held-out Alpaca, ±0.099 on AlpacaEval, from 3 random seeds; -pc arms against clustered-random): "
)


def test_the_verdict_waits_for_the_random_seeds_and_an_lp_arm():
    plans = {"lp1-hard@0.05": {"n_rows": 500}}
    assert kit.verdict(0.05, {}, {}, None, plans, None) == (
        "At 5% of the pool (500 rows): not measured yet (the random seeds and at least one LP-hard arm must have run)."
    )


def test_one_win_among_eight_is_named_counted_flagged_and_checked_against_longest():
    plans = {"lp1-hard@0.05": {"n_rows": 500}}
    compared = judged(lp1_hard=(("lower", -0.15), SAME), lp_app_hard=(SAME, SAME), longest=(("lower", -0.2), SAME))
    per_cluster = judged(lp1_hard_pc=(SAME, SAME), lp_app_hard_pc=(SAME, SAME))
    assert kit.verdict(0.05, compared, per_cluster, NULLS, plans, None) == RULE + (
        "lp1-hard beat random on held-out Alpaca (1 of 8 comparisons; a single win among 8 may be chance, not a result "
        "on its own); but `longest` did as well there (-0.200 vs -0.150 on held-out Alpaca): the gain may be length, "
        "not hardness."
    )


def test_per_cluster_arms_are_judged_against_clustered_random_and_longest_on_every_winning_set():
    plans = {"lp1-hard@0.05": {"n_rows": 500}}
    compared = judged(
        lp1_hard=(SAME, ("lower", -0.12)),
        lp_app_hard=(SAME, ("higher", 0.2)),
        lp1_hard_pc=(("lower", -0.3), ("lower", -0.3)),  # against the random mean: not what is judged
        longest=(("lower", -0.1), SAME),
    )
    per_cluster = judged(lp1_hard_pc=(SAME, ("lower", -0.13)), lp_app_hard_pc=(("lower", -0.14), SAME))
    noisy = {
        "kendall_tau_b": 0.12,
        "top": {"0.05": {"overlap": 0.08, "expected_random": 0.05, "reading": "seed noise"}},
    }
    assert kit.verdict(0.05, compared, per_cluster, NULLS, plans, noisy) == RULE + (
        "lp-app-hard-pc (vs clustered-random) beat random on held-out Alpaca; lp1-hard, lp1-hard-pc (vs clustered-random) "
        "beat random on AlpacaEval (3 of 8 comparisons, uncorrected for multiplicity); "
        "`longest` did less well there (-0.100 vs -0.140 on held-out Alpaca); "
        "`longest` did less well there (+0.010 vs -0.130 on AlpacaEval); "
        "lp-app-hard did worse than random on AlpacaEval; "
        "LP(1)'s hardest 5% under a second scorer seed overlaps 8% (chance 5%, Kendall tau 0.12): mostly seed noise."
    )


def test_seed_overlap_is_read_against_chance_not_against_one_half():
    assert kit.overlap_reading(0.3, 0.05) == "partly stable"  # 6x chance: the old rule (< 0.5) called this noise
    assert kit.overlap_reading(0.09, 0.05) == "seed noise"  # under 2x chance
    assert kit.overlap_reading(0.1, 0.05) == "partly stable"
    assert kit.overlap_reading(None, 0.05) == "not measured"


def test_the_size_ratio_says_what_it_implies(tmp_path):
    (tmp_path / "scorer").mkdir()
    (tmp_path / "target").mkdir()
    (tmp_path / "scorer" / "stage.json").write_text(
        json.dumps({"parameters": 134_515_008, "non_embedding_parameters": 106_203_456})
    )
    (tmp_path / "target" / "base.json").write_text(
        json.dumps({"parameters": 268_098_176, "non_embedding_parameters": 100_326_016})
    )
    ratio = kit.size_ratio(tmp_path)
    assert (ratio["ratio"], ratio["ratio_without_embeddings"]) == (1.99, 0.94)
    assert ratio["statement"].startswith("The target has 2.0x the scorer's parameters (0.9x without embeddings); ")
    assert "a null result here does not refute the paper" in ratio["statement"]
    assert (
        "ratio" not in kit.size_ratio(tmp_path / "nothing")
        and "2.0x" in kit.size_ratio(tmp_path / "nothing")["statement"]
    )
