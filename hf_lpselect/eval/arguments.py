"""``EvalArguments``: every argument of ``lpselect eval`` in one dataclass.

It parses with ``transformers.HfArgumentParser`` and ``trl.TrlParser`` (so ``--config eval.yaml``
works), and each field's ``help`` is what ``lpselect eval --help`` shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import EvalError


DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class EvalArguments:
    """What to evaluate and how: every argument of ``lpselect eval`` (its ``--help`` shows the same texts).

    Args:
        models (`list[str]`):
            Models to evaluate: Hub ids, local folders, .gguf files or 'default' (SmolLM2-135M-Instruct);
            'NAME=SPEC' names one in the results.
        test_sets (`list[str]`, *optional*, defaults to `[]`):
            Test sets: .json/.jsonl/.parquet files, save_to_disk folders or Hub ids, of any common shape
            (Vicuna, Koala, WizardLM, Self-Instruct, LIMA, AlpacaEval, ...); 'NAME=SOURCE' names one.
        baseline (`str` or `None`, *optional*, defaults to `None`):
            The model every other model is judged against (a spec or NAME from --models); default: the last
            model.
        eval_dir (`str`, *optional*, defaults to `"eval"`):
            Output folder: generations.jsonl, judgments.jsonl, results.json, win_tie_lose.png. Re-running
            resumes from it.
        test_split (`str`, *optional*, defaults to `"test"`):
            Split of a Hub test set or DatasetDict folder.
        limit (`int` or `None`, *optional*, defaults to `None`):
            Only the first N questions of each test set (and rows of each reference set).
        reference_sets (`list[str]`, *optional*, defaults to `[]`):
            Extra data whose answers are scored by reference NLL only (e.g. held-out rows of the training
            source), in any format lpselect score reads; 'NAME=SOURCE' names one.
        reference_split (`str`, *optional*, defaults to `"train"`):
            Split of a Hub reference set.
        template (`str`, *optional*, defaults to `"auto"`):
            Prompt of each model: auto (its chat template when it has one, else alpaca), chat, alpaca or
            plain.
        max_new_tokens (`int`, *optional*, defaults to `512`):
            Most tokens per answer.
        batch_size (`int`, *optional*, defaults to `16`):
            Questions per generate call (sorted by length, left padding).
        do_sample (`bool`, *optional*, defaults to `False`):
            Sample answers instead of greedy decoding.
        temperature (`float`, *optional*, defaults to `1.0`):
            Sampling temperature (with --do_sample).
        top_p (`float`, *optional*, defaults to `1.0`):
            Nucleus sampling threshold (with --do_sample).
        seed (`int`, *optional*, defaults to `42`):
            Seed for sampling (with --do_sample).
        dtype (`str`, *optional*, defaults to `"auto"`):
            Weights dtype of the evaluated models and a local judge; auto: bfloat16 on a GPU that computes it
            natively, else float32.
        trust_remote_code (`bool`, *optional*, defaults to `False`):
            Allow model code from the Hub to run.
        max_length (`int`, *optional*, defaults to `1024`):
            Tokens per row when scoring reference answers (longer rows are truncated; a row with no answer
            token left is not scored).
        score_token_budget (`int` or `None`, *optional*, defaults to `None`):
            Most tokens per forward pass when scoring reference answers (rows x the longest row): bounds its
            memory. Default: 2048 on a CPU, sized to the free memory on a GPU.
        score_batch_size (`int` or `None`, *optional*, defaults to `None`):
            Also at most this many rows per forward pass when scoring reference answers. Default: 8 on a CPU,
            no cap on a GPU; 0: no cap.
        judge_base_url (`str` or `None`, *optional*, defaults to `None`):
            OpenAI-compatible endpoint of the judge (OpenAI, vLLM, TGI, llama.cpp server, transformers serve),
            e.g. http://127.0.0.1:8000/v1.
        judge_model (`str` or `None`, *optional*, defaults to `None`):
            The judge: the model name at --judge_base_url, or without it a local model (Hub id, folder, .gguf)
            run here. Unset: no judge, reference metrics only.
        judge_api_key_env (`str`, *optional*, defaults to `"OPENAI_API_KEY"`):
            Environment variable holding the judge endpoint's API key (unset variable: no key sent).
        judge_prompt (`str` or `None`, *optional*, defaults to `None`):
            Judge prompt template file with {question}, {answer_1}, {answer_2} (default: the one shipped,
            hf_lpselect/eval/judge_prompt.txt).
        judge_max_new_tokens (`int`, *optional*, defaults to `256`):
            Most tokens per judge reply.
        judge_temperature (`float`, *optional*, defaults to `0.0`):
            Temperature of an endpoint judge (a local judge is always greedy).
        judge_workers (`int`, *optional*, defaults to `4`):
            Requests in flight at once to an endpoint judge.
        judge_batch_size (`int`, *optional*, defaults to `4`):
            Prompts per generate call of a local judge.
        judge_timeout (`float`, *optional*, defaults to `120.0`):
            Seconds an endpoint judge may take to answer one request before it is asked again.
        judge_max_retries (`int`, *optional*, defaults to `3`):
            Times a failed judge request (timeout, HTTP 408 / 429 / 5xx, a lost connection, a malformed
            answer) is asked again, with exponential backoff, before eval stops; the replies already given are
            kept.

    Example:
        >>> args = EvalArguments(models=["hard=runs/hard/model", "full=runs/full/model"],
        ...                      test_sets=["../shared/data/eval/cherry_llm_test_data/vicuna_test_set.jsonl"],
        ...                      judge_base_url="https://api.openai.com/v1", judge_model="gpt-4o")
        >>> args.baseline is None   # the last model, "full", is the baseline
        True
    """

    models: list[str] = field(
        metadata={
            "help": "Models to evaluate: Hub ids, local folders, .gguf files or 'default' (SmolLM2-135M-Instruct); 'NAME=SPEC' names one in the results."
        }
    )
    test_sets: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Test sets: .json/.jsonl/.parquet files, save_to_disk folders or Hub ids, of any common shape (Vicuna, Koala, WizardLM, Self-Instruct, LIMA, AlpacaEval, ...); 'NAME=SOURCE' names one."
        },
    )
    baseline: str | None = field(
        default=None,
        metadata={
            "help": "The model every other model is judged against (a spec or NAME from --models); default: the last model."
        },
    )
    eval_dir: str = field(
        default="eval",
        metadata={
            "help": "Output folder: generations.jsonl, judgments.jsonl, results.json, win_tie_lose.png. Re-running resumes from it."
        },
    )
    test_split: str = field(default="test", metadata={"help": "Split of a Hub test set or DatasetDict folder."})
    limit: int | None = field(
        default=None,
        metadata={"help": "Only the first N questions of each test set (and rows of each reference set)."},
    )
    reference_sets: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Extra data whose answers are scored by reference NLL only (e.g. held-out rows of the training source), in any format lpselect score reads; 'NAME=SOURCE' names one."
        },
    )
    reference_split: str = field(default="train", metadata={"help": "Split of a Hub reference set."})
    template: str = field(
        default="auto",
        metadata={
            "help": "Prompt of each model: auto (its chat template when it has one, else alpaca), chat, alpaca or plain.",
            "choices": ["auto", "chat", "alpaca", "plain"],
        },
    )
    max_new_tokens: int = field(default=512, metadata={"help": "Most tokens per answer."})
    batch_size: int = field(
        default=16, metadata={"help": "Questions per generate call (sorted by length, left padding)."}
    )
    do_sample: bool = field(default=False, metadata={"help": "Sample answers instead of greedy decoding."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (with --do_sample)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling threshold (with --do_sample)."})
    seed: int = field(default=42, metadata={"help": "Seed for sampling (with --do_sample)."})
    dtype: str = field(
        default="auto",
        metadata={
            "help": "Weights dtype of the evaluated models and a local judge; auto: bfloat16 on a GPU that computes it natively, else float32.",
            "choices": list(DTYPES),
        },
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow model code from the Hub to run."})
    max_length: int = field(
        default=1024,
        metadata={
            "help": "Tokens per row when scoring reference answers (longer rows are truncated; a row with no answer token left is not scored)."
        },
    )
    score_token_budget: int | None = field(
        default=None,
        metadata={
            "help": "Most tokens per forward pass when scoring reference answers (rows x the longest row): bounds its memory. Default: 2048 on a CPU, sized to the free memory on a GPU."
        },
    )
    score_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "Also at most this many rows per forward pass when scoring reference answers. Default: 8 on a CPU, no cap on a GPU; 0: no cap."
        },
    )
    judge_base_url: str | None = field(
        default=None,
        metadata={
            "help": "OpenAI-compatible endpoint of the judge (OpenAI, vLLM, TGI, llama.cpp server, transformers serve), e.g. http://127.0.0.1:8000/v1."
        },
    )
    judge_model: str | None = field(
        default=None,
        metadata={
            "help": "The judge: the model name at --judge_base_url, or without it a local model (Hub id, folder, .gguf) run here. Unset: no judge, reference metrics only."
        },
    )
    judge_api_key_env: str = field(
        default="OPENAI_API_KEY",
        metadata={"help": "Environment variable holding the judge endpoint's API key (unset variable: no key sent)."},
    )
    judge_prompt: str | None = field(
        default=None,
        metadata={
            "help": "Judge prompt template file with {question}, {answer_1}, {answer_2} (default: the one shipped, hf_lpselect/eval/judge_prompt.txt)."
        },
    )
    judge_max_new_tokens: int = field(default=256, metadata={"help": "Most tokens per judge reply."})
    judge_temperature: float = field(
        default=0.0, metadata={"help": "Temperature of an endpoint judge (a local judge is always greedy)."}
    )
    judge_workers: int = field(default=4, metadata={"help": "Requests in flight at once to an endpoint judge."})
    judge_batch_size: int = field(default=4, metadata={"help": "Prompts per generate call of a local judge."})
    judge_timeout: float = field(
        default=120.0,
        metadata={"help": "Seconds an endpoint judge may take to answer one request before it is asked again."},
    )
    judge_max_retries: int = field(
        default=3,
        metadata={
            "help": "Times a failed judge request (timeout, HTTP 408 / 429 / 5xx, a lost connection, a malformed answer) is asked again, with exponential backoff, before eval stops; the replies already given are kept."
        },
    )

    def __post_init__(self) -> None:
        if not self.models:
            raise EvalError("Give at least one model with --models.")
        if not self.test_sets and not self.reference_sets:
            raise EvalError("Give at least one test set (--test_sets) or reference set (--reference_sets).")
        if self.judge_base_url and not self.judge_model:
            raise EvalError("--judge_base_url needs --judge_model, the model name the endpoint serves.")
        for name in (
            "max_new_tokens",
            "batch_size",
            "max_length",
            "score_token_budget",
            "judge_max_new_tokens",
            "judge_workers",
            "judge_batch_size",
        ):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise EvalError(f"--{name} must be at least 1, got {getattr(self, name)}.")
        if not self.judge_timeout > 0:
            raise EvalError(f"--judge_timeout must be a positive number of seconds, got {self.judge_timeout}.")
        if self.judge_max_retries < 0:
            raise EvalError(f"--judge_max_retries must be 0 or more, got {self.judge_max_retries}.")
        if self.score_batch_size is not None and self.score_batch_size < 0:
            raise EvalError(f"--score_batch_size must be 0 (no cap) or more, got {self.score_batch_size}.")
        if self.limit is not None and self.limit < 1:
            raise EvalError(f"--limit must be at least 1, got {self.limit}.")
        if self.dtype not in DTYPES:
            raise EvalError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}.")
