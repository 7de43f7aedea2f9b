"""Runs found before they are created, and logging that never writes a thing twice.

A re-run of a stage reuses its runs: the parent run by ``TOKENSKIP_PARENT_RUN_ID`` (opened by the
Prefect flow) or by the tag ``tokenskip.run_key`` (a hash of the stage's inputs); a child run by
its parent and the tag ``tokenskip.child``. Every call goes through :meth:`Tracking.call`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenskip.core.errors import TokenSkipError
from tokenskip.tracking.names import CHILD_TAG, PARENT_RUN_ENV, PARENT_TAG, ROLE_TAG, RUN_KEY_TAG
from tokenskip.tracking.retries import is_missing
from tokenskip.tracking.store import Tracking


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


def get_run(tracking: Tracking, run_id: str, origin: str) -> Any:
    """The run ``run_id``; one clear error naming ``origin`` (where the id came from) when it is
    not in the store."""

    def get() -> Any:
        try:
            return tracking.client.get_run(run_id)
        except Exception as exc:
            if is_missing(exc):
                raise TokenSkipError(f"{origin}={run_id}: no such run at {tracking.uri}") from None
            raise

    return tracking.call("get parent run", get)


def open_parent_run(tracking: Tracking, run_key: str, name: str, tags: dict[str, str]) -> tuple[Any, bool]:
    """The pipeline run: (run, opened_here). Uses ``TOKENSKIP_PARENT_RUN_ID`` when set, else
    reuses the run tagged with ``run_key`` or creates it. Tags are (re)applied either way."""
    env_id = os.environ.get(PARENT_RUN_ENV)
    if env_id:
        run, opened = get_run(tracking, env_id, PARENT_RUN_ENV), False
    else:
        run = _search_one(
            tracking,
            tracking.experiment_id,
            f"tags.`{RUN_KEY_TAG}` = '{run_key}' and tags.`{ROLE_TAG}` = 'pipeline'",
        )
        opened = True
        if run is None:
            create_tags = {"mlflow.runName": name, RUN_KEY_TAG: run_key, ROLE_TAG: "pipeline"}
            experiment_id = tracking.experiment_id
            run = tracking.call(
                "create parent run", lambda: tracking.client.create_run(experiment_id, tags=create_tags)
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
    tracking: Tracking,
    run: Any,
    metrics: dict[str, float],
    history: str = "",
    curve: Iterable[tuple[int, float]] = (),
) -> None:
    """Log metrics (and an optional stepped curve named ``history``) unless already logged; a
    value that is None, NaN or infinite is left out (not measured)."""
    from mlflow.entities import Metric

    if any(key in run.data.metrics for key in metrics):
        return
    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None and math.isfinite(v)]
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
