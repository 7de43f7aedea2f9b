"""A fine-tuned model belongs to the base model it was trained on: finetune records the base model's
content fingerprint in its manifest, and evaluate and register refuse another base model (one line,
exit 2) instead of scoring an adapter on the wrong weights (accuracy 0 at every g, exit 0)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipeline.mlflow_fixtures import REGISTER_CMD, write_workspace
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.manifest import FINGERPRINT_KEY, base_fingerprint, check_base_model


def base(folder: Path, weights: bytes) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "qwen2"}')
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def finetuned(folder: Path, trained_on: Path) -> Path:
    (folder / "adapter").mkdir(parents=True)
    (folder / "adapter" / "adapter_config.json").write_text("{}")
    manifest = {"method": "lora", "base": str(trained_on), "ratios": [0.5, 1.0],
                FINGERPRINT_KEY: base_fingerprint(str(trained_on), None)}
    (folder / "tokenskip.json").write_text(json.dumps(manifest))
    return folder


def test_the_fingerprint_follows_the_files_not_the_path(tmp_path: Path) -> None:
    original = base(tmp_path / "a", b"weights of a")
    model = finetuned(tmp_path / "tokenskip", original)
    copy = shutil.copytree(original, tmp_path / "copied")
    check_base_model(model, copy)  # the same files elsewhere: fine
    other = base(tmp_path / "b", b"weights of b")
    with pytest.raises(TokenSkipError) as info:
        check_base_model(model, other)
    message = str(info.value)
    assert message.startswith(f"{model / 'tokenskip.json'}: fine-tuned on the base model with fingerprint ")
    assert f"but {other} holds another one" in message and "\n" not in message
    (model / "tokenskip.json").write_text(json.dumps({"method": "lora", "ratios": [0.5, 1.0]}))
    check_base_model(model, other)  # a manifest from before fingerprints: nothing to check


def test_evaluate_refuses_another_base_model_in_one_line(tmp_path: Path) -> None:
    model = finetuned(tmp_path / "tokenskip", base(tmp_path / "a", b"weights of a"))
    other = base(tmp_path / "b", b"weights of b")
    (tmp_path / "params.yaml").write_text("{}\n")
    done = subprocess.run(
        [sys.executable, "-m", "tokenskip", "evaluate", "--base", str(other), "--model", str(model),
         "--report", str(tmp_path / "evaluate.json"), "--params", str(tmp_path / "params.yaml")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "fine-tuned on the base model" in lines[0]
    assert not (tmp_path / "evaluate.json").exists()


def test_register_refuses_another_base_model_before_tracking(tmp_path: Path, tiny_model_dir: Path) -> None:
    root = write_workspace(tmp_path, tiny_model_dir)
    finetuned(tmp_path / "elsewhere", base(tmp_path / "a", b"weights of a"))
    shutil.copy(tmp_path / "elsewhere" / "tokenskip.json", root / "models" / "tokenskip" / "tokenskip.json")
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "TOKENSKIP_PARENT_RUN_ID")}
    done = subprocess.run(REGISTER_CMD, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "models/tokenskip/tokenskip.json: fine-tuned on the base model" in lines[0]
    assert not (root / "mlflow").exists() and not (root / "reports" / "register.json").exists()
