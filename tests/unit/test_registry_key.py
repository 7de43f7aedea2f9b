"""The registry's content key: the weights and what the evaluation found (figures, paired statistics,
settings, each question's result), never what the clock measured (latency, throughput, seconds)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from tokenskip.register.registry import content_key, evaluation_content

EVALUATE = {
    "n_test": 2,
    "decoding": {"max_new_tokens": 256, "eos_token_ids": [3]},
    "ratios": {"1.0": {"accuracy": 0.5, "mean_cot_tokens": 10.0, "actual_ratio": 1.0, "latency_s": 0.0123,
                       "throughput_tok_s": 812.5, "paired": {"original": {"accuracy_drop": 0.0}}}},
    "baselines": {"original": {"accuracy": 0.5, "latency_s": 0.02, "throughput_tok_s": 700.1}},
}


def model(root: Path, weights: bytes = b"weights") -> Path:
    (root / "model").mkdir(parents=True)
    (root / "model" / "model.safetensors").write_bytes(weights)
    return root


def rows(path: Path, correct: bool = True) -> Path:
    path.write_text("".join(json.dumps({"condition": "g=1.0", "id": f"q{i}", "correct": correct and i == 0,
                                        "cot_tokens": 10}) + "\n" for i in range(2)))
    return path


def test_two_evaluations_of_the_same_weights_differing_only_in_timings_share_a_key(tmp_path: Path) -> None:
    folder = model(tmp_path / "m")
    again = copy.deepcopy(EVALUATE)
    again["ratios"]["1.0"].update(latency_s=0.0456, throughput_tok_s=640.0)
    again["baselines"]["original"].update(latency_s=0.03, throughput_tok_s=512.0)
    again["seconds"] = 12.5
    per_question = rows(tmp_path / "pq.jsonl")
    assert content_key(folder, "model", EVALUATE, per_question) == content_key(folder, "model", again, per_question)
    assert "latency_s" not in json.dumps(evaluation_content(again)) and "seconds" not in evaluation_content(again)


def test_other_weights_figures_or_question_results_are_another_key(tmp_path: Path) -> None:
    folder = model(tmp_path / "m")
    key = content_key(folder, "model", EVALUATE, rows(tmp_path / "a.jsonl"))
    other_figures = copy.deepcopy(EVALUATE)
    other_figures["ratios"]["1.0"]["accuracy"] = 0.0
    other_settings = copy.deepcopy(EVALUATE)
    other_settings["decoding"]["max_new_tokens"] = 128
    assert content_key(folder, "model", other_figures, tmp_path / "a.jsonl") != key
    assert content_key(folder, "model", other_settings, tmp_path / "a.jsonl") != key
    assert content_key(folder, "model", EVALUATE, rows(tmp_path / "b.jsonl", correct=False)) != key
    assert content_key(model(tmp_path / "n", b"other"), "model", EVALUATE, tmp_path / "a.jsonl") != key
