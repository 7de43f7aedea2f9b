"""The promotion gate: thresholds on point estimates and on paired CIs, the champion check, the
champion choice; and a known paired sample whose verdict depends on the decision rule."""

import pytest

from tokenskip.evaluate.statistics import BootstrapSettings, compare
from tokenskip.register.gate import Paired, RatioResult, Thresholds, judge, promotion_order

REF = RatioResult(ratio=1.0, accuracy=0.80, mean_cot_tokens=100.0, actual_ratio=1.0)
TH = Thresholds(max_accuracy_drop=0.05, min_token_reduction=0.2, decision="point")


def r(ratio: float, accuracy: float, tokens: float) -> RatioResult:
    return RatioResult(ratio=ratio, accuracy=accuracy, mean_cot_tokens=tokens, actual_ratio=tokens / 100.0)


def exact(candidate: RatioResult, width: float = 0.0) -> Paired:
    """The candidate against REF, with intervals of +-``width`` around the point estimates."""
    drop, reduction = REF.accuracy - candidate.accuracy, 1 - candidate.actual_ratio
    return Paired(drop, (drop - width, drop + width), reduction, (reduction - width, reduction + width), 1.0)


def judge_all(candidates, reference, thresholds):
    return [judge(c, exact(c), "g1", thresholds) for c in candidates]


@pytest.mark.parametrize(
    ("candidate", "champion", "passed", "reason_part"),
    [
        # thresholds versus g = 1.0 only
        (r(0.5, 0.78, 50), None, True, "passed"),
        (r(0.5, 0.75, 50), None, True, "passed"),  # drop exactly the bound passes
        (r(0.5, 0.74, 50), None, False, "accuracy drop vs g1 0.0600 > max_accuracy_drop 0.05"),
        (r(0.9, 0.80, 81), None, False, "token reduction vs g1 0.1900 < min_token_reduction 0.2"),
        (r(0.8, 0.80, 80), None, True, "passed"),  # reduction exactly the bound passes
        (r(1.0, 0.80, 100), None, False, "token reduction vs g1 0.0000"),  # g = 1.0 never compresses
        (r(0.5, 0.90, 50), None, True, "passed"),  # better than g = 1.0
        (r(0.5, 0.60, 95), None, False, "accuracy drop vs g1 0.2000 > max_accuracy_drop 0.05; token reduction"),
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
    verdict = judge(candidate, exact(candidate), "g1", TH, champion)
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
    strict = Thresholds(max_accuracy_drop=0.0, min_token_reduction=0.0, decision="point")
    assert judge(r(1.0, 0.80, 100), exact(r(1.0, 0.80, 100)), "g1", strict).passed
    assert not judge(r(0.5, 0.79, 50), exact(r(0.5, 0.79, 50)), "g1", strict).passed


def test_upper_ci_judges_the_interval_bounds() -> None:
    candidate = r(0.6, 0.78, 70)  # drop 0.02, reduction 0.30
    ci = Thresholds(0.05, 0.2, "upper_ci")
    assert judge(candidate, exact(candidate, 0.02), "original", ci).passed  # bounds 0.04 / 0.28
    wide = judge(candidate, exact(candidate, 0.04), "original", ci)  # bounds 0.06 / 0.26
    assert not wide.passed and "accuracy drop vs original (CI bound) 0.0600 > max_accuracy_drop" in wide.reason
    assert judge(candidate, exact(candidate, 0.04), "original", TH).passed


def per_question(pattern: list[tuple[bool, bool]], counts: list[int]) -> tuple[list[dict], list[dict]]:
    """Reference and candidate records over questions of each (reference ok, candidate ok) kind."""
    reference, candidate = [], []
    for (ref_ok, cand_ok), count in zip(pattern, counts, strict=True):
        for _ in range(count):
            qid = f"q{len(reference)}"
            reference.append({"id": qid, "correct": ref_ok, "cot_tokens": 100})
            candidate.append({"id": qid, "correct": cand_ok, "cot_tokens": 60})
    return reference, candidate


def test_a_drop_of_four_points_within_noise_fails_upper_ci_and_passes_point() -> None:
    # 500 questions: both right 420, only the reference 30, only the candidate 10, both wrong 40
    reference, candidate = per_question([(True, True), (True, False), (False, True), (False, False)],
                                        [420, 30, 10, 40])
    paired = compare(reference, candidate, BootstrapSettings(resamples=2000, seed=0))
    assert paired["accuracy_drop"] == pytest.approx(0.04)
    assert 0.06 <= paired["accuracy_drop_ci"][1] <= 0.08  # the noise of 40 discordant pairs
    assert paired["accuracy_drop_ci"][0] > 0.0
    assert paired["mcnemar_p"] == pytest.approx(0.00222, abs=1e-4)  # binomial: 10 of 40, two-sided
    assert paired["token_reduction"] == pytest.approx(0.4) and paired["token_reduction_ci"] == [0.4, 0.4]
    stats = Paired(paired["accuracy_drop"], tuple(paired["accuracy_drop_ci"]), paired["token_reduction"],
                   tuple(paired["token_reduction_ci"]), paired["mcnemar_p"])
    candidate_result = RatioResult(0.6, 0.86, 60.0, 0.6)
    assert judge(candidate_result, stats, "original", Thresholds(0.05, 0.2, "point")).passed
    assert not judge(candidate_result, stats, "original", Thresholds(0.05, 0.2, "upper_ci")).passed


def test_the_bootstrap_is_seeded() -> None:
    reference, candidate = per_question([(True, True), (True, False), (False, True)], [80, 12, 8])
    settings = BootstrapSettings(resamples=2000, seed=3)
    assert compare(reference, candidate, settings) == compare(reference, candidate, settings)


def test_token_reduction_is_null_not_nan_when_the_reference_wrote_no_cot() -> None:
    reference = [{"id": i, "correct": True, "cot_tokens": 0} for i in range(5)]
    candidate = [{"id": i, "correct": True, "cot_tokens": 3} for i in range(5)]
    stats = compare(reference, candidate, BootstrapSettings(resamples=2000, confidence=0.95, seed=0))
    assert stats["token_reduction"] is None and stats["token_reduction_ci"] is None
    assert stats["accuracy_drop"] == 0.0
