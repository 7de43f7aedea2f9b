"""``tokenskip run`` then ``tokenskip ui`` as a user runs them: a toy DVC repository's flow run on
a temporary Prefect API (its local database kept), a registry with a champion from the real
register stage, then both UIs on 127.0.0.1: HTTP 200 from each, and through their REST APIs the
champion alias and the flow run's artifacts, linked to each other; Ctrl-C stops both."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.pipeline.flow_helpers import BIN, free_port, make_toy_repo, stop_process_group
from tests.pipeline.mlflow_fixtures import run_register, write_workspace

pytestmark = pytest.mark.slow


def http(url: str, body: dict | None = None) -> tuple[int, bytes]:
    """GET (or POST ``body`` as JSON) ``url``; (status, body)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


def point_at_store(repo: Path, db: Path, experiment: str) -> None:
    """Make ``repo``'s params use the SQLite tracking store ``db`` and ``experiment``."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["mlflow"].update(tracking_uri=f"sqlite:///{db}", artifact_location=str(db.parent / "artifacts"),
                            experiment=experiment)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def ignore_sigint() -> None:
    """Start the child with SIGINT ignored (inherited dispositions survive exec)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def read_banner(proc: subprocess.Popen[str], timeout_s: float = 240) -> list[str]:
    """The lines ``tokenskip ui`` prints up to "Ctrl-C stops both"."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line.rstrip())
        if "Ctrl-C stops both" in line:
            return lines
    pytest.fail(f"tokenskip ui did not come up:\n{lines}\n{proc.stderr.read() if proc.stderr else ''}")


def test_run_then_ui_shows_the_champion_and_the_flow_runs_artifacts(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "store" / "mlflow.db"
    db.parent.mkdir()
    ws = write_workspace(tmp_path / "ws", tiny_model_dir)
    experiment = yaml.safe_load((ws / "params.yaml").read_text())["mlflow"]["experiment"]
    point_at_store(ws, db, experiment)
    monkeypatch.chdir(ws)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("TOKENSKIP_PARENT_RUN_ID", raising=False)
    registered = run_register(ws)
    assert registered["champion"]["ratio"] == 0.6
    assert registered["champion_uri"] == f"models:/{registered['registered_model']}@champion"

    toy = make_toy_repo(tmp_path / "toy", ["validate", "evaluate", "register"])
    point_at_store(toy, db, experiment)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_TRACKING"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    done = subprocess.run([str(BIN / "tokenskip"), "run", "--repo", str(toy)], cwd=toy, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    ports = {"mlflow": free_port(), "prefect": free_port()}
    ui = subprocess.Popen([str(BIN / "tokenskip"), "ui", "--repo", str(toy), "--mlflow-port", str(ports["mlflow"]),
                           "--prefect-port", str(ports["prefect"])], cwd=toy, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                          preexec_fn=ignore_sigint)  # as a shell's background job: Ctrl-C must still stop it
    try:
        banner = read_banner(ui)
        mlflow_url, prefect_url = (f"http://127.0.0.1:{ports[k]}" for k in ("mlflow", "prefect"))
        assert any(line.startswith(f"MLflow UI:  {mlflow_url}") for line in banner), banner
        assert any(line.startswith(f"Prefect UI: {prefect_url}") for line in banner), banner
        assert http(mlflow_url)[0] == 200 and http(prefect_url)[0] == 200
        check_rest(mlflow_url, prefect_url, registered)
        os.kill(ui.pid, signal.SIGINT)  # Ctrl-C
        ui.communicate(timeout=180)  # waits for the exit and drains both pipes (wait() could block on one)
        assert ui.returncode == 0
        for url in (mlflow_url, prefect_url):
            with pytest.raises(OSError):
                http(url)
    finally:
        stop_process_group(ui)


def check_rest(mlflow_url: str, prefect_url: str, registered: dict) -> None:
    """The champion alias (MLflow REST) and the flow run's artifacts (Prefect REST), linked."""
    name = registered["registered_model"]
    _, body = http(f"{mlflow_url}/api/2.0/mlflow/registered-models/alias?name={name}&alias=champion")
    assert json.loads(body)["model_version"]["version"] == registered["champion"]["version"]

    _, body = http(f"{prefect_url}/api/flow_runs/filter", {"sort": "START_TIME_DESC", "limit": 1})
    flow_run = json.loads(body)[0]
    assert flow_run["state_type"] == "COMPLETED"
    _, body = http(f"{prefect_url}/api/artifacts/filter",
                   {"artifacts": {"flow_run_id": {"any_": [flow_run["id"]]}}})
    artifacts = {a["key"]: a for a in json.loads(body)}
    assert {"tokenskip-mlflow-run", "tokenskip-validation", "tokenskip-evaluation", "tokenskip-gates",
            "tokenskip-stage-timings"} <= set(artifacts)
    assert "Data docs:" in artifacts["tokenskip-validation"]["data"]
    link = artifacts["tokenskip-mlflow-run"]["data"]  # a link artifact: "[text](url)"
    run_link = link[link.index("](") + 2:].rstrip(")")
    assert run_link.startswith("http://127.0.0.1:5000/#/experiments/")
    run_id = run_link.rsplit("/", 1)[1]
    _, body = http(f"{mlflow_url}/api/2.0/mlflow/runs/get?run_id={run_id}")
    tags = {t["key"]: t["value"] for t in json.loads(body)["run"]["data"]["tags"]}
    assert tags["prefect.flow_run_id"] == flow_run["id"]
    assert tags["prefect.flow_run_url"] == f"http://127.0.0.1:4200/runs/flow-run/{flow_run['id']}"


def test_ui_refuses_a_busy_port_with_exit_2(tmp_path: Path) -> None:
    import socket

    toy = make_toy_repo(tmp_path / "toy", ["validate"])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "tokenskip", "ui", "--repo", str(toy), "--mlflow-port",
                               str(port)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: 127.0.0.1:{port} is in use")
