"""What this process computes on, and the precision that suits it.

Defaults follow the hardware a run lands on, never the habits of one machine:

- **bf16 autocast only where the device computes bf16 natively**: an x86 CPU with AMX or AVX-512
  BF16, an Arm CPU with its BF16 extension, a CUDA GPU of compute capability 8.0 or more (Ampere,
  Ada, Hopper …), an XPU or ROCm GPU that says it supports bf16. Elsewhere float32: a CPU without
  native bf16 emulates it, and a 512x576 by 576x1536 matmul then took 25x longer in bf16 than in
  float32 (AMD EPYC Zen 1, AVX2 only). Apple GPUs get float32 (bf16 there is not measured).
- A run that asks for bf16 on such hardware gets it, with a one-line warning.
- ``HF_LPSELECT_BF16=0`` in the environment makes the probe report "no native bf16" on any device, so a
  machine with native bf16 runs (and tests) exactly as one without it would. Any other value, or none,
  leaves the probe to the hardware.

The choice is announced in one line when it is float32 for want of native bf16, and recorded in
``run.json`` (:meth:`Hardware.to_dict`). Nothing here imports a stage of hf_lpselect.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import platform
from dataclasses import asdict, dataclass

import torch


logger = logging.getLogger(__name__)

_X86 = ("x86_64", "amd64", "i386", "i686", "x86")
BF16_SWITCH = "HF_LPSELECT_BF16"


@dataclass(frozen=True)
class Hardware:
    """The device a run computes on, as far as precision and memory are concerned.

    Args:
        device (`str`): torch device type: ``"cuda"``, ``"xpu"``, ``"mps"`` or ``"cpu"``.
        name (`str`): the CPU model or the GPU's name, as the system reports it.
        native_bf16 (`bool`): the device computes bf16 matmuls natively (no emulation).
        why (`str`): the reason for ``native_bf16``, as a phrase a person can read.
        memory_bytes (`int` or `None`): the accelerator's total memory; ``None`` for a CPU.

    Example:

    ```python
    >>> from hf_lpselect.core.hardware import probe
    >>> hw = probe("cpu")
    >>> hw.device, isinstance(hw.native_bf16, bool)
    ('cpu', True)
    ```
    """

    device: str
    name: str
    native_bf16: bool
    why: str
    memory_bytes: int | None = None

    def to_dict(self) -> dict[str, object]:
        """Plain JSON values, for ``run.json``."""
        return asdict(self)


def has_accelerator() -> bool:
    """Whether torch sees a CUDA/ROCm GPU, an Apple GPU (MPS) or an Intel XPU."""
    xpu = getattr(torch, "xpu", None)
    return torch.cuda.is_available() or torch.backends.mps.is_available() or bool(xpu and xpu.is_available())


def default_device() -> str:
    """The device type a run uses when nothing is said: the accelerator if there is one, else ``"cpu"``."""
    if torch.cuda.is_available():
        return "cuda"
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        return "xpu"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what ``platform`` says)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _cpu_flag(name: str) -> bool:
    """One of torch's CPU feature probes (private in torch, so a missing one reads as absent)."""
    check = getattr(torch.cpu, name, None)
    return bool(check()) if callable(check) else False


def _cpu_bf16() -> tuple[bool, str]:
    if platform.machine().lower() in _X86:
        if _cpu_flag("_is_amx_tile_supported"):
            return True, "this CPU has AMX"
        if _cpu_flag("_is_avx512_bf16_supported"):
            return True, "this CPU has AVX-512 BF16"
        return (
            False,
            "this CPU has neither AMX nor AVX-512 BF16, so bf16 would be emulated, many times slower than float32",
        )
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return True, "this CPU has native bf16 instructions"
    return False, "this CPU has no native bf16 instructions, so bf16 would be emulated, many times slower than float32"


