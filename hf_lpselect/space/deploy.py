"""``lpselect space deploy``: write the Gradio Space's folder and upload it to the Hub in one commit.

The folder holds everything the Space runs from, nothing fetched from elsewhere at build time. Its
files ship inside the package (``hf_lpselect/space/repo/``; a clone's ``spaces/`` points there), so an
installed package deploys as a clone does:

    README.md          front matter (sdk, sdk_version, hardware) and the evidence text
    app.py             the launcher: ``from hf_lpselect.space.app import main``
    requirements.txt   the third-party pins, generated from the lock (constraints.txt)
    evidence.json      the evidence benchmark's results, the source of the header's numbers
    hf_lpselect/       this package (the app, its examples), as installed: the files of the
    hf_lpselect-V.dist-info/   installed distribution, importable beside app.py

A Space's build installs ``requirements.txt`` alone (the rest of the folder is copied in after), so
the package cannot be a wheel path there: it travels as the installed files beside ``app.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from importlib.metadata import distribution
from pathlib import Path

from huggingface_hub import HfApi, SpaceHardware, get_token
from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError
from huggingface_hub.utils import validate_repo_id

from ..core.hub import NETWORK_ERRORS, short_error
from ..errors import DataError, HubError
from . import page_text


PACKAGE_ROOT = Path(__file__).resolve().parent.parent
SPACE_SOURCE = Path(__file__).resolve().parent / "repo"
EVIDENCE = SPACE_SOURCE / "evidence.json"
# a clone (an editable install): the package is built into a wheel from these
REPO_ROOT = PACKAGE_ROOT.parent
PACKAGE_DIRS = ("hf_lpselect", "cards")
# files of ours in the Space repo that a new deploy replaces wholesale (an older package's modules go)
OWNED_PATTERNS = ["hf_lpselect/**", "hf_lpselect-*.dist-info/**", "examples/**"]


def hardware_choices() -> list[str]:
    """The hardware names a Space can ask for (``huggingface_hub.SpaceHardware``), e.g. ``cpu-basic``, ``zero-a10g``."""
    return [h.value for h in SpaceHardware]


@dataclass
class DeployPlan:
    """What :func:`deploy_space` wrote (and, unless a dry run, uploaded).

    Args:
        repo_id (`str`): the Space, ``OWNER/NAME``.
        local_dir (`Path`): the folder that is (or would be) uploaded.
        files (`list[str]`): its files, relative to ``local_dir``, sorted.
        hardware (`str` or `None`): the hardware asked for, if any.
        url (`str` or `None`): the commit URL after an upload.
    """

    repo_id: str
    local_dir: Path
    files: list[str] = field(default_factory=list)
    hardware: str | None = None
    url: str | None = None

    def summary(self) -> str:
        """What was written, and where it went (nothing was sent without ``url``)."""
        lines = [f"{len(self.files)} files" + ("" if self.url else " (dry run: nothing was sent)")]
        if self.url:
            lines += [f"deployed: {self.url}", f"the Space: https://huggingface.co/spaces/{self.repo_id}"]
        if self.hardware:
            lines.append(f"hardware {'requested' if self.url else 'that would be requested'}: {self.hardware}")
        return "\n".join(lines)


def _is_clone() -> bool:
    """Whether this package runs from a checkout (an editable install) rather than an installed wheel."""
    return (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "cards").is_dir()


def copy_installed_package(out: Path) -> list[str]:
    """Copy the installed distribution's own files (the package and its ``.dist-info``) into ``out``.

    Returns the top-level names copied. Scripts and other files the wheel put outside site-packages stay.
    """
    dist = distribution("hf-lpselect")
    names = set()
    for entry in dist.files or []:
        parts = entry.parts
        if not parts or not (parts[0] == "hf_lpselect" or parts[0].startswith("hf_lpselect-")):
            continue
        if "__pycache__" in parts or entry.name == "RECORD":
            continue
        source = Path(entry.locate())
        if source.is_file():
            target = out / entry
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            names.add(parts[0])
    return sorted(names)


def build_package(out: Path) -> list[str]:
    """Build a wheel of this checkout (offline, no build isolation) and unpack it into ``out`` (a clone's
    package folder lacks ``cards``, which the wheel maps in; an installed package is copied instead).

    The sources are copied to a scratch folder first, so the build leaves nothing in the checkout.
    Returns the top-level names unpacked (``hf_lpselect``, its ``.dist-info``).
    """
    with tempfile.TemporaryDirectory(prefix="lpselect-wheel-") as scratch:
        src = Path(scratch) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO_ROOT / name, src / name)
        for name in PACKAGE_DIRS:
            shutil.copytree(REPO_ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        wheels = Path(scratch) / "wheels"
        built = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "--quiet",
                "--wheel-dir",
                str(wheels),
                str(src),
            ],
            capture_output=True,
            text=True,
        )
        found = sorted(wheels.glob("hf_lpselect-*.whl")) if wheels.is_dir() else []
        if built.returncode != 0 or not found:
            tail = " ".join((built.stderr or built.stdout).split())[-300:]
            raise DataError(
                f"Could not build the hf_lpselect wheel for the Space ({tail}); check that setuptools is installed."
            )
        with zipfile.ZipFile(found[0]) as wheel:
            wheel.extractall(out)
            return sorted({n.split("/")[0] for n in wheel.namelist()})


def readme_text(repo_id: str, hardware: str | None, evidence: dict) -> str:
    """spaces/README.md with the evidence re-rendered (linking to the uploaded ``evidence.json``) and,
    with ``hardware``, ``suggested_hardware`` in the front matter."""
    text = (SPACE_SOURCE / "README.md").read_text(encoding="utf-8")
    text = page_text.with_evidence(text, evidence, f"https://huggingface.co/spaces/{repo_id}/blob/main/evidence.json")
    if hardware:
        head, sep, body = text.partition("\n---\n")
        text = f"{head}\nsuggested_hardware: {hardware}{sep}{body}"
    return text


def write_space(repo_id: str, local_dir: str | Path, *, hardware: str | None = None) -> DeployPlan:
    """Write the Space folder for ``repo_id`` into ``local_dir`` (empty or new): exactly what a deploy uploads.

    Args:
        repo_id (`str`): the Space, ``OWNER/NAME`` (the README's evidence link points into it).
        local_dir (`str` or `Path`): an empty or new folder.
        hardware (`str`, *optional*): one of :func:`hardware_choices`, noted as ``suggested_hardware``.

    Example:
    ```python
    plan = write_space("me/lpselect", "space-folder")
    print(plan.files)
    ```
    """
    local_dir = Path(local_dir)
    if local_dir.exists() and (not local_dir.is_dir() or any(local_dir.iterdir())):
        raise DataError(f"{local_dir} is not an empty folder; give an empty or new folder to write the Space into.")
    local_dir.mkdir(parents=True, exist_ok=True)
    evidence = json.loads(EVIDENCE.read_text(encoding="utf-8"))
    (local_dir / "README.md").write_text(readme_text(repo_id, hardware, evidence), encoding="utf-8")
    for name in ("app.py", "requirements.txt", "evidence.json"):
        shutil.copy2(SPACE_SOURCE / name, local_dir / name)
    if _is_clone():
        build_package(local_dir)
    else:
        copy_installed_package(local_dir)
    files = sorted(p.relative_to(local_dir).as_posix() for p in local_dir.rglob("*") if p.is_file())
    return DeployPlan(repo_id=repo_id, local_dir=local_dir, files=files, hardware=hardware)


def deploy_space(
    repo_id: str,
    *,
    private: bool = False,
    hardware: str | None = None,
    token: str | None = None,
    dry_run: bool = False,
    local_dir: str | Path | None = None,
) -> DeployPlan:
    """Create or update the Gradio Space ``repo_id`` with this checkout's app and package, in one commit.

    Args:
        repo_id (`str`): the Space, ``OWNER/NAME``.
        private (`bool`, defaults to `False`): make a NEW Space private (an existing one keeps its visibility).
        hardware (`str`, *optional*): e.g. ``"cpu-basic"``, ``"zero-a10g"`` (ZeroGPU), ``"t4-small"``;
            requested on creation, or for an existing Space.
        token (`str`, *optional*): a Hugging Face token; defaults to the usual places (``HF_TOKEN``, ``hf auth login``).
        dry_run (`bool`, defaults to `False`): write the folder and stop before any network call.
        local_dir (`str` or `Path`, *optional*): keep the folder here (empty or new); otherwise a temporary one.

    Raises:
        [`~hf_lpselect.errors.HubError`]: no token, or the Hub cannot be reached or refused the upload.
        [`~hf_lpselect.errors.DataError`]: a repo id that is not OWNER/NAME, or a folder that cannot be deployed.

    Example:
    ```python
    deploy_space("me/lpselect", hardware="zero-a10g")
    deploy_space("me/lpselect", dry_run=True, local_dir="space-folder")  # look before you upload
    ```
    """
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise DataError(f"Bad Space id {repo_id!r}: write OWNER/NAME, e.g. my-name/lpselect.") from None
    if "/" not in repo_id:
        raise DataError(f"Bad Space id {repo_id!r}: write OWNER/NAME, e.g. my-name/lpselect.")
    if hardware is not None and hardware not in hardware_choices():
        raise DataError(f"Unknown Space hardware {hardware!r}; choose one of: {', '.join(hardware_choices())}.")
    token = None if dry_run else (token or get_token())
    if not dry_run and not token:
        raise HubError("No Hugging Face token: run `hf auth login` or set HF_TOKEN, then deploy again.")
    scratch = None if local_dir is not None else tempfile.TemporaryDirectory(prefix="lpselect-space-")
    try:
        plan = write_space(
            repo_id, local_dir if local_dir is not None else Path(scratch.name) / "space", hardware=hardware
        )
        if dry_run:
            return plan
        api = HfApi(token=token)
        try:
            try:
                api.repo_info(repo_id, repo_type="space")
                exists = True
            except RepositoryNotFoundError:
                exists = False
            if not exists:
                api.create_repo(
                    repo_id,
                    repo_type="space",
                    space_sdk="gradio",
                    private=private,
                    space_hardware=hardware,
                    exist_ok=True,
                )
            info = api.upload_folder(
                folder_path=plan.local_dir,
                repo_id=repo_id,
                repo_type="space",
                commit_message="Deploy the lpselect Space (lpselect space deploy)",
                delete_patterns=OWNED_PATTERNS,
            )
            if exists and hardware is not None:
                api.request_space_hardware(repo_id, hardware)
        except NETWORK_ERRORS as err:
            raise HubError(f"Deploying the Space {repo_id} failed ({short_error(err)}).") from err
        plan.url = info.commit_url
        return plan
    finally:
        if scratch is not None:
            scratch.cleanup()
