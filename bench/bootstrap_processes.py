"""Bootstrap-model training with 1 process x 2 threads vs 2 processes x 1 thread, same global batch.

Prints ONE JSON line: tokens/s of each run (wall clock of ``train_model``, process start included
for the data-parallel run), the speed-up, and the largest per-step loss gap between the runs.
Data: the tracked synthetic train set (``data/synthetic/train.jsonl``) and params.yaml's
``base_model`` with ``--steps`` steps. Run it on a quiet machine: both runs want both cores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tokenskip.base_model.build import train_bootstrap
from tokenskip.core.params import load_params
from tokenskip.core.problems import load_problems


def main() -> None:
    """Train twice with the same params but num_processes 1 and 2; print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=None, help="global batch (default params)")
    args = parser.parse_args()
    params = load_params(Path("params.yaml"))
    train = load_problems(Path("data/synthetic/train.jsonl"), "synthetic-train")
    update = {"max_steps": args.steps, "threads": 2}
    if args.batch_size:
        update["batch_size"] = args.batch_size
    runs = {}
    for processes in (1, 2):
        settings = params.base_model.model_copy(update={**update, "num_processes": processes})
        _, _, runs[processes] = train_bootstrap(train, params.model.instruction, settings)
    one, two = runs[1], runs[2]
    gap = max(abs(a - b) for a, b in zip(one.losses, two.losses, strict=True))
    print(json.dumps({
        "steps": args.steps,
        "global_batch": (args.batch_size or params.base_model.batch_size),
        "tokens_per_s_1x2threads": one.tokens_per_s,
        "tokens_per_s_2x1thread": two.tokens_per_s,
        "speedup": round(two.tokens_per_s / one.tokens_per_s, 3),
        "max_loss_gap": round(gap, 6),
    }))


if __name__ == "__main__":
    main()
