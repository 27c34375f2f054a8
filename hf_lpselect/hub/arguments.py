"""The arguments of ``lpselect push-scores``, declared once as a dataclass (parsed by ``TrlParser``: ``--config`` works)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError


@dataclass
class PushArguments:
    """``lpselect push-scores REPO_ID [--run RUN] [--subsets lp1_hard_5pct,…] [--create_pr] [--dry_run --local_dir DIR]``.

    Args:
        repo_id (`str`):
            The Hub dataset to push to, ``OWNER/NAME`` (also the first bare word): the dataset the run scored
            (the columns are added in a new commit) or a new repo.
        run (`str` or `None`, *optional*, defaults to `None`):
            The run directory (default: the latest finished run of ``repo_id`` under ``runs/``).
        subsets (`str` or `None`, *optional*, defaults to `None`):
            Comma-separated subset configs named ``STRATEGY_Npct``; ``none`` for only the default config
            (default: ``lp1_hard_5pct,lp1_hard_10pct,lp1_hard_33pct,random_5pct,random_10pct,random_33pct``).
        private (`bool`, *optional*, defaults to `False`):
            Create the repo as private (when it does not exist yet).
        create_pr (`bool`, *optional*, defaults to `False`):
            Open a pull request instead of committing to ``main``.
        local_dir (`str` or `None`, *optional*, defaults to `None`):
            Keep the materialised repo folder here (exactly what is pushed; must be empty or new).
        dry_run (`bool`, *optional*, defaults to `False`):
            Materialise and print what would be pushed; nothing is sent.
        selection_seed (`int`, *optional*, defaults to `42`):
            Seed of the random subsets (``--seed``, deprecated, still sets it).

    Example:

    ```python
    >>> PushArguments(repo_id="my-org/alpaca", subsets="lp1_hard_5pct,random_5pct").subset_names
    ['lp1_hard_5pct', 'random_5pct']
    ```
    """

    repo_id: str | None = field(
        default=None,
        metadata={
            "positional": True,
            "help": (
                "Hub dataset to push to, e.g. org/alpaca: the dataset the run scored (adds the columns in a new commit) or a new repo."
            ),
        },
    )
    run: str | None = field(
        default=None, metadata={"help": "Run directory (default: the latest finished run of REPO_ID under runs/)."}
    )
    subsets: str | None = field(
        default=None,
        metadata={
            "help": (
                "Comma-separated subset configs named STRATEGY_Npct, e.g. lp1_hard_5pct,ppl_high_10pct,random_2p5pct "
                "(default: lp1_hard_5pct,lp1_hard_10pct,lp1_hard_33pct and the random baseline of each size, "
                "random_5pct,random_10pct,random_33pct); 'none' for only the default config."
            )
        },
    )
    private: bool = field(default=False, metadata={"help": "Create the repo as private (when it does not exist yet)."})
    create_pr: bool = field(default=False, metadata={"help": "Open a pull request instead of committing to main."})
    local_dir: str | None = field(
        default=None,
        metadata={"help": "Keep the materialised repo folder here (exactly what is pushed; must be empty or new)."},
    )
    dry_run: bool = field(
        default=False, metadata={"help": "Materialise and print what would be pushed; no network call, nothing sent."}
    )
    selection_seed: int = field(default=42, metadata={"help": "Seed for the random subsets."})

    def __post_init__(self) -> None:
        if self.repo_id is None:
            raise ConfigError("Give the Hub dataset to push to: `lpselect push-scores OWNER/NAME`.")

    @property
    def subset_names(self) -> list[str] | None:
        """``subsets`` as a list (None: the default configs; ``none``: no subset config)."""
        if self.subsets is None:
            return None
        return (
            []
            if self.subsets.strip() == "none"
            else [name.strip() for name in self.subsets.split(",") if name.strip()]
        )
