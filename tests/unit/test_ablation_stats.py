"""The ablation's comparison (src/tokenskip/evaluate/ablation.py): variants' overrides, matched-ratio
interpolation and the paired difference against self-information, on made-up evaluations."""

from __future__ import annotations

import pytest

from tokenskip.evaluate import ablation as ab
from tokenskip.evaluate.statistics import BootstrapSettings


def evaluation(points: dict[str, tuple[float, float]]) -> dict:
    return {"ratios": {g: {"accuracy": acc, "accuracy_ci": [acc - 0.1, acc + 0.1], "actual_ratio": actual}
                       for g, (actual, acc) in points.items()}}


def rows(g: str, correct: list[bool]) -> list[dict]:
    return [{"condition": f"g={g}", "id": f"q{i}", "correct": ok, "cot_tokens": 10} for i, ok in enumerate(correct)]


def test_variant_overrides() -> None:
    assert ab.default_variants(False) == ["self-information", "random"]
    assert ab.default_variants(True) == ["self-information", "random", "llmlingua2"]
    assert ab.variant_overrides("random", False) == ["prune.scorer=random"]
    assert ab.variant_overrides("self-information", True) == ["prune.scorer=self-information",
                                                              "prune.scorer_model=null"]
    assert ab.variant_overrides("no-force-digits", False) == ["prune.scorer=self-information",
                                                              "prune.force_digits=false"]
    with pytest.raises(ValueError, match="needs prune.scorer_model"):
        ab.variant_overrides("llmlingua2", False)
    with pytest.raises(ValueError, match="unknown ablation variant"):
        ab.variant_overrides("tfidf", False)


def test_matched_accuracy_interpolates_on_the_own_curve() -> None:
    points = ab.curve(evaluation({"0.5": (0.4, 0.5), "0.7": (0.8, 0.9)}))
    matched = ab.matched_accuracy([0.6, 0.3, 0.9], points)
    assert [m["accuracy"] for m in matched] == [0.7, 0.5, 0.9]
    assert [m["extrapolated"] for m in matched] == [False, True, True]


def test_compare_variants_pairs_the_same_questions() -> None:
    reference = [True] * 8 + [False] * 2
    candidate = [True] * 5 + [False] * 5
    results = {
        "self-information": {"evaluate": evaluation({"0.6": (0.6, 0.8), "1.0": (1.0, 0.9)}),
                             "per_question": rows("0.6", reference) + rows("1.0", reference),
                             "experiment": "ablation-self-information-x", "overrides": ["a=1"]},
        "random": {"evaluate": evaluation({"0.6": (0.5, 0.5), "1.0": (1.0, 0.9)}),
                   "per_question": rows("0.6", candidate) + rows("1.0", reference)},
    }
    report = ab.compare_variants(results, BootstrapSettings(resamples=2000, seed=0))
    assert list(report) == ["self-information", "random"]
    assert report["self-information"]["experiment"] == "ablation-self-information-x"
    point = report["random"]["ratios"]["0.6"]
    assert point["matched"] == {"actual_ratio": 0.6, "accuracy": 0.58, "extrapolated": False}
    diff = point["vs_self-information"]
    assert diff["accuracy_difference"] == -0.3 and diff["n"] == 10
    low, high = diff["accuracy_difference_ci"]
    assert low <= -0.3 <= high <= 0
    assert diff["mcnemar_p"] == 0.25  # 3 lost, 0 gained: 2 * 0.5**3
    assert report["random"]["ratios"]["1.0"]["vs_self-information"]["accuracy_difference"] == 0.0
    assert "vs_self-information" not in report["self-information"]["ratios"]["0.6"]
    table = ab.table_rows(report)
    assert [(r["variant"], r["g"]) for r in table] == [("self-information", "0.6"), ("self-information", "1.0"),
                                                      ("random", "0.6"), ("random", "1.0")]


def test_the_reference_must_run() -> None:
    with pytest.raises(ValueError, match="reference variant"):
        ab.compare_variants({"random": {"evaluate": evaluation({"0.6": (0.6, 0.5)}), "per_question": []}},
                            BootstrapSettings())
