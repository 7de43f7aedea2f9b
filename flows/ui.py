"""``tokenskip ui``: the MLflow UI on the project's tracking store and a Prefect server (API + UI)
on the local Prefect database, both on 127.0.0.1 with telemetry off, until Ctrl-C.

The MLflow UI shows the registry (versions, gate tags, the ``champion`` alias) and the runs; the
Prefect UI shows the flow runs of ``tokenskip run`` with their task runs, logs and artifacts.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import typer

from tokenskip.core.errors import ServiceError, TokenSkipError
from tokenskip.tracking.store import resolve_uri
from tokenskip_flows import links
from tokenskip_flows.support import stage_env, tool_path


@dataclass
class Server:
    """One started UI server: its name, URL, health URL, process and log file."""

    name: str
    url: str
    health: str
    proc: subprocess.Popen[bytes]
    log: Path


def check_port_free(host: str, port: int, option: str) -> None:
    """Raise TokenSkipError (exit 2) when ``host:port`` is taken, naming the option to change."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            raise TokenSkipError(f"{host}:{port} is in use: stop what listens there, or pass {option}"
                                 ) from None


def server_env(base: Mapping[str, str]) -> dict[str, str]:
    """The servers' environment: telemetry off, no job runner in MLflow, and no PREFECT_API_URL
    (the Prefect UI must talk to the server started here, not to another one)."""
    env = stage_env(base, {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
                           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "DO_NOT_TRACK": "1",
                           "PREFECT_UI_ENABLED": "true"})
    env.pop("PREFECT_API_URL", None)
    return env


def start(name: str, cmd: list[str], url: str, health: str, env: Mapping[str, str], logs: Path) -> Server:
    """Start one server in its own process group, its output in ``logs/<name>.log``."""
    log = logs / f"{name.lower()}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return Server(name, url, health, proc, log)


def wait_healthy(servers: list[Server], timeout_s: float) -> None:
    """Wait until every server answers its health URL; ServiceError (exit 1) on a crash or timeout."""
    deadline = time.monotonic() + timeout_s
    pending = list(servers)
    while pending:
        server = pending[0]
        if server.proc.poll() is not None or time.monotonic() > deadline:
            tail = server.log.read_text(errors="replace")[-1500:]
            raise ServiceError(f"{server.name} did not start (see {server.log}):\n{tail}")
        try:
            with urllib.request.urlopen(server.health, timeout=2) as response:
                if response.status == 200:
                    pending.pop(0)
                    continue
        except OSError:
            pass
        time.sleep(0.5)


def stop(servers: list[Server], grace_s: float = 20.0) -> None:
    """TERM every server's process group, then KILL what still runs ``grace_s`` after the TERM
    (one deadline for all servers, so stopping takes at most ``grace_s`` plus the kill)."""
    for server in servers:
        if server.proc.poll() is None:
            os.killpg(server.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for server in servers:
        try:
            server.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait()


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def ui(
    repo: Path = typer.Option(Path("."), help="Repository root (its params.yaml names the tracking store)"),
    mlflow_port: int = typer.Option(links.MLFLOW_UI_PORT, help="Port of the MLflow UI"),
    prefect_port: int = typer.Option(links.PREFECT_UI_PORT, help="Port of the Prefect server and UI"),
    timeout_s: float = typer.Option(180.0, help="Seconds to wait for both servers to answer"),
) -> None:
    """Start the MLflow UI and the Prefect UI on 127.0.0.1 until Ctrl-C.

    MLflow on the project's tracking store, Prefect on the local Prefect database, telemetry off.
    """
    from tokenskip.core.params import load_params

    root = repo.resolve()
    params = load_params(root / "params.yaml")
    tracking = resolve_uri(params.mlflow.tracking_uri, root, os.environ)
    host = links.HOST
    check_port_free(host, mlflow_port, "--mlflow-port")
    check_port_free(host, prefect_port, "--prefect-port")
    env, logs = server_env(os.environ), Path(tempfile.mkdtemp(prefix="tokenskip-ui-"))
    mlflow_url, prefect_url = f"http://{host}:{mlflow_port}", f"http://{host}:{prefect_port}"
    servers = [
        start("MLflow", [tool_path("mlflow"), "server", "--host", host, "--port", str(mlflow_port),
                         "--workers", "1", "--backend-store-uri", tracking],
              mlflow_url, f"{mlflow_url}/health", env, logs),
        start("Prefect", [tool_path("prefect"), "server", "start", "--host", host,
                          "--port", str(prefect_port)],
              prefect_url, f"{prefect_url}/api/health", env, logs),
    ]
    # Ctrl-C and TERM both stop the servers, also when the parent started us with SIGINT ignored
    # (background jobs of a non-interactive shell): Python then installs no KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        wait_healthy(servers, timeout_s)
        typer.echo(ui_banner(mlflow_url, prefect_url, tracking, params.mlflow.experiment, logs))
        while all(s.proc.poll() is None for s in servers):
            time.sleep(0.5)
        gone = next(s for s in servers if s.proc.poll() is not None)
        raise ServiceError(f"{gone.name} stopped (exit code {gone.proc.returncode}); see {gone.log}")
    except KeyboardInterrupt:
        typer.echo("stopping the MLflow and Prefect UIs")
    finally:
        stop(servers)


def ui_banner(mlflow_url: str, prefect_url: str, tracking: str, experiment: str, logs: Path) -> str:
    """What ``tokenskip ui`` prints once both servers answer: the URLs and what to click."""
    return "\n".join([
        f"MLflow UI:  {mlflow_url}   (tracking store {tracking})",
        f"  Models -> the tokenskip-* model: its versions, gate tags and the champion alias;"
        f" Experiments -> {experiment}: the pipeline-* parent runs and their ratio runs",
        f"Prefect UI: {prefect_url}   (the local Prefect database)",
        "  Runs -> the latest tokenskip-pipeline flow run -> Artifacts: evaluation, gates, validation,"
        " links to the MLflow run and registry",
        f"Server logs in {logs}. Ctrl-C stops both.",
    ])
