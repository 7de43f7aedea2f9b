"""The tracking layer: where the store is, who retries what (MLflow's HTTP retries, ours for a
locked database), and the one line each failure ends in, told apart by type and code."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from tokenskip.core.errors import ExitCode, ServiceError, TokenSkipError, exit_code_of
from tokenskip.tracking import retries
from tokenskip.tracking.names import PARENT_RUN_ENV
from tokenskip.tracking.retries import (
    HTTP_BACKOFF_ENV,
    HTTP_RETRIES_ENV,
    Retry,
    apply_http_retries,
    is_locked,
    is_store_damage,
    with_retries,
)
from tokenskip.tracking.runs import get_run
from tokenskip.tracking.store import connect, globally, open_store, resolve_uri

MLFLOW_ENV = (HTTP_RETRIES_ENV, HTTP_BACKOFF_ENV, "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER",
              "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No MLflow HTTP settings in the environment, none recorded as set here; all restored after."""
    for name in MLFLOW_ENV:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setattr(retries, "_SET_HERE", {})
    return monkeypatch


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def locked_write(db: Path) -> None:
    """A write that finds the database locked (no busy wait): a real SQLITE_BUSY."""
    with sqlite3.connect(db, timeout=0) as conn:
        conn.execute("insert into t values (1)")


@pytest.fixture
def locked_db(tmp_path: Path):
    """A database another connection holds an exclusive lock on: (path, holder)."""
    db = tmp_path / "busy.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("create table t (x)")
    holder.execute("begin exclusive")
    yield db, holder
    holder.close()


def test_tracking_uri_is_absolute_against_the_repository(tmp_path: Path) -> None:
    assert resolve_uri("sqlite:///mlflow/mlflow.db", tmp_path, {}) == (
        "sqlite:///" + str((tmp_path / "mlflow/mlflow.db").resolve())
    )
    assert resolve_uri("sqlite:////abs/m.db", tmp_path, {}) == "sqlite:////abs/m.db"
    env = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}
    assert resolve_uri("sqlite:///mlflow/mlflow.db", tmp_path, env) == "http://127.0.0.1:5000"
    assert resolve_uri("mlruns", tmp_path, {}) == (tmp_path / "mlruns").resolve().as_uri()


def test_mlflow_retries_follow_the_params_unless_the_user_set_them(clean_env: pytest.MonkeyPatch) -> None:
    apply_http_retries(Retry(4, 0.5))
    assert (os.environ[HTTP_RETRIES_ENV], os.environ[HTTP_BACKOFF_ENV]) == ("3", "1")  # whole seconds
    apply_http_retries(Retry(2, 3.0))  # our own earlier setting is not the user's: it follows
    assert (os.environ[HTTP_RETRIES_ENV], os.environ[HTTP_BACKOFF_ENV]) == ("1", "3")
    clean_env.setenv(HTTP_RETRIES_ENV, "9")
    apply_http_retries(Retry(4, 1.0))
    assert (os.environ[HTTP_RETRIES_ENV], os.environ[HTTP_BACKOFF_ENV]) == ("9", "1")
    apply_http_retries(Retry(100, 1.0))
    assert os.environ[HTTP_RETRIES_ENV] == "9"


def test_a_locked_database_is_retried_with_backoff_then_succeeds(locked_db) -> None:
    db, holder = locked_db
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            holder.execute("rollback")  # the other process finishes

    with_retries(lambda: locked_write(db), "log metrics", Retry(4, 0.5), "sqlite:///busy.db", sleep=wait)
    assert waits == [0.5, 1.0]


def test_a_database_locked_as_mlflow_reports_it_gives_up_in_one_line(locked_db) -> None:
    """MLflow wraps SQLAlchemy's OperationalError (its .orig: sqlite3's) as TEMPORARILY_UNAVAILABLE."""
    import sqlalchemy.exc
    from mlflow.exceptions import MlflowException

    db, _ = locked_db
    waits: list[float] = []

    def as_mlflow() -> None:
        try:
            locked_write(db)
        except sqlite3.OperationalError as exc:
            wrapped = sqlalchemy.exc.OperationalError("INSERT", {}, exc)
            raise MlflowException(str(wrapped), error_code="TEMPORARILY_UNAVAILABLE") from wrapped

    with pytest.raises(ServiceError) as info:
        with_retries(as_mlflow, "set run tags", Retry(3, 1.0), "sqlite:///busy.db", sleep=waits.append)
    assert waits == [1.0, 2.0]
    message = str(info.value)
    assert message.startswith("MLflow tracking store sqlite:///busy.db busy: set run tags failed after 3 attempt(s)")
    assert "\n" not in message and exit_code_of(info.value) == ExitCode.FAILURE


