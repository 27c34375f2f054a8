"""The pairwise judge: every pair judged in both orders, by an endpoint or a local model.

The prompt is a plain-text template with the fields ``{question}``, ``{answer_1}`` and
``{answer_2}`` (the package's ``judge_prompt.txt`` by default; pass your own file to replace it).
It is sent as one user message. Replies are read by :func:`~hf_lpselect.eval.verdicts.parse_scores`.

Backends:

- :class:`EndpointJudge`: any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, TGI,
  llama.cpp server, ``transformers serve``) through the ``openai`` client
  (``pip install 'hf-lpselect[eval]'``); the API key is read from an environment variable.
- :class:`LocalJudge`: a transformers model run here, batched like the answers (chat template when
  the tokenizer has one, else the prompt as it is).

Every reply is appended to ``judgments.jsonl`` with its parsed scores as soon as it arrives, keyed
by (judge, prompt template, question, answer 1, answer 2), so a re-run asks only what is missing.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from ..errors import EvalError
from .store import JsonlStore, content_key
from .verdicts import pair_outcome, parse_scores


PROMPT_FIELDS = ("question", "answer_1", "answer_2")
_FIELD = re.compile(r"\{(question|answer_1|answer_2)\}")
ORDERS = ("model_first", "model_second")


def default_prompt_path() -> Path:
    """The judge prompt shipped with the package."""
    return Path(__file__).with_name("judge_prompt.txt")


def load_prompt(path: str | os.PathLike | None = None) -> str:
    """Read a judge prompt template and check it has every field (``None``: the shipped one)."""
    path = Path(path) if path is not None else default_prompt_path()
    if not path.is_file():
        raise EvalError(
            f"No judge prompt file {path}; give a text file with {{question}}, {{answer_1}} and {{answer_2}}."
        )
    template = path.read_text(encoding="utf-8")
    missing = [f"{{{name}}}" for name in PROMPT_FIELDS if f"{{{name}}}" not in template]
    if missing:
        raise EvalError(
            f"The judge prompt {path} lacks {', '.join(missing)}; every one of {{question}}, {{answer_1}}, {{answer_2}} must appear."
        )
    return template


def render_prompt(template: str, *, question: str, answer_1: str, answer_2: str) -> str:
    """Fill the template's fields in one pass (braces inside the answers are left alone).

    Example:
        >>> render_prompt("Q: {question} | {answer_1} | {answer_2}", question="2+2?", answer_1="4", answer_2="{answer_1}")
        'Q: 2+2? | 4 | {answer_1}'
    """
    values = {"question": question, "answer_1": answer_1, "answer_2": answer_2}
    return _FIELD.sub(lambda m: values[m.group(1)], template)


class Judge(Protocol):
    identity: dict[str, Any]

    def replies(self, prompts: Sequence[str]) -> Iterator[list[tuple[int, str]]]:
        """Yield batches of ``(position in prompts, reply text)`` until every prompt has a reply."""


class EndpointJudge:
    """A judge behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    Args:
        base_url (`str`): e.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:8000/v1``.
        model (`str`): the model name the endpoint knows.
        api_key_env (`str`, defaults to `"OPENAI_API_KEY"`): environment variable holding the key
            (unset: no key is sent, as local servers expect).
        max_tokens (`int`, defaults to `256`): tokens per reply.
        temperature (`float`, defaults to `0.0`): 0 asks for the judge's most likely reply.
        workers (`int`, defaults to `4`): requests in flight at once.
        timeout (`float`, defaults to `120.0`): seconds one request may take before it is asked again.
        max_retries (`int`, defaults to `3`): times a failed request is asked again, with exponential backoff
            (the ``openai`` client's for timeouts, lost connections and HTTP 408 / 409 / 429 / 5xx, honouring
            ``Retry-After``; ours for an answer that is not a chat completion). Then one :class:`EvalError`
            says what failed; replies already given were kept (:func:`judge_pairs`), and a re-run asks only
            for the missing ones. No verdict is ever made up: only a chat completion's text is a reply.

    Example:
        >>> judge = EndpointJudge("http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-7B-Instruct")  # doctest: +SKIP
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        max_tokens: int = 256,
        temperature: float = 0.0,
        workers: int = 4,
        timeout: float = 120.0,
        max_retries: int = 3,
    ) -> None:
        try:
            import openai
        except ImportError as err:
            raise EvalError("An endpoint judge needs the openai client: pip install 'hf-lpselect[eval]'.") from err
        self._openai = openai
        self.client = openai.OpenAI(
            base_url=base_url,
            api_key=os.environ.get(api_key_env) or "no-key",
            max_retries=max_retries,
            timeout=timeout,
        )
        self.timeout, self.tries = timeout, max_retries + 1
        self._tried = "1 try" if self.tries == 1 else f"{self.tries} tries"  # said in the errors below
        self.model, self.base_url, self.api_key_env = model, base_url, api_key_env
        self.max_tokens, self.temperature, self.workers = max_tokens, temperature, workers
        self.identity = {
            "backend": "endpoint",
            "base_url": base_url,
            "model": model,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }

    def _ask(self, prompt: str) -> str:
        """The text of the judge's chat completion for ``prompt``; an :class:`EvalError` once the retries are spent."""
        openai = self._openai
        saved = "the replies already given are kept: re-run the same command to ask only for the missing ones"
        for attempt in range(self.tries):
            try:
                response = self.client.chat.completions.create(
                    model=self.model,
                    messages=[{"role": "user", "content": prompt}],
                    max_tokens=self.max_tokens,
                    temperature=self.temperature,
                )
            except openai.AuthenticationError as err:
                raise EvalError(
                    f"The judge at {self.base_url} refused the API key; put a valid key in ${self.api_key_env}."
                ) from err
            except openai.APIStatusError as err:
                detail = str(err.message).splitlines()[0][:200] if str(err.message) else "no detail"
                if err.status_code in (408, 409, 429) or err.status_code >= 500:  # retried by the client already
                    raise EvalError(
                        f"The judge at {self.base_url} kept failing (HTTP {err.status_code}: {detail}) after "
                        f"{self._tried}; {saved}."
                    ) from err
                raise EvalError(
                    f"The judge at {self.base_url} answered HTTP {err.status_code} for model {self.model!r} "
                    f"({detail}); check --judge_model and the server."
                ) from err  # e.g. a model it does not serve
            except openai.APITimeoutError as err:
                raise EvalError(
                    f"The judge at {self.base_url} did not answer within {self.timeout:g} s, {self._tried} "
                    f"(raise --judge_timeout for a slow judge); {saved}."
                ) from err
            except openai.APIConnectionError as err:
                raise EvalError(
                    f"Could not reach the judge at {self.base_url} ({self._tried}); start the server or fix "
                    f"--judge_base_url, then re-run the same command: the replies already given are kept."
                ) from err
            except (
                ValueError,
                openai.APIResponseValidationError,
            ) as err:  # a body that is not JSON (a proxy's page, nothing)
                malformed = f"{type(err).__name__}: {' '.join(str(err).split())[:120]}"
            else:
                content = _completion_text(response)
                if content is not None:
                    return content
                malformed = f"a {type(response).__name__} without choices"
            if attempt < self.tries - 1:
                time.sleep(min(0.5 * 2**attempt, 8.0))
        raise EvalError(
            f"The judge at {self.base_url} answered {'once' if self.tries == 1 else f'{self.tries} times'} with something that is not a chat "
            f"completion ({malformed}), so no verdict was taken from it; fix the server, then re-run the same "
            "command: the replies already given are kept."
        )

    def replies(self, prompts: Sequence[str]) -> Iterator[list[tuple[int, str]]]:
        """Replies in batches of ``workers``; when a request fails for good, the batch's other replies are
        yielded (and so kept) before its error is raised."""
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for start in range(0, len(prompts), self.workers):
                futures = [
                    (i, pool.submit(self._ask, prompts[i]))
                    for i in range(start, min(start + self.workers, len(prompts)))
                ]
                done, failure = [], None
                for i, future in futures:
                    try:
                        done.append((i, future.result()))
                    except EvalError as err:
                        failure = failure or err
                if done:
                    yield done
                if failure is not None:
                    raise failure


