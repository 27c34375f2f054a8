"""Shared helpers for the benchmark scripts (not a test module, not part of the package).

- machine / software facts for every results file;
- the benchmark data: the first N ``ok`` rows of the Alpaca JSON, tokenised ONCE by the parent
  process and saved to disk, so every measured variant (each in its own subprocess) reads the
  very same token ids;
- :func:`run_worker`: run one variant in a fresh subprocess and watch it from outside with psutil
  (peak RSS of the worker's process tree, CPU used by the worker vs by every OTHER process on the
  machine — this machine is shared, so the "others" share says how trustworthy a timing is);
- atomic writing of ``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil

from hf_lpselect.core.hardware import cpu_name


BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
ALPACA = REPO.parent / "shared" / "data" / "train" / "alpaca" / "alpaca_data.json"


# ----------------------------------------------------------------------------- facts


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(
                    f for f in flags if f.startswith(("avx512_bf16", "amx", "avx512f", "avx2", "avx512_vnni"))
                )
    except OSError:
        pass
    return []


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _version(lib: str) -> str | None:
    try:
        return version(lib)
    except PackageNotFoundError:
        return None


def machine_info(threads: int) -> dict[str, Any]:
    import torch

    return {
        "hostname": platform.node(),
        "cpu_model": cpu_name(),
        "cpu_flags_of_interest": _cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_total_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "torch_threads_set": threads,
        "torch_interop_threads": torch.get_num_interop_threads(),
        "native_bf16": _has_bf16(),
        "gpu": torch.cuda.is_available(),
        "python": platform.python_version(),
        "versions": {
            lib: _version(lib)
            for lib in ("torch", "transformers", "trl", "datasets", "accelerate", "peft", "hf-lpselect")
        },
        "git_head": _git("rev-parse", "HEAD"),
        "git_dirty_package_files": _git("status", "--porcelain", "hf_lpselect").splitlines(),
        "loadavg_at_start": os.getloadavg(),
    }


def _has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (what the package's own defaults follow)."""
    from hf_lpselect.core.hardware import probe

    return probe("cpu").native_bf16


def command_line() -> str:
    return " ".join(
        shlex.quote(a) for a in [Path(sys.executable).name, *[os.path.relpath(sys.argv[0], REPO)], *sys.argv[1:]]
    )


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


# ----------------------------------------------------------------------------- data


def tokenized_alpaca(n_rows: int, cache_to: Path, max_length: int = 512):
    """First ``n_rows`` ok rows of the Alpaca JSON (hf_lpselect.ingest.load_rows), alpaca template tokens.

    Returns ``(canonical_rows, tokenized)``; both are saved under ``cache_to`` (``rows/``, ``tok/``).
    """
    from hf_lpselect.ingest import load_rows
    from hf_lpselect.models import load_model
    from hf_lpselect.templates import tokenize_rows

    rows = load_rows(str(ALPACA))
    ok = rows.filter(lambda s: s == "ok", input_columns="status")
    if n_rows > len(ok):
        raise SystemExit(f"--rows {n_rows} is more than the {len(ok)} ok rows of {ALPACA}")
    ok = ok.select(range(n_rows))
    tokenizer = load_model("default").tokenizer
    tok = tokenize_rows(ok, tokenizer, template="alpaca", max_length=max_length)
    ok.save_to_disk(str(cache_to / "rows"))
    tok.save_to_disk(str(cache_to / "tok"))
    return ok, tok


# ----------------------------------------------------------------------------- subprocess runner


def worker_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        TQDM_DISABLE="1",
        PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    return env


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return [proc]


def run_worker(
    script: Path, spec: dict[str, Any], threads: int, poll_s: float = 0.5, log: Path | None = None
) -> dict[str, Any]:
    """Run ``python script --worker SPEC.json`` in a fresh process; return its result dict plus outside observations.

    The worker writes its own result JSON to ``spec["result_path"]``. From outside we sample every
    ``poll_s`` seconds: RSS of the worker's process tree (max = ``rss_sampled_peak_mib``), and the
    CPU seconds used by the worker vs. by the whole machine, so ``other_cpu_share`` = the share of
    the machine's CPU that OTHER processes used while this variant ran (0 = quiet machine).
    """
    spec_file = Path(spec["result_path"]).with_suffix(".spec.json")
    spec_file.write_text(json.dumps(spec))
    cmd = [sys.executable, str(script), "--worker", str(spec_file)]
    sys_before = psutil.cpu_times()
    started = time.perf_counter()
    out = open(log, "ab") if log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, env=worker_env(threads), cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    ps = psutil.Process(proc.pid)
    peak_rss = 0
    worker_cpu: dict[int, float] = {}
    while proc.poll() is None:
        rss = 0
        for p in _tree(ps):
            try:
                rss += p.memory_info().rss
                t = p.cpu_times()
                worker_cpu[p.pid] = t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        peak_rss = max(peak_rss, rss)
        time.sleep(poll_s)
    wall = time.perf_counter() - started
    sys_after = psutil.cpu_times()
    if log:
        out.close()

    def busy(t):
        return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + getattr(t, "steal", 0)  # noqa: E731

    machine_busy = busy(sys_after) - busy(sys_before)
    if proc.returncode != 0:
        tail = Path(log).read_text(errors="replace")[-4000:] if log else ""
        raise RuntimeError(f"worker {spec.get('name')} failed with exit code {proc.returncode}\n{tail}")
    result = json.loads(Path(spec["result_path"]).read_text())
    worker_total_cpu = result.get("process_cpu_s_total", sum(worker_cpu.values()))
    n_cpu = len(os.sched_getaffinity(0))
    result["outside"] = {
        "subprocess_wall_s": round(wall, 2),
        "rss_sampled_peak_mib": round(peak_rss / 2**20, 1),
        "machine_busy_cpu_s": round(machine_busy, 1),
        "worker_cpu_s": round(worker_total_cpu, 1),
        "other_cpu_share": round(max(0.0, machine_busy - worker_total_cpu) / (wall * n_cpu), 3) if wall > 0 else None,
    }
    return result


# ----------------------------------------------------------------------------- worker-side helpers


def maxrss_mib() -> float:
    """Peak resident set size of THIS process so far (Linux ru_maxrss is in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def vm_hwm_mib() -> float | None:
    """Peak RSS of THIS process image (Linux VmHWM). Unlike ru_maxrss, which Linux carries across
    fork + exec (so a worker inherits its parent's peak), VmHWM starts afresh at exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


class Window:
    """Wall time, CPU time and load average over a timed region (inside a worker)."""

    def __enter__(self):
        self.load0 = os.getloadavg()[0]
        self.cpu0 = cpu_s()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        self.cpu = cpu_s() - self.cpu0
        self.load1 = os.getloadavg()[0]
        return False

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {
            f"{prefix}wall_s": round(self.wall, 3),
            f"{prefix}cpu_s": round(self.cpu, 2),
            f"{prefix}loadavg1_before": round(self.load0, 2),
            f"{prefix}loadavg1_after": round(self.load1, 2),
        }


# ----------------------------------------------------------------------------- results


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    fd, tmp = tempfile.mkstemp(prefix=f"{name}.", suffix=".tmp", dir=RESULTS_DIR)
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh, indent=2, default=str)
        fh.write("\n")
    os.replace(tmp, path)
    return path


def table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [[str(c) for c in header]] + [[f"{c:.4g}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
