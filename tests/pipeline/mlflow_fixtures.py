"""Fixtures of the register/serving tests: a REAL ``mlflow server`` (started by mlflow/server.sh on a
free 127.0.0.1 port, SQLite in a temp folder) and a register workspace (reports + model folders)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = REPO / "mlflow" / "server.sh"

# g -> (accuracy, mean CoT tokens): 0.5 drops too much accuracy and 1.0 saves no tokens, so 0.6
# (the most compressive passing ratio) is the champion and 0.7 the challenger.
RATIOS = [0.5, 0.6, 0.7]


def stage_command(stage: str) -> list[str]:
    """The stage's command exactly as dvc.yaml writes it, run by this interpreter (from the workspace root)."""
    import yaml

    words = shlex.split(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["cmd"])
    assert words[0] == "tokenskip", words
    return [sys.executable, "-m", "tokenskip", *words[1:]]


REGISTER_CMD = stage_command("register")
RUN_1 = {1.0: (0.80, 100.0), 0.7: (0.78, 69.0), 0.6: (0.76, 60.0), 0.5: (0.70, 52.0)}


CI_HALF_WIDTH = 0.005  # of every paired interval in the fixture's evaluate.json


def paired_block(acc: float, tok: float, ref_acc: float, ref_tokens: float) -> dict:
    """One ratio against one reference, intervals of +-CI_HALF_WIDTH around the point estimates."""
    drop, reduction = round(ref_acc - acc, 6), round(1 - tok / ref_tokens, 6)
    w = CI_HALF_WIDTH
    return {"accuracy_drop": drop, "accuracy_drop_ci": [round(drop - w, 6), round(drop + w, 6)],
            "token_reduction": reduction, "token_reduction_ci": [round(reduction - w, 6), round(reduction + w, 6)],
            "mcnemar_p": 0.5}


def evaluate_report(table: dict[float, tuple[float, float]], n_test: int = 100) -> dict:
    """An evaluate.json in the DESIGN.md shape from {g: (accuracy, tokens)}; the original model
    scores as g = 1.0 does, so the drops against both references are the same."""
    ref_acc, ref_tokens = table[1.0]
    ratios = {
        f"{g:.1f}": {
            "accuracy": acc,
            "accuracy_ci": [round(acc - 0.05, 4), round(acc + 0.05, 4)],
            "mean_cot_tokens": tok,
            "actual_ratio": tok / ref_tokens,
            "latency_s": 0.01 * tok,
            "throughput_tok_s": 1000.0 - tok,
            "paired": {ref: paired_block(acc, tok, ref_acc, ref_tokens) for ref in ("original", "g1")},
        }
        for g, (acc, tok) in table.items()
    }
    baselines = {
        "original": {"accuracy": ref_acc, "mean_cot_tokens": ref_tokens, "actual_ratio": 1.0,
                     "latency_s": 0.01 * ref_tokens},
        "truncation_0.5": {"accuracy": 0.05, "mean_cot_tokens": 60.0, "actual_ratio": 0.5},
    }
    return {"n_test": n_test, "ratios": ratios, "baselines": baselines}


def per_question_rows(table: dict[float, tuple[float, float]], n: int = 4) -> list[dict]:
    """Per-question rows of every ratio (``condition`` g=<g>), as evaluate writes them."""
    return [{"condition": f"g={g:.1f}", "id": f"synthetic-test-{i:05d}", "correct": i < round(acc * n),
             "cot_tokens": int(tok), "new_tokens": int(tok) + 8, "prediction": "2", "output": "1 + 1 = 2"}
            for g, (acc, tok) in table.items() for i in range(n)]


TEST_SET = [{"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"} for i in range(4)]


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
    per_question = root / "artifacts" / "evaluate" / "per_question.jsonl"
    per_question.parent.mkdir(parents=True, exist_ok=True)
    per_question.write_text("".join(json.dumps(r) + "\n" for r in per_question_rows(table or RUN_1)))
    test_set = root / "data" / "synthetic" / "test.jsonl"
    test_set.parent.mkdir(parents=True, exist_ok=True)
    test_set.write_text("".join(json.dumps(r) + "\n" for r in TEST_SET))
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

    return run_register_with(root, load_params(root / "params.yaml"))


def run_register_with(root: Path, params: Any) -> dict:
    """``tokenskip register`` in-process on the workspace with these params; returns register.json."""
    from tokenskip.register.inputs import RegisterInputs
    from tokenskip.register.registration import register

    params_path = root / "params.yaml"
    inputs = RegisterInputs(
        root / "reports/evaluate.json",
        root / "reports/finetune.json",
        root / "models/tokenskip",
        root / "models/base",
        root / "reports",
        root / "artifacts/evaluate/per_question.jsonl",
        root / "data/synthetic/test.jsonl",
    )
    return register(inputs, params, params_path.read_text())


def register_on(server_uri: str, root: Path) -> dict:
    """Run register on the workspace against the server, outside any test's monkeypatch."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", server_uri)
        patch.delenv("TOKENSKIP_PARENT_RUN_ID", raising=False)
        return run_register(root)
