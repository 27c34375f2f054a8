"""``lpselect``: the command line, a thin layer over the public Python API.

Every command prints where its outputs went and fails with one sentence on bad input. Run
``lpselect COMMAND --help`` for the options. Multi-process: ``accelerate launch -m hf_lpselect.cli score …``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from .core.flags import check_early
from .errors import LPSelectError
from .rundir import RunDir
from .selection.strategies import STRATEGIES

app = typer.Typer(
    name="lpselect",
    help="Pick the instruction-tuning rows a small model learns slowest (learning percentage, Mekala et al. 2024).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # a docstring's paragraphs wrap to the terminal, not at the source's line breaks
)
console = Console(stderr=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """The one place where our errors become one red sentence and exit code 2.

    Only :class:`~hf_lpselect.errors.LPSelectError` (raised where the problem was found) and a full
    disk are turned into a sentence; anything else is a bug and keeps its traceback. The sentence
    starts a line of its own: the progress bars the failure interrupted are closed first.
    """

    def _end_progress_bars() -> None:
        # A bar (ours, transformers', datasets', huggingface_hub's: all tqdm) that was drawing when the
        # error was raised left the cursor after its text; closed, it ends its line (or clears it), and
        # it cannot redraw itself below the error when it is garbage-collected later.
        import sys

        if "tqdm" not in sys.modules:  # nothing drew a bar
            return
        from tqdm.std import tqdm

        for bar in list(tqdm._instances):
            try:
                bar.close()
            except (OSError, ValueError):  # its stream is closed: nothing to end
                pass

    try:
        yield
    except LPSelectError as err:
        _end_progress_bars()
        console.print(f"[red]Error:[/] {escape(str(err))}", soft_wrap=True)
        raise typer.Exit(2) from None
    except Exception as err:
        if not _disk_full(err):
            raise
        _end_progress_bars()
        console.print("[red]Error:[/] No space left on the device; free some space and re-run the same command to resume.", soft_wrap=True)
        raise typer.Exit(2) from None


def _disk_full(err: BaseException | None) -> bool:
    """A full disk, as Python (``OSError`` ENOSPC / EDQUOT) or a native writer (safetensors, Arrow) reports it."""
    from .core.io import is_disk_full

    return is_disk_full(err)


def _print_result(result, texts=None) -> None:
    from accelerate import PartialState

    from .scoring.summary import print_summary, summarize

    if PartialState().is_main_process:
        print_summary(summarize(result.run_dir, texts=texts), Console())


_PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@app.command(context_settings=_PASSTHROUGH, add_help_option=False)
def score(ctx: typer.Context) -> None:
    """Scorer run: fine-tune a small model on DATASET, score every row before training and after each epoch.

    lpselect score DATASET [--model default] [--epochs 3] [--out runs/NAME] [any TRL SFTConfig / ModelConfig flag]
    [--config recipe.yaml]. `lpselect score --help` lists every option.
    """
    with user_errors():
        check_early("lpselect score", ctx.args)  # a mistyped flag answered before torch is imported
        from .scoring.arguments import parse_score_args
        from .scoring.run import score as run_score
        from .scoring.summary import display_texts

        script, args, model_args = parse_score_args(ctx.args)
        result = run_score(script_args=script, args=args, model_args=model_args)
    if result.already_complete:
        console.print(f"Already complete: {result.run_dir.path} was finished before; nothing was trained or scored again.")
    _print_result(result, display_texts(result.rows))


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Run directory for the demo."),
    rows: int = typer.Option(120, help="Rows of generated data."),
    epochs: int = typer.Option(2, help="Training epochs (at least 2 for LP(1) to mean anything)."),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", show_default=False,
                                        help="bf16 autocast, or float32 (default: bf16 where this device computes it natively)."),
) -> None:
    """Offline demo: score generated rows with the embedded SmolLM2-135M-Instruct (a minute or two on 2 CPU cores).

    The recipe is scaled down from the paper's so a CPU shows a real signal in minutes: learning rate
    1e-4, batch 8 without accumulation, max length 256, the short `plain` prompt. About 1 in 12
    generated answers is deliberately wrong; the last line counts how many of them the scorer ranks
    among the hardest 10 % (chance: 10 %).
    """
    from .scoring.demo import DEMO_RECIPE, run_demo, wrong_rows_among_hardest
    from .scoring.summary import display_texts

    recipe = ", ".join(f"{k} {v}" for k, v in {**DEMO_RECIPE, "epochs": epochs}.items())
    console.print(f"Demo: {rows} generated rows, default model ({recipe}) → {out}")
    with user_errors():
        result = run_demo(out=out, n_rows=rows, epochs=epochs, **({} if bf16 is None else {"bf16": bf16}))
    hardware = result.record.hardware
    console.print(f"Ran on {hardware['name']} ({hardware['device']}) in {hardware['precision']['training']}.")
    _print_result(result, display_texts(result.rows))
    found, total = wrong_rows_among_hardest(result)
    Console().print(
        f"Deliberately wrong answers among the 10 % rows the scorer found hardest: {found} of {total} "
        f"(by chance {total / 10:.1f}): wrong answers are hard to learn."
    )


@app.command("select")
def select_cmd(
    run: Path = typer.Argument(..., help="A finished run directory (from lpselect score)."),
    strategy: str = typer.Option(..., help=", ".join(STRATEGIES) + "."),
    fraction: Optional[float] = typer.Option(None, help="Share of the eligible rows, in (0, 1]."),
    count: Optional[int] = typer.Option(None, help="Number of rows (global selection only)."),
    per_cluster: Optional[int] = typer.Option(None, "--per-cluster", "--per_cluster", help="Cluster the rows into K clusters (all-MiniLM-L6-v2 + k-means, cached) and select per cluster, as the paper does."),
    clusters: Optional[Path] = typer.Option(None, help="Use a clustering made elsewhere: Parquet/JSON/CSV mapping row or id to cluster."),
    seed: int = typer.Option(42, "--seed", "--selection_seed", "--selection-seed", help="Seed for k-means and random draws."),
    out: Optional[Path] = typer.Option(None, help="Output: .json, .jsonl, .parquet, or a folder (save_to_disk). Default: RUN/selections/, in the source's format."),
) -> None:
    """Pick a subset of a scored dataset and write it with its score columns."""
    import json

    from .selection.subsets import (
        default_output,
        describe_selection,
        run_source,
        select_run,
        selected_dataset,
        write_dataset,
    )

    with user_errors():
        selection, scores = select_run(
            run, strategy, fraction=fraction, count=count, per_cluster=per_cluster, clusters_file=clusters, seed=seed
        )
        out = out or default_output(RunDir(run), selection)
        write_dataset(selected_dataset(run_source(RunDir(run)), scores, selection), out)
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
    from .selection.compare import compare_runs

    with user_errors():
        result = compare_runs(run_a, run_b, score=score, out=out)
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
    from .selection.report import make_report
    from .selection.subsets import run_rows
    from .scoring.summary import display_texts

    with user_errors():
        texts = display_texts(run_rows(RunDir(run))) if RunDir(run).run_json.is_file() else None  # a foreign table has no source
        result = make_report(run, out, texts=texts)
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
    from .hub.push import push_scores

    names = None if subsets is None else [] if subsets.strip() == "none" else [s.strip() for s in subsets.split(",") if s.strip()]
    with user_errors():
        plan = push_scores(repo_id, run=run, subsets=names, private=private, create_pr=create_pr,
                           local_dir=local_dir, dry_run=dry_run, seed=seed)
    out = Console()
    out.print(plan.summary(), soft_wrap=True, markup=False)
    if local_dir is not None:
        out.print(f"materialised: {local_dir}")
    if plan.url:
        out.print(f"{'pull request' if create_pr else 'pushed'}: {plan.url}")


@app.command(context_settings=_PASSTHROUGH, add_help_option=False)
def train(ctx: typer.Context) -> None:
    """Fine-tune a target model with TRL's SFT on a curated split, with the scorer's prompt and masks.

    lpselect train --model_name_or_path MODEL (--dataset_name ORG/DATA --dataset_config lp1_hard_5pct |
    --dataset_name ORG/DATA --strategy lp1-hard --fraction 0.07 | --run runs/NAME --strategy lp1-hard
    --fraction 0.05 | --dataset_name DATA) [any trl sft flag] [--config recipe.yaml].
    `lpselect train --help` lists every option.
    """
    from accelerate import PartialState

    with user_errors():
        check_early("lpselect train", ctx.args)
        from .training.arguments import parse_train_args
        from .training.run import run_train

        result = run_train(parse_train_args(ctx.args))
    if PartialState().is_main_process:
        Console().print(result.summary(), soft_wrap=True, markup=False)


@app.command("eval", context_settings=_PASSTHROUGH, add_help_option=False)
def eval_cmd(ctx: typer.Context) -> None:
    """Is the subset-trained model better? Answers, a pairwise judge in both orders, reference NLL.

    lpselect eval --models hard=runs/hard random=runs/random --baseline random --test_sets vicuna.jsonl
    [--judge_base_url URL --judge_model NAME] [--config eval.yaml]. `lpselect eval --help` lists every option.
    """
    with user_errors():
        check_early("lpselect eval", ctx.args)
        from .core.parser import ArgumentParser
        from .eval import EvalArguments, evaluate

        (args,) = ArgumentParser(EvalArguments, prog="lpselect eval").parse(ctx.args)
        result = evaluate(args)
    Console().print(result.summary(), soft_wrap=True, markup=False)


space_app = typer.Typer(help="The Gradio Space: run it here, or deploy it to the Hugging Face Hub.",
                        invoke_without_command=True, no_args_is_help=False)
app.add_typer(space_app, name="space")


@space_app.callback()
def space(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Address to serve on (0.0.0.0: every interface)."),
    port: int = typer.Option(7860, help="Port to serve on."),
) -> None:
    """Start the Gradio Space (spaces/app.py; needs a clone installed with the space extra) in your browser: explore, select, score, compare.

    `lpselect space deploy OWNER/NAME` puts it on the Hugging Face Hub instead.
    """
    import runpy
    import sys

    if ctx.invoked_subcommand is not None:
        return
    app_path = Path(__file__).resolve().parent.parent / "spaces" / "app.py"
    if not app_path.is_file():
        console.print("[red]Error:[/] The Space needs a clone of hf_lpselect (spaces/app.py is not installed); "
                      "run `lpselect space` from a clone installed with `pip install -e \".[space]\"`.", soft_wrap=True)
        raise typer.Exit(2)
    sys.argv = [str(app_path), "--host", host, "--port", str(port)]
    runpy.run_path(str(app_path), run_name="__main__")


@space_app.command("deploy")
def space_deploy(
    repo_id: str = typer.Argument(..., help="The Space to create or update, OWNER/NAME."),
    private: bool = typer.Option(False, "--private", help="Make a new Space private."),
    hardware: Optional[str] = typer.Option(None, help="Space hardware: cpu-basic, zero-a10g (ZeroGPU), t4-small, a10g-small, ..."),
    token: Optional[str] = typer.Option(None, help="Hugging Face token [default: HF_TOKEN or `hf auth login`]."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Write the Space folder and stop: nothing is sent."),
    local_dir: Optional[Path] = typer.Option(None, help="Keep the Space folder here (exactly what is uploaded; must be empty or new)."),
) -> None:
    """Deploy the Space to the Hub in one commit: the app, its front matter, pinned requirements, this package and the example."""
    from .space.deploy import deploy_space

    with user_errors():
        plan = deploy_space(repo_id, private=private, hardware=hardware, token=token, dry_run=dry_run, local_dir=local_dir)
    out = Console()
    out.print(f"{len(plan.files)} files{' (dry run: nothing was sent)' if dry_run else ''}", soft_wrap=True, markup=False)
    if local_dir is not None:
        out.print(f"written: {plan.local_dir}", soft_wrap=True, markup=False)
    if plan.url:
        out.print(f"deployed: {plan.url}", soft_wrap=True, markup=False)
        out.print(f"the Space: https://huggingface.co/spaces/{repo_id}", soft_wrap=True, markup=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
