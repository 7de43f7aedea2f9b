"""The main job: a Prefect flow that runs the DVC stages of dvc.yaml in order.

Prefect orchestrates (order, retries, timeouts, logs, artifacts, schedule); DVC computes: each
task runs ``dvc repro <stage>`` in the repository and the flow reads only the stages' reports.

    python -m flows.pipeline                 # run it now (what `make run` does)
    python -m flows.deploy serve             # the nightly deployment, served locally
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from prefect.tasks import exponential_backoff

from flows import reports as fr
from flows.support import (
    StageFailed,
    plan_stages,
    read_dvc_stages,
    resolve_tracking_uri,
    run_dvc_repro,
    stage_env,
)
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.params import Params, load_params
from tokenskip.register.tracking import PARENT_RUN_ENV, Retry, connect

REPO_ROOT = Path(__file__).resolve().parents[1]
FLOW_NAME = "tokenskip-pipeline"
NO_OP_STATUSES = {"unchanged", "restored"}  # dvc repro ran nothing (see flows.support.parse_repro_output)


def _retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry crashes, timeouts and lock contention; not a stage's deterministic input error."""
    exc = state.data
    return not (isinstance(exc, StageFailed) and not exc.transient)


@task(name="dvc-repro", cache_policy=NO_CACHE, retry_condition_fn=_retry_if_transient)
def run_stage(stage: str, repo: str, extra_env: dict[str, str], timeout_s: float) -> dict[str, Any]:
    """Run ``dvc repro <stage>``, streaming its output to the Prefect logger."""
    logger = get_run_logger()
    env = stage_env(os.environ, extra_env)
    result = run_dvc_repro(stage, Path(repo), env, timeout_s, lambda line: logger.info("%s", line))
    logger.info("stage %s: %s in %.1f s", stage, result.statuses.get(stage, "done"), result.seconds)
    return {"stage": stage, "seconds": result.seconds, "status": result.statuses.get(stage, "done")}


def _stage_task(stage: str, params: Params) -> Any:
    cfg = params.flow
    return run_stage.with_options(
        name=f"dvc-repro-{stage}",
        task_run_name=stage,
        retries=cfg.retries,
        retry_delay_seconds=exponential_backoff(cfg.retry_delay_s) if cfg.retries else 0,
    )


@contextmanager
def _parent_run(params: Params, repo: Path, tracking_uri: str) -> Iterator[tuple[Any, str]]:
    """Open the MLflow parent run of this pipeline run (FAILED if the block raises).

    Connects like the register stage does (:func:`tokenskip.register.tracking.connect`, with its
    retries). Yields (client, run id); the stages nest their runs under it via
    ``TOKENSKIP_PARENT_RUN_ID``.
    """
    cfg = params.mlflow
    retry = Retry(cfg.retries, cfg.retry_backoff_s)
    tracking = connect(tracking_uri, cfg.experiment, str(repo / cfg.artifact_location), retry)
    client = tracking.client
    flow_run = getattr(get_run_context(), "flow_run", None)
    tags = {"mlflow.runName": f"pipeline-{flow_run.name}" if flow_run else "pipeline",
            "tokenskip.role": "pipeline", "prefect.flow_run_id": str(flow_run.id) if flow_run else ""}
    run = tracking.call("create the pipeline run",
                        lambda: client.create_run(tracking.experiment_id, tags=tags))
    run_id = run.info.run_id
    status = "FAILED"
    try:
        yield client, run_id
        status = "FINISHED"
    finally:
        tracking.call("end the pipeline run", lambda: client.set_terminated(run_id, status))


def _publish(stage: str, repo: Path) -> None:
    """Publish the Prefect artifact that follows ``stage`` (from its report only)."""
    reports = repo / "reports"
    if stage == "validate" and (report := fr.read_report(reports / "validate.json")):
        create_markdown_artifact(
            fr.validation_markdown(report, reports / "validation"), key="tokenskip-validation",
            description="Great Expectations summary of the generated, pruned and training data")
    elif stage == "evaluate" and (report := fr.read_report(reports / "evaluate.json")):
        create_table_artifact(fr.evaluation_rows(report), key="tokenskip-evaluation",
                              description="Accuracy and CoT tokens per ratio and per baseline")
    elif stage == "register" and (report := fr.read_report(reports / "register.json")):
        create_table_artifact(fr.gate_rows(report) or [{"versions": "none"}], key="tokenskip-gates",
                              description=fr.champion_line(fr.champion_of(report)))


