"""What the gate is fed: evaluate.json and finetune.json checks, registry names, the served
model's requirements. (Retries of tracking calls: tests/unit/test_tracking.py.)"""

from pathlib import Path

import pytest

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.prompts import ratio_key
from tokenskip.register.inputs import loss_curve, paired_results, ratio_results
from tokenskip.register.registry import registered_model_name
from tokenskip.register.runs import breakdown_figures, flatten

ROW = {
    "accuracy": 0.8,
    "mean_cot_tokens": 100,
    "actual_ratio": 1.0,
    "latency_s": 0.5,
    "throughput_tok_s": 200,
}


def test_ratio_results_reads_reference_and_configured_ratios() -> None:
    report = {"ratios": {"1.0": ROW, "0.5": {**ROW, "mean_cot_tokens": 50, "actual_ratio": 0.5}, "0.9": ROW}}
    rows = ratio_results(report, [0.5], "e.json")
    assert list(rows) == [1.0, 0.5]  # 0.9 is evaluated but not configured: not registered
    assert rows[0.5]["mean_cot_tokens"] == 50.0 and isinstance(rows[1.0]["throughput_tok_s"], float)
    untimed = {"ratios": {"1.0": {**ROW, "latency_s": None}, "0.5": ROW}}  # evaluate timed no sample
    assert ratio_results(untimed, [0.5], "e.json")[1.0]["latency_s"] is None


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ({"ratios": {"0.5": ROW}}, "e.json: ratios.1.0: missing (evaluate.ratios lists it)"),
        ({"ratios": {"1.0": ROW}}, "e.json: ratios.0.5: missing (evaluate.ratios lists it)"),
        ({"ratios": {"1.0": ROW, "0.5": {**ROW, "accuracy": None}}}, "e.json: ratios.0.5.accuracy: missing"),
        (
            {"ratios": {"1.0": ROW, "0.5": {"accuracy": 0.5, "mean_cot_tokens": 5, "actual_ratio": 0.5}}},
            "e.json: ratios.0.5.latency_s: missing",
        ),
        (
            {"ratios": {"1.0": ROW, "0.5": {**ROW, "latency_s": True}}},
            "e.json: ratios.0.5.latency_s: not a number (True)",
        ),
        ({"ratios": {"1.0": ROW, "half": ROW}}, "e.json: ratios.half: not a number"),
        ({"ratios": [ROW]}, "e.json: missing object 'ratios'"),
        ([], "e.json: missing object 'ratios'"),
    ],
)
def test_ratio_results_errors_name_ratio_and_metric(report: object, message: str) -> None:
    with pytest.raises(TokenSkipError) as info:
        ratio_results(report, [0.5], "e.json")
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("configured", "model", "dataset", "expected"),
    [
        (None, "bootstrap", "synthetic", "tokenskip-bootstrap-synthetic"),
        (None, "Qwen/Qwen2.5-7B-Instruct", "gsm8k", "tokenskip-qwen2.5-7b-instruct-gsm8k"),
        (None, "/models/My Model/", "gsm8k", "tokenskip-my-model-gsm8k"),
        ("custom-name", "bootstrap", "synthetic", "custom-name"),
    ],
)
def test_registered_model_name(configured: str | None, model: str, dataset: str, expected: str) -> None:
    assert registered_model_name(configured, model, dataset) == expected


def test_ratio_key_and_flatten() -> None:
    assert [ratio_key(g) for g in (1.0, 0.5, 0.55)] == ["1.0", "0.5", "0.55"]
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": 1, "a.c": "[1, 2]", "d": None}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"gates": {"min_token_reduction": 1.5}},
            "gates.min_token_reduction: Input should be less than or equal to 1",
        ),
        (
            {"gates": {"max_accuracy_drop": -0.01}},
            "gates.max_accuracy_drop: Input should be greater than or equal to 0",
        ),
        ({"mlflow": {"retries": 0}}, "mlflow.retries: Input should be greater than 0"),
        (
            {"mlflow": {"retry_backoff_s": 600}},
            "mlflow.retry_backoff_s: Input should be less than or equal to 60",
        ),
        (
            {"mlflow": {"registered_model": ""}},
            "mlflow.registered_model: String should have at least 1 character",
        ),
    ],
)
def test_gate_and_mlflow_params_out_of_range_are_rejected(raw: dict, expected: str) -> None:
    from tokenskip.core.params import parse_params

    with pytest.raises(TokenSkipError) as info:
        parse_params(raw, "p.yaml")
    assert str(info.value).startswith(f"p.yaml: {expected}")


PAIRED = {"accuracy_drop": 0.01, "accuracy_drop_ci": [0.0, 0.02], "token_reduction": 0.4,
          "token_reduction_ci": [0.39, 0.41], "mcnemar_p": 0.5}


