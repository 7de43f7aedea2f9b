"""Held-out greedy accuracy of a model on problems, with the same answer checker as evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tokenskip.data import Problem, answers_match, extract_prediction
from tokenskip.generation import generate_greedy
from tokenskip.prompts import build_prompt


def greedy_accuracy(
    model: Any,
    tokenizer: Any,
    problems: Sequence[Problem],
    instruction: str,
    batch_size: int,
    max_new_tokens: int,
) -> dict[str, Any]:
    """Greedy-decode every problem (no ratio) and score the extracted answers against gold.

    Returns ``accuracy``, ``n_test``, ``mean_new_tokens``, ``eval_seconds`` and two sample outputs.
    """
    prompts = [build_prompt(tokenizer, p.question, instruction) for p in problems]
    outputs, seconds = generate_greedy(
        model, tokenizer, prompts, batch_size, max_new_tokens, desc="base-model eval"
    )
    pairs = list(zip(outputs, problems, strict=True))
    correct = [answers_match(extract_prediction(o.text), p.gold) for o, p in pairs]
    n = max(1, len(problems))
    return {
        "accuracy": round(sum(correct) / n, 4),
        "n_test": len(problems),
        "mean_new_tokens": round(sum(o.new_tokens for o in outputs) / n, 1),
        "eval_seconds": round(seconds, 2),
        "samples": [
            {"id": p.id, "gold": p.gold, "output": o.text, "correct": c}
            for p, o, c in list(zip(problems, outputs, correct, strict=True))[:2]
        ],
    }
