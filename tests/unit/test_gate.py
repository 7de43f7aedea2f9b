"""The promotion gate on a table of cases: thresholds, the champion check, the champion choice."""

import pytest

from tokenskip.register.gate import RatioResult, Thresholds, judge, judge_all, promotion_order

REF = RatioResult(ratio=1.0, accuracy=0.80, mean_cot_tokens=100.0, actual_ratio=1.0)
TH = Thresholds(max_accuracy_drop=0.05, min_token_reduction=0.2)


def r(ratio: float, accuracy: float, tokens: float) -> RatioResult:
    return RatioResult(ratio=ratio, accuracy=accuracy, mean_cot_tokens=tokens, actual_ratio=tokens / 100.0)


@pytest.mark.parametrize(
    ("candidate", "champion", "passed", "reason_part"),
    [
        # thresholds versus g = 1.0 only
        (r(0.5, 0.78, 50), None, True, "passed"),
        (r(0.5, 0.75, 50), None, True, "passed"),  # drop exactly the bound passes
        (r(0.5, 0.74, 50), None, False, "accuracy drop 0.0600 > max_accuracy_drop 0.05"),
        (r(0.9, 0.80, 81), None, False, "token reduction 0.1900 < min_token_reduction 0.2"),
        (r(0.8, 0.80, 80), None, True, "passed"),  # reduction exactly the bound passes
        (r(1.0, 0.80, 100), None, False, "token reduction 0.0000"),  # g = 1.0 never compresses
        (r(0.5, 0.90, 50), None, True, "passed"),  # better than g = 1.0
        (r(0.5, 0.60, 95), None, False, "accuracy drop 0.2000 > max_accuracy_drop 0.05; token reduction"),
        # two-sided: an existing champion that dominates the candidate fails it
        (r(0.6, 0.76, 60), r(0.5, 0.85, 50), False, "champion (g=0.5) is 0.0900 more accurate"),
        (r(0.6, 0.76, 60), r(0.5, 0.80, 60), True, "passed"),  # equal tokens, 0.04 behind: within bound
        (r(0.6, 0.76, 60), r(0.5, 0.82, 60), False, "champion (g=0.5) is 0.0600 more accurate"),
        # a candidate more compressive than the champion is judged on the thresholds only
        (r(0.5, 0.76, 40), r(0.5, 0.90, 50), True, "passed"),
        # champion worse than the candidate: passes
        (r(0.7, 0.80, 70), r(0.6, 0.70, 60), True, "passed"),
    ],
)
def test_judge(candidate: RatioResult, champion: RatioResult | None, passed: bool, reason_part: str) -> None:
    verdict = judge(candidate, REF, TH, champion)
    assert verdict.passed is passed
    assert reason_part in verdict.reason
    assert verdict.ratio == candidate.ratio
    assert verdict.accuracy_drop == pytest.approx(REF.accuracy - candidate.accuracy)
    assert verdict.token_reduction == pytest.approx(1 - candidate.actual_ratio)


@pytest.mark.parametrize(
    ("candidates", "order"),
    [
        ([r(0.5, 0.78, 50), r(0.6, 0.79, 60), r(0.7, 0.80, 70)], [0.5, 0.6, 0.7]),
        ([r(0.5, 0.60, 50), r(0.6, 0.79, 60), r(0.7, 0.80, 70)], [0.6, 0.7]),  # 0.5 fails accuracy
        ([r(0.5, 0.78, 62), r(0.6, 0.79, 60)], [0.6, 0.5]),  # ordered by tokens, not nominal ratio
        ([r(0.5, 0.76, 60), r(0.6, 0.79, 60)], [0.6, 0.5]),  # tie on tokens: more accurate first
        ([r(0.9, 0.80, 90), r(1.0, 0.80, 100)], []),  # nothing passes: no champion
    ],
)
def test_promotion_order(candidates: list[RatioResult], order: list[float]) -> None:
    verdicts = judge_all(candidates, REF, TH)
    assert promotion_order(candidates, verdicts) == order


def test_thresholds_zero_accept_only_no_loss() -> None:
    strict = Thresholds(max_accuracy_drop=0.0, min_token_reduction=0.0)
    assert judge(r(1.0, 0.80, 100), REF, strict).passed
    assert not judge(r(0.5, 0.79, 50), REF, strict).passed
