"""Training samples for finetune/evaluate tests, shaped like prune's sample records."""

from __future__ import annotations

import json
import random
from pathlib import Path

from tokenskip.core.params import DEFAULT_INSTRUCTION


def write_samples(tokenizer, path: Path, count: int, seed: int = 1) -> Path:
    """Sample records as prune writes them: prompt at g, completion = words dropped to ~g + answer line."""
    from tests.fixtures.tiny_models import synthetic_problems
    from tokenskip.core.prompts import build_prompt, format_completion

    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for problem in synthetic_problems(seed, count):
            g = rng.choice([0.5, 0.7, 1.0])
            words = [w for w in problem.solution.split() if g == 1.0 or rng.random() < g]
            record = {"id": problem.id, "ratio": g,
                      "prompt": build_prompt(tokenizer, problem.question, DEFAULT_INSTRUCTION, g),
                      "completion": format_completion(" ".join(words), problem.gold)}
            handle.write(json.dumps(record) + "\n")
    return path
