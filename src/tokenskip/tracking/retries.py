"""Who retries a failed tracking call, and the one line a failure ends in.

- A tracking **server** (http/https): MLflow retries every request itself (connection refused or
  reset, timeouts, 408/429/5xx) with exponential backoff. :func:`apply_http_retries` sets its
  ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` and ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR`` from params
  ``mlflow.retries`` (attempts per call) and ``mlflow.retry_backoff_s`` unless the environment
  already sets them. When MLflow gives up, :func:`with_retries` raises one line naming the URI
  (ServiceError, exit code 1), at once.
- A **database** store (the embedded SQLite default): MLflow does not retry a locked database
  (SQLITE_BUSY / SQLITE_LOCKED after its own busy timeout, or a lost database connection, which
  MLflow reports as ``TEMPORARILY_UNAVAILABLE``); :func:`with_retries` does, waiting
  ``backoff_s * 2**i``, then raises one line (ServiceError).
- A damaged store (corrupt, not a database, read-only, cannot be opened), a store whose driver is
  not installed (an ImportError, e.g. ``postgresql://`` without psycopg2), a server whose answer
  is not MLflow's (:func:`tokenskip.tracking.store.connect`), and a missing run, experiment or
  model (``RESOURCE_DOES_NOT_EXIST``) are one line at once (TokenSkipError, exit code 2): a retry
  cannot fix them.

Failures are told apart by type and code (the sqlite3 error code in the exception chain,
MlflowException's ``error_code``, the requests exception types), never by message text.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from tokenskip.core.errors import ServiceError, TokenSkipError

T = TypeVar("T")
HTTP_RETRIES_ENV = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
HTTP_BACKOFF_ENV = "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"  # whole seconds (MLflow reads an int)
HTTP_RETRIES_LIMIT = 10  # MLflow refuses more retries than this (its _MLFLOW_HTTP_REQUEST_MAX_RETRIES_LIMIT)
LOCKED_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
DAMAGED_CODES = frozenset(
    {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN}
)
MISSING = "RESOURCE_DOES_NOT_EXIST"  # MlflowException.error_code of a missing run, experiment or model
UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"  # MLflow's code for a database error worth retrying
_SET_HERE: dict[str, str] = {}  # the HTTP retry settings this process wrote (not the user's)


@dataclass(frozen=True)
class Retry:
    """How often and how patiently to retry a tracking call (params ``mlflow.retries`` and
    ``mlflow.retry_backoff_s``)."""

    attempts: int = 4
    backoff_s: float = 1.0


def apply_http_retries(retry: Retry) -> None:
    """Let MLflow's own HTTP retries follow ``retry`` (``attempts - 1`` retries, the backoff in
    whole seconds, rounded up), unless the user set them in the environment."""
    wanted = {
        HTTP_RETRIES_ENV: str(min(retry.attempts - 1, HTTP_RETRIES_LIMIT)),
        HTTP_BACKOFF_ENV: str(math.ceil(retry.backoff_s)),
    }
    for name, value in wanted.items():
        current = os.environ.get(name)
        if current is None or current == _SET_HERE.get(name):
            os.environ[name] = value
            _SET_HERE[name] = value


def http_attempts() -> int:
    """How many times MLflow tries one HTTP request (its retries, plus the first try)."""
    from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_MAX_RETRIES

    return MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() + 1


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it: ``__cause__``, ``__context__`` and SQLAlchemy's ``orig``."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        current = todo.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [current.__cause__, current.__context__, getattr(current, "orig", None)]


def sqlite_code(exc: BaseException) -> int | None:
    """The primary SQLite result code of the sqlite3 error behind ``exc``, if there is one."""
    for cause in _chain(exc):
        code = getattr(cause, "sqlite_errorcode", None)
        if isinstance(cause, sqlite3.Error) and isinstance(code, int):
            return code & 0xFF
    return None


def mlflow_code(exc: BaseException) -> str | None:
    """``exc.error_code`` when ``exc`` is an MlflowException (a RestException included)."""
    from mlflow.exceptions import MlflowException

    return exc.error_code if isinstance(exc, MlflowException) else None


def is_store_damage(exc: BaseException) -> bool:
    """A local database that is corrupt, not a database, read-only or cannot be opened."""
    return sqlite_code(exc) in DAMAGED_CODES


def is_missing(exc: BaseException) -> bool:
    """A run, experiment or registered model that does not exist (``RESOURCE_DOES_NOT_EXIST``)."""
    return mlflow_code(exc) == MISSING


def is_locked(exc: BaseException) -> bool:
    """A database that is busy or locked, or another database error MLflow calls temporary."""
    return sqlite_code(exc) in LOCKED_CODES or (mlflow_code(exc) == UNAVAILABLE and not is_store_damage(exc))


def is_unreachable(exc: BaseException) -> bool:
    """A server that did not answer, or kept failing, through MLflow's own retries."""
    import requests

    kinds = (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
             requests.exceptions.RetryError, ConnectionError, TimeoutError)
    return any(isinstance(cause, kinds) for cause in _chain(exc))


