"""Fixtures of the pipeline tests: a real Prefect API server (`prefect server start`)."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.pipeline.flow_helpers import BIN, SERVER_STARTUP_S, free_port
from tests.pipeline.infra_stack import infra_stack  # noqa: F401
from tests.pipeline.mlflow_fixtures import mlflow_server, tracking_env, workspace  # noqa: F401
from tests.pipeline.smoke import smoke_run  # noqa: F401


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`prefect server start` on a free 127.0.0.1 port; yields the env that points at it."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_ENABLED": "false", "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    log = (home / "server.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + SERVER_STARTUP_S
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{env['PREFECT_API_URL']}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"prefect server did not start:\n{(home / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def prefect_client(prefect_api: dict[str, str]) -> Iterator[object]:
    """A synchronous Prefect client bound to the fixture's server (not to this process's settings)."""
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(api=prefect_api["PREFECT_API_URL"]) as client:
        yield client
