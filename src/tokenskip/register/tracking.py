"""MLflow tracking for the register stage: connection, retries, the parent run and its child runs.

Embedded default: ``sqlite:///mlflow/mlflow.db`` with artifacts in ``mlflow/artifacts`` (no server).
Server mode: ``MLFLOW_TRACKING_URI`` (e.g. ``http://127.0.0.1:5000`` from ``mlflow/server.sh``)
overrides ``mlflow.tracking_uri``. Every call to the tracking server goes through
:func:`with_retries` (exponential backoff, then ONE clear error line).

Runs are found before they are created, so a re-run of the stage reuses them: the parent run by
``TOKENSKIP_PARENT_RUN_ID`` (opened by the Prefect flow) or by the tag ``tokenskip.run_key``
(a hash of the stage's inputs); a child run by its parent and the tag ``tokenskip.child``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tokenskip.core.errors import ServiceError, TokenSkipError
from tokenskip.core.mlflow_names import CHILD_TAG, PARENT_RUN_ENV, PARENT_TAG, ROLE_TAG  # noqa: F401 (re-exported)

T = TypeVar("T")
RUN_KEY_TAG = "tokenskip.run_key"
TRANSIENT_MARKERS = (
    "failed with exception",  # mlflow.utils.rest_utils: connection refused / reset / timeout
    "Max retries exceeded",
    "Connection refused",
    "Connection aborted",
    "Read timed out",
    "database is locked",
    "TEMPORARILY_UNAVAILABLE",
    "503",
    "502",
)


@dataclass(frozen=True)
class Retry:
    """How often and how patiently to retry a tracking-server call."""

    attempts: int = 4
    backoff_s: float = 1.0


@dataclass(frozen=True)
class Tracking:
    """A connected tracking store: URI, client, experiment and the retry policy."""

    uri: str
    client: Any
    experiment_id: str
    retry: Retry

    def call(self, what: str, action: Callable[[], T]) -> T:
        """Run one tracking call with retries (see :func:`with_retries`)."""
        return with_retries(action, what, self.retry, self.uri)


def is_transient(exc: BaseException) -> bool:
    """True for connection-level failures worth retrying (server down, reset, timeout, 5xx, lock)."""
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    try:
        import requests

        if isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            return True
    except ImportError:  # pragma: no cover - requests ships with mlflow
        pass
    text = str(exc)
    return any(marker in text for marker in TRANSIENT_MARKERS)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _is_store_damage(exc: BaseException) -> bool:
    """A local database that is corrupt, read-only or not a database (never worth retrying)."""
    text = str(exc)
    return any(marker in text for marker in ("file is not a database", "readonly database",
                                              "database disk image is malformed", "unable to open database"))


def with_retries(
    action: Callable[[], T], what: str, retry: Retry, uri: str, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Call ``action``; on a transient failure wait ``backoff_s * 2**i`` and retry.

    After ``retry.attempts`` failures raise ServiceError (exit code 1) naming the tracking URI and the step;
    non-transient errors propagate at once.
    """
    for attempt in range(1, retry.attempts + 1):
        try:
            return action()
        except Exception as exc:
            if _is_store_damage(exc):
                raise TokenSkipError(
                    f"MLflow tracking store {uri}: {what} failed ({_first_line(exc)}); the database is "
                    "damaged or not writable: restore or fix mlflow/ (or point MLFLOW_TRACKING_URI elsewhere)"
                ) from None
            if not is_transient(exc):
                raise
            if attempt == retry.attempts:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
                raise ServiceError(
                    f"MLflow tracking at {uri} unreachable: {what} failed after {attempt} attempt(s) "
                    f"({first}); start the server (mlflow/server.sh start; shared stack: infra/up.sh) "
                    "or unset MLFLOW_TRACKING_URI, then re-run the stage"
                ) from None
            sleep(retry.backoff_s * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def tracking_uri(configured: str) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the configured URI (params.mlflow.tracking_uri)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or configured


def is_server(uri: str) -> bool:
    """True when the URI is a tracking server (http/https), not a local database or folder."""
    return uri.startswith(("http://", "https://"))


def _prepare_local_store(uri: str) -> None:
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def _local_path(location: str) -> Path | None:
    """The folder of a local artifact location (``file:///...`` or a plain path); None for a remote one."""
    from urllib.parse import unquote, urlparse

    if location.startswith("file:"):
        return Path(unquote(urlparse(location).path)).resolve()
    return None if "://" in location else Path(location).resolve()


def _open_client(uri: str) -> Any:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client._tracking_client.store  # noqa: B018  (a local database is opened and migrated here)
    return client


def connect(configured_uri: str, experiment: str, artifact_location: str, retry: Retry) -> Tracking:
    """A client on the store (tracking and registry) and the experiment, got or created.

    In embedded mode the experiment stores artifacts under ``artifact_location`` (made absolute:
    MLflow keeps absolute locations), and an existing experiment whose location is another folder
    (a moved or copied clone) is one clear error instead of writes into the old folder; a server
    decides its own artifact root. MLflow's own HTTP retries are turned down (unless set
    in the environment) so that the stage's backoff is the one that applies.
    """

    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri(configured_uri)
    _prepare_local_store(uri)
    probe = Tracking(uri, None, "", retry)
    client = probe.call("open the store", lambda: _open_client(uri))
    probe = Tracking(uri, client, "", retry)
    found = probe.call("get experiment", lambda: client.get_experiment_by_name(experiment))
    location = None if is_server(uri) else Path(artifact_location).resolve().as_uri()
    if found is not None:
        stored = _local_path(found.artifact_location)
        if location is not None and stored is not None and stored != Path(artifact_location).resolve():
            raise TokenSkipError(
                f"{uri}: experiment {experiment!r} keeps its artifacts in {found.artifact_location}, not "
                f"in {location} (a moved or copied clone?): move mlflow/ back, or set mlflow.experiment "
                "to a new name"
            )
        return Tracking(uri, client, found.experiment_id, retry)
    experiment_id = probe.call("create experiment", lambda: client.create_experiment(experiment, location))
    return Tracking(uri, client, experiment_id, retry)


@contextmanager
def globally(uri: str) -> Iterator[None]:
    """Make ``uri`` MLflow's process-wide tracking and registry URI (the fluent API that logs
    models, and the registry's resolution of ``models:/<id>`` sources, use it); restore after."""
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    import mlflow

    before = (getattr(tracking_utils, "_tracking_uri", None), getattr(registry_utils, "_registry_uri", None))
    env_names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")  # set_*_uri also (un)set these
    env_before = {name: os.environ.get(name) for name in env_names}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
        for name, value in env_before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _search_one(tracking: Tracking, experiment_id: str, filter_string: str) -> Any | None:
    runs = tracking.call(
        "search runs",
        lambda: tracking.client.search_runs(
            [experiment_id],
            filter_string=filter_string,
            max_results=1,
            order_by=["attributes.start_time DESC"],
        ),
    )
    return runs[0] if runs else None


def open_parent_run(tracking: Tracking, run_key: str, name: str, tags: dict[str, str]) -> tuple[Any, bool]:
    """The pipeline run: (run, opened_here). Uses ``TOKENSKIP_PARENT_RUN_ID`` when set, else
    reuses the run tagged with ``run_key`` or creates it. Tags are (re)applied either way."""
    client = tracking.client
    env_id = os.environ.get(PARENT_RUN_ENV)
    if env_id:
        try:
            run = tracking.call("get parent run", lambda: client.get_run(env_id))
        except TokenSkipError:
            raise
        except Exception:
            raise TokenSkipError(f"{PARENT_RUN_ENV}={env_id}: no such run at {tracking.uri}") from None
        opened = False
    else:
        run = _search_one(
            tracking,
            tracking.experiment_id,
            f"tags.`{RUN_KEY_TAG}` = '{run_key}' and tags.`{ROLE_TAG}` = 'pipeline'",
        )
        opened = True
        if run is None:
            create_tags = {"mlflow.runName": name, RUN_KEY_TAG: run_key, ROLE_TAG: "pipeline"}
            run = tracking.call(
                "create parent run", lambda: client.create_run(tracking.experiment_id, tags=create_tags)
            )
    set_tags(tracking, run.info.run_id, tags)
    return run, opened


def open_child_run(tracking: Tracking, parent: Any, child: str, tags: dict[str, str]) -> Any:
    """The child run named ``child`` under ``parent``, found again on a re-run, else created."""
    parent_id = parent.info.run_id
    experiment_id = parent.info.experiment_id
    run = _search_one(
        tracking, experiment_id, f"tags.`{PARENT_TAG}` = '{parent_id}' and tags.`{CHILD_TAG}` = '{child}'"
    )
    if run is None:
        create_tags = {**tags, PARENT_TAG: parent_id, CHILD_TAG: child, "mlflow.runName": child}
        run = tracking.call(
            f"create child run {child}", lambda: tracking.client.create_run(experiment_id, tags=create_tags)
        )
    return run


def set_tags(tracking: Tracking, run_id: str, tags: dict[str, str]) -> None:
    """Set run tags in one batch (idempotent)."""
    from mlflow.entities import RunTag

    batch = [RunTag(key, str(value)) for key, value in tags.items()]
    if batch:
        tracking.call("set run tags", lambda: tracking.client.log_batch(run_id, tags=batch))


def log_params_once(tracking: Tracking, run: Any, params: dict[str, Any]) -> None:
    """Log params unless the run already has them (MLflow refuses to change a logged param)."""
    from mlflow.entities import Param

    missing = [Param(k, str(v)[:6000]) for k, v in params.items() if k not in run.data.params]
    for start in range(0, len(missing), 100):
        chunk = missing[start : start + 100]
        tracking.call(
            "log params", lambda chunk=chunk: tracking.client.log_batch(run.info.run_id, params=chunk)
        )


def log_metrics_once(
    tracking: Tracking, run: Any, metrics: dict[str, float], history: str = "", curve=()
) -> None:
    """Log metrics (and an optional stepped curve named ``history``) unless already logged."""
    from mlflow.entities import Metric

    if any(key in run.data.metrics for key in metrics):
        return
    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None]
    batch += [Metric(history, float(value), now, int(step)) for step, value in curve]
    for start in range(0, len(batch), 1000):
        chunk = batch[start : start + 1000]
        tracking.call(
            "log metrics", lambda chunk=chunk: tracking.client.log_batch(run.info.run_id, metrics=chunk)
        )


def log_artifact_once(
    tracking: Tracking, run: Any, path: str | Path, artifact_path: str | None = None
) -> bool:
    """Upload a file or folder to the run unless a same-named artifact is already there."""
    source = Path(path)
    if not source.exists():
        return False
    listed = tracking.call(
        "list artifacts", lambda: tracking.client.list_artifacts(run.info.run_id, artifact_path)
    )
    target = f"{artifact_path}/{source.name}" if artifact_path else source.name
    if any(item.path == target for item in listed):
        return True
    log = tracking.client.log_artifacts if source.is_dir() else tracking.client.log_artifact
    dest = target if source.is_dir() else artifact_path
    tracking.call(f"upload {source}", lambda: log(run.info.run_id, str(source), dest))
    return True


def finish_run(tracking: Tracking, run_id: str) -> None:
    """Mark a run FINISHED."""
    tracking.call("finish run", lambda: tracking.client.set_terminated(run_id, "FINISHED"))
