"""The Space end to end in a real browser: headless Chromium (Debian's `chromium`, driven by pip's
`playwright`; never `playwright install`) against the deployed folder's app.py (what `lpselect space
deploy --dry-run --local-dir` writes) on 127.0.0.1, offline.

A person opens a scored folder, reads the table and sees the plots, moves the slider, downloads the
subset; then uploads a tiny file and scores it with a tiny model while the progress bar moves on
the Score tab and the button waits. A first visitor opens the shipped example with one click and
compares the two shipped examples. Screenshots are saved in the test's temporary folder; with
LPSELECT_SCREENSHOTS=docs/images the example's are written there (that is how docs/images/space-*.png
are made: `LPSELECT_SCREENSHOTS=docs/images pytest tests/test_space_browser.py -k example`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest
from test_space import APP, BAD, GOOD, folder, launch_app, run  # noqa: F401  (fixtures)

from hf_lpselect.selection.strategies import select


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

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """The deployed folder's app: `lpselect space deploy --dry-run --local-dir` writes it (app, examples,
    the package beside it), and it runs from there, importing hf_lpselect from that folder."""
    from hf_lpselect.space.deploy import deploy_space

    work = tmp_path_factory.mktemp("browser_app")
    space = deploy_space("me/lpselect", dry_run=True, local_dir=work / "space").local_dir
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(work / "hf"),
        "LPSELECT_SPACE_DIR": str(work / "sessions"),
        "GRADIO_TEMP_DIR": str(work / "gradio"),
    }
    proc, url = launch_app(env, work / "app.log", app=space / "app.py", cwd=space)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download needed)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, app_url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page.goto(app_url)
    yield page
    page.close()


def test_open_read_select_and_download(page, folder, run, tmp_path):  # noqa: F811
    page.get_by_label("Scored dataset").fill(str(folder))
    page.get_by_role("button", name="Open", exact=True).click()
    page.get_by_text("16 rows").first.wait_for(timeout=60_000)
    hardest = run.scores.dropna(subset=["lp1"]).sort_values(["lp1", "row"])
    first_row = page.get_by_role("row").nth(1)  # 0 is the header
    first_row.wait_for()
    assert GOOD[int(hardest["row"].iloc[0])]["output"] in first_row.inner_text()
    page.wait_for_function('document.querySelectorAll(\'img[src^="data:image/"][src*="base64"]\').length >= 3')
    page.screenshot(path=str(tmp_path / "explore.png"), full_page=True)

    page.get_by_role("tab", name="Select").click()
    box = page.get_by_label("number input for How many: % of the rows the strategy can pick")
    box.fill("25")
    box.press("Enter")
    page.get_by_text("3 rows = 25.0% of the 12 rows it could pick").wait_for(timeout=30_000)
    page.get_by_role("button", name="Download the subset").click()
    link = page.locator('a[href$="/lp1-hard-25pct.jsonl"]')  # the file's download link
    link.wait_for(timeout=30_000)
    with page.expect_download() as download:
        link.click()
    rows = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines()]
    expected = select(run.scores, "lp1-hard", fraction=0.25)
    assert [r["output"] for r in rows] == [GOOD[r]["output"] for r in expected.rows]
    page.screenshot(path=str(tmp_path / "select.png"), full_page=True)


def test_upload_and_score_while_the_progress_bar_moves(page, tiny_model_dir, tmp_path):
    data = tmp_path / "mine.csv"
    pd.DataFrame(GOOD[:6] + BAD[:1]).to_csv(data, index=False)
    page.get_by_role("tab", name="Score").click()
    page.locator('input[type=file][accept*=".jsonl"]').set_input_files(str(data))  # not the table's CSV import
    page.get_by_text("mine.csv").first.wait_for(timeout=90_000)  # the upload: slow on a busy machine
    page.get_by_label("Scorer model").fill(str(tiny_model_dir))
    epochs = page.get_by_label("number input for Epochs (0: perplexity only, no LP; LP(1) needs 2 or more)")
    epochs.fill("1")
    epochs.press("Enter")
    page.get_by_text("1 epoch of training, 2 scoring passes").first.wait_for(timeout=30_000)  # the estimate follows
    button = page.get_by_role("button", name="Score", exact=True)
    button.click()
    busy = page.get_by_role("button", name="Scoring… (see the progress below)")
    busy.wait_for(timeout=30_000)
    assert busy.is_disabled()  # before the fix the button stayed clickable while a job ran
    said, deadline = set(), time.monotonic() + 300
    while time.monotonic() < deadline:
        text = page.inner_text("body")  # visible text only: the Score tab's, while it runs
        said.update(
            step
            for step in (
                "Loading the data and the scorer model",
                "Scoring pass 0 of 1",
                "Training epoch 1 of 1",
                "Scoring pass 1 of 1",
            )
            if step in text
        )
        if "Scored 7 rows (6 ok)" in text or ": 7 rows" in text:  # done (the page moves to Explore)
            break
        time.sleep(0.05)
    page.screenshot(path=str(tmp_path / "scored.png"), full_page=True)
    assert said, "the progress bar never showed a step"
    page.get_by_role("tab", name="Score").click()
    assert "Scored 7 rows (6 ok)" in page.inner_text("body")
    assert page.get_by_role("button", name="Score", exact=True).is_enabled()
    page.get_by_role("tab", name="Explore").click()
    page.get_by_text("7 rows").first.wait_for()
    assert "1 × invalid: empty response" in page.inner_text("body")


def _screenshot(page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name), full_page=False)
    if os.environ.get("LPSELECT_SCREENSHOTS"):
        target = Path(os.environ["LPSELECT_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target / name), full_page=False)


def test_a_first_visitor_opens_the_example_selects_and_downloads(page, tmp_path):
    example = pd.read_parquet(
        next((APP.parent / "examples" / "demo-smollm2-2-epochs" / "data").glob("*.parquet"))
    )  # = the deployed copy
    hardest = example.sort_values("lp1_rank").iloc[0]
    page.get_by_role("button", name="Open the example").click()  # one click, nothing to type
    page.get_by_text("The example (demo-smollm2-2-epochs): 120 rows").wait_for(timeout=60_000)
    page.get_by_text("All 120 scored rows, hardest first (by LP(1))").first.wait_for(timeout=30_000)
    first_row = page.get_by_role("row").nth(1)
    assert hardest["output"][:40] in first_row.inner_text()
    assert "What the paper claims" in page.inner_text("body") and "What we measured" in page.inner_text("body")
    page.wait_for_function('document.querySelectorAll(\'img[src^="data:image/"][src*="base64"]\').length >= 3')
    page.wait_for_timeout(500)
    _screenshot(page, tmp_path, "space-explore.png")

    page.get_by_role("tab", name="Select").click()
    box = page.get_by_label("number input for How many: % of the rows the strategy can pick")
    box.fill("10")
    box.press("Enter")
    page.get_by_text("12 rows = 10.0% of the 120 rows it could pick").wait_for(timeout=30_000)
    page.wait_for_timeout(300)
    _screenshot(page, tmp_path, "space-select.png")
    page.get_by_role("button", name="Download the subset").click()
    link = page.locator('a[href$="/lp1-hard-10pct.jsonl"]')
    link.wait_for(timeout=30_000)
    with page.expect_download() as download:
        link.click()
    rows = [json.loads(line) for line in Path(download.value.path()).read_text().splitlines()]
    expected = example.sort_values("lp1_rank").head(12)
    assert len(rows) == 12 and {r["output"] for r in rows} == set(expected["output"])

    # a failed Open leaves nothing of the example behind (before the fix: its row count stayed)
    page.get_by_role("tab", name="Explore").click()
    page.get_by_label("Scored dataset").fill(str(tmp_path / "nothing-here"))
    page.get_by_role("button", name="Open", exact=True).click()
    page.get_by_text("No such folder: nothing-here; check the path.").first.wait_for(timeout=30_000)
    assert "120 rows" not in page.inner_text("body") and page.get_by_role("row").count() <= 1


def test_a_first_visitor_compares_the_two_examples(page, tmp_path):
    page.get_by_role("tab", name="Compare").click()
    page.get_by_role("button", name="Compare the two examples (2 and 3 epochs of training)").click()
    page.get_by_text("120 rows").first.wait_for(timeout=60_000)
    text = page.inner_text("body")
    assert "were scored by both" in text and "Spearman ρ = " in text
    page.locator('img[src*="scatter"]').first.wait_for(timeout=30_000)
    _screenshot(page, tmp_path, "space-compare.png")
