"""``lpselect``: the command line, a thin layer over the public Python API.

One dispatcher (:func:`main`) over one parser (:class:`~hf_lpselect.core.parser.ArgumentParser`, TRL's
``TrlParser``): each command parses its dataclasses, calls one public function and prints its result's
summary; it fails with one sentence on bad input. A command parses before it imports its stage, so
``lpselect --help`` and a mistyped flag answer before torch is imported. Run ``lpselect COMMAND --help``
for the options. Multi-process: ``accelerate launch -m hf_lpselect.cli score …``.
"""

from __future__ import annotations

import difflib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape

from .core.flags import check_early
from .errors import ConfigError, DataError, LpselectError


console = Console(stderr=True)
# command name -> the function that runs it on the arguments after the name (see `command`)
COMMANDS: dict[str, Callable[[list[str]], None]] = {}


def command(name: str | None = None) -> Callable[[Callable[[list[str]], None]], Callable[[list[str]], None]]:
    """Register a function as the command ``name`` (default: the function's name); its docstring is its help."""

    def register(function: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
        COMMANDS[name or function.__name__] = function
        return function

    return register


@contextmanager
def user_errors() -> Iterator[None]:
    """The one place where our errors become one red sentence and exit code 2.

    Only :class:`~hf_lpselect.errors.LpselectError` (raised where the problem was found) and a full
    disk are turned into a sentence; anything else is a bug and keeps its traceback. The sentence
    starts a line of its own: the progress bars the failure interrupted are closed first.
    """

    def _end_progress_bars() -> None:
        # A bar (ours, transformers', datasets', huggingface_hub's: all tqdm) that was drawing when the
        # error was raised left the cursor after its text; closed, it ends its line (or clears it), and
        # it cannot redraw itself below the error when it is garbage-collected later.
        from .compat.tqdm import open_bars

        for bar in open_bars():
            try:
                bar.close()
            except (OSError, ValueError):  # its stream is closed: nothing to end
                pass

    try:
        yield
    except LpselectError as err:
        _end_progress_bars()
        console.print(f"[red]Error:[/] {escape(str(err))}", soft_wrap=True)
        raise SystemExit(2) from None
    except Exception as err:
        sentence = _local_failure(err)
        if sentence is None:
            raise
        _end_progress_bars()
        console.print(f"[red]Error:[/] {escape(sentence)}", soft_wrap=True)
        raise SystemExit(2) from None


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


def _description(function: Callable) -> str:
    """A command's docstring as one paragraph (argparse wraps it to the terminal)."""
    return " ".join((function.__doc__ or "").split())


def _parse(
    argv: list[str], prog: str, *types: type, usage: str | None = None, description: str | None = None
) -> tuple:
    """The command's dataclasses from its arguments (TRL's parser: ``--config`` YAML, ``--help``); the help
    text is ``description`` or else the command's docstring."""
    from .core.parser import ArgumentParser

    function = COMMANDS[prog.split()[1]]
    description = description or _description(function)
    return ArgumentParser(types, prog=prog, usage=usage, description=description).parse(argv)


@command()
def score(argv: list[str]) -> None:
    """Scorer run: fine-tune a small model on DATASET, score every row before training and after each epoch.

    The parser's description (:func:`~hf_lpselect.scoring.arguments.score_parser`) is the help.
    """
    with user_errors():
        from .scoring.arguments import parse_score_args
        from .scoring.scorer_run import score as run_score
        from .scoring.summary import display_texts

        script, args, model_args = parse_score_args(argv)
        result = run_score(script_args=script, args=args, model_args=model_args)
    if result.already_complete:
        console.print(
            f"Already complete: {result.run_dir.path} was finished before; nothing was trained or scored again."
        )
    _print_result(result, display_texts(result.rows))


@command()
def demo(argv: list[str]) -> None:
    """Offline demo: score generated rows with the embedded SmolLM2-135M-Instruct (a minute or two on 2 CPU cores).
    The recipe is scaled down from the paper's so a CPU shows a real signal in minutes: learning rate 1e-4, batch 8
    without accumulation, max length 256, the short plain prompt. About 1 in 12 generated answers is deliberately
    wrong; the last line counts how many of them the scorer ranks among the hardest 10 % (chance: 10 %).
    """
    with user_errors():
        from .scoring.demo import DEMO_RECIPE, DemoArguments
        from .scoring.demo import demo as run_demo
        from .scoring.summary import display_texts

        (args,) = _parse(argv, "lpselect demo", DemoArguments)
        recipe = ", ".join(f"{k} {v}" for k, v in {**DEMO_RECIPE, "epochs": args.epochs}.items())
        console.print(f"Demo: {args.rows} generated rows, default model ({recipe}) → {args.out}")
        result = run_demo(args)
    _print_result(result.run, display_texts(result.run.rows))
    Console().print(result.summary(), soft_wrap=True, markup=False)


@command("select")
def select_cmd(argv: list[str]) -> None:
    """Pick a subset of a scored run and write it with its score columns. The strategies are described on the
    method page of the documentation.
    """
    with user_errors():
        from .selection.arguments import SelectArguments

        (args,) = _parse(
            argv,
            "lpselect select",
            SelectArguments,
            usage="lpselect select RUN --strategy STRATEGY (--fraction F | --count N) [--per_cluster K] [--out PATH]",
        )
        from .selection.subsets import select_subset

        result = select_subset(args)
    Console().print(result.summary(), soft_wrap=True, markup=False)


@command()
def compare(argv: list[str]) -> None:
    """Agreement between two scorer runs on the same rows: Spearman, Kendall, overlap of the hardest sets."""
    with user_errors():
        from .selection.arguments import CompareArguments

        (args,) = _parse(
            argv, "lpselect compare", CompareArguments, usage="lpselect compare RUN_A RUN_B [--score lp1] [--out DIR]"
        )
        from .selection.compare import compare_runs

        result = compare_runs(args.run_a, args.run_b, score=args.score, out=args.out)
    Console().print(result.summary(), soft_wrap=True, markup=False)


@command()
def report(argv: list[str]) -> None:
    """Figures and a Markdown summary of a run: LP(1) histogram, trajectories by tertile, LP vs length, counts."""
    with user_errors():
        from .selection.arguments import ReportArguments

        (args,) = _parse(argv, "lpselect report", ReportArguments, usage="lpselect report RUN [--out DIR]")
        from .selection.report import report_run

        result = report_run(args)
    Console().print(result.summary(), soft_wrap=True, markup=False)


@command("push-scores")
def push_scores_cmd(argv: list[str]) -> None:
    """Push a run's scores as new columns of a Hub dataset, with subset configs and a generated card, in one
    commit.
    """
    with user_errors():
        from .hub.arguments import PushArguments

        (args,) = _parse(
            argv,
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
            selection_seed=args.selection_seed,
        )
    out = Console()
    out.print(plan.summary(), soft_wrap=True, markup=False)
    if args.local_dir is not None:
        out.print(f"materialised: {args.local_dir}")
    if plan.url:
        out.print(f"{'pull request' if args.create_pr else 'pushed'}: {plan.url}")


@command()
def train(argv: list[str]) -> None:
    """Fine-tune a target model with TRL's SFT on a curated split, with the scorer's prompt and masks.

    The parser's description (:func:`~hf_lpselect.training.arguments.make_parser`) is the help.
    """
    with user_errors():
        from accelerate import PartialState

        from .training.arguments import parse_train_args
        from .training.training_run import run_train

        result = run_train(parse_train_args(argv))
    if PartialState().is_main_process:
        Console().print(result.summary(), soft_wrap=True, markup=False)


@command("eval")
def eval_cmd(argv: list[str]) -> None:
    """Is the subset-trained model better? Answers, a pairwise judge in both orders, reference NLL: lpselect eval
    --models hard=runs/hard random=runs/random --baseline random --test_sets vicuna.jsonl [--judge_base_url URL
    --judge_model NAME].
    """
    with user_errors():
        from .eval import EvalArguments, evaluate

        (args,) = _parse(argv, "lpselect eval", EvalArguments)
        result = evaluate(args)
    Console().print(result.summary(), soft_wrap=True, markup=False)


@command()
def space(argv: list[str]) -> None:
    """The Gradio Space, served in your browser or deployed to the Hub. lpselect space [--host H] [--port P] serves
    it here (explore, select, score, compare; needs the space extra: pip install 'hf-lpselect[space]'); lpselect
    space deploy OWNER/NAME puts it on the Hugging Face Hub.
    """
    if argv[:1] == ["deploy"]:
        with user_errors():
            from .space.arguments import DeployArguments

            (args,) = _parse(
                argv[1:],
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
    with user_errors():
        from .space.arguments import ServeArguments

        (args,) = _parse(
            argv,
            "lpselect space",
            ServeArguments,
            usage="lpselect space [--host 127.0.0.1] [--port 7860] | lpselect space deploy OWNER/NAME [OPTIONS]",
        )
    with user_errors():
        if importlib.util.find_spec("gradio") is None:
            raise DataError("The Space needs gradio: pip install 'hf-lpselect[space]'.")
        from .space.app import main as serve

    serve(["--host", args.host, "--port", str(args.port)])


def _summary(function: Callable) -> str:
    """A command's first sentence, for ``lpselect --help``."""
    return _description(function).split(". ")[0].split(": lpselect")[0].rstrip(".") + "."


def _overview() -> str:
    """``lpselect --help``: what it does, and one line per command."""
    width = max(map(len, COMMANDS))
    lines = [
        "usage: lpselect [--help] [--version] COMMAND [OPTIONS]",
        "",
        "Pick the instruction-tuning rows a small model learns slowest (learning percentage, Mekala et al. 2024).",
        "",
        "commands:",
        *(f"  {name:<{width}}  {_summary(function)}" for name, function in COMMANDS.items()),
        "",
        "options:",
        "  -h, --help     show this message and exit",
        "  --version      print the version of hf_lpselect and exit",
        "",
        "`lpselect COMMAND --help` lists a command's options.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """The ``lpselect`` command: ``lpselect COMMAND [OPTIONS]``, ``lpselect --help``, ``lpselect --version``.

    Args:
        argv (`list[str]` or `None`, *optional*, defaults to `None`): the arguments after ``lpselect``
            (``None``: ``sys.argv[1:]``).

    Raises:
        SystemExit: with code 2 after one sentence on bad input, 0 after ``--help``.
    """
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(_overview() + "\n")
        if not argv:
            raise SystemExit(2)
        return
    if argv[0] == "--version":
        from . import __version__

        sys.stdout.write(__version__ + "\n")
        return
    with user_errors():
        if argv[0] not in COMMANDS:
            close = difflib.get_close_matches(argv[0], COMMANDS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"Unknown command {argv[0]!r}{hint}; `lpselect --help` lists the commands.")
        # Importing TRL's parser takes a second (pandas and torch for some commands: seconds more), so a flag that
        # is none of the names the command's parser took at its last parse is refused here, with nothing heavy
        # imported; with nothing remembered (or stale names) the parser decides.
        words = 2 if argv[:2] == ["space", "deploy"] else 1
        check_early(" ".join(["lpselect", *argv[:words]]), argv[words:])
    COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    main()