def _completion_text(response: Any) -> str | None:
    """The message text of a chat completion ("" when it has none), or None when ``response`` is not one."""
    choices = getattr(response, "choices", None)
    if not choices:
        return None
    message = getattr(choices[0], "message", None)
    if message is None:
        return None
    return getattr(message, "content", None) or ""


class LocalJudge:
    """A transformers model as the judge, run here with batched greedy generation: the prompt goes
    through its chat template when it has one, else to the model as it is (template ``none``).

    Args:
        spec (`str`): a model spec as for ``lpselect score --model`` (Hub id, folder, ``.gguf``, ``default``).
        max_new_tokens (`int`, defaults to `256`): tokens per reply.
        batch_size (`int`, defaults to `4`): prompts per ``generate`` call.
        dtype (`str`, defaults to `"float32"`): weights dtype.
        trust_remote_code (`bool`, defaults to `False`): allow model code from the Hub.

    Example:
        >>> judge = LocalJudge("Qwen/Qwen2.5-1.5B-Instruct")  # doctest: +SKIP
    """

    def __init__(
        self,
        spec: str,
        *,
        max_new_tokens: int = 256,
        batch_size: int = 4,
        dtype: str = "float32",
        trust_remote_code: bool = False,
    ) -> None:
        import torch  # a local judge needs torch and the model stack; an endpoint judge (the common case) imports none of it

        from ..core.hardware import default_device
        from ..models import load_model
        from .generate import GenerationSettings, generation_config
        from .identity import model_key

        self.loaded = load_model(
            spec, dtype=getattr(torch, dtype), device=default_device(), trust_remote_code=trust_remote_code
        )
        self.settings = GenerationSettings(
            template="chat" if self.loaded.tokenizer.chat_template else "none",
            max_new_tokens=max_new_tokens,
            dtype=dtype,
        )
        self.config = generation_config(self.loaded.model, self.loaded.tokenizer, self.settings)
        self.batch_size = batch_size
        self.identity = {
            "backend": "local",
            "model": spec,
            "model_key": model_key(spec, self.loaded.identity),
            **self.settings.key_parts(),
        }

    def replies(self, prompts: Sequence[str]) -> Iterator[list[tuple[int, str]]]:
        from .generate import generate_batched, prompt_ids, text_ids  # torch: see __init__

        tokenizer = self.loaded.tokenizer
        chat = self.settings.template == "chat"
        ids = [prompt_ids(tokenizer, "chat", p) if chat else text_ids(tokenizer, p) for p in prompts]
        self.loaded.model.eval()
        for indices, new_ids, _ in generate_batched(
            self.loaded.model, ids, config=self.config, batch_size=self.batch_size
        ):
            yield [
                (i, self.loaded.tokenizer.decode(new, skip_special_tokens=True)) for i, new in zip(indices, new_ids)
            ]


