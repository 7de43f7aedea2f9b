"""The Prefect work pool of infra/: `start-prefect.sh` + `start-worker.sh` (a process pool and
its worker), the `tokenskip-nightly` deployment deployed to that pool from a clean clone, a
triggered run executed by the worker; and the Kubernetes base job template of infra/k8s/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.pipeline.flow_helpers import SMALL_STAGES, clone_env, clone_small, run, wait_for_final_state

INFRA = Path(__file__).resolve().parents[2] / "infra"
TEMPLATE = INFRA / "k8s" / "base-job-template.json"
POOL = "tokenskip-test-pool"
WORKER = "tokenskip-test-worker"
NIGHTLY = "tokenskip-pipeline/tokenskip-nightly"


@dataclass
class PrefectStack:
    """The Prefect server + worker of one test: state folder and the script environment."""

    root: Path
    env: dict[str, str]

    @property
    def recorded(self) -> dict[str, str]:
        """What the start scripts recorded for clients ($TOKENSKIP_INFRA_DIR/env)."""
        lines = (self.root / "env").read_text().splitlines() if (self.root / "env").exists() else []
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def script(self, name: str, timeout: float = 200) -> str:
        """Run infra/<name>.sh; fail the test with its output when it fails; return its stdout."""
        done = subprocess.run(["bash", str(INFRA / f"{name}.sh")], env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        assert done.returncode == 0, f"infra/{name}.sh failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        return done.stdout

    def pid(self, name: str) -> int:
        """The PID recorded in <name>.pid."""
        return int((self.root / f"{name}.pid").read_text().split()[0])


def _stack_processes(root: Path) -> list[int]:
    """Live (non-zombie) processes started under this stack: their environment names its folder."""
    marker = f"TOKENSKIP_INFRA_DIR={root}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0") and \
                    "\nState:\tZ" not in (proc / "status").read_text():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.fixture
def prefect_stack(tmp_path: Path) -> Iterator[PrefectStack]:
    """infra/start-prefect.sh + infra/start-worker.sh on a temp state folder; both stopped after."""
    root = tmp_path / "infra"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "TOKENSKIP_"))}
    env.update({"TOKENSKIP_INFRA_DIR": str(root), "TOKENSKIP_WORK_POOL": POOL, "TOKENSKIP_WORKER_NAME": WORKER,
                "PREFECT_UI_ENABLED": "false", "PREFECT_WORKER_QUERY_SECONDS": "2"})
    stack = PrefectStack(root, env)
    try:
        stack.script("start-prefect")
        stack.script("start-worker")
        yield stack
    finally:
        stack.script("stop-worker", timeout=60)
        stack.script("stop-prefect", timeout=60)
    assert not list(root.glob("*.pid"))
    assert _stack_processes(root) == [], "processes of the stack still running after the stop scripts"


@pytest.mark.slow
def test_worker_on_a_process_pool_runs_the_nightly_deployment(
    repo_root: Path, prefect_stack: PrefectStack, tmp_path: Path
) -> None:
    from prefect.client.orchestration import SyncPrefectClient

    stack = prefect_stack
    api = stack.recorded["PREFECT_API_URL"]
    assert stack.recorded["TOKENSKIP_WORK_POOL"] == POOL
    assert "already running" in stack.script("start-worker") and "already running" in stack.script("start-prefect")

    clone = clone_small(repo_root, tmp_path / "clone")
    client_env = {"PREFECT_API_URL": api, "TOKENSKIP_WORK_POOL": POOL, **clone_env(clone)}
    deployed = run([sys.executable, "-m", "tokenskip", "deploy"], clone, env=client_env)
    assert f"on pool '{POOL}'" in deployed.stdout

    with SyncPrefectClient(api=api) as client:
        pool = client.read_work_pool(POOL)
        assert (pool.type, pool.status.value) == ("process", "READY")
        assert [w.name for w in client.read_workers_for_work_pool(POOL)] == [WORKER]
        deployment = client.read_deployment_by_name(NIGHTLY)
        assert deployment.work_pool_name == POOL
        assert deployment.job_variables["env"]["PYTHONPATH"].startswith(str(clone / "src"))
        flow_cfg = yaml.safe_load((clone / "params.yaml").read_text())["flow"]
        schedule = deployment.schedules[0].schedule
        assert (schedule.cron, schedule.timezone) == (flow_cfg["cron"], flow_cfg["timezone"])

        flow_run = client.create_flow_run_from_deployment(deployment.id, parameters={"stages": SMALL_STAGES})
        finished = wait_for_final_state(client, flow_run.id, timeout_s=300)
        worker_log = (stack.root / "worker.log").read_text()
        assert finished.state.is_completed(), f"{finished.state.message}\n{worker_log[-3000:]}"
        assert finished.work_pool_name == POOL
        assert f"Worker '{WORKER}' submitting flow run '{flow_run.id}'" in worker_log
        assert (clone / "reports" / "base-model.json").is_file()
        assert (clone / "dvc.lock").is_file()

        # the documented Kubernetes pool is accepted by the server as it stands (no worker here)
        run([str(Path(sys.executable).parent / "prefect"), "work-pool", "create", "tokenskip-k8s",
             "--type", "kubernetes", "--base-job-template", str(TEMPLATE)], clone, env={"PREFECT_API_URL": api})
        assert client.read_work_pool("tokenskip-k8s").base_job_template == json.loads(TEMPLATE.read_text())
    refused = subprocess.run([sys.executable, "-m", "tokenskip", "deploy", "--pool", "tokenskip-k8s"],
                             cwd=clone, env={**os.environ, **client_env}, capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: work pool 'tokenskip-k8s': type 'kubernetes', not 'process'")


def _render(values: dict[str, object]) -> dict:
    """The job manifest a Kubernetes worker builds: the template with defaults + ``values`` applied."""
    from prefect.utilities.templating import apply_values

    template = json.loads(TEMPLATE.read_text())
    props = template["variables"]["properties"]
    variables = {k: v["default"] for k, v in props.items() if "default" in v} | values
    return apply_values(template["job_configuration"], variables)["job_manifest"]


def test_kubernetes_template_declares_its_variables_and_renders_gpu_and_service_env() -> None:
    from prefect.server.schemas.actions import validate_base_job_template

    validate_base_job_template(json.loads(TEMPLATE.read_text()))  # every placeholder is a variable
    pod = _render({"gpu_count": "2", "image": "registry.example/tokenskip:1"})["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.example/tokenskip:1"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert {"MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL", "PREFECT_API_URL"} <= set(container["env"])
    assert container["envFrom"] == [{"secretRef": {"name": "tokenskip-s3"}}]  # AWS_* keys, not in the template
    assert not any(k.startswith("AWS_SECRET") for k in container["env"])
    assert "nodeSelector" not in pod  # unset variables leave no empty fields
    assert "cpu" not in container["resources"]["limits"] and container["resources"]["requests"]["cpu"] == "4"
    cpu_only = _render({"gpu_count": "0"})["spec"]["template"]["spec"]["containers"][0]
    assert cpu_only["resources"]["limits"]["nvidia.com/gpu"] == "0"
