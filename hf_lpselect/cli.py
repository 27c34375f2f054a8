"""``lpselect``: the command line, a thin layer over the public Python API.

Every command prints where its outputs went and fails with one sentence on bad input. Each command
imports its stage inside its function, so ``lpselect --help`` and a mistyped flag answer before torch is imported. Run
``lpselect COMMAND --help`` for the options. Multi-process: ``accelerate launch -m hf_lpselect.cli score …``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from .core.flags import check_early
from .errors import LPSelectError


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
        sentence = _local_failure(err)
        if sentence is None:
            raise
        _end_progress_bars()
        console.print(f"[red]Error:[/] {escape(sentence)}", soft_wrap=True)
        raise typer.Exit(2) from None


def _local_failure(err: BaseException | None) -> str | None:
    """The sentence for a full disk (as Python or a native writer reports it) or a refused write (a
    read-only file system, no permission); None for anything else."""
    from .core.io import is_disk_full, write_refusal

    if is_disk_full(err):
        return "No space left on the device; free some space and re-run the same command to resume."
    return write_refusal(err)


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
        console.print(
            f"Already complete: {result.run_dir.path} was finished before; nothing was trained or scored again."
        )
    _print_result(result, display_texts(result.rows))


def _parse(
    ctx: typer.Context, prog: str, *types: type, usage: str | None = None, description: str | None = None
) -> tuple:
    """The command's dataclasses from its arguments (TRL's parser: ``--config`` YAML, ``--help``); the help
    text is ``description`` or else the command's docstring."""
    check_early(prog, ctx.args)  # a mistyped flag answered before the heavy imports
    from .core.parser import ArgumentParser

    description = description or " ".join((ctx.command.help or "").split())
    return ArgumentParser(types, prog=prog, usage=usage, description=description).parse(ctx.args)


@app.command(context_settings=_PASSTHROUGH, add_help_option=False)
def demo(ctx: typer.Context) -> None:
    """Offline demo: score generated rows with the embedded SmolLM2-135M-Instruct (a minute or two on 2 CPU cores).

    The recipe is scaled down from the paper's so a CPU shows a real signal in minutes: learning rate
    1e-4, batch 8 without accumulation, max length 256, the short `plain` prompt. About 1 in 12
    generated answers is deliberately wrong; the last line counts how many of them the scorer ranks
    among the hardest 10 % (chance: 10 %).
    """
    with user_errors():
        from .scoring.demo import DEMO_RECIPE, DemoArguments
        from .scoring.demo import demo as run_demo
        from .scoring.summary import display_texts

        (args,) = _parse(ctx, "lpselect demo", DemoArguments)
        recipe = ", ".join(f"{k} {v}" for k, v in {**DEMO_RECIPE, "epochs": args.epochs}.items())
        console.print(f"Demo: {args.rows} generated rows, default model ({recipe}) → {args.out}")
        result = run_demo(args)
    _print_result(result.run, display_texts(result.run.rows))
    Console().print(result.summary(), soft_wrap=True, markup=False)


@app.command("select", context_settings=_PASSTHROUGH, add_help_option=False)
def select_cmd(ctx: typer.Context) -> None:
    """Pick a subset of a scored run and write it with its score columns: lpselect select RUN --strategy lp1-hard (--fraction 0.05 | --count N) [--per_cluster K] [--out PATH]."""
    with user_errors():
        from .selection.arguments import SelectArguments

        (args,) = _parse(
            ctx,
            "lpselect select",
            SelectArguments,
            usage="lpselect select RUN --strategy STRATEGY (--fraction F | --count N) [OPTIONS]",
        )
        from .selection.subsets import select_subset

        result = select_subset(args)
    Console().print(result.summary(), soft_wrap=True, markup=False)


@app.command(context_settings=_PASSTHROUGH, add_help_option=False)
def compare(ctx: typer.Context) -> None:
    """Agreement between two scorer runs on the same rows: Spearman, Kendall, overlap of the hardest sets: lpselect compare RUN_A RUN_B [--score lp1]."""
    with user_errors():
        from .selection.arguments import CompareArguments

        (args,) = _parse(
            ctx, "lpselect compare", CompareArguments, usage="lpselect compare RUN_A RUN_B [--score lp1] [--out DIR]"
        )
        from .selection.compare import compare_runs

        result = compare_runs(args.run_a, args.run_b, score=args.score, out=args.out)
    Console().print(result.summary(), soft_wrap=True, markup=False)


