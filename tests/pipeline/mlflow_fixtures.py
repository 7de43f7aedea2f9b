"""Fixtures of the register/serving tests: a REAL ``mlflow server`` (started by mlflow/server.sh on a
free 127.0.0.1 port, SQLite in a temp folder) and a register workspace (reports + model folders)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = REPO / "mlflow" / "server.sh"

# g -> (accuracy, mean CoT tokens): 0.5 drops too much accuracy and 1.0 saves no tokens, so 0.6
# (the most compressive passing ratio) is the champion and 0.7 the challenger.
RATIOS = [0.5, 0.6, 0.7]
# `tokenskip register` exactly as dvc.yaml calls it (run from the workspace root)
REGISTER_CMD = [
    sys.executable,
    "-m",
    "tokenskip",
    "register",
    "--evaluate",
    "reports/evaluate.json",
    "--finetune-report",
    "reports/finetune.json",
    "--model",
    "models/tokenskip",
    "--base",
    "models/base",
    "--reports",
    "reports",
    "--report",
    "reports/register.json",
]
RUN_1 = {1.0: (0.80, 100.0), 0.7: (0.78, 69.0), 0.6: (0.76, 60.0), 0.5: (0.70, 52.0)}


def evaluate_report(table: dict[float, tuple[float, float]], n_test: int = 100) -> dict:
    """An evaluate.json in the DESIGN.md shape from {g: (accuracy, tokens)}."""
    ref_tokens = table[1.0][1]
    ratios = {
        f"{g:.1f}": {
            "accuracy": acc,
            "mean_cot_tokens": tok,
            "actual_ratio": tok / ref_tokens,
            "latency_s": 0.01 * tok,
            "throughput_tok_s": 1000.0 - tok,
        }
        for g, (acc, tok) in table.items()
    }
    baselines = {
        "original": {"accuracy": 0.5, "mean_cot_tokens": 120.0, "actual_ratio": 1.0},
        "truncation_0.5": {"accuracy": 0.05, "mean_cot_tokens": 60.0, "actual_ratio": 0.5},
    }
    return {"n_test": n_test, "ratios": ratios, "baselines": baselines}


FINETUNE_REPORT = {
    "method": "lora",
    "steps": 4,
    "seconds": 1.5,
    "tokens": 4000,
    "tokens_per_s": 2666.7,
    "final_loss": 1.25,
    "trainable_parameters": 1234,
    "total_parameters": 99999,
    "n_samples": 32,
    "truncated_samples": 0,
    "loss_history": [
        {"step": 1, "loss": 2.5},
        {"step": 2, "loss": 2.0},
        {"step": 3, "loss": 1.5},
        {"step": 4, "loss": 1.25},
    ],
}


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow/server.sh start`` in a temp folder; yields the tracking URI; stopped at the end."""
    folder = tmp_path_factory.mktemp("mlflow-server")
    env = {**os.environ, "MLFLOW_SERVER_DIR": str(folder), "MLFLOW_SERVER_START_TIMEOUT": "120"}
    env.pop("MLFLOW_SERVER_PORT", None)
    started = subprocess.run(
        [str(SERVER_SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=180
    )
    assert started.returncode == 0, f"server.sh start failed:\n{started.stdout}\n{started.stderr}"
    uri = started.stdout.strip().splitlines()[-1].split("=", 1)[1]
    try:
        yield uri
    finally:
        subprocess.run([str(SERVER_SCRIPT), "stop"], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture()
def tracking_env(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """This test talks to the fixture's server; a fresh experiment name keeps tests apart."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.delenv("TOKENSKIP_PARENT_RUN_ID", raising=False)
    return mlflow_server


def write_workspace(
    root: Path, tiny_model_dir: Path, table: dict | None = None, name: str | None = None
) -> Path:
    """models/{base,tokenskip/model}, reports/{evaluate,finetune}.json, samples, plot, docs, params."""
    import yaml

    models = root / "models"
    if not (models / "base").exists():
        shutil.copytree(tiny_model_dir, models / "base")
        shutil.copytree(tiny_model_dir, models / "tokenskip" / "model")
    reports = root / "reports"
    (reports / "validation").mkdir(parents=True, exist_ok=True)
    (reports / "validation" / "index.html").write_text("<html>data docs</html>")
    (reports / "pareto.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (reports / "evaluate.json").write_text(json.dumps(evaluate_report(table or RUN_1)))
    (reports / "finetune.json").write_text(json.dumps(FINETUNE_REPORT))
    samples = [
        {"method": "tokenskip", "g": g, "id": f"q{i}", "output": "1 + 1 = 2"} for g in RUN_1 for i in range(2)
    ]
    (reports / "outputs.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    if (root / "params.yaml").exists():
        return root
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["mlflow"].update(
        experiment=f"test-{uuid.uuid4().hex[:8]}",
        registered_model=name or f"tokenskip-test-{uuid.uuid4().hex[:8]}",
        retries=2,
        retry_backoff_s=0.1,
    )
    params["evaluate"].update(max_new_tokens=24, ratios=RATIOS)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


@pytest.fixture()
def workspace(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A register workspace in tmp (the test's working directory)."""
    monkeypatch.chdir(tmp_path)
    return write_workspace(tmp_path, tiny_model_dir)


def run_register(root: Path) -> dict:
    """``tokenskip register`` in-process on the workspace (as dvc.yaml calls it); returns register.json."""
    from tokenskip.core.params import load_params
    from tokenskip.register.registration import RegisterInputs, register

    params_path = root / "params.yaml"
    inputs = RegisterInputs(
        root / "reports/evaluate.json",
        root / "reports/finetune.json",
        root / "models/tokenskip",
        root / "models/base",
        root / "reports",
    )
    return register(inputs, load_params(params_path), params_path.read_text())


def register_on(server_uri: str, root: Path) -> dict:
    """Run register on the workspace against the server, outside any test's monkeypatch."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", server_uri)
        patch.delenv("TOKENSKIP_PARENT_RUN_ID", raising=False)
        return run_register(root)
