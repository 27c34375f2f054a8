"""Benchmark: can LP(1) come from the training losses alone (no scoring passes)? Measured before it is offered.

    python benchmarks/bench_trainloss_lp.py --run RUN_DIR [--run RUN_DIR ...] [--name bench_trainloss_lp]

A scorer run records, for free, each row's training loss in every epoch (``train_losses.parquet``:
the mean response NLL of the row's micro-batch forward, in training mode, before the optimizer
step that uses it). The exact LP(1) needs n + 1 scoring passes (``P_0 .. P_n``). Two cheaper
stand-ins, each compared with the exact LP(1) of the same run (``scores.parquet``):

- ``train-loss``: no pass at all. A row's epoch-1 loss is taken before the model has seen that row,
  so ``exp(L_1)`` stands for ``P_0``, ``exp(L_2)`` for ``P_1`` and so on:
  ``LP~(1) = (e^L1 - e^L2) / (e^L1 - e^Ln)`` (needs n >= 3 epochs for a non-trivial denominator);
- ``passes-0-n``: the exact first and last passes (2 instead of n + 1) and ``exp(L_2)`` for ``P_1``:
  ``LP~(1) = (P_0 - e^L2) / (P_0 - P_n)``.

Agreement is :func:`hf_lpselect.selection.agreement.agreement` (what ``lpselect compare`` prints):
Spearman, Kendall tau-b and the overlap of the hardest 5 / 10 / 33 % (low LP(1)) sets, next to
what two random rankings would give. Writes benchmarks/results/<name>.json. No asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as C  # noqa: E402


TOP = (0.05, 0.1, 0.33)


def stand_ins(run: Path):
    """The run's exact scores table and one table per stand-in, each with its ``lp1`` column."""
    import numpy as np
    import pandas as pd

    scores = pd.read_parquet(run / "scores.parquet")
    losses = pd.read_parquet(run / "train_losses.parquet")
    n_epochs = int(losses["epoch"].max())
    if n_epochs < 3:
        raise SystemExit(f"{run} trained {n_epochs} epoch(s); the train-loss stand-in needs at least 3.")
    ppl = np.exp(losses.pivot_table(index="row", columns="epoch", values="loss", aggfunc="first"))
    ok = scores[scores["status"] == "ok"].set_index("row")
    ppl = ppl.reindex(ok.index)
    p0, pn = ok["ppl_0"], ok[f"ppl_{n_epochs}"]
    total = {"train-loss": ppl[1] - ppl[n_epochs], "passes-0-n": p0 - pn}
    first = {"train-loss": ppl[1] - ppl[2], "passes-0-n": p0 - ppl[2]}
    tables = {}
    for name in total:
        lp1 = (first[name] / total[name]).where(total[name] > 0)
        tables[name] = ok.assign(lp1=lp1.to_numpy()).reset_index()
    return scores, tables, n_epochs


def measure(run: Path) -> dict[str, Any]:
    from hf_lpselect.selection.agreement import agreement

    scores, tables, n_epochs = stand_ins(run)
    record = json.loads((run / "run.json").read_text())
    out: dict[str, Any] = {
        "run": str(run),
        "n_epochs": n_epochs,
        "n_ok": int((scores["status"] == "ok").sum()),
        "model": record.get("model", {}).get("model")
        if isinstance(record.get("model"), dict)
        else record.get("model"),
        "dataset": record.get("source") or record.get("dataset"),
    }
    for name, table in tables.items():
        result = agreement(scores, table, score="lp1", reference=None, top=TOP)
        lp1 = result["results"]["lp1"]
        out[name] = {
            "n_matched": result["n_matched"],
            "spearman": lp1["spearman"],
            "kendall_tau_b": lp1["kendall_tau_b"],
            "hardest_overlap": {
                f"{t['fraction']:g}": {"overlap": t["overlap"], "random": t["expected_random"], "k": t["k"]}
                for t in lp1["top"]
            },
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run", type=Path, action="append", required=True, help="A complete scorer run (>= 3 epochs)."
    )
    parser.add_argument("--name", default="bench_trainloss_lp")
    args = parser.parse_args()
    runs = [measure(run) for run in args.run]
    payload = {"benchmark": args.name, "date": C.now(), "command": C.command_line(), "runs": runs}
    rows = []
    for run in runs:
        for name in ("train-loss", "passes-0-n"):
            top = run[name]["hardest_overlap"]
            rows.append(
                [
                    Path(run["run"]).name,
                    run["n_ok"],
                    name,
                    run[name]["kendall_tau_b"],
                    run[name]["spearman"],
                    top["0.1"]["overlap"],
                    top["0.1"]["random"],
                ]
            )
    print(C.table(rows, ["run", "rows", "stand-in", "kendall", "spearman", "hardest-10% overlap", "random"]))
    print(f"wrote {C.write_results(args.name, payload)}")


if __name__ == "__main__":
    main()
