"""The tracking store: where it is, the connection to it, and MLflow's process-wide URIs.

Embedded default: ``sqlite:///mlflow/mlflow.db`` with artifacts in ``mlflow/artifacts`` (no
server), made absolute against the repository so that the flow and every stage open the same
file. Server mode: ``MLFLOW_TRACKING_URI`` (e.g. ``http://127.0.0.1:5000`` from
``mlflow/server.sh``) overrides ``mlflow.tracking_uri``. Every call goes through
:meth:`Tracking.call` (see :mod:`tokenskip.tracking.retries` for who retries what).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tokenskip.core.errors import TokenSkipError
from tokenskip.tracking.retries import Retry, apply_http_retries, with_retries

T = TypeVar("T")
URI_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
# The MLflow UI opens an experiment by its kind (the tag its "experiment type" selector writes): a
# machine-learning experiment opens on its runs; one without the tag may open on the GenAI traces
# overview. Set where missing; a kind the user chose is kept.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # the UI's "Machine learning"


@dataclass(frozen=True)
class Tracking:
    """A connected tracking store: URI, client, experiment (empty when none) and the retry policy."""

    uri: str
    client: Any
    experiment_id: str
    retry: Retry

    def call(self, what: str, action: Callable[[], T]) -> T:
        """Run one tracking call with retries (see :func:`~tokenskip.tracking.retries.with_retries`)."""
        return with_retries(action, what, self.retry, self.uri)


def resolve_uri(configured: str, root: str | Path, env: Mapping[str, str] | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``configured`` (params ``mlflow.tracking_uri``); a
    relative sqlite or file path is made absolute against ``root`` (the repository)."""
    uri = (os.environ if env is None else env).get("MLFLOW_TRACKING_URI") or configured
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str((Path(root) / uri[len("sqlite:///") :]).resolve())
    if "://" not in uri:
        return (Path(root) / uri).resolve().as_uri()
    return uri


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


def open_store(uri: str, retry: Retry) -> Tracking:
    """A client on ``uri`` (tracking and registry), no experiment chosen.

    MLflow's HTTP retries follow ``retry`` (unless set in the environment); a local database is
    opened (and created or migrated) here, so a damaged one is one clear error at once.
    """
    from mlflow import MlflowClient

    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    apply_http_retries(retry)
    _prepare_local_store(uri)
    store = Tracking(uri, None, "", retry)
    client = store.call("open the store", lambda: MlflowClient(tracking_uri=uri, registry_uri=uri))
    return Tracking(uri, client, "", retry)


def _first_contact(store: Tracking, action: Callable[[], T]) -> T:
    """The first request to the store (get experiment). A server whose answer is not MLflow's (an
    HTML page, a 404 without MLflow's JSON error body) is one line at once, exit code 2: MLflow's
    REST client raises a plain MlflowException for it, a RestException for MLflow's own errors;
    and this request cannot fail on the client side (the experiment name is non-empty text)."""
    from mlflow.exceptions import MlflowException, RestException

    try:
        return store.call("get experiment", action)
    except MlflowException as exc:
        if not is_server(store.uri) or isinstance(exc, RestException):
            raise
        raise TokenSkipError(
            f"{store.uri} is not an MLflow tracking server: its answer to get experiment is not MLflow's "
            f"({exc.error_code}); point MLFLOW_TRACKING_URI at the MLflow server (mlflow/server.sh start "
            "prints its URI) or unset it"
        ) from None


def connect(uri: str, experiment: str, artifact_location: str, retry: Retry) -> Tracking:
    """A client on the store ``uri`` (see :func:`resolve_uri`) and the experiment, got or created.

    The experiment is tagged as a machine-learning one (:data:`EXPERIMENT_KIND_TAG`), so that the
    UI opens it on its training runs. In embedded mode the experiment stores artifacts under
    ``artifact_location`` (made absolute:
    MLflow keeps absolute locations), and an existing experiment whose location is another folder
    (a moved or copied clone) is one clear error instead of writes into the old folder; a server
    decides its own artifact root.
    """
    store = open_store(uri, retry)
    client = store.client
    found = _first_contact(store, lambda: client.get_experiment_by_name(experiment))
    location = None if is_server(uri) else Path(artifact_location).resolve().as_uri()
    if found is not None:
        stored = _local_path(found.artifact_location)
        if location is not None and stored is not None and stored != Path(artifact_location).resolve():
            raise TokenSkipError(
                f"{uri}: experiment {experiment!r} keeps its artifacts in {found.artifact_location}, not "
                f"in {location} (a moved or copied clone?): move mlflow/ back, or set mlflow.experiment "
                "to a new name"
            )
        if EXPERIMENT_KIND_TAG not in found.tags:  # created before the kind was set, or by another tool
            found_id = found.experiment_id
            store.call("set the experiment kind",
                       lambda: client.set_experiment_tag(found_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND))
        return Tracking(uri, client, found.experiment_id, retry)
    experiment_id = store.call("create experiment", lambda: client.create_experiment(
        experiment, location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}))
    return Tracking(uri, client, experiment_id, retry)


@contextmanager
def globally(uri: str) -> Iterator[None]:
    """Make ``uri`` MLflow's process-wide tracking and registry URI (the fluent API that logs
    models, and the registry's resolution of ``models:/<id>`` sources, use it); restore after.

    MLflow mirrors a URI set in-process into ``MLFLOW_TRACKING_URI`` / ``MLFLOW_REGISTRY_URI``, so
    unsetting its in-process URIs and restoring those variables restores what it resolved before.
    """
    import mlflow

    env_before = {name: os.environ.get(name) for name in URI_ENV}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  (None: back to the environment's URI)
        mlflow.set_registry_uri(None)  # type: ignore[arg-type]
        for name, value in env_before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
