"""``lpselect``: the command line, a thin layer over the public Python API.

Every command prints where its outputs went and fails with one sentence on bad input. Run
``lpselect COMMAND --help`` for the options. Multi-process: ``accelerate launch -m hf_lpselect.cli score …``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .errors import LPSelectError
from .rundir import RunDir

app = typer.Typer(
    name="lpselect",
    help="Pick the instruction-tuning rows a small model learns slowest (learning percentage, Mekala et al. 2024).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
USER_ERRORS = (LPSelectError,)


def _default_out(source: str, model: str) -> Path:
    stem = lambda s: Path(s.rstrip("/")).stem.replace("/", "-") or "data"  # noqa: E731
    return Path("runs") / f"{stem(source)}-{stem(model)}"


def _print_result(result, texts=None) -> None:
    from accelerate import PartialState

    from .summary import print_summary, summarize

    if PartialState().is_main_process:
        print_summary(summarize(result.run_dir, texts=texts), Console())


@app.command()
def score(
    data: str = typer.Argument(..., help="A Hub dataset id, a .json/.jsonl/.parquet file, or a save_to_disk folder."),
    model: str = typer.Option("default", help="Scorer model: Hub id, local folder, .gguf file, or 'default' (SmolLM2-135M-Instruct, offline)."),
    out: Optional[Path] = typer.Option(None, help="Run directory (default: runs/DATA-MODEL). Re-running the same command there resumes."),
    epochs: int = typer.Option(3, help="Training epochs n; passes are scored before training and after each epoch. 0 = one pass, no training."),
    template: str = typer.Option("auto", help="Prompt template: alpaca (the paper's), chat (tokenizer chat template), plain, auto."),
    max_length: int = typer.Option(512, help="Tokens per row; rows whose response is truncated away are excluded, never scored."),
    seed: int = typer.Option(42, help="Seed for data order and initialisation."),
    split: str = typer.Option("train", help="Split of a Hub dataset or DatasetDict folder."),
    subset: Optional[str] = typer.Option(None, help="Config (subset) name of a Hub dataset."),
    format: str = typer.Option("auto", help="Row format: alpaca, dolly, sharegpt, messages, prompt-completion, auto."),
    revision: Optional[str] = typer.Option(None, help="Model revision (branch, tag or commit) on the Hub."),
    trust_remote_code: bool = typer.Option(False, help="Allow model code from the Hub to run (off unless you ask)."),
    lora: bool = typer.Option(False, help="Train LoRA adapters (peft) instead of all weights."),
    lora_r: int = typer.Option(16, help="LoRA rank."),
    ifd: bool = typer.Option(False, help="Also score each response without its prompt before training (IFD baselines; with --epochs 0: the Superfiltering use)."),
    learning_rate: float = typer.Option(2e-5, help="Peak learning rate (cosine schedule, 3 % warmup)."),
    batch_size: int = typer.Option(4, help="Rows per device per step."),
    grad_accum: int = typer.Option(8, help="Gradient accumulation steps (effective batch = batch-size x grad-accum x devices)."),
    score_batch_size: int = typer.Option(8, help="Rows per batch in the scoring passes."),
    bf16: bool = typer.Option(True, "--bf16/--fp32", help="bf16 autocast over float32 weights (the paper's), or pure float32."),
    keep_checkpoints: bool = typer.Option(False, help="Keep every epoch's checkpoint after the run (default: removed when done)."),
    limit: Optional[int] = typer.Option(None, help="Only the first N input rows (quick trials)."),
) -> None:
    """Scorer run: fine-tune MODEL on DATA, score every row before training and after each epoch, write LP scores."""
    from .run import score as run_score

    out = out or _default_out(data, model)
    try:
        result = run_score(
            data, out=out, model=model, epochs=epochs, template=template, max_length=max_length, seed=seed,
            split=split, subset=subset, format=format, revision=revision, trust_remote_code=trust_remote_code,
            lora=lora, lora_r=lora_r, ifd=ifd, keep_checkpoints=keep_checkpoints, limit=limit,
            learning_rate=learning_rate, per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=grad_accum, score_batch_size=score_batch_size, bf16=bf16,
        )
    except USER_ERRORS as err:
        console.print(f"[red]Error:[/] {err}", soft_wrap=True)
        raise typer.Exit(2) from None
    _print_result(result)


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Run directory for the demo."),
    rows: int = typer.Option(120, help="Rows of generated data."),
    epochs: int = typer.Option(2, help="Training epochs (at least 2 for LP(1) to mean anything)."),
) -> None:
    """Offline demo: generate a small instruction dataset, score it with the embedded SmolLM2-135M-Instruct."""
    from .demo import run_demo, wrong_rows_among_hardest

    console.print(f"Demo: {rows} generated rows, default model, {epochs} epochs → {out}")
    try:
        result = run_demo(out=out, n_rows=rows, epochs=epochs)
    except USER_ERRORS as err:
        console.print(f"[red]Error:[/] {err}", soft_wrap=True)
        raise typer.Exit(2) from None
    from .summary import display_texts

    _print_result(result, display_texts(result.rows))
    found, total = wrong_rows_among_hardest(result)
    Console().print(f"Deliberately wrong rows among the hardest 10 %: {found} of {total}")


@app.command("select")
def select_cmd(
    run: Path = typer.Argument(..., help="A finished run directory (from lpselect score)."),
    strategy: str = typer.Option(..., help="lp1-hard, lp1-medium, lp1-easy, lp-app-hard, random, clustered-random, longest, ppl-low, ppl-mid, ppl-high, ifd-nll, ifd-ppl, s2l, confidence, variability."),
    fraction: Optional[float] = typer.Option(None, help="Share of the eligible rows, in (0, 1]."),
    count: Optional[int] = typer.Option(None, help="Number of rows (global selection only)."),
    per_cluster: Optional[int] = typer.Option(None, help="Cluster the rows into K clusters (all-MiniLM-L6-v2 + k-means, cached) and select per cluster, as the paper does."),
    clusters: Optional[Path] = typer.Option(None, help="Use a clustering made elsewhere: Parquet/JSON/CSV mapping row or id to cluster."),
    seed: int = typer.Option(42, help="Seed for k-means and random draws."),
    out: Optional[Path] = typer.Option(None, help="Output: .json, .jsonl, .parquet, or a folder (save_to_disk). Default: RUN/selections/, in the source's format."),
) -> None:
    """Pick a subset of a scored dataset and write it with its score columns."""
    import json

    from .subsets import (
        default_output,
        describe_selection,
        run_source,
        select_run,
        selected_dataset,
        write_dataset,
    )

    try:
        selection, scores = select_run(
            run, strategy, fraction=fraction, count=count, per_cluster=per_cluster, clusters_file=clusters, seed=seed
        )
        out = out or default_output(RunDir(run), selection)
        write_dataset(selected_dataset(run_source(RunDir(run)), scores, selection), out)
    except USER_ERRORS as err:
        console.print(f"[red]Error:[/] {err}", soft_wrap=True)
        raise typer.Exit(2) from None
    info = describe_selection(selection, scores)
    requested = f"{selection.requested:.1%}" if isinstance(selection.requested, float) else f"{selection.requested} rows"
    Console().print(
        f"{strategy}: {info['n_selected']} of {info['n_eligible']} eligible rows "
        f"(requested {requested}, real {info['real_fraction']:.2%}; {info['real_fraction_of_input']:.2%} of all {info['n_input']} input rows)\n"
        f"mean response length {info['mean_response_tokens']['selected']:.1f} tokens vs {info['mean_response_tokens']['all_ok_rows']:.1f} for all rows "
        f"(x{info['length_ratio']:.2f})"
        + (f"\nscore range {info['score_range'][0]:.4g} … {info['score_range'][1]:.4g}" if "score_range" in info else "")
        + (f"\nclusters covered: {info['n_clusters_covered']} of {info['n_clusters']}" if info["n_clusters"] else "")
        + (f"\nskipped: {json.dumps(info['skipped'])}" if info["skipped"] else "")
        + f"\nwritten: {out}",
        soft_wrap=True,
    )


@app.command()
def compare(
    run_a: Path = typer.Argument(..., help="First run directory (or any folder with a scores.parquet holding id + score columns)."),
    run_b: Path = typer.Argument(..., help="Second run directory."),
    score: str = typer.Option("lp1", help="Score to compare (lp1, lp_app, ppl_0, ifd_ppl, ...)."),
    out: Optional[Path] = typer.Option(None, help="Folder for compare.json and scatter.png (default: RUN_A/compare-NAME_B)."),
) -> None:
    """Agreement between two scorer runs on the same rows: Spearman, Kendall, overlap of the hardest sets."""
    from .compare import compare_runs

    try:
        result = compare_runs(run_a, run_b, score=score, out=out)
    except USER_ERRORS as err:
        console.print(f"[red]Error:[/] {err}", soft_wrap=True)
        raise typer.Exit(2) from None
    console_out = Console()
    dropped = result["n_dropped"]
    console_out.print(f"{result['n_matched']} rows matched by id (dropped: {dropped['a']} from the first run, {dropped['b']} from the second)")
    for name, res in result["results"].items():
        tops = ", ".join(f"{t['fraction']:.0%}: {t['overlap']:.2f}" for t in res["top"] if t["overlap"] is not None)
        console_out.print(
            f"{name}: Spearman {res['spearman'] if res['spearman'] is None else round(res['spearman'], 3)}, "
            f"Kendall tau-b {res['kendall_tau_b'] if res['kendall_tau_b'] is None else round(res['kendall_tau_b'], 3)}; "
            f"overlap of the hardest {tops}",
            soft_wrap=True,
        )
    console_out.print(f"written: {result['files']}")


@app.command()
def report(
    run: Path = typer.Argument(..., help="A finished run directory."),
    out: Optional[Path] = typer.Option(None, help="Folder for the figures and report.md (default: RUN/report)."),
) -> None:
    """Figures and a Markdown summary of a run: LP(1) histogram, trajectories by tertile, LP vs length, counts."""
    from .report import make_report
    from .subsets import run_rows
    from .summary import display_texts

    try:
        result = make_report(run, out, texts=display_texts(run_rows(RunDir(run))))
    except (*USER_ERRORS, FileNotFoundError) as err:
        console.print(f"[red]Error:[/] {err}", soft_wrap=True)
        raise typer.Exit(2) from None
    Console().print(f"written: {result.markdown}")
    for name, path in result.figures.items():
        Console().print(f"  {name}: {path}")


@app.command("push-scores")
def push_scores_cmd(
    repo_id: str = typer.Argument(..., help="Hub dataset to push to, e.g. org/alpaca: the dataset the run scored (adds the columns in a new commit) or a new repo."),
    run: Optional[Path] = typer.Option(None, help="Run directory (default: the latest finished run of REPO_ID under runs/)."),
    subsets: Optional[str] = typer.Option(None, help="Comma-separated subset configs named STRATEGY_Npct, e.g. lp1_hard_5pct,ppl_high_10pct,random_2p5pct (default: lp1_hard_5pct,lp1_hard_10pct,lp1_hard_33pct,random_5pct); 'none' for only the default config."),
    private: bool = typer.Option(False, help="Create the repo as private (when it does not exist yet)."),
    create_pr: bool = typer.Option(False, help="Open a pull request instead of committing to main."),
    local_dir: Optional[Path] = typer.Option(None, help="Keep the materialised repo folder here (exactly what is pushed; must be empty or new)."),
    dry_run: bool = typer.Option(False, help="Materialise and print what would be pushed; no network call, nothing sent."),
    seed: int = typer.Option(42, help="Seed for the random subsets."),
) -> None:
    """Push a run's scores as new columns of a Hub dataset, with subset configs and a generated card, in one commit."""
    from .hub import push_scores

    names = None if subsets is None else [] if subsets.strip() == "none" else [s.strip() for s in subsets.split(",") if s.strip()]
    try:
        plan = push_scores(repo_id, run=run, subsets=names, private=private, create_pr=create_pr,
                           local_dir=local_dir, dry_run=dry_run, seed=seed)
    except USER_ERRORS as err:
        console.print(f"[red]Error:[/] {err}", soft_wrap=True)
        raise typer.Exit(2) from None
    out = Console()
    out.print(plan.summary(), soft_wrap=True, markup=False)
    if local_dir is not None:
        out.print(f"materialised: {local_dir}")
    if plan.url:
        out.print(f"{'pull request' if create_pr else 'pushed'}: {plan.url}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
