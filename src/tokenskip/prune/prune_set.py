"""The prune stage's library: score every CoT once, prune it to each ratio, draw the samples."""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from tokenskip.core.params import PruneParams
from tokenskip.core.prompts import build_prompt, ratio_key, trained_ratios
from tokenskip.core.records import count_tokens
from tokenskip.prune.pruning import forced_mask, prune_record, split_words, word_token_weights
from tokenskip.prune.samples import build_samples, ratio_summary, sample_ratios
from tokenskip.prune.scorers import WordScorer


def prune_all(
    records: Sequence[dict[str, Any]],
    scorer: WordScorer,
    tokenizer: Any,
    cfg: PruneParams,
    instruction: str,
) -> tuple[dict[float, list[dict[str, Any]]], list[dict[str, Any]], dict[str, Any]]:
    """Return (pruned records per ratio, sample records, report) for the cot ``records``.

    Budgets are in target-tokenizer tokens (``tokenizer``), so the actual ratio tracks g;
    self-information is conditioned on each question's generation prompt.
    """
    started = time.perf_counter()
    prompts = [build_prompt(tokenizer, r["question"], instruction) for r in records]
    scores = scorer.score([r["cot"] for r in records], prompts)
    scoring_seconds = time.perf_counter() - started

    count = partial(count_tokens, tokenizer)
    pruned: dict[float, list[dict[str, Any]]] = {ratio: [] for ratio in cfg.ratios}
    for record, word_scores in zip(records, scores, strict=True):
        words = split_words(record["cot"])
        forced = forced_mask(words, cfg.force_digits, cfg.force_tokens)
        weights = word_token_weights(tokenizer, record["cot"], words)
        for ratio in cfg.ratios:
            pruned[ratio].append(prune_record(record, word_scores, ratio, forced, weights, count))
    drawn = sample_ratios(len(records), cfg.ratios, cfg.seed, cfg.samples_per_question)
    compressed = {ratio: {r["id"]: r["compressed_cot"] for r in rows} for ratio, rows in pruned.items()}
    samples = build_samples(
        records, compressed, drawn, lambda q, g: build_prompt(tokenizer, q, instruction, g)
    )
    smallest_first = trained_ratios(cfg.ratios, largest_first=False)
    mix = {ratio_key(g): sum(ratios.count(g) for ratios in drawn) for g in smallest_first}
    report = {
        "scorer": cfg.scorer,
        "samples_per_question": cfg.samples_per_question,
        "n": len(records),
        "ratios": {ratio_key(g): ratio_summary(rows) for g, rows in pruned.items()},
        "sample_ratio_counts": mix,
        "scoring_seconds": round(scoring_seconds, 2),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return pruned, samples, report
