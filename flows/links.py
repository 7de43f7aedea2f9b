"""Links between the tools: where the MLflow UI shows a run or a registered model, where the
Prefect UI shows a flow run, and the ``models:/`` URI of the champion. Pure functions, no Prefect.

With the embedded default (SQLite tracking store, temporary Prefect API) the UIs are the ones
``tokenskip ui`` serves on 127.0.0.1 (ports below, unless TOKENSKIP_MLFLOW_UI_URL /
TOKENSKIP_PREFECT_UI_URL say otherwise); with servers (``MLFLOW_TRACKING_URI=http://...``,
``PREFECT_API_URL``), the servers' own UIs.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

HOST = "127.0.0.1"
MLFLOW_UI_PORT = 5000
PREFECT_UI_PORT = 4200
MLFLOW_UI_ENV = "TOKENSKIP_MLFLOW_UI_URL"
PREFECT_UI_ENV = "TOKENSKIP_PREFECT_UI_URL"


def mlflow_ui_base(tracking_uri: str, env: Mapping[str, str]) -> str:
    """The MLflow UI's address: the tracking server itself, else ``tokenskip ui``'s."""
    if env.get(MLFLOW_UI_ENV):
        return env[MLFLOW_UI_ENV].rstrip("/")
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return f"http://{HOST}:{MLFLOW_UI_PORT}"


def prefect_ui_base(env: Mapping[str, str]) -> str:
    """The Prefect UI's address: PREFECT_UI_URL, else the server of PREFECT_API_URL, else
    ``tokenskip ui``'s (a temporary API server is gone after the run; its database stays)."""
    for key in (PREFECT_UI_ENV, "PREFECT_UI_URL"):
        if env.get(key):
            return env[key].rstrip("/")
    api = env.get("PREFECT_API_URL", "").rstrip("/")
    if api:
        return api.removesuffix("/api")
    return f"http://{HOST}:{PREFECT_UI_PORT}"


def mlflow_run_url(base: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI page of one run."""
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_model_url(base: str, name: str) -> str:
    """The MLflow UI page of a registered model (its versions and aliases)."""
    return f"{base}/#/models/{quote(name)}"


def flow_run_url(base: str, flow_run_id: str) -> str:
    """The Prefect UI page of one flow run (logs, task runs, artifacts)."""
    return f"{base}/runs/flow-run/{flow_run_id}"


def model_uri(name: str, alias: str | None = None, version: str | None = None) -> str:
    """``models:/<name>@<alias>`` or ``models:/<name>/<version>``: what ``mlflow.pyfunc.load_model``
    and ``mlflow models serve -m`` take."""
    if alias:
        return f"models:/{name}@{alias}"
    return f"models:/{name}/{version}"