@app.command(context_settings=_PASSTHROUGH, add_help_option=False)
def report(ctx: typer.Context) -> None:
    """Figures and a Markdown summary of a run: LP(1) histogram, trajectories by tertile, LP vs length, counts: lpselect report RUN."""
    with user_errors():
        from .selection.arguments import ReportArguments

        (args,) = _parse(ctx, "lpselect report", ReportArguments, usage="lpselect report RUN [--out DIR]")
        from .selection.report import report_run

        result = report_run(args)
    Console().print(result.summary(), soft_wrap=True, markup=False)


@app.command("push-scores", context_settings=_PASSTHROUGH, add_help_option=False)
def push_scores_cmd(ctx: typer.Context) -> None:
    """Push a run's scores as new columns of a Hub dataset, with subset configs and a generated card, in one commit: lpselect push-scores OWNER/NAME [--run RUN]."""
    with user_errors():
        from .hub.arguments import PushArguments

        (args,) = _parse(
            ctx,
            "lpselect push-scores",
            PushArguments,
            usage="lpselect push-scores OWNER/NAME [--run RUN] [--subsets ...] [OPTIONS]",
        )
        from .hub.push import push_scores

        plan = push_scores(
            args.repo_id,
            run=args.run,
            subsets=args.subset_names,
            private=args.private,
            create_pr=args.create_pr,
            local_dir=args.local_dir,
            dry_run=args.dry_run,
            seed=args.selection_seed,
        )
    out = Console()
    out.print(plan.summary(), soft_wrap=True, markup=False)
    if args.local_dir is not None:
        out.print(f"materialised: {args.local_dir}")
    if plan.url:
        out.print(f"{'pull request' if args.create_pr else 'pushed'}: {plan.url}")


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
        from .eval import EvalArguments, evaluate

        (args,) = _parse(ctx, "lpselect eval", EvalArguments)
        result = evaluate(args)
    Console().print(result.summary(), soft_wrap=True, markup=False)


@app.command(context_settings=_PASSTHROUGH, add_help_option=False)
def space(ctx: typer.Context) -> None:
    """The Gradio Space: `lpselect space [--host H] [--port P]` serves it in your browser (explore, select, score, compare; needs a clone installed with the space extra); `lpselect space deploy OWNER/NAME` puts it on the Hugging Face Hub."""
    if ctx.args[:1] == ["deploy"]:
        with user_errors():
            from .space.arguments import DeployArguments

            ctx.args = ctx.args[1:]
            (args,) = _parse(
                ctx,
                "lpselect space deploy",
                DeployArguments,
                usage="lpselect space deploy OWNER/NAME [OPTIONS]",
                description="Deploy the Space to the Hub in one commit: the app, its front matter, pinned "
                "requirements, this package and the example.",
            )
            from .space.deploy import deploy_space

            plan = deploy_space(
                args.repo_id,
                private=args.private,
                hardware=args.hardware,
                token=args.token,
                dry_run=args.dry_run,
                local_dir=args.local_dir,
            )
        Console().print(
            plan.summary() + (f"\nwritten: {plan.local_dir}" if args.local_dir else ""), soft_wrap=True, markup=False
        )
        return
    import runpy
    import sys

    with user_errors():
        from .space.arguments import ServeArguments

        (args,) = _parse(
            ctx,
            "lpselect space",
            ServeArguments,
            usage="lpselect space [--host 127.0.0.1] [--port 7860] | lpselect space deploy OWNER/NAME [OPTIONS]",
        )
    app_path = Path(__file__).resolve().parent.parent / "spaces" / "app.py"
    if not app_path.is_file():
        console.print(
            "[red]Error:[/] The Space needs a clone of hf_lpselect (spaces/app.py is not installed); "
            'run `lpselect space` from a clone installed with `pip install -e ".[space]"`.',
            soft_wrap=True,
        )
        raise typer.Exit(2)
    sys.argv = [str(app_path), "--host", args.host, "--port", str(args.port)]
    runpy.run_path(str(app_path), run_name="__main__")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
