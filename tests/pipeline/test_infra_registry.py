"""The register stage on the scale-out stack: MLflow server on PostgreSQL with artifacts in S3 (moto),
all started by infra/ scripts. Versions, aliases and tags live in PostgreSQL, model files in the
bucket, a second process loads the same champion; the database or the server going down mid-way
ends in one error, nothing registered, and a re-run that ends where an uninterrupted run ends."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.pipeline.infra_stack import Stack
from tests.pipeline.mlflow_fixtures import REGISTER_CMD as REGISTER
from tests.pipeline.mlflow_fixtures import register_on, write_workspace

pytestmark = pytest.mark.slow
QUESTION = "Tom has 3 apples and buys 5 more. How many apples does he have now?"
RUN_IDS = {"run_id", "parent_run_id", "finetune_run_id", "tokenskip.key"}  # differ between two runs
SECOND_PROCESS = """
import hashlib, json, sys
import mlflow
from tokenskip.register.weights import fetch_weights
model = mlflow.pyfunc.load_model(f"models:/{sys.argv[1]}@champion")
shared = model.model_config["weights"]["model"]  # the run's merged weights, stored once
weights = sorted(fetch_weights(shared).rglob("model.safetensors"))
rows = model.predict([sys.argv[2]])
print(json.dumps({"shared": shared, "sha256": [hashlib.sha256(w.read_bytes()).hexdigest() for w in weights],
                  "rows": rows}))
"""


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def registry_state(uri: str, name: str) -> dict[str, tuple[dict, list[str]]]:
    """{ratio: (version tags less run ids, aliases)} of a registered model."""
    mc = client(uri)
    found = [mc.get_model_version(name, v.version) for v in mc.search_model_versions(f"name = '{name}'")]
    return {  # (search results carry no aliases: hence get_model_version)
        v.tags["ratio"]: ({k: t for k, t in v.tags.items() if k not in RUN_IDS}, sorted(v.aliases))
        for v in found
    }


@pytest.fixture(scope="module")
def uninterrupted(infra_stack: Stack, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """One register run on the stack, start to end: (workspace, register.json)."""
    root = write_workspace(tmp_path_factory.mktemp("pg-register"), tiny_model_dir)
    return root, register_on(infra_stack.tracking_uri, root)


def test_registry_lives_in_postgres_and_artifacts_in_the_bucket(infra_stack: Stack, uninterrupted) -> None:
    import sqlalchemy

    root, report = uninterrupted
    name, uri = report["registered_model"], infra_stack.tracking_uri
    assert report["tracking_uri"] == uri and report["created_versions"] == 4
    state = registry_state(uri, name)
    assert {ratio: aliases for ratio, (_, aliases) in state.items()} == {
        "0.5": [],
        "0.6": ["champion"],
        "0.7": ["challenger"],
        "1.0": [],
    }
    assert state["0.6"][0]["gate"] == "passed" and state["0.5"][0]["gate"] == "failed"
    assert state["0.6"][0]["accuracy"] == "0.76" and state["1.0"][0]["gate_reason"].startswith(
        "token reduction"
    )

    # the registry's rows are in PostgreSQL (the server's backend store), not in a local file
    engine = sqlalchemy.create_engine(infra_stack.recorded["MLFLOW_BACKEND_STORE_URI"])
    with engine.connect() as db:
        query = "SELECT alias, version FROM registered_model_aliases WHERE name = :n"
        aliases = db.execute(sqlalchemy.text(query), {"n": name}).all()
        count = "SELECT count(*) FROM model_versions WHERE name = :n"
        assert db.execute(sqlalchemy.text(count), {"n": name}).scalar() == 4
    engine.dispose()
    mc = client(uri)
    champion, challenger = (mc.get_model_version_by_alias(name, a) for a in ("champion", "challenger"))
    assert dict(aliases) == {"champion": int(champion.version), "challenger": int(challenger.version)}

    # every model file, the samples and the reports landed in the S3 bucket; the weights once, in
    # the finetune run, referenced by every version (none carries a copy)
    keys = infra_stack.keys("tokenskip-mlflow", "artifacts/")
    mine = [k for k in keys if champion.source.removeprefix("models:/") in k]  # source: models:/<model id>
    assert any(k.endswith("/MLmodel") for k in mine) and not any(k.endswith("model.safetensors") for k in mine)
    finetune_run = mc.get_logged_model(champion.source.removeprefix("models:/")).tags["finetune_run_id"]
    assert any(k.endswith(f"{finetune_run}/artifacts/model/model.safetensors") for k in keys)
    assert any(k.endswith(f"{champion.run_id}/artifacts/outputs.jsonl") for k in keys)
    assert any(k.endswith(f"{report['parent_run_id']}/artifacts/reports/pareto.png") for k in keys)


def test_second_process_loads_the_same_champion(infra_stack: Stack, uninterrupted, monkeypatch) -> None:
    import mlflow

    root, report = uninterrupted
    name = report["registered_model"]
    done = subprocess.run(
        [sys.executable, "-c", SECOND_PROCESS, name, QUESTION],
        env={**infra_stack.env(), "TOKENSKIP_WEIGHTS_CACHE": str(root / "weights-cache")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    other = json.loads(done.stdout.strip().splitlines()[-1])
    source = hashlib.sha256((root / "models/tokenskip/model/model.safetensors").read_bytes()).hexdigest()
    assert other["sha256"] == [source]  # the very weights the pipeline fine-tuned
    monkeypatch.setenv("MLFLOW_TRACKING_URI", infra_stack.tracking_uri)
    here = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict([QUESTION])
    assert other["rows"] == here and here[0]["ratio"] == pytest.approx(0.6)


def wait_for_a_logged_model(
    uri: str, experiment: str, proc: subprocess.Popen, timeout_s: float = 240
) -> None:
    """Block until the register process has logged its first ratio's model (mid-way through)."""
    mc = client(uri)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"register ended early:\n{proc.communicate()[1][-2000:]}"
        found = mc.get_experiment_by_name(experiment)
        if found is not None:
            runs = mc.search_runs([found.experiment_id], "tags.`tokenskip.role` = 'ratio'")
            if any("tokenskip.model_id" in run.data.tags for run in runs):
                return
        time.sleep(0.3)
    pytest.fail("register did not log a model in time")