@functools.cache
def probe(device: str | None = None) -> Hardware:
    """What ``device`` (a torch device type; default: :func:`default_device`) is, and whether it computes bf16 natively.

    Args:
        device (`str` or `None`, *optional*, defaults to `None`): ``"cpu"``, ``"cuda"``, ``"xpu"``, ``"mps"``.

    Returns:
        [`Hardware`]: the device, and ``native_bf16=False`` whatever it is when ``HF_LPSELECT_BF16=0`` is set.

    Example:

    ```python
    >>> probe().why  # doctest: +SKIP
    'this CPU has AMX'
    ```
    """
    device = torch.device(device or default_device()).type
    hardware = _probe(device)
    if os.environ.get(BF16_SWITCH, "").strip() == "0":
        why = f"{BF16_SWITCH}=0 is set, so this device is treated as having no native bf16"
        return dataclasses.replace(hardware, native_bf16=False, why=why)
    return hardware


def _probe(device: str) -> Hardware:
    if device == "cuda":
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        if torch.version.hip:
            native = torch.cuda.is_bf16_supported()
            why = f"{props.name} {'supports' if native else 'does not support'} bf16"
        else:
            native = (props.major, props.minor) >= (8, 0)
            why = f"{props.name} has compute capability {props.major}.{props.minor}" + (
                "" if native else ", below 8.0, the first with native bf16"
            )
        return Hardware(device, props.name, native, why, int(props.total_memory))
    if device == "xpu":
        props = torch.xpu.get_device_properties(torch.xpu.current_device())
        native = bool(torch.xpu.is_bf16_supported())
        return Hardware(
            device,
            props.name,
            native,
            f"{props.name} {'supports' if native else 'does not support'} bf16",
            int(props.total_memory),
        )
    if device == "mps":
        return Hardware(device, "Apple GPU (MPS)", False, "bf16 on Apple GPUs is not measured by hf_lpselect")
    native, why = _cpu_bf16()
    return Hardware("cpu", cpu_name(), native, why)


def free_memory(device: torch.device | str) -> int | None:
    """Bytes free on an accelerator right now (``None`` for a CPU or when the backend cannot say)."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "xpu" and hasattr(torch.xpu, "mem_get_info"):
        return int(torch.xpu.mem_get_info(device)[0])
    return None


@functools.cache
def say_once(message: str) -> None:
    """Log ``message`` as a warning the first time it is said in this process (one line, no repeats)."""
    logger.warning(message)


def resolve_bf16(
    requested: bool | None, *, device: str | None = None, fp16: bool = False, what: str = "Training"
) -> bool:
    """Whether a run on ``device`` autocasts to bf16.

    ``None`` (nothing asked) follows the hardware: bf16 where it is native, float32 elsewhere, said in
    one line. ``True`` where bf16 is not native is kept, with a one-line warning. ``False`` is kept.

    Args:
        requested (`bool` or `None`): what the user asked (``--bf16``), ``None`` when nothing.
        device (`str` or `None`, *optional*, defaults to `None`): the device type the run uses.
        fp16 (`bool`, *optional*, defaults to `False`): fp16 was asked for, so bf16 is not the default.
        what (`str`, *optional*, defaults to `"Training"`): what runs, for the message.

    Example:

    ```python
    >>> resolve_bf16(False)
    False
    ```
    """
    if requested is False or (requested is None and fp16):
        return False
    hardware = probe(device)
    if requested is None:
        if not hardware.native_bf16:
            say_once(f"{what} in float32, not bf16: {hardware.why} ({hardware.name}).")
        return hardware.native_bf16
    if not hardware.native_bf16:
        say_once(f"{what} in bf16 as asked, although {hardware.why} ({hardware.name}); --bf16 false is faster here.")
    return True


def inference_dtype(requested: str = "auto", device: str | None = None) -> str:
    """The weights dtype for generating and scoring with a model that is not trained (``lpselect eval``).

    ``"auto"``: ``"bfloat16"`` on an accelerator that computes bf16 natively, else ``"float32"`` (a CPU keeps
    float32 weights, so its answers do not change with the CPU it runs on). Any other name is kept.

    Example:

    ```python
    >>> inference_dtype("auto", "cpu"), inference_dtype("float16", "cpu")
    ('float32', 'float16')
    ```
    """
    if requested != "auto":
        return requested
    hardware = probe(device)
    return "bfloat16" if hardware.device != "cpu" and hardware.native_bf16 else "float32"
