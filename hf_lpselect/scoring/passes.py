"""One scoring pass: the mean response NLL of every row, in eval mode, with no gradient.

This is the hot path of a scorer run (n + 1 passes over the whole dataset), so it is built for
speed while staying exact:

- rows are sorted by length and batched, so padding is small;
- the decoder runs once per batch and the vocabulary projection is applied ONLY at scored
  (response) positions, in chunks, so no ``(batch, seq, vocab)`` logits tensor is ever built;
- cross-entropy is taken in float32 even under bf16 autocast;
- under ``accelerate`` the batches are dealt round-robin to the ranks and the ``(row, nll)``
  results gathered back, so every row is scored exactly once.
"""

from __future__ import annotations

from contextlib import nullcontext

import datasets
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from accelerate import PartialState
from accelerate.utils import gather_object
from tqdm.auto import tqdm
from transformers import PreTrainedModel

PASS_COLUMNS = ["row", "nll", "n_tokens"]


def _decoder_and_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module, PreTrainedModel]:
    """The transformer body, the LM head and the model that owns them (unwrapping PEFT)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder(), base.get_output_embeddings(), base


def _transform_logits(logits: torch.Tensor, config) -> torch.Tensor:
    """Apply the output scaling / soft-capping that some architectures put after the LM head."""
    scale = getattr(config, "logit_scale", None)
    if scale is not None:
        logits = logits * scale
    softcap = getattr(config, "final_logit_softcapping", None)
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    return logits


def length_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (longest first, so memory peaks early)."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def batch_nll(
    model: torch.nn.Module,
    input_ids: list[list[int]],
    labels: list[list[int]],
    *,
    pad_token_id: int,
    autocast_dtype: torch.dtype | None = None,
    head_chunk: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and count of response-token cross-entropy for each sequence of one batch."""
    decoder, head, base = _decoder_and_head(model)
    device = head.weight.device
    width = max(len(ids) for ids in input_ids)
    ids = torch.full((len(input_ids), width), pad_token_id, dtype=torch.long)
    lab = torch.full((len(input_ids), width), -100, dtype=torch.long)
    attn = torch.zeros((len(input_ids), width), dtype=torch.long)
    for i, (seq, seq_labels) in enumerate(zip(input_ids, labels)):
        ids[i, : len(seq)] = torch.as_tensor(seq)
        lab[i, : len(seq)] = torch.as_tensor(seq_labels)
        attn[i, : len(seq)] = 1
    ids, lab, attn = ids.to(device), lab.to(device), attn.to(device)
    autocast = (
        torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else nullcontext()
    )
    with autocast:
        hidden = decoder(input_ids=ids, attention_mask=attn, use_cache=False).last_hidden_state
    # position t predicts token t + 1
    targets = lab[:, 1:]
    mask = targets != -100
    which_row = mask.nonzero()[:, 0]
    scored_hidden = hidden[:, :-1][mask]
    scored_targets = targets[mask]
    losses = torch.empty(scored_targets.shape[0], dtype=torch.float32, device=device)
    for start in range(0, scored_hidden.shape[0], head_chunk):
        chunk = slice(start, start + head_chunk)
        with autocast:
            logits = head(scored_hidden[chunk])
        logits = _transform_logits(logits.float(), base.config)
        losses[chunk] = F.cross_entropy(logits, scored_targets[chunk], reduction="none")
    sums = torch.zeros(len(input_ids), dtype=torch.float64, device=device).index_add_(0, which_row, losses.double())
    counts = mask.sum(dim=1)
    nll = (sums / counts.clamp(min=1)).cpu().numpy()
    counts = counts.cpu().numpy()
    nll[counts == 0] = np.nan
    return nll, counts


def score_pass(
    model: torch.nn.Module,
    dataset: datasets.Dataset,
    *,
    pad_token_id: int,
    batch_size: int = 16,
    autocast_dtype: torch.dtype | None = None,
    desc: str = "Scoring",
    disable_progress: bool = False,
) -> pd.DataFrame:
    """Score every row of a tokenised dataset (``row``, ``input_ids``, ``labels``, ``length``) → ``row, nll, n_tokens``.

    In a distributed run each rank scores its share and all ranks return the full, row-sorted table.
    """
    state = PartialState()
    was_training = model.training
    model.eval()
    lengths = np.asarray(dataset["length"])
    dataset = dataset.select_columns(["row", "input_ids", "labels"])
    batches = length_batches(lengths, batch_size)[state.process_index :: state.num_processes]
    records: list[tuple[int, float, int]] = []
    progress = tqdm(total=int(sum(len(b) for b in batches)), desc=desc, unit="row", disable=disable_progress or not state.is_local_main_process)
    try:
        for indices in batches:
            batch = dataset[indices]
            nll, counts = batch_nll(
                model, batch["input_ids"], batch["labels"], pad_token_id=pad_token_id, autocast_dtype=autocast_dtype
            )
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