@pytest.mark.parametrize("service", ["postgres", "mlflow"])
def test_service_down_mid_way_fails_once_and_a_rerun_completes(
    service: str, infra_stack: Stack, uninterrupted, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The database (or the tracking server) stops while register logs its models: retries with
    backoff, then ONE error line and exit 1, and nothing in the registry; once the service is back,
    a re-run ends in the registry state of the uninterrupted run (same versions, tags, aliases)."""
    name = f"tokenskip-fault-{uuid.uuid4().hex[:8]}"
    root = write_workspace(tmp_path, tiny_model_dir, name=name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["mlflow"].update(retries=3, retry_backoff_s=0.5)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    uri, env = infra_stack.tracking_uri, infra_stack.env()
    proc = subprocess.Popen(
        REGISTER, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_a_logged_model(uri, params["mlflow"]["experiment"], proc)
        infra_stack.script(f"stop-{service}")
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        infra_stack.script(f"start-{service}")
    assert proc.returncode == 1
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors == [stderr.strip().splitlines()[-1]]
    assert errors[0].startswith(f"error: MLflow tracking at {uri} unreachable: ")
    assert "failed after 3 attempt(s)" in errors[0] and "re-run the stage" in errors[0]
    assert client(uri).search_model_versions(f"name = '{name}'") == []  # nothing half-registered
    assert not (root / "reports/register.json").exists()

    report = register_on(uri, root)  # the re-run (in this process: the CLI's exit path is above)
    expected = registry_state(uri, uninterrupted[1]["registered_model"])
    assert registry_state(uri, name) == expected
    assert report["created_versions"] == 4 and report["champion"]["ratio"] == 0.6
    mc = client(uri)
    children = mc.search_runs(
        [mc.get_experiment_by_name(params["mlflow"]["experiment"]).experiment_id],
        f"tags.`mlflow.parentRunId` = '{report['parent_run_id']}'",
    )
    assert len(children) == 5  # four ratios + finetune: the re-run reused the runs it had made
