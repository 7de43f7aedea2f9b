"""Generation throughput: transformers backend vs Ray with 1 and 2 workers, same model, same prompts.

Prints ONE JSON line: tokens/s of each (decoding only; Ray's worker start + model load reported
apart as load_s), the torch threads per worker, and whether every output equals the transformers
backend's. Runs: transformers with --threads and with 1 thread, Ray 1 worker x --threads,
Ray 1 worker x 1 thread, Ray 2 workers x (--threads / 2), each --repeat times (fastest counts);
each Ray run gets its own local cluster (num_cpus = workers, no dashboard). Model: --model
(default models/base). On the shared 2-core development machine the gain of a second worker is
bounded by the cores, and torch threads oversubscribed by other processes collapse: compare runs
at equal threads per worker. Indicative.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from tokenskip.core.decoding import generate_greedy
from tokenskip.core.hf import load_causal_lm, resolve_base_model
from tokenskip.core.params import load_params
from tokenskip.core.problems import load_problems
from tokenskip.core.prompts import build_prompt
from tokenskip.generate.checkpoint import Checkpoint
from tokenskip.generate.ray_engine import decode_ray


def _ray_run(name: str, prompts: list[str], gen, workers: int, threads: int, reference: list,
             repeat: int) -> dict:
    settings = gen.model_copy(update={"backend": "ray", "ray_workers": workers, "threads": threads})
    runs = []
    for _ in range(repeat):  # a fresh cluster and fresh workers each time
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = Checkpoint(Path(tmp) / "checkpoint", "bench")
            runs.append(decode_ray(name, None, prompts, settings, checkpoint))
    generations, seconds, _, info = min(runs, key=lambda run: run[1])
    tokens = sum(g.new_tokens for g in generations)
    return {"workers": workers, "threads_per_worker": threads, "shards": info["shards"],
            "decode_s": round(seconds, 2), "load_s": info["load_seconds"],
            "tok_s": round(tokens / seconds, 1),
            "same_output": all([g.text for g in run[0]] == [g.text for g in reference] for run in runs)}


def _local_run(model, tokenizer, prompts: list[str], gen, threads: int, repeat: int) -> tuple[list, float]:
    import torch

    torch.set_num_threads(threads)
    runs = [generate_greedy(model, tokenizer, prompts, gen.batch_size, gen.max_new_tokens)
            for _ in range(repeat)]
    return min(runs, key=lambda run: run[1])


def main() -> None:
    """Run the five configurations and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="models/base", help="base-model folder or HF model folder")
    parser.add_argument("--data", default="data/synthetic/train.jsonl")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--shard-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default: generate.max_new_tokens")
    parser.add_argument("--threads", type=int, default=2, help="threads of the single process / 1 worker")
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration; the fastest counts")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    params = load_params("params.yaml")
    max_new = args.max_new_tokens or params.generate.max_new_tokens
    gen = params.generate.model_copy(
        update={"batch_size": args.batch_size, "shard_size": args.shard_size, "max_new_tokens": max_new})
    name, _ = resolve_base_model(Path(args.model))
    model, tokenizer = load_causal_lm(name, device="cpu")
    prompts = [build_prompt(tokenizer, p.question, params.model.instruction)
               for p in load_problems(args.data)[: args.n]]
    reference, seconds = _local_run(model, tokenizer, prompts, gen, args.threads, args.repeat)
    tokens = sum(g.new_tokens for g in reference)
    one_thread, seconds_1 = _local_run(model, tokenizer, prompts, gen, 1, args.repeat)
    ray_1 = _ray_run(name, prompts, gen, 1, args.threads, reference, args.repeat)
    ray_1x1 = _ray_run(name, prompts, gen, 1, 1, reference, args.repeat)
    ray_2 = _ray_run(name, prompts, gen, 2, max(1, args.threads // 2), reference, args.repeat)
    print(json.dumps({
        "bench": "generate_ray", "model": args.model, "repeat": args.repeat, "n_prompts": len(prompts),
        "batch_size": gen.batch_size, "shard_size": gen.shard_size, "max_new_tokens": gen.max_new_tokens,
        "new_tokens": tokens,
        "transformers": {"threads": args.threads, "decode_s": round(seconds, 2),
                         "tok_s": round(tokens / seconds, 1)},
        "transformers_1_thread": {"decode_s": round(seconds_1, 2), "tok_s": round(tokens / seconds_1, 1),
                                  "same_output": [g.text for g in one_thread] == [g.text for g in reference]},
        "ray_1_worker": ray_1, "ray_1_worker_1_thread": ray_1x1, "ray_2_workers": ray_2,
        "speedup_2_workers_vs_1_worker": round(ray_2["tok_s"] / ray_1["tok_s"], 2),
        "speedup_2_workers_vs_1_worker_same_threads": round(ray_2["tok_s"] / ray_1x1["tok_s"], 2),
        "cpu_cores": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
        "note": "CPU shared with other engineers (2 cores): indicative figures",
    }))


if __name__ == "__main__":
    main()
