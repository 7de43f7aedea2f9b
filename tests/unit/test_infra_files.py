"""infra/: the shell scripts parse and stop on errors, and compose.yaml (which cannot run here)
keeps the scripts' settings: names of the database, user, buckets, work pool, keys and variables."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

INFRA = Path(__file__).resolve().parents[2] / "infra"
SCRIPTS = sorted(INFRA.glob("*.sh"))


def default(script: str, variable: str) -> str:
    """The ``${VARIABLE:-default}`` of an infra script."""
    found = re.search(rf"\${{{variable}:-([^}}]+)}}", (INFRA / script).read_text())
    assert found, f"{script}: no default for {variable}"
    return found.group(1)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((INFRA / "compose.yaml").read_text())["services"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_and_stop_on_errors(script: Path) -> None:
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    if script.name != "lib.sh":  # sourced by the others
        assert "set -euo pipefail" in script.read_text()


def test_compose_database_matches_start_postgres(compose: dict) -> None:
    env = compose["postgres"]["environment"]
    assert env["POSTGRES_USER"] == default("start-postgres.sh", "POSTGRES_USER") == "mlflow"
    assert env["POSTGRES_DB"] == default("start-postgres.sh", "POSTGRES_DB")
    uri = compose["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
    assert uri.startswith("postgresql+psycopg2://mlflow:") and uri.endswith("@postgres:5432/mlflow")
    assert "postgresql+psycopg2://" in (INFRA / "start-postgres.sh").read_text()


def test_compose_object_store_matches_start_s3(compose: dict) -> None:
    s3_script = (INFRA / "start-s3.sh").read_text()
    mlflow_bucket = default("start-s3.sh", "S3_MLFLOW_BUCKET")
    dvc_bucket = default("start-s3.sh", "S3_DVC_BUCKET")
    assert (mlflow_bucket, dvc_bucket) == ("tokenskip-mlflow", "tokenskip-dvc")
    make_buckets = compose["buckets"]["command"][0]
    assert (
        f"S3_MLFLOW_BUCKET:-{mlflow_bucket}" in make_buckets
        and f"S3_DVC_BUCKET:-{dvc_bucket}" in make_buckets
    )
    destination = compose["mlflow"]["environment"]["MLFLOW_ARTIFACTS_DESTINATION"]
    assert destination == f"s3://${{S3_MLFLOW_BUCKET:-{mlflow_bucket}}}/artifacts"
    assert 'record_env MLFLOW_ARTIFACTS_DESTINATION "s3://$MLFLOW_BUCKET/artifacts"' in s3_script
    assert 'record_env TOKENSKIP_DVC_REMOTE_URL "s3://$DVC_BUCKET/dvc"' in s3_script
    keys = compose["buckets"]["environment"]
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        assert keys[name] == f"${{{name}:-{default('start-s3.sh', name)}}}"


def test_compose_mlflow_and_worker_use_the_scripts_names(compose: dict) -> None:
    recorded = {
        match
        for script in SCRIPTS
        for match in re.findall(r"record_env ([A-Z][A-Z0-9_]+) ", script.read_text())
    }
    mlflow = compose["mlflow"]
    assert mlflow["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert "--workers 1" in mlflow["command"][0] and "$$MLFLOW_BACKEND_STORE_URI" in mlflow["command"][0]
    worker = compose["worker"]
    pool = default("start-worker.sh", "TOKENSKIP_WORK_POOL")
    assert worker["environment"]["TOKENSKIP_WORK_POOL"] == pool and f"--pool {pool}" in worker["command"][0]
    telemetry = {
        "MLFLOW_DISABLE_TELEMETRY",
        "PREFECT_SERVER_ANALYTICS_ENABLED",
        "DVC_NO_ANALYTICS",
        "DO_NOT_TRACK",
    }
    # what a flow run sees in compose is what it sees from the scripts' env file (less the database)
    assert set(worker["environment"]) - telemetry - {"HF_HUB_OFFLINE"} <= recorded
    assert "MLFLOW_BACKEND_STORE_URI" not in worker["environment"]