def _log_to_parent(client: Any, run_id: str, timings: list[dict[str, Any]], wall_s: float) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    values = {f"stage_seconds.{t['stage']}": t["seconds"] for t in timings} | {"flow_seconds": wall_s}
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()])


@flow(name=FLOW_NAME, log_prints=True)
def tokenskip_pipeline(repo_dir: str | None = None, stages: list[str] | None = None) -> dict[str, Any] | None:
    """Run the DVC stages of ``repo_dir`` (default: this repository) in the canonical order.

    Stages not in dvc.yaml yet are skipped (and logged). Returns the gate decision:
    {"registered_model", "version", "ratio"} of the champion, or None.
    """
    start = time.monotonic()
    logger = get_run_logger()
    repo = Path(repo_dir).resolve() if repo_dir else REPO_ROOT
    params = load_params(repo / "params.yaml")
    plan = plan_stages(read_dvc_stages(repo), stages)
    logger.info("repository %s; stages to run: %s", repo, ", ".join(plan.stages))
    if plan.missing:
        logger.warning("not in dvc.yaml yet, skipped: %s", ", ".join(plan.missing))
    if plan.extra:
        logger.warning("stages unknown to the flow, run last: %s", ", ".join(plan.extra))
    tracking_uri = resolve_tracking_uri(params.mlflow.tracking_uri, repo, os.environ)
    timings: list[dict[str, Any]] = []
    with _parent_run(params, repo, tracking_uri) as (client, parent_id):
        logger.info("MLflow parent run %s at %s", parent_id, tracking_uri)
        extra_env = {PARENT_RUN_ENV: parent_id, "MLFLOW_TRACKING_URI": tracking_uri}
        for stage in plan.stages:
            try:
                timings.append(_stage_task(stage, params)(stage, str(repo), extra_env,
                                                          params.flow.stage_timeout_s))
            except StageFailed:
                if stage == "validate":  # failed validation: its report says why (always written)
                    _publish(stage, repo)
                raise
            _publish(stage, repo)
        wall = time.monotonic() - start
        _log_to_parent(client, parent_id, timings, wall)
        if timings and all(t["status"] in NO_OP_STATUSES for t in timings):
            logger.info("every stage was up to date: parent run %s marked as a no-op", parent_id)
            client.set_tag(parent_id, "tokenskip.no_op", "true")
            client.set_tag(parent_id, "mlflow.note.content", "No-op: DVC found every stage up to date.")
    create_table_artifact(timings, key="tokenskip-stage-timings",
                          description=f"dvc repro per stage; flow wall time {wall:.1f} s")
    return _summarize(repo, plan.stages, timings, wall)


def _summarize(
    repo: Path, ran: list[str], timings: list[dict[str, Any]], wall: float
) -> dict[str, Any] | None:
    logger = get_run_logger()
    stage_sum = sum(t["seconds"] for t in timings)
    logger.info("flow wall %.1f s, stages %.1f s, flow overhead %.1f s", wall, stage_sum, wall - stage_sum)
    evaluation = fr.read_report(repo / "reports" / "evaluate.json") if "evaluate" in ran else None
    if evaluation:
        logger.info("\n%s", fr.evaluation_markdown(evaluation))
    register = fr.read_report(repo / "reports" / "register.json") if "register" in ran else None
    decision = fr.champion_of(register)
    logger.info("%s", fr.champion_line(decision) if register else "Champion: register stage not run")
    return decision


def final_summary(repo: Path) -> str:
    """What `make run` prints at the end: the evaluation table and the champion."""
    reports = repo / "reports"
    evaluation = fr.read_report(reports / "evaluate.json")
    register = fr.read_report(reports / "register.json")
    parts = [fr.evaluation_markdown(evaluation) if evaluation else "(no reports/evaluate.json yet)"]
    parts.append(fr.champion_line(fr.champion_of(register)) if register else "Champion: (no register report)")
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Command line: run the flow once, then print the evaluation table and the champion."""
    parser = argparse.ArgumentParser(description="Run the TokenSkip pipeline flow once.")
    parser.add_argument("--repo", default=None, help="repository root (default: this one)")
    parser.add_argument("--stages", nargs="*", default=None, help="only these stages (default: all)")
    args = parser.parse_args(argv)
    try:
        tokenskip_pipeline(repo_dir=args.repo, stages=args.stages)
    except (StageFailed, TokenSkipError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n" + final_summary(Path(args.repo).resolve() if args.repo else REPO_ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
