"""Ratio-conditioned training samples and the prune report's statistics (pure functions)."""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from tokenskip.core.prompts import format_completion, trained_ratios


def draw_ratios(n: int, ratios: Sequence[float], seed: int) -> list[float]:
    """One ratio per question, drawn (seeded) from {1.0} and ``ratios``."""
    choices = trained_ratios(ratios, largest_first=False)
    rng = random.Random(seed)
    return [rng.choice(choices) for _ in range(n)]


def sample_ratios(n: int, ratios: Sequence[float], seed: int, per_question: str) -> list[list[float]]:
    """The ratios each of ``n`` questions is trained at: ``one`` seeded draw from {1.0} and
    ``ratios`` (the paper's recipe), or ``all`` of them (every question at every g)."""
    if per_question == "all":
        return [trained_ratios(ratios, largest_first=False) for _ in range(n)]
    return [[g] for g in draw_ratios(n, ratios, seed)]


def build_samples(
    cot_records: Sequence[dict[str, Any]],
    pruned: dict[float, dict[str, str]],
    drawn: Sequence[Sequence[float]],
    make_prompt: Callable[[str, float], str],
) -> list[dict[str, Any]]:
    """The ``sample`` records, one per question and ratio g of its ``drawn`` list: prompt at g
    (ratio tag only for g < 1) and completion = the CoT compressed to g (the full CoT at 1.0) +
    the final-answer line.

    ``pruned`` maps ratio -> {id: compressed_cot}; ``make_prompt(question, g)`` renders the prompt.
    """
    samples = []
    for record, ratios in zip(cot_records, drawn, strict=True):
        for ratio in ratios:
            cot = record["cot"] if ratio >= 1.0 else pruned[ratio][record["id"]]
            samples.append({
                "id": record["id"],
                "ratio": ratio,
                "prompt": make_prompt(record["question"], ratio),
                "completion": format_completion(cot, str(record["gold"])),
            })
    return samples


def ratio_summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-ratio statistics of pruned records: actual ratio (target tokens) mean and spread,
    forced-word share, share over budget, digits kept."""
    actual = [r["compressed_tokens"] / r["cot_tokens"] for r in records if r["cot_tokens"]]
    digits = sum(r["digits_total"] for r in records)
    words_forced = sum(r["forced_words"] for r in records)
    return {
        "n": len(records),
        "actual_ratio_mean": round(statistics.fmean(actual), 4) if actual else None,
        "actual_ratio_std": round(statistics.pstdev(actual), 4) if actual else None,
        "actual_ratio_min": round(min(actual), 4) if actual else None,
        "actual_ratio_max": round(max(actual), 4) if actual else None,
        "mean_cot_tokens": round(statistics.fmean(r["cot_tokens"] for r in records), 2),
        "mean_compressed_tokens": round(statistics.fmean(r["compressed_tokens"] for r in records), 2),
        "forced_words_mean": round(words_forced / len(records), 2),
        "over_budget_share": round(sum(1 for r in records if r["over_budget"]) / len(records), 4),
        "digits_kept_share": round(sum(r["digits_kept"] for r in records) / digits, 4) if digits else None,
    }
