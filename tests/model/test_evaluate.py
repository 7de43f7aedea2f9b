"""evaluate: report shape other stages parse, actual ratios, truncation budgets, untrained ratios."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.params import DEFAULT_INSTRUCTION, EvaluateParams
from tokenskip.evaluate.conditions import (
    METRIC_KEYS,
    ConditionResult,
    check_ratios,
    evaluate_models,
    with_actual_ratios,
)

SMALL = EvaluateParams(ratios=[0.5, 0.7], batch_size=4, max_new_tokens=12, latency_samples=2,
                       truncation_ratios=[0.5], n_outputs_per_condition=1)


def test_actual_ratio_is_mean_tokens_over_the_reference():
    results = {"1.0": ConditionResult({"accuracy": 0.9, "accuracy_ci": [0.8, 0.95], "mean_cot_tokens": 80.0,
                                       "actual_ratio": None, "latency_s": 1.0, "throughput_tok_s": 5.0}, []),
               "0.5": ConditionResult({"accuracy": 0.8, "accuracy_ci": [0.7, 0.9], "mean_cot_tokens": 36.0,
                                       "actual_ratio": None, "latency_s": 0.5, "throughput_tok_s": 5.0}, [])}
    table = with_actual_ratios(results, "1.0")
    assert table["1.0"]["actual_ratio"] == 1.0 and table["0.5"]["actual_ratio"] == 0.45
    assert tuple(table["0.5"]) == METRIC_KEYS


def test_a_ratio_that_was_never_trained_is_one_clear_error():
    check_ratios([0.5, 0.7], [0.5, 0.6, 0.7], "params.yaml: prune.ratios")
    with pytest.raises(TokenSkipError, match=r"evaluate.ratios: 0.4 never trained \(trained ratios in x"):
        check_ratios([0.4, 0.5], [0.5, 0.6], "x")


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from tokenskip.core.hf import load_causal_lm

    return load_causal_lm(str(tiny_model_dir), None, "cpu")


def test_report_has_every_ratio_and_baseline_with_the_five_metrics(tiny):
    from tests.fixtures.tiny_models import synthetic_problems

    problems = synthetic_problems(5, 4)
    report, samples, per_question = evaluate_models(tiny, tiny, problems, SMALL, DEFAULT_INSTRUCTION)
    assert report["n_test"] == 4
    assert list(report["ratios"]) == ["1.0", "0.7", "0.5"]
    assert list(report["baselines"]) == ["original", "be_concise", "only_numbers", "lc_prompt_0.5",
                                         "truncation_0.5"]
    for entry in report["baselines"].values():
        assert tuple(entry) == METRIC_KEYS
    for entry in report["ratios"].values():
        assert tuple(entry) == (*METRIC_KEYS, "paired")
        assert set(entry["paired"]) == {"original", "g1"}
        low, high = entry["accuracy_ci"]
        assert 0 <= low <= entry["accuracy"] <= high <= 1
    assert report["ratios"]["1.0"]["paired"]["g1"]["accuracy_drop"] == 0.0  # itself
    # every question under every condition: 3 ratios + 5 baselines, 4 questions each
    assert len(per_question) == 8 * 4 and {r["condition"] for r in per_question} >= {"g=0.5", "original"}
    assert all(set(r) == {"condition", "id", "correct", "cot_tokens", "new_tokens", "prediction", "output"}
               for r in per_question)
    for entry in [*report["ratios"].values(), *report["baselines"].values()]:
        assert 0 <= entry["accuracy"] <= 1 and entry["latency_s"] > 0
    assert report["ratios"]["1.0"]["actual_ratio"] == 1.0
    assert report["baselines"]["original"]["actual_ratio"] == 1.0
    original_tokens = report["baselines"]["original"]["mean_cot_tokens"]
    budget = max(1, round(0.5 * original_tokens))
    truncated = [s for s in samples if s["method"] == "truncation_0.5"]
    assert truncated and all(s["new_tokens"] <= budget for s in truncated)
    assert {(s["method"], s["g"]) for s in samples} >= {("tokenskip", 1.0), ("tokenskip", 0.5), ("original", 1.0)}


def evaluate_command(base: Path, model: Path, tmp: Path) -> list[str]:
    return [sys.executable, "-m", "tokenskip", "evaluate", "--base", str(base), "--model", str(model),
            "--data", str(tmp / "data"), "--report", str(tmp / "evaluate.json"),
            "--pareto", str(tmp / "pareto.csv"), "--plot", str(tmp / "pareto.png"),
            "--outputs", str(tmp / "outputs.jsonl"), "--per-question", str(tmp / "per_question.jsonl"),
            "--params", str(tmp / "params.yaml")]


def test_cli_untrained_ratio_exits_2_with_one_line_and_no_outputs(tiny_model_dir, tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"evaluate": {"ratios": [0.4, 0.5]}}))
    run = subprocess.run(evaluate_command(tiny_model_dir, tmp_path / "none", tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: evaluate.ratios: 0.4 never trained")
    assert not list(tmp_path.glob("evaluate.json")) and not list(tmp_path.glob("pareto.*"))


@pytest.mark.slow
def test_cli_writes_report_csv_png_and_samples(tiny_model_dir, tmp_path):
    from tests.model.ft_samples import write_samples
    from tokenskip.core.hf import load_tokenizer
    from tokenskip.core.params import FinetuneParams
    from tokenskip.finetune.training import run_finetune

    samples = write_samples(load_tokenizer(str(tiny_model_dir)), tmp_path / "train.jsonl", 16)
    run_finetune(tiny_model_dir, samples, tmp_path / "tokenskip", tmp_path / "ckpt",
                 FinetuneParams(merge=False, epochs=1, batch_size=8, max_length=128))
    (tmp_path / "data" / "synthetic").mkdir(parents=True)
    lines = [json.dumps({"question": f"Tom has {i} apples. He buys 2 more. How many apples?",
                         "answer": f"{i} + 2 = {i + 2}\n#### {i + 2}"}) for i in range(3)]
    (tmp_path / "data" / "synthetic" / "test.jsonl").write_text("\n".join(lines) + "\n")
    params = {"data": {"n_test": 2},
              "evaluate": {"ratios": [0.5], "batch_size": 2, "max_new_tokens": 8, "latency_samples": 1,
                           "truncation_ratios": [0.5, 0.9], "n_outputs_per_condition": 1}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run = subprocess.run(evaluate_command(tiny_model_dir, tmp_path / "tokenskip", tmp_path),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "evaluate.json").read_text())
    assert report["n_test"] == 2 and set(report["ratios"]) == {"1.0", "0.5"}
    assert {"truncation_0.5", "truncation_0.9"} <= set(report["baselines"])
    header = (tmp_path / "pareto.csv").read_text().splitlines()[0]
    assert header == "method,g,mean_tokens,accuracy,accuracy_low,accuracy_high"
    assert (tmp_path / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    assert len((tmp_path / "outputs.jsonl").read_text().splitlines()) == 2 + 6
    assert len((tmp_path / "per_question.jsonl").read_text().splitlines()) == 2 * (2 + 6)
