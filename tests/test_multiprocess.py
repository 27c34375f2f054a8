"""A scorer run under ``accelerate launch`` with 2 CPU processes (gloo) against a 1-process run.

How two CPU processes are launched: accelerate's ``--cpu`` launcher starts ONE process unless it
runs under ``mpirun`` (``--mpirun_hostfile``), so the test uses accelerate's torchrun launcher
(``--multi_gpu``; it needs no GPU) with ``ACCELERATE_USE_CPU=1``, which makes accelerate pick
``MULTI_CPU`` with the gloo backend. Without that variable, on a machine with no GPU, each process
would silently run alone (``DistributedType.NO``), so the entry script reports every rank's view
and the test checks it.

What must hold (docs/reliability.md, "Many processes"): the same rows table, every input row in scores.parquet once,
every ok row scored exactly once in every pass, P_0 equal to the single-process P_0, and each ok
row's training loss recorded once per epoch. Later passes may differ: 2 ranks train differently.

37 of the 40 input rows are ok: an odd count, so the scoring batches are dealt unevenly (3 vs 2)
and the last training batch is padded by accelerate (``even_batches``), the cases that go wrong.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hf_lpselect.scoring.demo_data import make_demo_rows


pytestmark = pytest.mark.multiprocess

EPOCHS = 2
N_ROWS = 40
TIMEOUT_S = 300

ENTRY = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    from accelerate import PartialState
    from hf_lpselect.scoring.scorer_run import score

    data, model, out, epochs = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    result = score(
        data, out=out, model=model, epochs=epochs, max_length=128, seed=7,
        per_device_train_batch_size=4, gradient_accumulation_steps=1, learning_rate=1e-3, warmup_steps=0,
        score_batch_size=8, bf16=False, logging_steps=1000,
    )
    state = PartialState()
    rank = state.process_index
    result.scores.to_parquet(out.parent / f"{out.name}.rank{rank}.scores.parquet", index=False)
    (out.parent / f"{out.name}.rank{rank}.json").write_text(json.dumps({
        "process_index": rank,
        "num_processes": state.num_processes,
        "distributed_type": str(state.distributed_type),
        "backend": state.backend,
    }))
    """
)


# two CPU processes (gloo) under accelerate, as `accelerate launch --multi_gpu --num_processes 2` starts them
LAUNCH = [
    sys.executable,
    "-m",
    "accelerate.commands.launch",
    "--multi_gpu",
    "--num_processes",
    "2",
    "--num_machines",
    "1",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
    "--main_process_port",
    "0",
]


