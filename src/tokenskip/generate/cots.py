"""Which generated CoTs become training data, and the generate stage's report."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from tokenskip.core.decoding import Generation
from tokenskip.core.errors import TokenSkipError


def keep_record(record: dict[str, Any], max_cot_tokens: int) -> bool:
    """Training CoTs: correct, non-empty, at most ``max_cot_tokens`` target tokens."""
    return bool(record["correct"]) and 0 < record["cot_tokens"] <= max_cot_tokens


def generate_report(records: Sequence[dict[str, Any]], kept: Sequence[dict[str, Any]],
                    generations: Sequence[Generation], seconds: float) -> dict[str, Any]:
    """``reports/generate.json``: n, accuracy, kept, mean_cot_tokens, tokens_per_s."""
    if not records:
        raise TokenSkipError("generate: no training questions")
    new_tokens = sum(g.new_tokens for g in generations)
    return {
        "n": len(records),
        "accuracy": round(sum(1 for r in records if r["correct"]) / len(records), 4),
        "kept": len(kept),
        "kept_share": round(len(kept) / len(records), 4),
        "mean_cot_tokens": round(statistics.fmean(r["cot_tokens"] for r in kept), 2) if kept else None,
        "mean_new_tokens": round(new_tokens / len(generations), 2),
        "new_tokens": new_tokens,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(new_tokens / seconds, 1) if seconds > 0 else None,
    }
