"""The promotion gate: which registered versions may serve, and which becomes ``champion``.

Pure functions, no MLflow. Every ratio g is compared with a reference on the same test
questions (``gates.reference``: ``original``, the base model users run today, or ``g1``,
TokenSkip at g = 1.0); evaluate measured the paired differences and their bootstrap CIs. A version
passes iff

1. its accuracy drop versus the reference is <= ``max_accuracy_drop``,
2. its token reduction versus the reference is >= ``min_token_reduction``, and
3. when the registered model already has a ``champion`` (from an earlier pipeline run), that
   champion does not dominate it: if the champion needs equal or fewer CoT tokens, the
   version's accuracy may not be lower than the champion's by more than ``max_accuracy_drop``.
   (A version that is more compressive than the champion is judged by 1 and 2 only.)

A figure that is not a finite number (NaN or infinite: e.g. a token reduction against a reference
that wrote no CoT tokens) fails the version, with the figure named in the reason.

With ``gates.decision: upper_ci`` (the default) 1 and 2 use the CI bounds: the upper bound of the
drop and the lower bound of the reduction, so noise alone cannot pass a version; ``point`` uses
the point estimates. The most compressive passing version (fewest mean CoT tokens; ties: higher
accuracy, then lower ratio) becomes the champion; the other passing versions are challengers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

EPSILON = 1e-9  # float slack so that a drop of exactly the bound passes
DECISIONS = ("point", "upper_ci")


@dataclass(frozen=True)
class RatioResult:
    """Evaluation figures of one ratio (or of an existing champion version)."""

    ratio: float
    accuracy: float
    mean_cot_tokens: float
    actual_ratio: float


@dataclass(frozen=True)
class Paired:
    """One ratio against one reference on the same questions (from evaluate.json ``paired``)."""

    accuracy_drop: float
    accuracy_drop_ci: tuple[float, float]
    token_reduction: float
    token_reduction_ci: tuple[float, float]
    mcnemar_p: float


@dataclass(frozen=True)
class Thresholds:
    """``gates`` section of params.yaml."""

    max_accuracy_drop: float
    min_token_reduction: float
    decision: str = "upper_ci"

    def describe(self, reference: str) -> str:
        """One line a registry tag holds, e.g. ``reference=original decision=upper_ci
        max_accuracy_drop=0.05 min_token_reduction=0.2`` (:func:`parse_thresholds` reads it back)."""
        return (f"reference={reference} decision={self.decision} max_accuracy_drop="
                f"{self.max_accuracy_drop:g} min_token_reduction={self.min_token_reduction:g}")


def parse_thresholds(text: str | None) -> dict[str, str | float] | None:
    """The thresholds of :meth:`Thresholds.describe`'s line (numbers as floats); None without one."""
    if not text:
        return None
    found: dict[str, str | float] = {}
    for item in text.split():
        key, _, value = item.partition("=")
        try:
            found[key] = float(value)
        except ValueError:
            found[key] = value
    return found


@dataclass(frozen=True)
class Verdict:
    """The gate's decision for one ratio, with the figures it was based on."""

    ratio: float
    passed: bool
    reason: str
    reference: str
    decision: str
    paired: Paired
    thresholds: Thresholds | None = None  # what it was judged against

    @property
    def accuracy_drop(self) -> float:
        """Point estimate of the accuracy lost versus the reference (negative: better)."""
        return self.paired.accuracy_drop

    @property
    def token_reduction(self) -> float:
        """Point estimate of the share of CoT tokens saved versus the reference."""
        return self.paired.token_reduction


def judged_bounds(paired: Paired, decision: str) -> tuple[float, float]:
    """(drop, reduction) the gate compares with its thresholds under ``decision``."""
    if decision not in DECISIONS:
        raise ValueError(f"gates.decision must be one of {DECISIONS} (got {decision!r})")
    if decision == "point":
        return paired.accuracy_drop, paired.token_reduction
    return paired.accuracy_drop_ci[1], paired.token_reduction_ci[0]


def judge(
    candidate: RatioResult,
    paired: Paired,
    reference: str,
    thresholds: Thresholds,
    champion: RatioResult | None = None,
) -> Verdict:
    """Apply the gate to one candidate; the reason names every failed condition (or 'passed')."""
    drop, reduction = judged_bounds(paired, thresholds.decision)
    what = "" if thresholds.decision == "point" else " (CI bound)"
    failures = _non_finite(candidate, drop, reduction, f" vs {reference}{what}")
    if drop > thresholds.max_accuracy_drop + EPSILON:
        failures.append(f"accuracy drop vs {reference}{what} {drop:.4f} > max_accuracy_drop "
                        f"{thresholds.max_accuracy_drop:g}")
    if reduction < thresholds.min_token_reduction - EPSILON:
        failures.append(f"token reduction vs {reference}{what} {reduction:.4f} < min_token_reduction "
                        f"{thresholds.min_token_reduction:g}")
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
        reference=reference,
        decision=thresholds.decision,
        paired=paired,
        thresholds=thresholds,
    )


def _non_finite(candidate: RatioResult, drop: float, reduction: float, versus: str) -> list[str]:
    """One failure naming the figures that are NaN or infinite (none when every one is finite):
    such a figure compares False with any threshold, so it must fail the gate explicitly."""
    figures = {"accuracy": candidate.accuracy, "mean CoT tokens": candidate.mean_cot_tokens,
               f"accuracy drop{versus}": drop, f"token reduction{versus}": reduction}
    bad = [f"{name} {value}" for name, value in figures.items() if not math.isfinite(value)]
    return [f"not a finite number: {', '.join(bad)}"] if bad else []


def promotion_order(candidates: Sequence[RatioResult], verdicts: Sequence[Verdict]) -> list[float]:
    """Ratios of the passing candidates, most compressive first (the first is the champion)."""
    passed = {v.ratio for v in verdicts if v.passed}
    ranked = sorted(
        (c for c in candidates if c.ratio in passed),
        key=lambda c: (c.mean_cot_tokens, -c.accuracy, c.ratio),
    )
    return [c.ratio for c in ranked]
