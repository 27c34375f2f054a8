"""One scoring pass: the mean response NLL of every row, in eval mode, with no gradient.

This is the hot path of a scorer run (n + 1 passes over the whole dataset), so it is built for
speed while staying exact:

- rows are sorted by length, longest first, and batched by a TOKEN budget (rows x the longest
  row's length, the padded tokens the decoder computes), so memory is bounded by the budget,
  short rows share a batch with many others and padding stays small;
- the decoder runs once per batch (with no attention mask when the batch has no padding) and the
  vocabulary projection is applied ONLY at scored (response) positions, in chunks, so no
  ``(batch, seq, vocab)`` logits tensor is ever built;
- under bf16 autocast the whole pass is one autocast region, so each weight is cast to bf16 once
  per pass rather than once per batch; cross-entropy is taken in float32;
- under ``accelerate`` the batches are dealt round-robin to the ranks and the ``(row, nll)``
  results gathered back, so every row is scored exactly once;
- with sharded weights (FSDP, FSDP2, DeepSpeed ZeRO-3) the decoder and head cannot be called
  directly (a module's shards are gathered only when it is called through its own forward), so a
  batch goes through the model's forward with TRL's fused LM head, still projecting only the
  response positions, and every rank runs as many forwards as the others (the gathers are
  collectives).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import datasets
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from accelerate import PartialState
from accelerate.utils import gather_object
from tqdm.auto import tqdm
from transformers import PreTrainedModel
from trl.trainer.utils import add_fused_lm_head

from ..core.hardware import free_memory
from ..heads import compact_lm_head
from ..models import is_sharded, unwrap_peft


PASS_COLUMNS = ["row", "nll", "n_tokens"]
# On a CPU: at most 8 rows and 2,048 tokens a batch. On 2 CPU cores a bf16 pass ran 3.91x the one-row loop in
# batches of 8 and 3.27x by the 2,048-token budget alone (about 20 short rows a batch);
# benchmarks/results/bench_scoring.json
CPU_TOKEN_BUDGET = 2048
CPU_MAX_ROWS = 8
# On an accelerator: no row cap, and the largest power-of-two token budget whose activations stay within
# 3 GiB and half the free memory, from 2,048 up to 65,536 tokens. For SmolLM2's three shapes that picks the
# faster of the two budgets measured on an H200 (16,384 and 65,536 tokens; benchmarks/README.md): 65,536 at 135M and
# 360M, 16,384 at 1.7B.
ACTIVATION_BYTES = 3 << 30
MAX_TOKEN_BUDGET = 65536


@dataclass(frozen=True)
class Batching:
    """How a pass is cut into batches: at most ``token_budget`` padded tokens and ``max_rows`` rows (``None``: no cap)."""

    token_budget: int
    max_rows: int | None


def activation_bytes_per_token(config) -> int:
    """A generous bound on the bytes one token's activations take in a no-grad forward (float32, the widest
    moment of a decoder layer: its MLP's gate, up and product beside four hidden-size vectors)."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    hidden = int(getattr(config, "hidden_size", 0) or getattr(config, "n_embd", 0) or 1024)
    inner = int(getattr(config, "intermediate_size", 0) or getattr(config, "ffn_dim", 0) or 4 * hidden)
    return 4 * (4 * hidden + 3 * inner)


