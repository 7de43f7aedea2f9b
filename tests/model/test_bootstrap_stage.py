"""The ``tokenskip base-model`` command: tiny end-to-end training, and named models (no training)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tokenskip.base_model.cli import base_model
from tokenskip.core.hf import load_causal_lm, resolve_base_model
from tokenskip.data.synthetic import write_synthetic

TINY_BASE = {
    "hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64, "initializer_range": 0.02,
    "vocab_size": 384, "seq_len": 1024, "batch_size": 8, "learning_rate": 0.005, "warmup_steps": 5,
    "max_steps": 20, "eval_batch_size": 8, "eval_max_new_tokens": 16, "min_accuracy": 0.0, "num_processes": 1,
}


def _params(tmp_path: Path, model: dict | None = None, base: dict | None = None) -> Path:
    path = tmp_path / "params.yaml"
    raw = {"data": {"n_test": 8}, "model": model or {"name": "bootstrap"}, "base_model": base or TINY_BASE}
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _run_cli(tmp_path: Path, params: Path) -> subprocess.CompletedProcess:
    """The real command line (error handling and exit code are the CLI's contract)."""
    args = ["--data", tmp_path / "data", "--out", tmp_path / "models" / "base",
            "--report", tmp_path / "reports" / "base-model.json", "--params", params]
    return subprocess.run(
        [sys.executable, "-m", "tokenskip", "base-model", *map(str, args)],
        capture_output=True, text=True, cwd=tmp_path,
    )


def _run(tmp_path: Path, params: Path) -> None:
    """The stage command in-process (no interpreter start-up: keeps the tests fast)."""
    base_model(
        data=tmp_path / "data", out=tmp_path / "models" / "base",
        report=tmp_path / "reports" / "base-model.json", params=params,
    )


@pytest.mark.slow
def test_bootstrap_stage_writes_loadable_model_and_report(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "data" / "synthetic", seed=5, n_train=150, n_test=8)
    _run(tmp_path, _params(tmp_path))
    report = json.loads((tmp_path / "reports" / "base-model.json").read_text())
    for key in ("parameters", "steps", "train_seconds", "tokens_per_s", "final_loss", "accuracy"):
        assert report[key] is not None, key
    assert report["steps"] == TINY_BASE["max_steps"] and report["n_test"] == 8
    import torch

    environment = report["environment"]  # why two machines' floats may differ
    assert environment["torch"] == torch.__version__
    assert environment["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert environment["deterministic_algorithms"] is True
    name, revision = resolve_base_model(tmp_path / "models" / "base")
    model, tokenizer = load_causal_lm(name, revision, device="cpu")
    assert sum(p.numel() for p in model.parameters()) == report["parameters"]
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["base"]


def test_named_folder_without_tokenizer_stops_with_one_clear_line(tmp_path: Path, tiny_model_dir: Path) -> None:
    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    (folder / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    result = _run_cli(tmp_path, _params(tmp_path, model={"name": str(folder)}))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model.name:") and str(folder) in lines[0]
    assert "tokenizer" in lines[0]
    assert not (tmp_path / "models" / "base").exists() and not (tmp_path / "reports").exists()


def test_named_local_folder_is_recorded_without_training(tmp_path: Path, tiny_model_dir: Path) -> None:
    _run(tmp_path, _params(tmp_path, model={"name": str(tiny_model_dir)}))
    pointer = json.loads((tmp_path / "models" / "base" / "model.json").read_text())
    assert pointer == {"name": str(tiny_model_dir), "revision": None, "path": str(tiny_model_dir.resolve()),
                       "source": "local"}
    report = json.loads((tmp_path / "reports" / "base-model.json").read_text())
    assert report["trained"] is False and report["steps"] == 0
    assert resolve_base_model(tmp_path / "models" / "base")[0] == str(tiny_model_dir.resolve())


def test_an_uncached_hub_id_offline_stops_with_one_clear_line(tmp_path: Path) -> None:
    """Offline, a hub id that is not in the local cache cannot be loaded by any later stage: exit 2,
    nothing written (it used to record a pointer and exit 0)."""
    result = _run_cli(tmp_path, _params(tmp_path, model={"name": "org/not-cached-anywhere", "revision": "main"}))
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model.name: org/not-cached-anywhere@main: not in the ")
    assert "offline" in lines[0]
    assert not (tmp_path / "models" / "base").exists() and not (tmp_path / "reports").exists()


def test_rows_shorter_than_an_example_stop_with_one_clear_line(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "data" / "synthetic", seed=5, n_train=20, n_test=2)
    result = _run_cli(tmp_path, _params(tmp_path, base={**TINY_BASE, "seq_len": 100}))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: base_model.seq_len: 100 is shorter")
    assert not (tmp_path / "models" / "base").exists()


def test_a_bootstrap_model_below_the_accuracy_floor_stops_the_pipeline(tmp_path: Path) -> None:
    # 20 steps learn nothing: accuracy 0.0 is below any positive floor
    write_synthetic(tmp_path / "data" / "synthetic", seed=5, n_train=40, n_test=8)
    result = _run_cli(tmp_path, _params(tmp_path, base={**TINY_BASE, "min_accuracy": 0.5}))
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    report = tmp_path / "reports" / "base-model.json"
    assert len(lines) == 1 and lines[0].startswith(f"error: {report}: accuracy: 0.000 is below base_model.min_accuracy")
    assert json.loads(report.read_text())["min_accuracy"] == 0.5  # the report is there to look at
