"""How many optimizer steps a training run makes, and at what learning rate, before it starts.

The numbers are the ``Trainer``'s own: batches per process from the rows, the batch size and the
processes; optimizer steps from the batches and ``gradient_accumulation_steps`` (a last partial
accumulation counts as a step), times the epochs, or ``max_steps``; each step's learning rate from
transformers' own scheduler (``get_scheduler`` with ``TrainingArguments.get_warmup_steps``). A run in
which every step has learning rate 0 cannot move the weights (one step under warmup, for instance):
:func:`check_schedule` refuses it in one sentence that says what to change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from transformers import TrainingArguments, get_scheduler

from ..errors import TrainError


@dataclass
class Schedule:
    """The optimizer steps of a run: how many, how many of them warm up, and the first step with a learning rate."""

    steps: int
    warmup_steps: int
    first_moving_step: int | None  # 0-based; None: every step has learning rate 0


def optimizer_steps(n_rows: int, args: TrainingArguments, num_processes: int = 1) -> int:
    """The number of optimizer steps ``Trainer.train`` makes on ``n_rows`` rows (``set_initial_training_values``).

    Args:
        n_rows (`int`): rows in the training set.
        args (`TrainingArguments`): the recipe (batch size, accumulation, epochs, ``max_steps``).
        num_processes (`int`, *optional*, defaults to `1`): data-parallel processes.

    Returns:
        `int`: optimizer steps in all.

    Example:

    ```python
    >>> optimizer_steps(30, TrainConfig("out", num_train_epochs=1))  # 8 batches of 4, 8 accumulated: 1 step
    1
    ```
    """
    if args.max_steps > 0:
        return args.max_steps
    batches = math.ceil(n_rows / (args.per_device_train_batch_size * num_processes))
    per_epoch = max(math.ceil(batches / args.gradient_accumulation_steps), 1)
    return math.ceil(args.num_train_epochs * per_epoch)


def schedule(n_rows: int, args: TrainingArguments, num_processes: int = 1) -> Schedule:
    """The run's optimizer steps and the first of them whose learning rate is above 0.

    Example:

    ```python
    >>> schedule(30, TrainConfig("out", num_train_epochs=1))  # warmup 0.03 of 1 step = 1 step, at lr 0
    Schedule(steps=1, warmup_steps=1, first_moving_step=None)
    ```
    """
    steps = optimizer_steps(n_rows, args, num_processes)
    warmup = args.get_warmup_steps(steps)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=args.learning_rate)
    scheduler = get_scheduler(
        args.lr_scheduler_type,
        optimizer=optimizer,
        num_warmup_steps=warmup,
        num_training_steps=steps,
        scheduler_specific_kwargs=args.lr_scheduler_kwargs,
    )
    factors = getattr(scheduler, "lr_lambdas", None)
    if not factors:  # a scheduler that decides as it goes (reduce_lr_on_plateau): its start is the learning rate
        return Schedule(steps, warmup, 0 if args.learning_rate > 0 else None)
    first = next((step for step in range(steps) if args.learning_rate * factors[0](step) > 0), None)
    return Schedule(steps, warmup, first)


def check_schedule(n_rows: int, args: TrainingArguments, num_processes: int = 1) -> Schedule:
    """:func:`schedule`, refused in one :class:`TrainError` sentence when no step would move the weights.

    Raises:
        `TrainError`: every optimizer step has learning rate 0.
    """
    planned = schedule(n_rows, args, num_processes)
    if planned.first_moving_step is not None:
        return planned
    rows_per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * num_processes
    if args.learning_rate <= 0:
        why, change = f"--learning_rate is {args.learning_rate}", "set a --learning_rate above 0"
    else:
        why = (
            f"{'it is' if planned.steps == 1 else 'all are'} warmup at learning rate 0 "
            f"(--warmup_steps {args.warmup_steps:g} = {planned.warmup_steps} step(s), "
            f"{getattr(args.lr_scheduler_type, 'value', args.lr_scheduler_type)} schedule)"
        )
        change = (
            "set --warmup_steps 0, lower --gradient_accumulation_steps or --per_device_train_batch_size "
            "for more steps per epoch, or train more --num_train_epochs"
        )
    raise TrainError(
        f"This run cannot change the weights: {n_rows} rows at {rows_per_step} rows per optimizer step make "
        f"{planned.steps} step(s), and {why}; {change}."
    )
