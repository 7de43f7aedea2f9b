"""The registered champion answers: through ``mlflow.pyfunc.load_model`` and ``mlflow models serve``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.pipeline.flow_helpers import free_port, stop_process_group
from tests.pipeline.mlflow_fixtures import register_on, write_workspace

pytestmark = pytest.mark.slow
QUESTION = "Tom has 3 apples and buys 5 more. How many apples does he have now?"
SERVE_STARTUP_S = 120


@pytest.fixture(scope="module")
def champion(mlflow_server: str, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A registered model (champion at g = 0.6) on the fixture's server; yields its name."""
    root = write_workspace(tmp_path_factory.mktemp("serve-workspace"), tiny_model_dir)
    report = register_on(mlflow_server, root)
    assert report["champion"]["ratio"] == 0.6
    return report["registered_model"]


def check_rows(rows: list[dict], ratio: float) -> None:
    assert len(rows) == 1
    row = rows[0]
    assert set(row) == {"cot", "answer", "ratio", "output", "cot_tokens"}
    assert isinstance(row["cot"], str) and isinstance(row["output"], str)
    assert row["answer"] is None or isinstance(row["answer"], str)
    assert row["ratio"] == pytest.approx(ratio)
    assert 0 <= row["cot_tokens"] <= 24  # evaluate.max_new_tokens of the workspace
    assert row["output"].startswith(row["cot"])


def test_load_model_by_alias_predicts_with_default_and_overridden_ratio(
    champion: str, mlflow_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    model = mlflow.pyfunc.load_model(f"models:/{champion}@champion")
    check_rows(model.predict([QUESTION]), 0.6)
    check_rows(model.predict([QUESTION], params={"ratio": 0.7}), 0.7)
    schema = {p.name: p.default for p in model.metadata.get_params_schema().params}
    assert schema == {"ratio": 0.6, "max_new_tokens": 24}


def test_mlflow_models_serve_answers_a_json_question(
    champion: str, mlflow_server: str, tmp_path: Path
) -> None:
    port = free_port()
    bin_dir = Path(sys.executable).parent  # `mlflow models serve` execs `uvicorn` from PATH
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    }
    mlflow_cli = bin_dir / "mlflow"
    log = (tmp_path / "serve.log").open("w")
    cmd = [
        str(mlflow_cli),
        "models",
        "serve",
        "-m",
        f"models:/{champion}@champion",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "1",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVE_STARTUP_S
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"mlflow models serve did not start:\n{(tmp_path / 'serve.log').read_text()[-3000:]}"
                    )
                time.sleep(0.5)

        def ask(payload: dict) -> list[dict]:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/invocations",
                data=json.dumps(payload).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())["predictions"]

        check_rows(ask({"inputs": [QUESTION]}), 0.6)
        check_rows(ask({"inputs": [QUESTION], "params": {"ratio": 0.5}}), 0.5)
    finally:
        stop_process_group(proc)
        log.close()




def test_adapter_only_model_is_packaged_with_its_base(
    mlflow_server: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """finetune.merge=false leaves only adapter/: the version carries adapter + base and still answers."""
    from peft import LoraConfig, get_peft_model

    import mlflow
    from tokenskip.core.hf import load_causal_lm
    from tokenskip.register.pyfunc_model import INPUT_EXAMPLE, log_pyfunc
    from tokenskip.tracking.store import globally

    base, _ = load_causal_lm(str(tiny_model_dir), device="cpu")
    adapter = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules="all-linear"))
    adapter.save_pretrained(str(tmp_path / "tokenskip" / "adapter"))
    with globally(mlflow_server):
        experiment = mlflow.create_experiment(f"adapter-{tmp_path.name}")
        with mlflow.start_run(experiment_id=experiment):
            info = log_pyfunc(tmp_path / "tokenskip", tiny_model_dir, 0.5, "Solve.", 8, 1)
        model = mlflow.pyfunc.load_model(info.model_uri)
    artifacts = model.metadata.flavors["python_function"]["artifacts"]
    assert sorted(artifacts) == ["adapter", "base"]
    check_rows(model.predict([QUESTION]), 0.5)
    flavor = model.metadata.flavors["python_function"]
    assert flavor.get("model_code_path", "").endswith("pyfunc_entry.py")  # models-from-code
    with globally(mlflow_server):
        files = {p.name for p in Path(mlflow.artifacts.download_artifacts(info.model_uri)).rglob("*")}
    assert "python_model.pkl" not in files  # loading a version unpickles nothing
    example = model.input_example  # saved with the version, what the registry UI shows
    assert list(example) == INPUT_EXAMPLE or list(example.iloc[:, 0]) == INPUT_EXAMPLE
