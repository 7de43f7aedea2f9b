"""Held-out greedy accuracy of the trained bootstrap model, through the same loop as evaluate."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenskip.core.decoding import solve_problems
from tokenskip.core.errors import ValidationFailed
from tokenskip.core.problems import Problem
from tokenskip.core.prompts import build_prompt


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
    records, outputs, seconds = solve_problems(
        model, tokenizer, problems, prompts, batch_size, max_new_tokens, desc="base-model eval"
    )
    n = max(1, len(problems))
    return {
        "accuracy": round(sum(r["correct"] for r in records) / n, 4),
        "n_test": len(problems),
        "mean_new_tokens": round(sum(o.new_tokens for o in outputs) / n, 1),
        "eval_seconds": round(seconds, 2),
        "samples": [{k: r[k] for k in ("id", "gold", "output", "correct")} for r in records[:2]],
    }


def check_accuracy_floor(accuracy: float, min_accuracy: float, report: Path) -> None:
    """Stop the pipeline (exit 3) when the trained bootstrap model is below the floor: its training
    collapsed for this seed, and fine-tuning, gating and promoting it would rank noise."""
    if accuracy < min_accuracy:
        raise ValidationFailed(
            f"{report}: accuracy: {accuracy:.3f} is below base_model.min_accuracy ({min_accuracy:g}): the "
            "bootstrap model did not learn the task with this seed; try another base_model.seed (README: "
            "The reproducibility contract), or lower min_accuracy to go on with it"
        )
