"""The `tokenskip-nightly` deployment against a real Prefect API: served from a clean clone of
this repository (committed HEAD + `dvc pull`), its cron schedule comes from params.yaml, a
triggered run of a small configuration completes, and a plain `dvc repro` afterwards is a no-op."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.pipeline.flow_helpers import (
    BIN,
    DVC,
    SMALL_STAGES,
    clone_env,
    clone_small,
    run,
    stop_process_group,
    wait_for_final_state,
)

pytestmark = pytest.mark.slow
NAME = "tokenskip-pipeline/tokenskip-nightly"


def _wait_for_deployment(client, serve: subprocess.Popen, log: Path, timeout_s: float = 120):
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return client.read_deployment_by_name(NAME)
        except ObjectNotFound:
            if serve.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"deployment not registered:\n{log.read_text()[-3000:]}")
            time.sleep(1)


def test_nightly_deployment_is_scheduled_and_runs_a_small_configuration(
    repo_root: Path, prefect_api: dict[str, str], prefect_client, tmp_path: Path
) -> None:
    clone = clone_small(repo_root, tmp_path / "clone")
    flow_params = yaml.safe_load((clone / "params.yaml").read_text())["flow"]
    env = {**os.environ, **prefect_api, **clone_env(clone), "PREFECT_RUNNER_POLL_FREQUENCY": "2",
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("TOKENSKIP_WORK_POOL", None)  # exported by a worker's shell, it would deploy instead of serve
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        serve = subprocess.Popen([sys.executable, "-m", "tokenskip", "deploy"], cwd=clone, env=env,
                                 stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deployment = _wait_for_deployment(prefect_client, serve, log)
        assert len(deployment.schedules) == 1
        schedule = deployment.schedules[0].schedule
        assert (schedule.cron, schedule.timezone) == (flow_params["cron"], flow_params["timezone"])
        assert deployment.schedules[0].active

        flow_run = prefect_client.create_flow_run_from_deployment(
            deployment.id, parameters={"stages": SMALL_STAGES})
        finished = wait_for_final_state(prefect_client, flow_run.id)
        assert finished.state.is_completed(), f"{finished.state.message}\n{log.read_text()[-3000:]}"
        assert (clone / "reports" / "base-model.json").is_file()
        assert (clone / "dvc.lock").is_file()
        # DVC agrees with the flow: a plain `dvc repro` of the same stages is now a no-op
        again = run([DVC, "repro", *SMALL_STAGES], clone, env=clone_env(clone))
        assert "Running stage" not in again.stdout
        assert "didn't change" in again.stdout or "up to date" in again.stdout
    finally:
        stop_process_group(serve, timeout_s=30)
