"""Batched greedy generation vs one generate() call per prompt, same model, same prompts.

Prints ONE JSON line: tokens/s of each way, the speedup, and whether the outputs agree.
Model: models/base when it exists (after `dvc repro base-model`), else --model. The CPU of the
development machine is shared (2 cores, several engineers): figures are indicative.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tokenskip.core.decoding import generate_greedy
from tokenskip.core.hf import load_causal_lm, resolve_base_model
from tokenskip.core.params import load_params
from tokenskip.core.problems import load_problems
from tokenskip.core.prompts import build_prompt


def main() -> None:
    """Run both ways and print the figures."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="models/base", help="base-model folder or HF model folder")
    parser.add_argument("--data", default="data/synthetic/train.jsonl")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: generate.max_new_tokens")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params("params.yaml")
    max_new = args.max_new_tokens or params.generate.max_new_tokens
    model, tokenizer = load_causal_lm(*resolve_base_model(Path(args.model)), device="cpu")
    problems = load_problems(args.data)[: args.n]
    prompts = [build_prompt(tokenizer, p.question, params.model.instruction) for p in problems]
    batched, batched_s = generate_greedy(model, tokenizer, prompts, args.batch_size, max_new, desc="batched")
    single, single_s = generate_greedy(model, tokenizer, prompts, 1, max_new, desc="per-prompt")
    batched_tokens = sum(g.new_tokens for g in batched)
    single_tokens = sum(g.new_tokens for g in single)
    same = list(zip(batched, single, strict=True))
    print(json.dumps({
        "bench": "generate", "model": args.model, "n_prompts": len(prompts), "batch_size": args.batch_size,
        "max_new_tokens": max_new, "threads": args.threads,
        "batched_s": round(batched_s, 2), "per_prompt_s": round(single_s, 2),
        "batched_tok_s": round(batched_tokens / batched_s, 1),
        "per_prompt_tok_s": round(single_tokens / single_s, 1),
        "speedup": round((batched_tokens / batched_s) / (single_tokens / single_s), 2),
        "same_output_share": round(sum(a.text == b.text for a, b in same) / len(prompts), 3),
        "note": "CPU shared with other engineers (2 cores): indicative figures",
    }))


if __name__ == "__main__":
    main()