def _child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **extra)
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> None:
    """Run ``cmd`` in its own process group; on failure or timeout, show the child's stderr."""
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the ranks it started
        stdout, stderr = proc.communicate()
        sys.stderr.write(stderr[-8000:] + "\n")
        pytest.fail(f"{' '.join(cmd)} ran past {TIMEOUT_S} s; its stderr (tail) is above")
    if proc.returncode != 0:
        sys.stderr.write(stderr[-8000:] + "\n")
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}; stderr (tail):\n{stderr[-4000:]}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir):
    """The same scorer run twice: 1 plain process, and 2 processes under ``accelerate launch``."""
    base = tmp_path_factory.mktemp("multiprocess")
    records = [{k: r[k] for k in ("instruction", "input", "output")} for r in make_demo_rows(37, seed=1)]
    records.insert(5, dict(records[3]))  # duplicate of row 3
    records.insert(20, {"instruction": "Say nothing.", "input": "", "output": "  "})  # invalid: empty response
    records.append({"instruction": "Count.", "input": "", "output": 5})  # invalid: not a string
    assert len(records) == N_ROWS
    data = base / "data.json"
    data.write_text(json.dumps(records))
    entry = base / "entry.py"
    entry.write_text(ENTRY)
    args = [str(data), str(tiny_model_dir)]

    # The 1-process reference only needs rows.parquet and P_0, which do not depend on training.
    _run([sys.executable, str(entry), *args, str(base / "single"), "0"], _child_env(), base)
    launch = [
        *LAUNCH,
        str(entry),
        *args,
        str(base / "multi"),
        str(EPOCHS),
    ]
    _run(launch, _child_env(ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1"), base)
    return base


def _read(run: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(run / name)


def test_two_ranks_really_ran(runs):
    views = [json.loads((runs / f"multi.rank{r}.json").read_text()) for r in (0, 1)]
    assert [v["process_index"] for v in views] == [0, 1]
    assert all(v["num_processes"] == 2 for v in views)
    assert all(v["distributed_type"].endswith("MULTI_CPU") and v["backend"] == "gloo" for v in views)


def test_rows_table_equals_single_process(runs):
    single, multi = _read(runs / "single", "rows.parquet"), _read(runs / "multi", "rows.parquet")
    pd.testing.assert_frame_equal(multi, single)
    assert multi["row"].tolist() == list(range(N_ROWS))
    assert multi["status"].value_counts().to_dict() == {"ok": 37, "invalid": 2, "duplicate": 1}


def test_scores_have_every_input_row_once(runs):
    rows = _read(runs / "multi", "rows.parquet")
    scores = _read(runs / "multi", "scores.parquet")
    assert scores["row"].tolist() == list(range(N_ROWS))
    assert scores["id"].tolist() == rows["id"].tolist()
    assert scores["status"].tolist() == rows["status"].tolist()
    nll = [f"nll_{k}" for k in range(EPOCHS + 1)]
    ok = scores["status"] == "ok"
    assert np.isfinite(scores.loc[ok, nll].to_numpy()).all()
    assert scores.loc[~ok, nll + ["lp1"]].isna().all().all()
    # every rank returns the same, full table
    for rank in (0, 1):
        pd.testing.assert_frame_equal(_read(runs, f"multi.rank{rank}.scores.parquet"), scores)
    info = json.loads((runs / "multi" / "run.json").read_text())
    assert info["complete"]
    assert not (runs / "multi" / "checkpoints").exists()


def test_every_pass_scores_each_ok_row_exactly_once(runs):
    rows = _read(runs / "multi", "rows.parquet")
    ok = rows.loc[rows["status"] == "ok"]
    for k in range(EPOCHS + 1):
        scored = _read(runs / "multi", f"passes/epoch_{k}.parquet")
        assert scored["row"].tolist() == ok["row"].tolist(), f"pass {k}"
        assert scored["n_tokens"].tolist() == ok["n_response_tokens"].tolist(), f"pass {k}"
        assert np.isfinite(scored["nll"]).all(), f"pass {k}"


def test_p0_equals_single_process(runs):
    single = _read(runs / "single", "passes/epoch_0.parquet")
    multi = _read(runs / "multi", "passes/epoch_0.parquet")
    assert multi["row"].tolist() == single["row"].tolist()
    assert multi["n_tokens"].tolist() == single["n_tokens"].tolist()
    np.testing.assert_allclose(multi["nll"], single["nll"], rtol=1e-5)


def test_train_losses_have_each_ok_row_once_per_epoch(runs):
    rows = _read(runs / "multi", "rows.parquet")
    ok_rows = sorted(rows.loc[rows["status"] == "ok", "row"])
    losses = _read(runs / "multi", "train_losses.parquet")
    assert sorted(losses["epoch"].unique()) == list(range(1, EPOCHS + 1))
    for epoch, group in losses.groupby("epoch"):
        assert sorted(group["row"]) == ok_rows, f"epoch {epoch}"
    assert np.isfinite(losses["loss"]).all()
    # 37 rows, 2 ranks x 4 rows a step: 5 optimizer steps per epoch (the last one padded)
    assert losses["step"].max() == 5 * EPOCHS


def test_run_json_records_world_size(runs):
    assert json.loads((runs / "multi" / "run.json").read_text())["world_size"] == 2


TRAIN_ENTRY = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    from accelerate import PartialState
    import hf_lpselect

    run, model, out = sys.argv[1], sys.argv[2], sys.argv[3]
    result = hf_lpselect.train(
        model_name_or_path=model, run=run, strategy="lp1-hard", fraction=0.5, output_dir=out, num_train_epochs=1,
        per_device_train_batch_size=2, gradient_accumulation_steps=1, learning_rate=1e-3, bf16=False, max_length=128,
        report_to="none", save_strategy="no", logging_steps=1000, disable_tqdm=True,
    )
    state = PartialState()
    Path(f"{out}.rank{state.process_index}.json").write_text(json.dumps({
        "num_processes": state.num_processes, "row_ids": result.record.row_ids,
    }))
    """
)


def test_train_under_two_processes_completes_with_the_selected_rows(runs, tiny_model_dir):
    """``lpselect train`` under DDP (2 CPU ranks) completes (no rank left waiting), and both ranks
    hold the rows the selection names. Every rank checks the output directory before rank 0 writes
    its record there."""
    from hf_lpselect.selection.subsets import select_run
    from hf_lpselect.training.train_record import TrainRecord

    entry = runs / "train_entry.py"
    entry.write_text(TRAIN_ENTRY)
    out = runs / "target"
    launch = [
        *LAUNCH,
        str(entry),
        str(runs / "multi"),
        str(tiny_model_dir),
        str(out),
    ]
    _run(launch, _child_env(ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1"), runs)
    views = [json.loads((runs / f"target.rank{r}.json").read_text()) for r in (0, 1)]
    assert [v["num_processes"] for v in views] == [2, 2]
    selection, scores = select_run(runs / "multi", "lp1-hard", fraction=0.5)
    expected = sorted(scores.set_index("row").loc[list(selection.rows), "id"])
    assert (
        sorted(TrainRecord.load(out).row_ids) == expected == sorted(views[0]["row_ids"]) == sorted(views[1]["row_ids"])
    )
    assert (out / "model.safetensors").is_file()
