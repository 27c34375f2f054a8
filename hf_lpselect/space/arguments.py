"""The arguments of ``lpselect space`` (serve it here) and ``lpselect space deploy`` (put it on the Hub)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError


@dataclass
class ServeArguments:
    """``lpselect space [--host 127.0.0.1] [--port 7860]``: the Gradio Space in your browser.

    Args:
        host (`str`, *optional*, defaults to `"127.0.0.1"`): the address to serve on (``0.0.0.0``: every interface).
        port (`int`, *optional*, defaults to `7860`): the port to serve on.
    """

    host: str = field(default="127.0.0.1", metadata={"help": "Address to serve on (0.0.0.0: every interface)."})
    port: int = field(default=7860, metadata={"help": "Port to serve on."})


@dataclass
class DeployArguments:
    """``lpselect space deploy OWNER/NAME [--private] [--hardware zero-a10g] [--dry_run --local_dir DIR]``.

    Args:
        repo_id (`str`): the Space to create or update, ``OWNER/NAME`` (also the first bare word).
        private (`bool`, *optional*, defaults to `False`): make a NEW Space private.
        hardware (`str` or `None`, *optional*, defaults to `None`): Space hardware, e.g. ``cpu-basic``,
            ``zero-a10g`` (ZeroGPU), ``t4-small``.
        token (`str` or `None`, *optional*, defaults to `None`): a Hugging Face token (default: ``HF_TOKEN`` or
            ``hf auth login``).
        dry_run (`bool`, *optional*, defaults to `False`): write the Space folder and stop; nothing is sent.
        local_dir (`str` or `None`, *optional*, defaults to `None`): keep the Space folder here (exactly what
            is uploaded; must be empty or new).

    Example:

    ```python
    >>> DeployArguments(repo_id="me/lpselect", hardware="zero-a10g")
    ```
    """

    repo_id: str | None = field(
        default=None, metadata={"positional": True, "help": "The Space to create or update, OWNER/NAME."}
    )
    private: bool = field(default=False, metadata={"help": "Make a new Space private."})
    hardware: str | None = field(
        default=None, metadata={"help": "Space hardware: cpu-basic, zero-a10g (ZeroGPU), t4-small, a10g-small, ..."}
    )
    token: str | None = field(
        default=None, metadata={"help": "Hugging Face token [default: HF_TOKEN or `hf auth login`]."}
    )
    dry_run: bool = field(default=False, metadata={"help": "Write the Space folder and stop: nothing is sent."})
    local_dir: str | None = field(
        default=None, metadata={"help": "Keep the Space folder here (exactly what is uploaded; must be empty or new)."}
    )

    def __post_init__(self) -> None:
        if self.repo_id is None:
            raise ConfigError("Give the Space to deploy to: `lpselect space deploy OWNER/NAME`.")
