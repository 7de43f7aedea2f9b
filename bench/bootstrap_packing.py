"""Bootstrap-model training speed: params.yaml's packing against ``whole`` rows, per example.

Trains params.yaml's ``base_model`` (``single``: one example per row, length-grouped batches
trimmed to their longest) and the ``whole`` candidate (examples packed first-fit into rows of
``--seq-len``, ``--whole-batch`` rows per step) for ``--steps`` steps each, from scratch, on the
tracked synthetic train set, with params.yaml's processes and threads. The two see about the same
number of examples per step (8 single rows, or 4 whole rows of ~2 examples).

Prints ONE JSON line: per run the training seconds, examples per step and examples per second,
tokens/s as the stage reports it, the padded share of the rows, and the ratio of examples per
second (params / whole) measured in the same run. Run it on a quiet machine, twice.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tokenskip.base_model.build import tokenizer_corpus, train_model, training_rows
from tokenskip.base_model.model import build_model
from tokenskip.base_model.packing import example_lengths
from tokenskip.base_model.tokenizer import build_tokenizer
from tokenskip.core.params import BaseModelParams, load_params
from tokenskip.core.problems import Problem, load_problems


def measure(train: list[Problem], instruction: str, settings: BaseModelParams) -> dict[str, float]:
    """Train ``settings.max_steps`` steps from scratch; seconds, examples/s, tokens/s, padded share."""
    tokenizer = build_tokenizer(tokenizer_corpus(train, instruction), settings.vocab_size)
    ids, labels, weights = training_rows(train, tokenizer, instruction, settings)
    result = train_model(build_model(settings, tokenizer), ids, labels, settings, None, weights)
    examples_per_step = settings.batch_size * len(train) / ids.shape[0]
    if settings.packing == "single":
        seen = result.steps * settings.batch_size  # rows trained; each holds one example
        padded_share = 1.0 - float(example_lengths(labels).float().mean()) * seen / result.tokens
    else:
        padded_share = float((ids == tokenizer.pad_token_id).float().mean())
    return {
        "train_seconds": result.train_seconds,
        "examples_per_step": round(examples_per_step, 2),
        "examples_per_s": round(examples_per_step * result.steps / result.train_seconds, 1),
        "tokens_per_s": result.tokens_per_s,
        "padded_share": round(padded_share, 4),
        "final_loss": round(result.final_loss, 4),
    }


def main() -> None:
    """Measure params.yaml's base_model and the whole-row candidate; print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="training steps of each run")
    parser.add_argument("--seq-len", type=int, default=512, help="row length of the whole run")
    parser.add_argument("--whole-batch", type=int, default=4, help="rows per step of the whole run")
    args = parser.parse_args()
    params = load_params(Path("params.yaml"))
    train = load_problems(Path("data/synthetic/train.jsonl"), "synthetic-train")
    current = params.base_model.model_copy(update={"max_steps": args.steps})
    whole = current.model_copy(update={
        "packing": "whole", "seq_len": args.seq_len, "batch_size": args.whole_batch,
    })
    runs = {"params": measure(train, params.model.instruction, current),
            "whole": measure(train, params.model.instruction, whole)}
    print(json.dumps({
        "bench": "bootstrap_packing", "steps": args.steps,
        "params_packing": current.packing, "params_batch": current.batch_size,
        "whole_seq_len": args.seq_len, "whole_batch": args.whole_batch,
        "num_processes": current.num_processes,
        **{f"{name}_{key}": value for name, run in runs.items() for key, value in run.items()},
        "examples_per_s_ratio": round(runs["params"]["examples_per_s"] / runs["whole"]["examples_per_s"], 3),
    }))


if __name__ == "__main__":
    main()
