"""A scoring pass through sharded weights: PyTorch FSDP2 (``fully_shard``) on 2 CPU
processes (gloo), launched with torchrun, gives the same P_0 as one process.

The scorer's fast path calls the decoder and the LM head directly; with sharded weights that fails
("mixed torch.Tensor and DTensor"), since FSDP gathers a module's shards only when the module is
called through its own forward. A sharded pass goes through the model's forward with TRL's fused LM
head, and every rank runs as many forwards as the others (FSDP's gathers are collectives).
A whole scorer run under FSDP needs accelerate's FSDP plugin, which picks FSDP only with GPUs; this
test shards the model the same way accelerate's FSDP2 does (``fully_shard`` per layer, then the root).

11 ok rows, first with a budget of one row per batch (11 batches dealt 6 / 5, so rank 1 runs a
forward whose results it throws away), then with padded batches of several rows. Then FSDP (1)
through LearningPercentageCallback as a Trainer calls it: it must score the trainer's wrapper, not
the inner module the callback is handed ("'weight' must be 2-D" before that fix).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
from conftest import make_tiny_model
from test_multiprocess import _child_env, _run

from hf_lpselect.ingest import canonicalize
from hf_lpselect.scoring.demo_data import make_demo_rows
from hf_lpselect.scoring.passes import score_pass
from hf_lpselect.templates import tokenize_rows


pytestmark = pytest.mark.multiprocess

WORKER = textwrap.dedent(
    """
    import sys
    import datasets, torch, torch.distributed as dist
    from types import SimpleNamespace
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP, fully_shard
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer

    sys.path.insert(0, sys.argv[1])
    from conftest import make_tiny_model
    from hf_lpselect.scoring.passes import score_pass
    from hf_lpselect.scoring.trainer import LearningPercentageCallback

    dist.init_process_group("gloo")
    rows = datasets.load_from_disk(sys.argv[2])
    model = make_tiny_model(int(sys.argv[3]))
    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    for budget in (1, 300):  # one row per batch, then padded batches of several rows
        frame = score_pass(model, rows, pad_token_id=int(sys.argv[4]), token_budget=budget, disable_progress=True)
        if dist.get_rank() == 0:
            frame.to_parquet(f"{sys.argv[5]}.{budget}.parquet")

    # FSDP (1) as a Trainer holds it: trainer.model is the wrapper, while callbacks are handed the
    # inner module; the callback must score through the wrapper
    wrapped = FSDP(make_tiny_model(int(sys.argv[3])), auto_wrap_policy=ModuleWrapPolicy({LlamaDecoderLayer}),
                   use_orig_params=True, device_id=torch.device("cpu"))
    trainer = SimpleNamespace(model=wrapped, state=None)
    callback = LearningPercentageCallback(rows, f"{sys.argv[5]}.fsdp1", trainer=trainer)
    args = SimpleNamespace(output_dir=f"{sys.argv[5]}.fsdp1", bf16=False, disable_tqdm=True)
    callback.on_train_begin(args, None, None, model=wrapped.module, processing_class=SimpleNamespace(pad_token_id=int(sys.argv[4])))
    dist.destroy_process_group()
    """
)


def test_fsdp2_on_two_processes_gives_the_single_process_p0(tmp_path, tokenizer):
    raw = canonicalize(
        datasets.Dataset.from_list(
            [{k: r[k] for k in ("instruction", "input", "output")} for r in make_demo_rows(11, seed=3)]
        )
    )
    rows = tokenize_rows(raw, tokenizer, template="alpaca", max_length=96)
    rows = rows.filter(lambda s: s == "ok", input_columns="status")
    assert len(rows) == 11
    rows.save_to_disk(str(tmp_path / "rows"))
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    out = tmp_path / "sharded"
    _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--standalone",
            str(worker),
            str(Path(__file__).parent),
            str(tmp_path / "rows"),
            str(len(tokenizer)),
            str(tokenizer.pad_token_id),
            str(out),
        ],
        _child_env(OMP_NUM_THREADS="1"),
        tmp_path,
    )

    single = score_pass(
        make_tiny_model(len(tokenizer)), rows, pad_token_id=tokenizer.pad_token_id, disable_progress=True
    )
    for sharded in [pd.read_parquet(f"{out}.{budget}.parquet") for budget in (1, 300)] + [
        pd.read_parquet(f"{out}.fsdp1/passes/epoch_0.parquet")  # FSDP (1), through the callback
    ]:
        assert sharded["row"].tolist() == single["row"].tolist() == rows["row"]
        assert sharded["n_tokens"].tolist() == single["n_tokens"].tolist()
        np.testing.assert_allclose(sharded["nll"], single["nll"], rtol=1e-5)