def test_a_missing_run_is_one_line_at_once(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    """``Run 'x' not found`` (RESOURCE_DOES_NOT_EXIST), from a database store or a server: no retry."""
    from mlflow.exceptions import RestException

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    store = open_store(uri, Retry(3, 1.0))
    waits: list[float] = []
    with pytest.raises(TokenSkipError) as info:
        with_retries(lambda: store.client.get_run("0123abc"), "get run", Retry(3, 1.0), uri, sleep=waits.append)
    assert waits == [] and exit_code_of(info.value) == ExitCode.BAD_INPUT
    message = str(info.value)
    assert message.startswith(f"MLflow tracking store {uri}: get run failed: ") and "0123abc" in message
    assert "\n" not in message

    def from_server() -> None:
        raise RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run 'x' not found"})

    with pytest.raises(TokenSkipError) as info:
        with_retries(from_server, "get run", Retry(3, 1.0), "http://h", sleep=waits.append)
    assert waits == [] and str(info.value) == (
        "MLflow tracking store http://h: get run failed: RESOURCE_DOES_NOT_EXIST: Run 'x' not found")
    with pytest.raises(TokenSkipError) as info:
        get_run(store, "0123abc", PARENT_RUN_ENV)
    assert str(info.value) == f"{PARENT_RUN_ENV}=0123abc: no such run at {uri}"


def test_a_closed_port_is_retried_by_mlflow_then_one_line_naming_the_uri(
    clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    clean_env.setenv(HTTP_RETRIES_ENV, "2")
    clean_env.setenv(HTTP_BACKOFF_ENV, "0")
    clean_env.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"), pytest.raises(ServiceError) as info:
        connect(dead, "e", "mlflow/artifacts", Retry(4, 1.0))
    assert time.perf_counter() - started < 30  # MLflow's retries only: ours would wait 1 + 2 + 4 s
    assert sum("Retrying" in r.getMessage() for r in caplog.records) == 2  # urllib3 under MLflow
    message = str(info.value)
    assert message.startswith(f"MLflow tracking at {dead} unreachable: get experiment failed after 3 attempt(s)")
    assert "\n" not in message and "mlflow/server.sh start" in message
    assert exit_code_of(info.value) == ExitCode.FAILURE


def test_a_damaged_store_is_one_line_at_once(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(TokenSkipError) as info:
        connect(f"sqlite:///{db}", "e", str(tmp_path / "artifacts"), Retry(3, 5.0))
    message = str(info.value)
    assert message.startswith(f"MLflow tracking store sqlite:///{db}: open the store failed (")
    assert "damaged or not writable" in message and "\n" not in message
    assert exit_code_of(info.value) == ExitCode.BAD_INPUT


def test_errors_are_told_apart_by_code(tmp_path: Path, locked_db) -> None:
    db = tmp_path / "ro.db"
    sqlite3.connect(db).execute("create table t (x)").connection.close()
    read_only = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as written:
        read_only.execute("insert into t values (1)")
    read_only.close()
    assert is_store_damage(written.value) and not is_locked(written.value)
    with pytest.raises(sqlite3.OperationalError) as busy:
        locked_write(locked_db[0])
    assert is_locked(busy.value) and not is_store_damage(busy.value)
    same_text = sqlite3.OperationalError(str(busy.value))  # the message alone, no error code
    assert not is_locked(same_text) and not is_store_damage(ValueError("file is not a database"))


def test_other_errors_propagate_as_they_are() -> None:
    waits: list[float] = []

    def bad() -> None:
        raise ValueError("RESOURCE_DOES_NOT_EXIST: no such run")

    with pytest.raises(ValueError):
        with_retries(bad, "get run", Retry(3, 1.0), "http://x", sleep=waits.append)
    assert waits == []


def test_globally_restores_uris_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """mlflow.set_tracking_uri(None) unsets MLFLOW_TRACKING_URI: the stage must leave it as it was."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    inner = f"sqlite:///{tmp_path}/x.db"
    with globally(inner):
        assert mlflow.get_tracking_uri() == inner and mlflow.get_registry_uri() == inner
    assert mlflow.get_tracking_uri() == "http://127.0.0.1:1"
    assert "MLFLOW_REGISTRY_URI" not in os.environ


def test_the_experiment_opens_on_its_runs_in_the_ui(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    """MLflow's UI opens an experiment by its ``mlflow.experimentKind``; without it, on the GenAI
    traces overview. connect sets the machine-learning kind, on new and older experiments, and keeps
    a kind the user chose."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    client = MlflowClient(tracking_uri=uri)
    older = client.create_experiment("older", (tmp_path / "a").as_uri())
    chosen = client.create_experiment("chosen", (tmp_path / "a").as_uri(),
                                      tags={"mlflow.experimentKind": "genai_development"})
    kinds = {}
    for name in ("new", "older", "chosen"):
        tracking = connect(uri, name, str(tmp_path / "a"), Retry(2, 0.1))
        kinds[name] = client.get_experiment(tracking.experiment_id).tags.get("mlflow.experimentKind")
    assert kinds == {"new": "custom_model_development", "older": "custom_model_development",
                     "chosen": "genai_development"}
    assert {older, chosen} < {client.get_experiment_by_name(n).experiment_id for n in kinds}
