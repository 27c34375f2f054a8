"""Prompt templates and exact tokenisation: each canonical row → input_ids + labels (-100 = not scored).

The response mask is exact at the token level because prompt and response are tokenised
SEPARATELY and their ids concatenated; no string search, no re-tokenisation (docs/method.md §5).

- ``alpaca``: the Stanford Alpaca prompt, exactly; target = output + EOS (the EOS is scored).
- ``plain``: ``"{instruction}\\n{input}\\n"``; target = output + EOS.
- ``chat``: the tokenizer's chat template. The conversation is rendered once per assistant turn;
  the text each assistant turn adds (its content and end-of-turn token, trailing whitespace left
  unscored) is scored, everything else is not. Every assistant turn of a multi-turn row is scored.
- ``auto``: ``chat`` when the data is multi-turn or the tokenizer has a chat template and the
  data is conversational, otherwise ``alpaca``.
"""

from __future__ import annotations

from typing import Any

import datasets
import jinja2
from transformers import PreTrainedTokenizerBase

from .errors import TemplateError


TEMPLATES = ("auto", "alpaca", "chat", "plain")
# what a run records for rows that TRL's own trainer formatted and tokenised (a LearningPercentageCallback run on
# prompt/completion rows or conversations): not one of ours; lpselect train hands such rows to TRL again
TRL_TEMPLATE = "trl"

ALPACA_PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
ALPACA_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)
PLAIN_PROMPT = "{instruction}\n{input}\n"

MULTI_TURN_REASON = "multi-turn conversation: the {template} template scores single turns only (use --template chat)"


def resolve_template(template: str, tokenizer: PreTrainedTokenizerBase, rows: datasets.Dataset) -> str:
    """Turn ``auto`` into a concrete template name; validate the others."""
    if template not in TEMPLATES:
        raise TemplateError(f"Unknown template {template!r}; choose one of {', '.join(TEMPLATES)}.")
    if template == "chat" and not tokenizer.chat_template:
        raise TemplateError("--template chat needs a tokenizer with a chat template; this one has none (use alpaca).")
    if template != "auto":
        return template
    conversational = len(rows) > 0 and rows[0]["format"] in ("sharegpt", "messages")
    multi_turn = any(i is None for i, s in zip(rows["instruction"], rows["status"]) if s == "ok")
    if tokenizer.chat_template and (conversational or multi_turn):
        return "chat"
    if multi_turn:
        raise TemplateError("The data has multi-turn rows but the tokenizer has no chat template; pass --template.")
    return "alpaca"


def prompt_text(instruction: str, input: str, template: str) -> str:
    """The prompt string of a single-turn row for the ``alpaca`` or ``plain`` template."""
    if template == "alpaca":
        if input:
            return ALPACA_PROMPT_INPUT.format(instruction=instruction, input=input)
        return ALPACA_PROMPT_NO_INPUT.format(instruction=instruction)
    if template == "plain":
        return PLAIN_PROMPT.format(instruction=instruction, input=input)
    raise TemplateError(f"prompt_text does not handle template {template!r}")


