"""Benchmark: the Space's Explore tab on a 52,002-row scored dataset, in a real browser.

    python benchmarks/bench_space.py [--rows 52002] [--epochs 3] [--repeats 3] [--screenshots]

Data: Stanford Alpaca (../shared/data), all rows, canonicalised by hf_lpselect; the SCORES ARE
SYNTHETIC (bench_push.py's make_run: a seeded random per-pass NLL decay through the real
build_scores), materialised as `lpselect push-scores --dry-run --local-dir` would (the folder a
person downloads from the Hub). The app (spaces/app.py) runs as its own process on 127.0.0.1;
headless Chromium (Debian's `chromium`, driven by pip's `playwright`) opens the folder.

Measured: seconds from the click on Open until the page shows the summary, the three plots and the
table (each repeat is a new page, so a new session); seconds for the Select summary to follow the
slider; the app process's peak RSS (Linux VmHWM of the server process, and psutil sampling of its
whole tree from outside). Targets: under 3 s and under 1 GiB. With --screenshots, two
screenshots of the 52k-row page go to docs/images/bench-space-*.png (docs/space.md's screenshots come
from tests/test_space_browser.py). Writes benchmarks/results/bench_space.json.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C
import psutil
from bench_push import make_run


TARGET_S, TARGET_MIB = 3.0, 1024.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IMAGES = C.REPO / "docs" / "images"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(work: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "LPSELECT_SPACE_DIR": str(work / "sessions"),
        "GRADIO_TEMP_DIR": str(work / "gradio"),
    }
    proc = subprocess.Popen(
        [sys.executable, str(C.REPO / "spaces" / "app.py"), "--port", str(port)],
        env=env,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        cwd=C.REPO,
    )
    url = f"http://127.0.0.1:{port}/"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(600):
        if proc.poll() is not None:
            break
        try:
            with opener.open(url + "gradio_api/info", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the app did not start:\n{log.read_text(errors='replace')[-3000:]}")


class Sampler(threading.Thread):
    """Peak RSS of a process tree, sampled from outside every 50 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.proc, self.peak, self.stop = psutil.Process(pid), 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                tree = [self.proc, *self.proc.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.05)


def vm_hwm_mib(pid: int) -> float | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def open_and_wait(page, url: str, folder: Path, rows: int) -> float:
    """Seconds from the click on Open until the summary, three plots and the table are on the page."""
    page.goto(url)
    page.get_by_label("Scored dataset").fill(str(folder))
    started = time.perf_counter()
    page.get_by_role("button", name="Open", exact=True).click()
    page.get_by_text(f"{rows:,} rows").first.wait_for(timeout=120_000)
    page.get_by_role("row").nth(1).wait_for(timeout=120_000)
    page.wait_for_function(
        'document.querySelectorAll(\'img[src^="data:image/webp"], img[src^="data:image/png"]\').length >= 3',
        timeout=120_000,
    )
    return time.perf_counter() - started


def move_slider(page, percent: float, expect: str) -> float:
    """Seconds from typing a new percentage until the Select summary shows ``expect``."""
    box = page.get_by_label("number input for How many: % of the rows the strategy can pick")
    started = time.perf_counter()
    box.fill(f"{percent:g}")
    box.press("Enter")
    page.get_by_text(expect).first.wait_for(timeout=60_000)
    return time.perf_counter() - started


def scored_folder(tmp: Path, n_rows: int, epochs: int):
    """A synthetic run over the first ``n_rows`` Alpaca rows in ``tmp/run``, materialised as a pushed folder
    ``tmp/alpaca-lp`` (what a visitor opens); returns the run's status counts and scores table."""
    import pandas as pd

    from hf_lpselect.hub.materialize import materialize

    counts = make_run(tmp / "run", n_rows, epochs)
    materialize(tmp / "run", "bench/alpaca", tmp / "alpaca-lp")
    return counts, pd.read_parquet(tmp / "run" / "scores.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=52002)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--screenshots", action="store_true")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from hf_lpselect.selection.strategies import default_mirror, select

    with tempfile.TemporaryDirectory(prefix="bench_space-") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        counts, scores = scored_folder(tmp, args.rows, args.epochs)
        setup_s = time.perf_counter() - started
        load_before = os.getloadavg()
        proc, url = start_app(tmp, tmp / "app.log")
        sampler = Sampler(proc.pid)
        sampler.start()
        rss_idle = psutil.Process(proc.pid).memory_info().rss / 2**20
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                opens = []
                for i in range(args.repeats):
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    opens.append(round(open_and_wait(page, url, tmp / "alpaca-lp", args.rows), 2))
                    if i < args.repeats - 1:
                        page.close()
                if args.screenshots:
                    IMAGES.mkdir(parents=True, exist_ok=True)
                    page.wait_for_timeout(1000)
                    page.screenshot(path=str(IMAGES / "bench-space-explore.png"), full_page=False)
                page.get_by_role("tab", name="Select").click()
                sizes = {}
                for percent in (10, 33, 5):
                    n = len(
                        select(
                            scores, "lp1-hard", fraction=percent / 100, mirror=default_mirror("lp1-hard", scores)
                        ).rows
                    )
                    sizes[percent] = round(move_slider(page, percent, f"{n:,} rows = "), 2)
                if args.screenshots:
                    page.wait_for_timeout(500)
                    page.screenshot(path=str(IMAGES / "bench-space-select.png"), full_page=False)
                browser.close()
            peak_hwm = vm_hwm_mib(proc.pid)
            load_after = os.getloadavg()
        finally:
            sampler.stop.set()
            proc.terminate()
            proc.wait(timeout=30)
    peak = max(peak_hwm or 0, sampler.peak / 2**20)
    payload = {
        "benchmark": "bench_space",
        "command": C.command_line(),
        "when": C.now(),
        "machine": C.machine_info(2),
        "data": {
            "source": str(C.ALPACA),
            "rows": args.rows,
            "epochs": args.epochs,
            "counts": counts,
            "scores": "SYNTHETIC: bench_push.make_run (seeded random per-pass NLL decay through the real build_scores); "
            "opened as the folder materialize() writes (lpselect push-scores --dry-run --local-dir)",
        },
        "setup_s_not_timed": round(setup_s, 1),
        "explore_open_s": opens,
        "select_summary_s_by_percent": sizes,
        "app_rss_after_start_mib": round(rss_idle, 1),
        "app_peak_rss_mib": {"vm_hwm": peak_hwm, "sampled_tree": round(sampler.peak / 2**20, 1)},
        "browser": "Debian chromium via playwright (headless), on the same machine as the app",
        "load_average_1_5_15min": {
            "before": [round(v, 2) for v in load_before],
            "after": [round(v, 2) for v in load_after],
            "cpus": os.cpu_count(),
            "note": "shared machine: a load above the CPU count slows every number",
        },
        "screenshots": ["docs/images/bench-space-explore.png", "docs/images/bench-space-select.png"]
        if args.screenshots
        else [],
        "targets": {
            "explore_open_s": TARGET_S,
            "peak_rss_mib": TARGET_MIB,
            "met": bool(max(opens) < TARGET_S and peak < TARGET_MIB),
        },
    }
    path = C.write_results("bench_space", payload)
    print(
        C.table([[args.rows, *opens, peak]], ["rows", *[f"open {i + 1} s" for i in range(len(opens))], "peak RSS MiB"])
    )
    print(
        f"select summary seconds by slider %: {sizes}; load average before/after: {load_before[0]:.1f}/{load_after[0]:.1f}"
    )
    print(f"written: {path}")


if __name__ == "__main__":
    main()