@dataclass(frozen=True)
class Pair:
    """One question answered by a model and by the baseline."""

    test_set: str
    id: str
    question: str
    model: str
    model_answer: str
    baseline: str
    baseline_answer: str


def judge_pairs(judge: Judge, template: str, pairs: Sequence[Pair], store: JsonlStore) -> list[str | None]:
    """Judge every pair in both orders (only replies not yet in ``store``) and return each pair's outcome.

    Args:
        judge (`Judge`): an :class:`EndpointJudge` or :class:`LocalJudge`.
        template (`str`): the judge prompt (:func:`load_prompt`).
        pairs (`Sequence[Pair]`): the pairs to judge.
        store (`JsonlStore`): ``judgments.jsonl``; gets one record per (pair, order):
            ``key, test_set, id, model, baseline, order, judge, reply, scores`` (``scores`` null when unparseable).

    Returns:
        `list[str | None]`: ``win`` / ``tie`` / ``lose`` for the model, or None (unparseable), per pair.
    """
    prompt_sha = hashlib.sha256(template.encode()).hexdigest()[:12]
    requests: list[tuple[str, str, Pair, str]] = []  # (key, prompt, pair, order)
    keys: list[tuple[str, str]] = []
    seen: set[str] = set()
    for pair in pairs:
        both = []
        for order in ORDERS:
            first, second = (
                (pair.model_answer, pair.baseline_answer)
                if order == "model_first"
                else (pair.baseline_answer, pair.model_answer)
            )
            key = content_key(judge.identity, prompt_sha, pair.question, first, second)
            both.append(key)
            if key not in store and key not in seen:
                seen.add(key)
                prompt = render_prompt(template, question=pair.question, answer_1=first, answer_2=second)
                requests.append((key, prompt, pair, order))
        keys.append(tuple(both))
    if requests:
        with tqdm(total=len(requests), desc="Judging", unit="reply") as progress:
            for batch in judge.replies([prompt for _, prompt, _, _ in requests]):
                records = []
                for i, reply in batch:
                    key, _, pair, order = requests[i]
                    scores = parse_scores(reply)
                    records.append(
                        {
                            "key": key,
                            "test_set": pair.test_set,
                            "id": pair.id,
                            "model": pair.model,
                            "baseline": pair.baseline,
                            "order": order,
                            "judge": judge.identity,
                            "prompt_sha": prompt_sha,
                            "reply": reply,
                            "scores": list(scores) if scores is not None else None,
                        }
                    )
                store.add(records)  # durable before the next batch is asked for
                progress.update(len(batch))
    outcomes = []
    for first_key, second_key in keys:
        first, second = (store[k]["scores"] for k in (first_key, second_key))
        outcomes.append(pair_outcome(tuple(first) if first else None, tuple(second) if second else None))
    return outcomes
