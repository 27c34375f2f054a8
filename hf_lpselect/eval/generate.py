"""Answers of a model to test-set questions: each model with its own prompt, batched, cached.

- The prompt is built the way the scorer builds it (:mod:`hf_lpselect.templates`): the chat
  template when the tokenizer has one (``auto``), else the Alpaca prompt; the tokenizer's own
  prefix ids, then the prompt tokenised without special tokens.
- Prompts are sorted by length (longest first) and batched with LEFT padding, so every row of a
  batch starts generating at the same position and little compute goes to padding.
- Greedy by default (``do_sample=False``), with a fresh ``GenerationConfig``: a model's own
  sampling defaults never turn greedy decoding into sampling.
- Every answer is appended to ``generations.jsonl`` as its batch finishes, keyed by (model, its
  settings, the question), so re-running resumes and a finished set is never generated twice.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from ..errors import EvalError
from ..templates import prompt_text, special_prefix_ids
from .store import JsonlStore, content_key
from .testsets import TestItem


GENERATION_TEMPLATES = ("auto", "chat", "alpaca", "plain")


@dataclass(frozen=True)
class GenerationSettings:
    """What changes an answer (and so is part of its cache key); ``template`` is already resolved."""

    template: str
    max_new_tokens: int = 512
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 42
    dtype: str = "float32"

    def key_parts(self) -> dict[str, Any]:
        parts = asdict(self)
        if not self.do_sample:  # greedy: the sampling knobs change nothing
            parts = {k: v for k, v in parts.items() if k not in ("temperature", "top_p", "seed")}
        return parts


def generation_template(tokenizer: PreTrainedTokenizerBase, template: str = "auto") -> str:
    """``auto`` → ``chat`` when the tokenizer has a chat template, else ``alpaca``; others are checked."""
    if template not in GENERATION_TEMPLATES:
        raise EvalError(f"Unknown template {template!r}; choose one of {', '.join(GENERATION_TEMPLATES)}.")
    if template == "auto":
        return "chat" if tokenizer.chat_template else "alpaca"
    if template == "chat" and not tokenizer.chat_template:
        raise EvalError("--template chat needs a tokenizer with a chat template; this one has none (use alpaca).")
    return template


def prompt_ids(tokenizer: PreTrainedTokenizerBase, template: str, instruction: str, input: str = "") -> list[int]:
    """Token ids of one question's prompt under a resolved template (ids exactly as the scorer builds them).

    Example:
        >>> ids = prompt_ids(tokenizer, "alpaca", "Name a colour.")  # doctest: +SKIP
        >>> tokenizer.decode(ids).endswith("### Response:")  # doctest: +SKIP
        True
    """
    if template == "chat":
        question = f"{instruction}\n\n{input}" if input else instruction
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
        )
    else:
        text = prompt_text(instruction, input, template)
    return text_ids(tokenizer, text)


def text_ids(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """The tokenizer's own prefix ids (e.g. BOS), then ``text`` tokenised without special tokens."""
    return special_prefix_ids(tokenizer) + tokenizer(text, add_special_tokens=False)["input_ids"]


