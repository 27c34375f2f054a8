"""Hand-wired tiny models for the eval tests: real transformers Llama weights whose greedy output
is known in advance, so a judge's verdicts (and an answer model's answers) can be checked by hand.

With every attention and MLP output projection zeroed, a decoder's last hidden state is the
normalised embedding of the CURRENT token, so the model is a bigram table: the next token depends
only on the last one. ``bigram_model`` wires that table so that the last prompt token picks a reply.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase


ANY = None  # trigger: any token that is not wired to something else


def bigram_model(
    tokenizer: PreTrainedTokenizerBase, path: Path, replies: dict[int | None, str], *, chat_template: bool = True
) -> Path:
    """Save a model + tokenizer to ``path`` that answers ``replies[last prompt token]`` (``ANY``: every other token), then EOS."""
    nxt: dict[int | None, int] = {}
    for trigger, text in replies.items():
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        chain = [trigger, *ids, tokenizer.eos_token_id]
        for a, b in zip(chain, chain[1:]):
            assert nxt.setdefault(a, b) == b, f"token {a} wired to two successors"
    wired = [t for t in nxt if t is not ANY]
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=max(32, 8 * ((len(wired) + 8) // 8)),
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed, head = model.model.embed_tokens.weight, model.lm_head.weight
        embed.zero_()
        head.zero_()
        embed[:, 0] = 1.0  # every token: dimension 0 ...
        for dim, token in enumerate(wired, 1):
            embed[token] = 0.0
            embed[token, dim] = 1.0  # ... but a wired token: its own dimension
            head[nxt[token], dim] = 10.0
        if ANY in nxt:
            head[nxt[ANY], 0] = 10.0
    model.generation_config.do_sample = False
    model.save_pretrained(path)
    saved_template = tokenizer.chat_template
    try:
        if not chat_template:
            tokenizer.chat_template = None
        tokenizer.save_pretrained(path)
    finally:
        tokenizer.chat_template = saved_template
    return path
