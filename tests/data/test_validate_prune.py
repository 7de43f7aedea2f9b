"""Contract test: what `tokenskip prune` writes (real chat template, real tokenizer, real ratio tags)
passes every record-level expectation of `tokenskip validate`, whose token recounts (same --base
tokenizer) agree with the counts prune recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tokenskip.cli import app
from tokenskip.core.hf import load_tokenizer
from tokenskip.core.io import write_jsonl
from tokenskip.core.problems import split_gold
from tokenskip.data.synthetic import generate_problems

# Aggregate rules: on 48 questions the drawn ratio mix and the per-ratio means are noisy.
AGGREGATE = {"pruned_ratios.mean_actual_ratio_on_target", "training_ratio_mix.uniform"}


def _cot_records(model_dir: Path, n: int, max_tokens: int) -> list[dict]:
    """Correct-by-construction cot records: the gold solution is the CoT."""
    tokenizer = load_tokenizer(str(model_dir))
    records = []
    for i, row in enumerate(generate_problems(11, 3 * n)):
        solution, gold = split_gold(row["answer"])
        tokens = len(tokenizer(solution, add_special_tokens=False)["input_ids"])
        if tokens <= max_tokens:
            records.append({"id": f"train-{i:05d}", "question": row["question"], "gold": gold,
                            "output": f"{solution}\nThe answer is {gold}.", "cot": solution,
                            "prediction": gold, "correct": True, "cot_tokens": tokens})
    return records[:n]


@pytest.mark.slow
def test_prune_output_passes_validate(tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text(yaml.safe_dump({
        "generate": {"max_cot_tokens": 250},
        "prune": {"ratios": [0.5, 0.7, 0.9], "force_digits": True, "batch_size": 16, "threads": 1},
    }), encoding="utf-8")
    write_jsonl("cot.jsonl", _cot_records(tiny_model_dir, 48, 250))
    runner = CliRunner()
    pruned = runner.invoke(app, ["prune", "--base", str(tiny_model_dir), "--cot", "cot.jsonl",
                                 "--out", "prune", "--report", "prune.json"])
    assert pruned.exit_code == 0, pruned.output
    result = runner.invoke(app, ["validate", "--cot", "cot.jsonl", "--pruned", "prune",
                                 "--base", str(tiny_model_dir), "--report", "validate.json",
                                 "--docs", "validation"])
    report = json.loads(Path("validate.json").read_text())
    assert {f["name"] for f in report["failures"]} <= AGGREGATE, result.output
    assert report["suites"]["training_samples"]["rows"] == 48
    assert report["suites"]["pruned_cots"]["rows"] == 3 * 48