def first_line(exc: BaseException) -> str:
    """The first line of an error message (300 characters at most)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _unreachable(uri: str, what: str, attempts: int, exc: BaseException) -> ServiceError:
    return ServiceError(
        f"MLflow tracking at {uri} unreachable: {what} failed after {attempts} attempt(s) "
        f"({first_line(exc)}); start the server (mlflow/server.sh start; shared stack: infra/up.sh) "
        "or unset MLFLOW_TRACKING_URI, then re-run the stage"
    )


def missing_module(exc: BaseException) -> str | None:
    """The names of the Python modules whose import failed behind ``exc`` (e.g. the database
    driver a store's URI needs, ``psycopg2`` for ``postgresql://``), if one did."""
    names = [cause.name or first_line(cause) for cause in _chain(exc) if isinstance(cause, ImportError)]
    return " / ".join(dict.fromkeys(names)) or None


def _final(exc: BaseException, what: str, uri: str) -> TokenSkipError | None:
    """The one-line error a failure ends in at once, or None when it may be retried or is not ours."""
    module = missing_module(exc)
    if module is not None:
        return TokenSkipError(
            f"MLflow tracking store {uri}: {what} failed: its driver (Python module {module}) is not "
            "installed: install it (PostgreSQL: psycopg2-binary, the project's scale extra) or point "
            "MLFLOW_TRACKING_URI / mlflow.tracking_uri at another store"
        )
    if is_store_damage(exc):
        return TokenSkipError(
            f"MLflow tracking store {uri}: {what} failed ({first_line(exc)}); the database is "
            "damaged or not writable: restore or fix mlflow/ (or point MLFLOW_TRACKING_URI elsewhere)"
        )
    if is_missing(exc):
        return TokenSkipError(f"MLflow tracking store {uri}: {what} failed: {first_line(exc)}")
    if is_unreachable(exc):
        return _unreachable(uri, what, http_attempts(), exc)
    return None


def with_retries(
    action: Callable[[], T], what: str, retry: Retry, uri: str, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Call ``action``; retry a locked database after ``backoff_s * 2**i`` s, ``retry.attempts``
    times in all, then raise ServiceError naming the URI and the step. A damaged store, a missing
    resource and a server MLflow gave up on are one line at once; other errors propagate as they are.
    """
    for attempt in range(1, retry.attempts + 1):
        try:
            return action()
        except TokenSkipError:
            raise
        except Exception as exc:
            final = _final(exc, what, uri)
            if final is not None:
                raise final from None
            if not is_locked(exc):
                raise
            if attempt == retry.attempts:
                raise ServiceError(
                    f"MLflow tracking store {uri} busy: {what} failed after {attempt} attempt(s) "
                    f"({first_line(exc)}); another process holds the database: let it finish (or "
                    "use the tracking server, mlflow/server.sh start), then re-run the stage"
                ) from None
            sleep(retry.backoff_s * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover
