"""The row limit and the time estimate the Space shows before scoring: pure arithmetic, no torch."""

from __future__ import annotations

import os
from pathlib import Path


# Measured on 2 CPU cores with the default SmolLM2-135M-Instruct (README, "Speed" and the demo:
# 1.0-1.3 s per row and epoch of training, a scoring pass 11 % of that); a GPU is taken as 20x faster.
SECONDS_PER_ROW_EPOCH = {"cpu": 1.0, "gpu": 0.05}
SECONDS_PER_ROW_PASS = {"cpu": 0.11, "gpu": 0.006}
ROW_LIMIT = {"cpu": 300, "gpu": 5000}
# loading the data and the scorer model before the first pass: a 10-row, 0-epoch run of the default
# model took 18.7 s on 2 CPU cores, of which its one scoring pass is about 1 s; on a GPU
# (ZeroGPU: a device is attached per call) the weights also move to the device
LOAD_SECONDS = {"cpu": 17.0, "gpu": 20.0}


def hardware() -> str:
    """``"gpu"`` on a machine with an NVIDIA driver (or a ZeroGPU Space), else ``"cpu"``; cheap: no torch import."""
    return "gpu" if os.environ.get("SPACES_ZERO_GPU") or Path("/dev/nvidiactl").exists() else "cpu"


def estimate_seconds(rows: int, epochs: int, kind: str = "cpu") -> float:
    """Rough wall time of a scorer run of ``rows`` rows and ``epochs`` epochs with the default model,
    loading the model and the data included."""
    return LOAD_SECONDS[kind] + rows * (
        epochs * SECONDS_PER_ROW_EPOCH[kind] + (epochs + 1) * SECONDS_PER_ROW_PASS[kind]
    )


def estimate_text(rows: int, epochs: int, kind: str = "cpu") -> str:
    """One sentence: ``"About 4 min on this CPU with the default model (100 rows, 2 epochs of training, 3 scoring passes); ..."``."""
    seconds = estimate_seconds(rows, epochs, kind)
    when = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
    passes = epochs + 1
    return (
        f"About {when} on this {'GPU' if kind == 'gpu' else 'CPU'} with the default model "
        f"(loading it, {rows:,} row{'s' * (rows != 1)}, {epochs} epoch{'s' * (epochs != 1)} of training, "
        f"{passes} scoring pass{'es' * (passes != 1)}); "
        "a bigger scorer takes longer."
    )
