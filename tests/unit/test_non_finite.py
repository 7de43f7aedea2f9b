"""A NaN or infinite figure never passes the gate, and no report holds a bare NaN: write_json refuses
one (naming the key), register writes null for a figure its gate failed as not finite."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.io import nulls_for_non_finite, write_json
from tokenskip.register.gate import Paired, RatioResult, Thresholds, judge
from tokenskip.register.inputs import paired_results

NAN, INF = math.nan, math.inf
GOOD = RatioResult(ratio=0.5, accuracy=0.78, mean_cot_tokens=50.0, actual_ratio=0.5)


def paired(drop: float, reduction: float) -> Paired:
    return Paired(drop, (drop, drop), reduction, (reduction, reduction), 1.0)


@pytest.mark.parametrize("decision", ["point", "upper_ci"])
@pytest.mark.parametrize(
    ("candidate", "figures", "named"),
    [
        (GOOD, paired(0.02, NAN), "token reduction vs original"),
        (GOOD, paired(-INF, 0.5), "accuracy drop vs original"),
        (GOOD, paired(0.02, INF), "token reduction vs original"),
        (RatioResult(0.5, NAN, 50.0, 0.5), paired(0.02, 0.5), "accuracy nan"),
        (RatioResult(0.5, 0.78, INF, 0.5), paired(0.02, 0.5), "mean CoT tokens inf"),
    ],
)
def test_a_non_finite_figure_fails_the_gate_with_a_reason(
    candidate: RatioResult, figures: Paired, named: str, decision: str
) -> None:
    verdict = judge(candidate, figures, "original", Thresholds(0.05, 0.2, decision))
    assert not verdict.passed
    assert "not a finite number" in verdict.reason and named in verdict.reason


def test_finite_figures_still_pass() -> None:
    assert judge(GOOD, paired(0.02, 0.5), "original", Thresholds(0.05, 0.2, "point")).passed


def test_null_or_nan_paired_figures_are_read_as_nan_and_fail() -> None:
    block = {"accuracy_drop": 0.0, "accuracy_drop_ci": [0.0, 0.0], "token_reduction": None,
             "token_reduction_ci": [None, None], "mcnemar_p": 1.0}
    report = json.loads(json.dumps({"ratios": {"1.0": {"paired": {"original": block}},
                                               "0.5": {"paired": {"original": {**block, "token_reduction": NAN}}}}}))
    found = paired_results(report, [0.5], "evaluate.json")
    for ratio in (1.0, 0.5):
        figures = found[ratio]["original"]
        assert math.isnan(figures.token_reduction) and all(map(math.isnan, figures.token_reduction_ci))
        assert not judge(GOOD, figures, "original", Thresholds(0.05, 0.2, "upper_ci")).passed


def test_write_json_refuses_nan_naming_the_key(tmp_path: Path) -> None:
    target = tmp_path / "register.json"
    payload = {"versions": [{"ratio": 0.5, "token_reduction": NAN}], "n": 1}
    with pytest.raises(TokenSkipError) as info:
        write_json(target, payload)
    assert str(info.value) == (f"{target}: versions.0.token_reduction: not a finite number (nan); "
                               "JSON has no NaN or Infinity")
    assert not target.exists() and not list(tmp_path.iterdir())  # nothing half-written
    write_json(target, nulls_for_non_finite(payload))
    assert "NaN" not in target.read_text()
    assert json.loads(target.read_text())["versions"][0]["token_reduction"] is None