@pytest.mark.parametrize(
    ("paired", "message"),
    [
        (None, "e.json: ratios.0.5.paired: missing (re-run evaluate)"),
        ({"original": {"accuracy_drop": 0.01}},
         "e.json: ratios.0.5.paired.original: needs accuracy_drop, accuracy_drop_ci, token_reduction, "
         "token_reduction_ci, mcnemar_p"),
        ({"g1": {**PAIRED, "accuracy_drop_ci": [0.0]}},
         "e.json: ratios.0.5.paired.g1.accuracy_drop_ci: not an interval [low, high] ([0.0])"),
        ({"g1": {**PAIRED, "token_reduction_ci": [0.1, "x"]}},
         "e.json: ratios.0.5.paired.g1.token_reduction_ci: not a number ('x')"),
        ({"original": {**PAIRED, "mcnemar_p": True}}, "e.json: ratios.0.5.paired.original.mcnemar_p: not a number (True)"),
    ],
)
def test_paired_results_errors_name_ratio_reference_and_field(paired: object, message: str) -> None:
    report = {"ratios": {"1.0": {**ROW, "paired": {"original": PAIRED}}, "0.5": {**ROW, "paired": paired}}}
    with pytest.raises(TokenSkipError) as info:
        paired_results(report, [0.5], "e.json")
    assert str(info.value) == message


def test_paired_results_reads_every_known_reference() -> None:
    report = {"ratios": {"1.0": {**ROW, "paired": {"original": PAIRED}},
                         "0.5": {**ROW, "paired": {"original": PAIRED, "g1": PAIRED, "other": 1}}}}
    paired = paired_results(report, [0.5], "e.json")
    assert sorted(paired[0.5]) == ["g1", "original"]
    assert paired[0.5]["g1"].accuracy_drop_ci == (0.0, 0.02) and paired[1.0]["original"].mcnemar_p == 0.5


def test_ratio_results_rows_keep_their_shape() -> None:
    rows = ratio_results({"ratios": {"1.0": {**ROW, "accuracy_ci": [0.7, 0.9], "extra": 1}, "0.5": ROW}},
                         [0.5], "e.json")
    assert rows[1.0] == {"accuracy": 0.8, "mean_cot_tokens": 100.0, "actual_ratio": 1.0, "latency_s": 0.5,
                         "throughput_tok_s": 200.0, "accuracy_ci": [0.7, 0.9]}
    assert "accuracy_ci" not in rows[0.5]
    with pytest.raises(TokenSkipError) as info:
        ratio_results({"ratios": {"1.0": {**ROW, "accuracy_ci": "wide"}, "0.5": ROW}}, [0.5], "e.json")
    assert str(info.value) == "e.json: ratios.1.0.accuracy_ci: not an interval [low, high] ('wide')"


def test_loss_curve_reads_points_and_names_a_bad_one() -> None:
    source = Path("reports/finetune.json")
    assert loss_curve({"loss_history": [{"step": 1, "loss": 2.5}, {"step": 2.0, "loss": 2}]}, source) == [
        (1, 2.5), (2, 2.0)]
    assert loss_curve({}, source) == [] and loss_curve({"loss_history": None}, source) == []
    for bad in ({"step": 1}, {"step": "1", "loss": 1.0}, 3):
        with pytest.raises(TokenSkipError) as info:
            loss_curve({"loss_history": [{"step": 0, "loss": 1.0}, bad]}, source)
        assert str(info.value) == "reports/finetune.json: loss_history.1: needs numeric 'step' and 'loss'"


def test_breakdown_figures_are_metric_names() -> None:
    row = {"accuracy": 0.5, "breakdown": {"level": {"5": {"accuracy": 0.25, "n": 4}},
                                          "subject": {"Counting & Probability": {"accuracy": 1.0, "ids": [1]}}}}
    assert breakdown_figures(row) == {"level.5.accuracy": 0.25, "level.5.n": 4,
                                      "subject.Counting _ Probability.accuracy": 1.0}
    assert breakdown_figures({"accuracy": 0.5}) == {}


def test_served_model_pins_carry_no_local_version_label(monkeypatch: pytest.MonkeyPatch) -> None:
    """A local label (+cpu, +cu124) names a build no other host's index has: pins drop it."""
    import importlib.metadata

    from tokenskip.register.pyfunc_model import _requirements, requirement_pin

    assert requirement_pin("torch", "2.13.0+cpu") == "torch==2.13.0"
    assert requirement_pin("mlflow", "3.17.2") == "mlflow==3.17.2"
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.13.0+cu124" if name == "torch" else "1.0")
    pins = _requirements()
    assert "torch==2.13.0" in pins and all("+" not in pin for pin in pins)
