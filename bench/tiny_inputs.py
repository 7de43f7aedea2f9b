"""The benches' own small inputs, built through the library (nothing from tests/).

``synthetic_problems`` draws seeded synthetic problems (``tokenskip.data.synthetic``);
``train_tiny_base`` trains and saves a tiny bootstrap model with the base-model stage's code
(``tokenskip.base_model.build``) in a few seconds. Imported by the benches as a sibling module.
"""

from __future__ import annotations

from pathlib import Path

from tokenskip.core.params import BaseModelParams
from tokenskip.core.problems import Problem, split_gold

TINY_BASE = BaseModelParams(  # every size and budget explicit: params.yaml's defaults may change
    hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, initializer_range=0.02,
    vocab_size=384, seq_len=1024, batch_size=8, learning_rate=5e-3, warmup_steps=5, max_steps=30,
    num_processes=1,
)


def synthetic_problems(seed: int, count: int, prefix: str = "synthetic") -> list[Problem]:
    """``count`` seeded synthetic problems (question, gold answer, reference solution)."""
    from tokenskip.data.synthetic import generate_problems

    problems = []
    for index, record in enumerate(generate_problems(seed, count)):
        solution, gold = split_gold(record["answer"])
        problems.append(Problem(f"{prefix}-{index:05d}", record["question"], gold, solution))
    return problems


def train_tiny_base(folder: str | Path, instruction: str, n_problems: int = 200, seed: int = 7) -> Path:
    """Train a tiny bootstrap model + tokenizer on synthetic problems and save it to ``folder``."""
    from tokenskip.base_model.build import save_bootstrap, train_bootstrap

    model, tokenizer, _ = train_bootstrap(synthetic_problems(seed, n_problems), instruction, TINY_BASE)
    save_bootstrap(model, tokenizer, str(folder))
    return Path(folder)