def special_prefix_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The ids the tokenizer puts before any text (e.g. BOS for Llama; nothing for SmolLM2)."""
    with_special = tokenizer("x", add_special_tokens=True)["input_ids"]
    plain = tokenizer("x", add_special_tokens=False)["input_ids"]
    for start in range(len(with_special) - len(plain) + 1):
        if with_special[start : start + len(plain)] == plain:
            return list(with_special[:start])
    return []


def chat_segments(messages: list[dict[str, str]], tokenizer: PreTrainedTokenizerBase) -> list[tuple[str, bool]]:
    """Split a rendered conversation into ``(text, scored)`` pieces, one scored piece per assistant turn."""
    segments: list[tuple[str, bool]] = []
    done = ""  # rendered text already assigned to segments
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not (prompt.startswith(done) and full.startswith(prompt)):
            raise TemplateError(
                "The tokenizer's chat template does not render conversations incrementally (a prefix of the "
                "conversation renders differently), so the assistant tokens cannot be located exactly; "
                "use --template alpaca or plain."
            )
        answer = full[len(prompt) :]
        kept = answer.rstrip()
        segments.append((prompt[len(done) :], False))
        segments.append((kept, True))
        done = prompt + kept
    return segments


def row_segments(
    row: dict[str, Any], template: str, tokenizer: PreTrainedTokenizerBase
) -> list[tuple[str, bool]] | str:
    """The ``(text, scored)`` pieces of one ok row, or a reason string when the template cannot score it."""
    if template == "chat":
        try:
            return chat_segments(row["messages"], tokenizer)
        except jinja2.TemplateError as err:  # the template refused this conversation (e.g. a role it does not know)
            return f"the tokenizer's chat template cannot render this row: {err}"
    if row["instruction"] is None:
        return MULTI_TURN_REASON.format(template=template)
    return [(prompt_text(row["instruction"], row["input"] or "", template), False), (row["output"], True)]


def tokenize_rows(
    rows: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    *,
    template: str,
    max_length: int,
    alone: bool = False,
    num_proc: int | None = None,
) -> datasets.Dataset:
    """Add ``input_ids``, ``labels``, token counts, ``truncated`` and the final ``status``/``reason``.

    Rows that are not ``ok`` pass through with empty ids. After right-truncation to ``max_length``,
    a row left with no scored response token becomes ``excluded`` (docs/method.md §5: never score it).
    Labels are built by position, so a pad token equal to EOS never unscores the final EOS.

    ``alone=True`` also adds ``alone_input_ids``/``alone_labels``/``alone_length``: the same scored
    tokens with only a one-token context before them (the tokenizer's own prefix, else BOS, else
    EOS), the "answer alone" of IFD (docs/method.md §4), so both IFD terms average the same tokens.
    """
    if tokenizer.eos_token_id is None:
        raise TemplateError("The tokenizer has no EOS token, so the end of a response cannot be scored.")
    if max_length < 2:
        raise TemplateError(f"--max_length must be at least 2, got {max_length}.")
    prefix = special_prefix_ids(tokenizer)
    eos = tokenizer.eos_token_id
    alone_context = prefix or [tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos]
    columns = [
        "input_ids",
        "labels",
        "length",
        "n_prompt_tokens",
        "n_response_tokens",
        "truncated",
        "status",
        "reason",
    ]
    columns += ["alone_input_ids", "alone_labels", "alone_length"] if alone else []

    def encode(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {k: [] for k in columns}
        rows_list = [dict(zip(batch, values)) for values in zip(*batch.values())]
        pieces = [row_segments(r, template, tokenizer) if r["status"] == "ok" else r["reason"] for r in rows_list]
        texts = [text for p in pieces if not isinstance(p, str) for text, _ in p]
        encoded = iter(tokenizer(texts, add_special_tokens=False)["input_ids"]) if texts else iter(())
        for row, piece in zip(rows_list, pieces):
            status, reason = row["status"], row["reason"]
            ids: list[int] = []
            labels: list[int] = []
            if isinstance(piece, str):
                if status == "ok":
                    status, reason = "excluded", piece
            else:
                ids.extend(prefix)
                labels.extend([-100] * len(prefix))
                for _text, scored in piece:
                    seg = next(encoded)
                    if scored and template != "chat":
                        seg = seg + [eos]
                    ids.extend(seg)
                    labels.extend(seg if scored else [-100] * len(seg))
            truncated = len(ids) > max_length
            ids, labels = ids[:max_length], labels[:max_length]
            if labels:
                labels[0] = -100  # the first token has no context: never a prediction target
            n_response = sum(1 for x in labels if x != -100)
            if status == "ok" and n_response == 0:
                status = "excluded"
                reason = f"no response token left after truncation to max_length={max_length}"
            out["input_ids"].append(ids)
            out["labels"].append(labels)
            out["length"].append(len(ids))
            out["n_prompt_tokens"].append(sum(1 for x in labels if x == -100) if ids else 0)
            out["n_response_tokens"].append(n_response)
            out["truncated"].append(truncated)
            out["status"].append(status)
            out["reason"].append(reason)
            if alone:
                scored_ids = [x for x in labels if x != -100] if status == "ok" else []
                context = alone_context if scored_ids else []
                out["alone_input_ids"].append(context + scored_ids)
                out["alone_labels"].append([-100] * len(context) + scored_ids)
                out["alone_length"].append(len(context) + len(scored_ids))
        return out

    features = rows.features.copy()
    features.update(
        {
            "input_ids": datasets.List(datasets.Value("int32")),
            "labels": datasets.List(datasets.Value("int32")),
            "length": datasets.Value("int32"),
            "n_prompt_tokens": datasets.Value("int32"),
            "n_response_tokens": datasets.Value("int32"),
            "truncated": datasets.Value("bool"),
        }
    )
    if alone:
        features.update(
            {
                "alone_input_ids": datasets.List(datasets.Value("int32")),
                "alone_labels": datasets.List(datasets.Value("int32")),
                "alone_length": datasets.Value("int32"),
            }
        )
    return rows.map(encode, batched=True, batch_size=256, features=features, num_proc=num_proc, desc="Tokenizing")
