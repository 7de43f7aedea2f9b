"""evaluate on the hand-written MATH-format fixture: the real stage command reads data.dataset math
from data.test_path and reports accuracy and CoT tokens per level and per subject; register turns
them into child-run metrics. A dataset without levels gets no breakdown (see test_evaluate.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tokenskip.register.runs import breakdown_figures

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "math_fixture.jsonl"
FIGURES = {"n", "accuracy", "mean_cot_tokens", "actual_ratio"}


def test_evaluate_stage_breaks_the_fixture_down_by_level_and_subject(tiny_model_dir: Path, tmp_path: Path):
    (tmp_path / "tokenskip").mkdir()
    (tmp_path / "tokenskip" / "model").symlink_to(tiny_model_dir)  # a full model folder
    (tmp_path / "data" / "math500").mkdir(parents=True)  # data.test_path: a file under data/
    (tmp_path / "data" / "math500" / "test.jsonl").write_bytes(FIXTURE.read_bytes())
    params = {"data": {"dataset": "math", "test_path": "data/math500/test.jsonl"},
              "evaluate": {"ratios": [0.5], "batch_size": 17, "max_new_tokens": 64, "latency_samples": 1,
                           "baselines": False, "n_outputs_per_condition": 1}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    command = [sys.executable, "-m", "tokenskip", "evaluate", "--base", str(tiny_model_dir),
               "--model", str(tmp_path / "tokenskip"), "--data", str(tmp_path / "nowhere"),
               "--report", str(tmp_path / "evaluate.json"), "--pareto", str(tmp_path / "pareto.csv"),
               "--plot", str(tmp_path / "pareto.png"), "--outputs", str(tmp_path / "outputs.jsonl"),
               "--per-question", str(tmp_path / "per_question.jsonl"), "--params", str(tmp_path / "params.yaml")]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads((tmp_path / "evaluate.json").read_text())
    print(json.dumps({k: v["breakdown"]["level"] for k, v in report["ratios"].items()}))
    assert report["n_test"] == 34
    for row in report["ratios"].values():
        levels, subjects = row["breakdown"]["level"], row["breakdown"]["subject"]
        assert list(levels) == ["1", "2", "3", "4", "5"]
        assert sum(group["n"] for group in levels.values()) == 34
        assert sum(group["n"] for group in subjects.values()) == 34 and len(subjects) == 7
        assert all(set(group) == FIGURES for group in [*levels.values(), *subjects.values()])
        for groups in (levels, subjects):  # the groups add up to the whole test set
            assert row["accuracy"] == round(sum(g["accuracy"] * g["n"] for g in groups.values()) / 34, 4)
            tokens = sum(g["mean_cot_tokens"] * g["n"] for g in groups.values()) / 34
            assert abs(row["mean_cot_tokens"] - tokens) < 0.01
    assert all(g["actual_ratio"] == 1.0 for g in report["ratios"]["1.0"]["breakdown"]["level"].values())

    metrics = breakdown_figures(report["ratios"]["0.5"])
    assert metrics["level.5.n"] == 6
    assert "subject.Counting _ Probability.accuracy" in metrics  # '&' is not allowed in MLflow names
    assert breakdown_figures({"accuracy": 0.5}) == {}