def accelerator_token_budget(bytes_per_token: int, free_bytes: int | None = None) -> int:
    """The largest power of two of tokens whose activations fit 3 GiB and half of ``free_bytes``, in [2048, 65536].

    Example:

    ```python
    >>> accelerator_token_budget(4 * (4 * 576 + 3 * 1536)), accelerator_token_budget(4 * (4 * 2048 + 3 * 8192))
    (65536, 16384)
    ```
    """
    room = ACTIVATION_BYTES if free_bytes is None else min(ACTIVATION_BYTES, free_bytes // 2)
    tokens = max(CPU_TOKEN_BUDGET, min(MAX_TOKEN_BUDGET, room // max(1, bytes_per_token)))
    return 1 << (int(tokens).bit_length() - 1)


def device_batching(
    model: torch.nn.Module, token_budget: int | None = None, batch_size: int | None = None
) -> Batching:
    """The batching of a pass on the device ``model`` lives on; what is given explicitly is kept.

    Args:
        model (`torch.nn.Module`): the model to score (its device and shape decide).
        token_budget (`int` or `None`, *optional*, defaults to `None`): ``None``: 2,048 on a CPU; on an
            accelerator :func:`accelerator_token_budget` for the model's shape and the free memory.
        batch_size (`int` or `None`, *optional*, defaults to `None`): most rows a batch; ``None``: 8 on a
            CPU, no cap on an accelerator; ``0``: no cap.

    Example:

    ```python
    >>> device_batching(cpu_model)  # doctest: +SKIP
    Batching(token_budget=2048, max_rows=8)
    ```
    """
    device = _decoder_and_head(model)[1].weight.device
    on_cpu = device.type == "cpu"
    if batch_size is None:
        batch_size = CPU_MAX_ROWS if on_cpu else 0
    if token_budget is None:
        if on_cpu:
            token_budget = CPU_TOKEN_BUDGET
        else:
            token_budget = accelerator_token_budget(
                activation_bytes_per_token(unwrap_peft(model).config), free_memory(device)
            )
    return Batching(token_budget=token_budget, max_rows=batch_size or None)


def _decoder_and_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module, PreTrainedModel]:
    """The transformer body, the LM head and the model that owns them (unwrapping PEFT)."""
    base = unwrap_peft(model)
    return base.get_decoder(), base.get_output_embeddings(), base


def _nll_through_forward(
    model: torch.nn.Module, ids: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row summed response NLL and token count, through the model's own forward (sharded weights)."""
    owner = getattr(model, "module", model)  # FSDP's wrapper
    owner = unwrap_peft(owner)
    if not getattr(owner, "_lpselect_fused_head", False):
        add_fused_lm_head(owner)  # an SFTTrainer has added one already; a second layer changes nothing
        owner._lpselect_fused_head = True
    with compact_lm_head():
        out = model(input_ids=ids, attention_mask=attention_mask, labels=labels, fused_lm_head=True, use_cache=False)
    mask = out.label_mask
    return -(out.log_probs.double() * mask).sum(dim=1), mask.sum(dim=1)


def _transform_logits(logits: torch.Tensor, config) -> torch.Tensor:
    """Apply the output scaling / soft-capping that some architectures put after the LM head."""
    scale = getattr(config, "logit_scale", None)
    if scale is not None:
        logits = logits * scale
    softcap = getattr(config, "final_logit_softcapping", None)
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    return logits


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def length_batches(lengths: np.ndarray, *, token_budget: int, max_rows: int | None = None) -> list[np.ndarray]:
    """Row indices in batches of similar length whose padded size stays within a token budget.

    Rows are taken longest first (so memory peaks early); a batch takes as many rows as fit in
    ``token_budget`` when each is padded to the batch's first (longest) row, i.e. while
    ``rows x longest length <= token_budget``. A row longer than the budget is a batch of its own.

    Args:
        lengths (`np.ndarray`):
            Tokens of each row.
        token_budget (`int`):
            Most padded tokens per batch (rows x the longest row's length).
        max_rows (`int` or `None`, *optional*, defaults to `None`):
            Also at most this many rows per batch; `None`: the budget alone decides.

    Example:

    ```python
    >>> [b.tolist() for b in length_batches(np.array([3, 9, 1, 7, 7, 2, 8]), token_budget=20)]
    [[1, 6], [3, 4], [0, 5, 2]]
    ```
    """
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        rows = max(1, token_budget // max(1, int(lengths[order[start]])))
        if max_rows is not None:
            rows = min(rows, max_rows)
        batches.append(order[start : start + rows])
        start += rows
    return batches


def computed_tokens(lengths: np.ndarray, batches: list[np.ndarray]) -> int:
    """Tokens the decoder computes for ``batches``, padding included (rows x the longest row, summed).

    ``1 - lengths.sum() / computed_tokens(lengths, batches)`` is the share of a pass spent on padding.

    Example:

    ```python
    >>> lengths = np.array([3, 9, 1, 7, 7, 2, 8])
    >>> computed_tokens(lengths, length_batches(lengths, token_budget=20))  # 2 x 9 + 2 x 7 + 3 x 3
    41
    ```
    """
    lengths = np.asarray(lengths)
    return int(sum(len(batch) * int(lengths[batch].max()) for batch in batches))


@torch.no_grad()
def batch_nll(
    model: torch.nn.Module,
    input_ids: list[list[int]],
    labels: list[list[int]],
    *,
    pad_token_id: int,
    autocast_dtype: torch.dtype | None = None,
    head_chunk: int = 256,
    through_forward: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and count of response-token cross-entropy for each sequence of one batch.

    ``through_forward``: call the model's own forward with TRL's fused LM head instead of its
    decoder and head (needed with sharded weights, see :func:`is_sharded`).
    """
    decoder, head, base = _decoder_and_head(model)
    device = head.weight.device
    lengths = np.fromiter(map(len, input_ids), dtype=np.int64, count=len(input_ids))
    width = int(lengths.max())
    real = np.arange(width) < lengths[:, None]
    ids = np.full(real.shape, pad_token_id, dtype=np.int64)
    lab = np.full(real.shape, -100, dtype=np.int64)
    ids[real] = np.concatenate(input_ids)
    lab[real] = np.concatenate(labels)
    ids = torch.from_numpy(ids).to(device)
    # without padding no mask is needed: attention takes its plain causal path
    attn = None if real.all() else torch.from_numpy(real).to(device=device, dtype=torch.long)
    autocast = _autocast(device, autocast_dtype)
    if through_forward:
        with autocast:
            sums, counts = _nll_through_forward(model, ids, torch.from_numpy(lab).to(device), attn)
        return _means(sums, counts)
    with autocast:
        hidden = decoder(input_ids=ids, attention_mask=attn, use_cache=False).last_hidden_state
    # position t predicts token t + 1
    targets = torch.from_numpy(lab[:, 1:]).to(device)
    mask = targets != -100
    scored_hidden = hidden[:, :-1][mask]
    scored_targets = targets[mask]
    losses = torch.empty(scored_targets.shape[0], dtype=torch.float32, device=device)
    for start in range(0, scored_hidden.shape[0], head_chunk):
        chunk = slice(start, start + head_chunk)
        with autocast:
            logits = head(scored_hidden[chunk])
        logits = _transform_logits(logits.float(), base.config)
        losses[chunk] = F.cross_entropy(logits, scored_targets[chunk], reduction="none")
    counts = mask.sum(dim=1)
    sums = torch.zeros(len(input_ids), dtype=torch.float64, device=device).index_add_(
        0, mask.nonzero()[:, 0], losses.double()
    )
    return _means(sums, counts)


def _means(sums: torch.Tensor, counts: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean NLL (NaN for a row with no scored token) and token count per row."""
    nll = (sums / counts.clamp(min=1)).cpu().numpy()
    counts = counts.cpu().numpy()
    nll[counts == 0] = np.nan
    return nll, counts


def score_pass(
    model: torch.nn.Module,
    dataset: datasets.Dataset,
    *,
    pad_token_id: int,
    token_budget: int | None = None,
    batch_size: int | None = None,
    autocast_dtype: torch.dtype | None = None,
    desc: str = "Scoring",
    disable_progress: bool = False,
) -> pd.DataFrame:
    """Score every row of a tokenised dataset (``row``, ``input_ids``, ``labels``, ``length``) → ``row, nll, n_tokens``.

    In a distributed run each rank scores its share and all ranks return the full, row-sorted table.

    Args:
        model (`torch.nn.Module`):
            A causal LM (or a PEFT model around one).
        dataset (`datasets.Dataset`):
            Rows tokenised by :func:`hf_lpselect.templates.tokenize_rows`.
        pad_token_id (`int`):
            Id that pads a batch (never scored).
        token_budget (`int` or `None`, *optional*, defaults to `None`):
            Most padded tokens per batch (rows x the longest row's length, see :func:`length_batches`);
            bounds the pass's memory. ``None``: chosen for the model's device (:func:`device_batching`).
        batch_size (`int` or `None`, *optional*, defaults to `None`):
            Also at most this many rows per batch; ``None``: 8 on a CPU, no cap on an accelerator; ``0``: no cap.
        autocast_dtype (`torch.dtype` or `None`, *optional*, defaults to `None`):
            e.g. ``torch.bfloat16`` for bf16 autocast over the weights as they are.
        desc (`str`, *optional*, defaults to `"Scoring"`):
            Progress bar label.
        disable_progress (`bool`, *optional*, defaults to `False`):
            Hide the progress bar.

    Example:

    ```python
    >>> rows = tokenize_rows(load_rows("data.jsonl"), tokenizer, template="alpaca", max_length=512)
    >>> score_pass(model, rows, pad_token_id=tokenizer.pad_token_id).head()
    ```
    """
    state = PartialState()
    was_training = model.training
    model.eval()
    lengths = np.asarray(dataset["length"])
    dataset = dataset.select_columns(["row", "input_ids", "labels"])
    batching = device_batching(model, token_budget, batch_size)
    if state.num_processes > 1:  # every rank must cut the same batches: the smallest budget any rank's memory allows
        batching = Batching(min(gather_object([batching.token_budget])), batching.max_rows)
    batches = length_batches(lengths, token_budget=batching.token_budget, max_rows=batching.max_rows)
    sharded = is_sharded(model)
    mine = batches[state.process_index :: state.num_processes]
    # with sharded weights every forward is a collective: a rank with fewer batches runs its first
    # one again (at least one) and throws the repeat's results away
    repeats = (-(-len(batches) // state.num_processes) - len(mine)) if sharded else 0
    records: list[tuple[int, float, int]] = []
    progress = tqdm(
        total=int(sum(len(b) for b in mine)),
        desc=desc,
        unit="row",
        disable=disable_progress or not state.is_local_main_process,
    )
    device = _decoder_and_head(model)[1].weight.device
    try:
        # one autocast region for the whole pass: its cache casts each (trainable) weight to bf16 once
        with _autocast(device, autocast_dtype):
            for k, indices in enumerate(mine + batches[:1] * repeats):
                batch = dataset[indices]
                nll, counts = batch_nll(
                    model,
                    batch["input_ids"],
                    batch["labels"],
                    pad_token_id=pad_token_id,
                    autocast_dtype=autocast_dtype,
                    through_forward=sharded,
                )
                if k < len(mine):
                    records.extend(zip(batch["row"], nll.tolist(), counts.tolist()))
                    progress.update(len(indices))
    finally:
        progress.close()
        model.train(was_training)
    if state.num_processes > 1:
        records = gather_object(records)
    frame = pd.DataFrame(records, columns=PASS_COLUMNS).astype({"row": "int64", "nll": "float64", "n_tokens": "int64"})
    if frame["row"].duplicated().any():
        raise RuntimeError("a scoring pass scored some rows twice; this is a bug in hf_lpselect, please report it")
    return frame.sort_values("row", ignore_index=True)
