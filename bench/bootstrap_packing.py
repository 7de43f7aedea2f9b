"""Bootstrap-model training speed: params.yaml's rows vs whole examples in rows of ``--seq-len``.

Prints ONE JSON line: for each run, tokens/s (padding included, as the stage reports it),
answer tokens/s (the positions that carry loss) and the padded share of the rows, plus the
ratios whole/params measured in the same run. The baseline is params.yaml's ``base_model``
(stream packing by default); the candidate packs whole examples with digit-weighted loss. Both
train the same number of tokens on the tracked synthetic train set with 2 threads; run it on
a quiet machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tokenskip.base_model.build import tokenizer_corpus, train_model, training_rows
from tokenskip.base_model.model import build_model
from tokenskip.base_model.tokenizer import build_tokenizer
from tokenskip.base_model.train import count_labeled
from tokenskip.core.params import BaseModelParams, load_params
from tokenskip.core.problems import load_problems


def measure(train: list, instruction: str, settings: BaseModelParams) -> dict[str, float]:
    """Train ``settings.max_steps`` steps from scratch; tokens/s, answer tokens/s, padded share."""
    tokenizer = build_tokenizer(tokenizer_corpus(train, instruction), settings.vocab_size)
    ids, labels, weights = training_rows(train, tokenizer, instruction, settings)
    result = train_model(build_model(settings, tokenizer), ids, labels, settings, None, weights)
    answer_share = count_labeled(labels) / labels.numel()
    return {
        "tokens_per_s": result.tokens_per_s,
        "answer_tokens_per_s": round(result.tokens_per_s * answer_share, 1),
        "padded_share": round(float((ids == tokenizer.pad_token_id).float().mean()), 4),
    }


def main() -> None:
    """Measure params.yaml's base_model and the whole-example candidate; print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="steps of the whole-example run")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--digit-loss-weight", type=float, default=3.0)
    args = parser.parse_args()
    params = load_params(Path("params.yaml"))
    train = load_problems(Path("data/synthetic/train.jsonl"), "synthetic-train")
    current = params.base_model.model_copy(update={"threads": 2, "num_processes": 1})
    whole = current.model_copy(update={
        "packing": "whole", "seq_len": args.seq_len, "batch_size": args.batch_size,
        "digit_loss_weight": args.digit_loss_weight, "max_steps": args.steps,
    })
    same_tokens = args.steps * args.batch_size * args.seq_len // (current.batch_size * current.seq_len)
    baseline = current.model_copy(update={"max_steps": same_tokens})
    runs = {"params": measure(train, params.model.instruction, baseline),
            "whole": measure(train, params.model.instruction, whole)}
    print(json.dumps({
        "whole_steps": args.steps, "whole_seq_len": args.seq_len, "whole_batch": args.batch_size,
        "params_packing": current.packing, "params_seq_len": current.seq_len,
        "params_batch": current.batch_size,
        **{f"{name}_{key}": value for name, run in runs.items() for key, value in run.items()},
        "tokens_per_s_ratio": round(runs["whole"]["tokens_per_s"] / runs["params"]["tokens_per_s"], 3),
        "answer_tokens_per_s_ratio": round(
            runs["whole"]["answer_tokens_per_s"] / runs["params"]["answer_tokens_per_s"], 3),
    }))


if __name__ == "__main__":
    main()
