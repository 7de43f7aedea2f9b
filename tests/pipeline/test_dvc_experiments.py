"""`dvc exp run` does not promote: it leaves ``@champion`` and ``@challenger`` where the workspace
run put them, and does not rewrite the versions the workspace registered (new models it registers
are tagged with the experiment's baseline commit)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from tests.pipeline.flow_helpers import DVC, run
from tests.pipeline.mlflow_fixtures import REGISTER_CMD, write_workspace

pytestmark = pytest.mark.slow


def register_repo(root: Path) -> None:
    """A git + DVC repository whose one stage is `tokenskip register` as dvc.yaml calls it."""
    stage = {
        "cmd": shlex.join(REGISTER_CMD),
        "deps": ["reports/evaluate.json", "reports/finetune.json", "artifacts/evaluate/per_question.jsonl"],
        "params": ["gates", "mlflow"],
        "metrics": [{"reports/register.json": {"cache": False}}, {"reports/metrics.json": {"cache": False}}],
    }
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"register": stage}}, sort_keys=False))
    (root / ".gitignore").write_text("models/\nmlflow/\n")
    run(["git", "init", "-q"], root)
    run([DVC, "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "register workspace"], root)


def aliases(uri: str, name: str) -> dict[str, str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return {alias: client.get_model_version_by_alias(name, alias).version for alias in ("champion", "challenger")}


def test_an_experiment_registers_without_moving_the_aliases(
    mlflow_server: str, tiny_model_dir: Path, tmp_path: Path
) -> None:
    root = write_workspace(tmp_path, tiny_model_dir)
    register_repo(root)
    env = {"MLFLOW_TRACKING_URI": mlflow_server}
    run([DVC, "repro"], root, env=env)
    report = json.loads((root / "reports/register.json").read_text())
    name = report["registered_model"]
    before = aliases(mlflow_server, name)
    assert report["aliases_moved"] and report["champion"]["ratio"] == 0.6

    # a looser gate would promote g=0.5 (drop 0.10): as an experiment it must not
    run([DVC, "exp", "run", "-S", "gates.max_accuracy_drop=0.2"], root, env=env)
    experiment = json.loads((root / "reports/register.json").read_text())
    assert experiment["aliases_moved"] is False
    assert next(v for v in experiment["versions"] if v["ratio"] == 0.5)["verdict"] == "passed"
    assert aliases(mlflow_server, name) == before

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    registered = {v.tags["ratio"]: v for v in client.search_model_versions(f"name = '{name}'")}
    assert len(registered) == 4  # same model, same evaluation: no second version
    assert registered["0.5"].tags["gate"] == "failed"  # the workspace's verdict stands
