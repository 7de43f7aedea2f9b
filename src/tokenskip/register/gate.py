"""The promotion gate: which registered versions may serve, and which becomes ``champion``.

Pure functions, no MLflow. A version (one compression ratio g) passes iff

1. its accuracy drop versus g = 1.0 (absolute points) is <= ``max_accuracy_drop``,
2. its token reduction versus g = 1.0 (``1 - actual_ratio``) is >= ``min_token_reduction``, and
3. when the registered model already has a ``champion`` (from an earlier pipeline run), that
   champion does not dominate it: if the champion needs equal or fewer CoT tokens, the
   version's accuracy may not be lower than the champion's by more than ``max_accuracy_drop``.
   (A version that is more compressive than the champion is judged by 1 and 2 only.)

The most compressive passing version (fewest mean CoT tokens; ties: higher accuracy, then lower
ratio) becomes the champion; the other passing versions are challengers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

EPSILON = 1e-9  # float slack so that a drop of exactly the bound passes


@dataclass(frozen=True)
class RatioResult:
    """Evaluation figures of one ratio (or of an existing champion version)."""

    ratio: float
    accuracy: float
    mean_cot_tokens: float
    actual_ratio: float


@dataclass(frozen=True)
class Thresholds:
    """``gates`` section of params.yaml."""

    max_accuracy_drop: float
    min_token_reduction: float


@dataclass(frozen=True)
class Verdict:
    """The gate's decision for one ratio, with the figures it was based on."""

    ratio: float
    passed: bool
    reason: str
    accuracy_drop: float
    token_reduction: float


def accuracy_drop(candidate: RatioResult, reference: RatioResult) -> float:
    """Accuracy lost versus g = 1.0, in absolute points (negative when the candidate is better)."""
    return reference.accuracy - candidate.accuracy


def token_reduction(candidate: RatioResult) -> float:
    """Fraction of CoT tokens saved versus g = 1.0: ``1 - actual_ratio``."""
    return 1.0 - candidate.actual_ratio


def judge(
    candidate: RatioResult,
    reference: RatioResult,
    thresholds: Thresholds,
    champion: RatioResult | None = None,
) -> Verdict:
    """Apply the gate to one candidate; the reason names every failed condition (or 'passed')."""
    drop = accuracy_drop(candidate, reference)
    reduction = token_reduction(candidate)
    failures = []
    if drop > thresholds.max_accuracy_drop + EPSILON:
        failures.append(f"accuracy drop {drop:.4f} > max_accuracy_drop {thresholds.max_accuracy_drop:g}")
    if reduction < thresholds.min_token_reduction - EPSILON:
        failures.append(
            f"token reduction {reduction:.4f} < min_token_reduction {thresholds.min_token_reduction:g}"
        )
    if champion is not None and champion.mean_cot_tokens <= candidate.mean_cot_tokens + EPSILON:
        behind = champion.accuracy - candidate.accuracy
        if behind > thresholds.max_accuracy_drop + EPSILON:
            failures.append(
                f"champion (g={champion.ratio:g}) is {behind:.4f} more accurate at "
                f"{champion.mean_cot_tokens:.1f} <= {candidate.mean_cot_tokens:.1f} tokens"
            )
    return Verdict(
        ratio=candidate.ratio,
        passed=not failures,
        reason="; ".join(failures) if failures else "passed",
        accuracy_drop=drop,
        token_reduction=reduction,
    )


def judge_all(
    candidates: Sequence[RatioResult],
    reference: RatioResult,
    thresholds: Thresholds,
    champion: RatioResult | None = None,
) -> list[Verdict]:
    """Verdicts for every candidate, in input order."""
    return [judge(candidate, reference, thresholds, champion) for candidate in candidates]


def promotion_order(candidates: Sequence[RatioResult], verdicts: Sequence[Verdict]) -> list[float]:
    """Ratios of the passing candidates, most compressive first (the first is the champion)."""
    passed = {v.ratio for v in verdicts if v.passed}
    ranked = sorted(
        (c for c in candidates if c.ratio in passed),
        key=lambda c: (c.mean_cot_tokens, -c.accuracy, c.ratio),
    )
    return [c.ratio for c in ranked]