def eos_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Every id that ends an answer: the model's generation EOS ids and the tokenizer's EOS."""
    ids = model.generation_config.eos_token_id
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def generation_config(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, settings: GenerationSettings
) -> GenerationConfig:
    """A fresh config: greedy unless ``do_sample``; stops at any EOS id; pads with the tokenizer's pad id."""
    sampling = (
        {"temperature": settings.temperature, "top_p": settings.top_p, "top_k": None} if settings.do_sample else {}
    )
    return GenerationConfig(
        max_new_tokens=settings.max_new_tokens,
        do_sample=settings.do_sample,
        eos_token_id=eos_ids(model, tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        **sampling,
    )


@torch.no_grad()
def generate_batched(
    model: PreTrainedModel,
    prompts: Sequence[list[int]],
    *,
    config: GenerationConfig,
    batch_size: int = 8,
    seed: int | None = None,
) -> Iterator[tuple[list[int], list[list[int]], list[bool]]]:
    """Generate for every prompt, longest prompts first, in left-padded batches.

    Args:
        model (`PreTrainedModel`): a causal LM in eval mode.
        prompts (`Sequence[list[int]]`): prompt token ids (no padding).
        config (`GenerationConfig`): e.g. from :func:`generation_config`; its ``pad_token_id`` pads.
        batch_size (`int`, defaults to `8`): prompts per ``generate`` call.
        seed (`int | None`, defaults to `None`): seeds torch before each batch (for sampling).

    Yields:
        `(indices, new_ids, finished)` per batch: the prompts' positions in ``prompts``, the generated
        ids of each (up to, not including, the first EOS), and whether it stopped at an EOS.
    """
    device = model.device
    stop = set(config.eos_token_id or [])
    order = np.argsort([-len(p) for p in prompts], kind="stable")
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size].tolist()
        width = max(len(prompts[i]) for i in indices)
        ids = torch.full((len(indices), width), config.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(indices), width), dtype=torch.long)
        for row, i in enumerate(indices):
            ids[row, width - len(prompts[i]) :] = torch.as_tensor(prompts[i])
            attention[row, width - len(prompts[i]) :] = 1
        if seed is not None:
            torch.manual_seed(seed)
        out = model.generate(input_ids=ids.to(device), attention_mask=attention.to(device), generation_config=config)
        new_ids, finished = [], []
        for seq in out[:, width:].tolist():
            end = next((k for k, token in enumerate(seq) if token in stop), None)
            new_ids.append(seq if end is None else seq[:end])
            finished.append(end is not None)
        yield indices, new_ids, finished


@dataclass
class GenerationStats:
    """What one model did on one test set (``seconds`` and ``new_tokens`` count this run's generations only)."""

    n_answers: int
    n_generated: int
    n_unfinished: int
    new_tokens: int
    seconds: float

    @property
    def tokens_per_s(self) -> float | None:
        return self.new_tokens / self.seconds if self.seconds > 0 else None


def answer_key(model_key: str, settings: GenerationSettings, item: TestItem) -> str:
    """Cache key of one answer: the model's identity, the settings that change answers, and the question."""
    return content_key(model_key, settings.key_parts(), item.instruction, item.input)


def generate_answers(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    items: Sequence[TestItem],
    *,
    model_label: str,
    model_key: str,
    test_set: str,
    settings: GenerationSettings,
    store: JsonlStore,
    batch_size: int = 8,
) -> tuple[list[dict[str, Any]], GenerationStats]:
    """The answer record of every item, generating only those not yet in ``store``.

    Returns:
        `(records, stats)`: one ``generations.jsonl`` record per item in item order
        (``key, model, test_set, id, question, answer, n_prompt_tokens, n_new_tokens, finished, settings``).
    """
    keys = [answer_key(model_key, settings, item) for item in items]
    todo, seen = [], set()
    for i, key in enumerate(keys):
        if key not in store and key not in seen:  # an item asked twice is generated once
            todo.append(i)
            seen.add(key)
    stats = GenerationStats(n_answers=len(items), n_generated=len(todo), n_unfinished=0, new_tokens=0, seconds=0.0)
    if todo:
        model.eval()
        prompts = [prompt_ids(tokenizer, settings.template, items[i].instruction, items[i].input) for i in todo]
        config = generation_config(model, tokenizer, settings)
        seed = settings.seed if settings.do_sample else None
        progress = tqdm(total=len(todo), desc=f"Generating {model_label} / {test_set}", unit="answer")
        started = time.perf_counter()
        for indices, new_ids, finished in generate_batched(
            model, prompts, config=config, batch_size=batch_size, seed=seed
        ):
            records = []
            for i, ids, done in zip(indices, new_ids, finished):
                item = items[todo[i]]
                records.append(
                    {
                        "key": keys[todo[i]],
                        "model": model_label,
                        "test_set": test_set,
                        "id": item.id,
                        "question": item.question,
                        "answer": tokenizer.decode(ids, skip_special_tokens=True).strip(),
                        "n_prompt_tokens": len(prompts[i]),
                        "n_new_tokens": len(ids),
                        "finished": done,
                        "settings": settings.key_parts(),
                    }
                )
                stats.new_tokens += len(ids)
            store.add(records)
            progress.update(len(indices))
        stats.seconds = time.perf_counter() - started
        progress.close()
    answers = [store[key] for key in keys]
    stats.n_unfinished = sum(not record["finished"] for record in answers)
    return answers, stats
