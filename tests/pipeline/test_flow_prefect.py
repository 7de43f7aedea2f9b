"""The flow against a real Prefect API server, run as users run it (`tokenskip run`):
order, retries, failures, MLflow parent run, artifacts and the printed champion, on toy DVC
repositories whose stages are tiny scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipeline.flow_helpers import make_toy_repo

pytestmark = pytest.mark.slow


def run_flow(repo_root: Path, toy: Path, api: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`tokenskip run --repo toy` (``python -m tokenskip``) against the fixture's server."""
    env = {**os.environ, **api}
    cmd = [sys.executable, "-m", "tokenskip", "run", "--repo", str(toy)]
    return subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True, timeout=300)


def latest_flow_run(client):
    from prefect.client.schemas.sorting import FlowRunSort

    return client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=1)[0]


def artifact(client, key: str, flow_run_id):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    found = client.read_artifacts(
        artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
        )
    )
    return found[0] if found else None


def test_flow_runs_stages_in_order_retries_crashes_prints_the_champion_and_stops_on_bad_data(
    repo_root: Path, prefect_api: dict[str, str], prefect_client, tmp_path: Path
) -> None:
    import mlflow

    toy = make_toy_repo(tmp_path / "toy", ["base-model", "validate", "evaluate", "register"])
    (toy / "mode.txt").write_text("evaluate:flaky")  # evaluate crashes once, then succeeds
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    done = run_flow(repo_root, toy, {**prefect_api, "MLFLOW_TRACKING_URI": uri})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "stages to run: base-model, validate, evaluate, register" in done.stderr  # dvc.yaml's
    assert done.stdout.rstrip().endswith("Champion: toy version 1 (ratio 0.5)")
    assert "| TokenSkip g=0.5 | 0.500 | 5.0 |  |  |" in done.stdout
    assert (toy / "calls_evaluate.txt").read_text() == "2"

    flow_run = latest_flow_run(prefect_client)
    assert flow_run.state.is_completed()
    task_runs = [r for r in prefect_client.read_task_runs() if r.flow_run_id == flow_run.id]
    assert [r.name for r in sorted(task_runs, key=lambda r: r.start_time)] == [
        "base-model",
        "validate",
        "evaluate",
        "register",
    ]
    evaluation = artifact(prefect_client, "tokenskip-evaluation", flow_run.id)
    settings = [row["setting"] for row in json.loads(evaluation.data)]
    assert settings == ["TokenSkip g=1.0", "TokenSkip g=0.5", "truncation g=0.5"]
    gates = artifact(prefect_client, "tokenskip-gates", flow_run.id)
    assert "version 1 (ratio 0.5)" in gates.description

    parent_id = json.loads((toy / "reports" / "base-model.json").read_text())["parent"]
    parent = mlflow.MlflowClient(tracking_uri=uri).get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["prefect.flow_run_id"] == str(flow_run.id)
    assert {"stage_seconds.base-model", "stage_seconds.register", "flow_seconds"} <= set(parent.data.metrics)

    # failed validation is deterministic: the flow fails at once (no retry), publishes the
    # validation summary, and the parent run ends FAILED
    (toy / "mode.txt").write_text("validate:fail")
    (toy / "stage.py").write_text((toy / "stage.py").read_text() + "\n")  # every stage must re-run
    failed = run_flow(repo_root, toy, {**prefect_api, "MLFLOW_TRACKING_URI": uri})
    assert failed.returncode == 3
    assert "validate: 1 of 5 expectations failed" in failed.stderr
    assert (toy / "calls_validate.txt").read_text() == "2"  # once per run
    failed_run = latest_flow_run(prefect_client)
    assert failed_run.state.is_failed()
    summary = artifact(prefect_client, "tokenskip-validation", failed_run.id)
    assert summary.data.startswith("### Data validation: FAILED") and "pruned: ratio_mean" in summary.data
    runs = mlflow.MlflowClient(tracking_uri=uri).search_runs([parent.info.experiment_id], order_by=["start_time DESC"])
    assert runs[0].info.status == "FAILED"
