"""Paired statistics of one condition against a reference on the same test questions.

Everything comes from scipy.stats: Clopper-Pearson intervals of an accuracy (``binomtest``), a
seeded paired bootstrap (``bootstrap(..., paired=True, vectorized=True)``) of the accuracy drop
and of the token reduction, and the exact McNemar test of the paired accuracy difference (a
two-sided ``binomtest`` on the discordant pairs).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BootstrapSettings:
    """How the confidence intervals are computed (``evaluate`` section of params.yaml)."""

    resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0


def accuracy_ci(correct: Sequence[bool], confidence: float = 0.95) -> list[float]:
    """Exact (Clopper-Pearson) interval of the share of correct answers."""
    from scipy.stats import binomtest

    if not len(correct):
        return [0.0, 1.0]
    interval = binomtest(int(sum(correct)), len(correct)).proportion_ci(confidence, method="exact")
    return [round(float(interval.low), 4), round(float(interval.high), 4)]


def mcnemar_p(reference: Sequence[bool], candidate: Sequence[bool]) -> float:
    """Exact McNemar p-value: are the questions only one side gets right split evenly?"""
    from scipy.stats import binomtest

    lost = sum(1 for r, c in zip(reference, candidate, strict=True) if r and not c)
    gained = sum(1 for r, c in zip(reference, candidate, strict=True) if c and not r)
    if lost + gained == 0:
        return 1.0
    return round(float(binomtest(lost, lost + gained, 0.5).pvalue), 6)


def _accuracy_drop(reference: np.ndarray, candidate: np.ndarray, axis: int = -1) -> np.ndarray:
    return reference.mean(axis=axis) - candidate.mean(axis=axis)


def _token_reduction(reference: np.ndarray, candidate: np.ndarray, axis: int = -1) -> np.ndarray:
    total = reference.sum(axis=axis)
    return 1.0 - candidate.sum(axis=axis) / np.where(total > 0, total, np.nan)


def paired_ci(
    statistic: Any, reference: Sequence[float], candidate: Sequence[float], settings: BootstrapSettings
) -> list[float]:
    """Percentile interval of ``statistic(reference, candidate)`` over questions resampled in pairs.

    When every resample gives the same value (e.g. identical answers), the interval is that value.
    """
    from scipy.stats import bootstrap

    ref = np.asarray(reference, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    point = float(statistic(ref, cand))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on degenerate (constant) resamples
        result = bootstrap(
            (ref, cand), statistic, paired=True, vectorized=True, n_resamples=settings.resamples,
            confidence_level=settings.confidence, method="percentile",
            random_state=np.random.default_rng(settings.seed),
        )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if np.isnan(low) or np.isnan(high):
        low = high = point
    return [round(low, 4), round(high, 4)]


def compare(
    reference: Sequence[dict[str, Any]], candidate: Sequence[dict[str, Any]], settings: BootstrapSettings
) -> dict[str, Any]:
    """Accuracy drop and token reduction of ``candidate`` against ``reference`` (per-question
    records with ``id``, ``correct``, ``cot_tokens``, matched by ``id``), each with its paired
    interval (None when the reference wrote no CoT token: JSON has no NaN, and the gate fails a
    missing figure), and the McNemar p-value."""
    by_id = {r["id"]: r for r in candidate}
    if set(by_id) != {r["id"] for r in reference}:
        raise ValueError("reference and candidate were not evaluated on the same questions")
    pairs = [(r, by_id[r["id"]]) for r in reference]
    ref_ok = [bool(r["correct"]) for r, _ in pairs]
    cand_ok = [bool(c["correct"]) for _, c in pairs]
    ref_tokens = [float(r["cot_tokens"]) for r, _ in pairs]
    cand_tokens = [float(c["cot_tokens"]) for _, c in pairs]
    drop = float(_accuracy_drop(np.asarray(ref_ok, float), np.asarray(cand_ok, float)))
    reduction = float(_token_reduction(np.asarray(ref_tokens), np.asarray(cand_tokens)))
    defined = bool(np.isfinite(reduction))  # undefined when the reference wrote no CoT token at all
    return {
        "accuracy_drop": round(drop, 4),
        "accuracy_drop_ci": paired_ci(_accuracy_drop, ref_ok, cand_ok, settings),
        "token_reduction": round(reduction, 4) if defined else None,
        "token_reduction_ci": (
            paired_ci(_token_reduction, ref_tokens, cand_tokens, settings) if defined else None),
        "mcnemar_p": mcnemar_p(ref_ok, cand_ok),
    }


def paired_statistics(
    conditions: dict[str, Sequence[dict[str, Any]]],
    references: dict[str, Sequence[dict[str, Any]]],
    settings: BootstrapSettings,
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{condition: {reference: compare(reference, condition)}}`` for every pair."""
    return {
        name: {ref: compare(ref_records, records, settings) for ref, ref_records in references.items()}
        for name, records in conditions.items()
    }
