"""What the gate is fed: evaluate.json checks, registry names, retry/backoff of tracking calls."""

import os

import pytest

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.prompts import ratio_key
from tokenskip.register.inputs import ratio_results
from tokenskip.register.registration import flatten
from tokenskip.register.registry import registered_model_name
from tokenskip.register.tracking import Retry, is_transient, with_retries

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


def test_with_retries_backs_off_then_succeeds() -> None:
    waits: list[float] = []
    calls = iter([ConnectionError("refused"), ConnectionError("refused"), "ok"])

    def action() -> str:
        result = next(calls)
        if isinstance(result, Exception):
            raise result
        return result

    assert with_retries(action, "get run", Retry(4, 0.5), "http://x", sleep=waits.append) == "ok"
    assert waits == [0.5, 1.0]


def test_with_retries_gives_up_with_one_line() -> None:
    waits: list[float] = []

    def down() -> None:
        raise Exception("API request to http://x/api failed with exception Max retries exceeded\nmore")

    with pytest.raises(TokenSkipError) as info:
        with_retries(down, "log model", Retry(3, 1.0), "http://x", sleep=waits.append)
    assert waits == [1.0, 2.0]
    message = str(info.value)
    assert message.startswith("MLflow tracking at http://x unreachable: log model failed after 3 attempt(s)")
    assert "\n" not in message


def test_with_retries_does_not_retry_real_errors() -> None:
    waits: list[float] = []

    def bad() -> None:
        raise ValueError("RESOURCE_DOES_NOT_EXIST: no such run")

    with pytest.raises(ValueError):
        with_retries(bad, "get run", Retry(3, 1.0), "http://x", sleep=waits.append)
    assert waits == [] and not is_transient(ValueError("INVALID_PARAMETER_VALUE"))


def test_globally_restores_uris_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """mlflow.set_tracking_uri(None) unsets MLFLOW_TRACKING_URI: the stage must leave it as it was."""
    import mlflow
    from tokenskip.register.tracking import globally

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    inner = f"sqlite:///{tmp_path}/x.db"
    with globally(inner):
        assert mlflow.get_tracking_uri() == inner and mlflow.get_registry_uri() == inner
    assert mlflow.get_tracking_uri() == "http://127.0.0.1:1"
    assert "MLFLOW_REGISTRY_URI" not in os.environ


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
