"""The main job: a Prefect flow that runs the DVC stages of dvc.yaml in order.

Prefect orchestrates (order, retries, timeouts, logs, artifacts, schedule); DVC computes: each
task runs ``dvc repro <stage>`` in the repository and the flow reads only the stages' reports.

    tokenskip run                            # run it now (what `make run` does)
    tokenskip run -S prune.ratios='[0.6]'    # one run with params overrides, as a DVC experiment
    tokenskip deploy                         # the nightly deployment, served locally
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from prefect.tasks import exponential_backoff

from tokenskip.core.errors import ExitCode, TokenSkipError, exit_code_of
from tokenskip.core.params import Params, load_params
from tokenskip.tracking.names import PARENT_RUN_ENV
from tokenskip.tracking.retries import Retry
from tokenskip.tracking.store import connect, resolve_uri
from tokenskip_flows import links
from tokenskip_flows import reports as fr
from tokenskip_flows.support import (
    EXPERIMENT,
    StageFailed,
    check_overrides,
    plan_stages,
    read_dvc_stages,
    run_dvc_repro,
    stage_env,
)
from tokenskip_flows.workspace import params_kept_on_failure, validated_overrides

FLOW_NAME = "tokenskip-pipeline"
NO_OP_STATUSES = {"unchanged", "restored"}  # dvc repro ran nothing (see support.parse_repro_output)


def _retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry crashes, timeouts and lock contention; not a stage's deterministic input error."""
    exc = state.data
    return not (isinstance(exc, StageFailed) and not exc.transient)


@task(name="dvc-repro", cache_policy=NO_CACHE, retry_condition_fn=_retry_if_transient)
def run_stage(
    stage: str, repo: str, extra_env: dict[str, str], timeout_s: float,
    overrides: list[str] | None = None, targets: list[str] | None = None,
) -> dict[str, Any]:
    """Run ``dvc repro <stage>`` (with overrides: ``dvc exp run -S ... <targets>``), streaming its
    output to the Prefect logger."""
    logger = get_run_logger()
    env = stage_env(os.environ, extra_env)
    result = run_dvc_repro(stage, Path(repo), env, timeout_s, lambda line: logger.info("%s", line),
                           overrides or (), targets)
    status = result.statuses.get(stage) or ("ran" if "ran" in result.statuses.values() else "done")
    logger.info("stage %s: %s in %.1f s", stage, status, result.seconds)
    return {"stage": stage, "seconds": result.seconds, "status": status, "experiment": result.experiment}


def _stage_task(stage: str, params: Params) -> Any:
    cfg = params.flow
    return run_stage.with_options(
        name=f"dvc-repro-{stage}",
        task_run_name=stage,
        retries=cfg.retries,
        retry_delay_seconds=exponential_backoff(cfg.retry_delay_s) if cfg.retries else 0,
    )


def _parent_tags(overrides: Sequence[str]) -> dict[str, str]:
    """The parent run's tags: its name, role, the Prefect flow run's id and UI address, and the
    params overrides of this run (``-S key=value``)."""
    flow_run = getattr(get_run_context(), "flow_run", None)
    tags = {"mlflow.runName": f"pipeline-{flow_run.name}" if flow_run else "pipeline",
            "tokenskip.role": "pipeline", "prefect.flow_run_id": str(flow_run.id) if flow_run else ""}
    if flow_run:
        tags["prefect.flow_run_url"] = links.flow_run_url(links.prefect_ui_base(os.environ), str(flow_run.id))
    if overrides:
        tags["tokenskip.overrides"] = " ".join(overrides)
    return tags


@contextmanager
def _parent_run(
    params: Params, repo: Path, tracking_uri: str, overrides: Sequence[str] = ()
) -> Iterator[tuple[Any, Any]]:
    """Open the MLflow parent run of this pipeline run (FAILED if the block raises).

    Connects like the register stage does (:func:`tokenskip.tracking.store.connect`, with its
    retries). Yields (client, run); the stages nest their runs under it via
    ``TOKENSKIP_PARENT_RUN_ID``. Overrides are logged as params ``override.<key>``.
    """
    cfg = params.mlflow
    retry = Retry(cfg.retries, cfg.retry_backoff_s)
    tracking = connect(tracking_uri, cfg.experiment, str(repo / cfg.artifact_location), retry)
    client = tracking.client
    tags = _parent_tags(overrides)
    run = tracking.call("create the pipeline run",
                        lambda: client.create_run(tracking.experiment_id, tags=tags))
    run_id = run.info.run_id
    for item in overrides:
        key, _, value = item.partition("=")
        tracking.call("log an override", lambda k=key, v=value: client.log_param(run_id, f"override.{k}", v))
    status = "FAILED"
    try:
        yield client, run
        status = "FINISHED"
    finally:
        tracking.call("end the pipeline run", lambda: client.set_terminated(run_id, status))


def _publish(stage: str, repo: Path, mlflow_ui: str = "") -> None:
    """Publish the Prefect artifacts that follow ``stage`` (from its report only); ``mlflow_ui``:
    the MLflow UI address the registry link points at."""
    reports = repo / "reports"
    if stage == "validate" and (report := fr.read_report(reports / "validate.json")):
        create_markdown_artifact(
            fr.validation_markdown(report, reports / "validation"), key="tokenskip-validation",
            description="Great Expectations summary of the generated, pruned and training data")
    elif stage == "evaluate" and (report := fr.read_report(reports / "evaluate.json")):
        create_table_artifact(fr.evaluation_rows(report), key="tokenskip-evaluation",
                              description="Accuracy and CoT tokens per ratio and per baseline")
    elif stage == "register" and (report := fr.read_report(reports / "register.json")):
        uri = f"; load it as {report['champion_uri']}" if report.get("champion_uri") else ""
        create_table_artifact(fr.gate_rows(report) or [{"versions": "none"}], key="tokenskip-gates",
                              description=fr.champion_line(fr.champion_of(report)) + uri)
        if report.get("registered_model") and mlflow_ui:
            create_link_artifact(links.mlflow_model_url(mlflow_ui, report["registered_model"]),
                                 link_text=f"MLflow registry: {report['registered_model']}",
                                 key="tokenskip-registry", description="Versions, gate tags and aliases")


def _log_to_parent(client: Any, run_id: str, timings: list[dict[str, Any]], wall_s: float) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    values = {f"stage_seconds.{t['stage']}": t["seconds"] for t in timings} | {"flow_seconds": wall_s}
    client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()])


def _run_stages(
    plan: list[str], params: Params, repo: Path, extra_env: dict[str, str], overrides: list[str],
    mlflow_ui: str,
) -> list[dict[str, Any]]:
    """One task per stage (``dvc repro``), or with overrides one ``dvc exp run`` over them all;
    each stage's artifact is published from its report after it ran (validate's even on failure)."""
    timeout = params.flow.stage_timeout_s
    batches = [(EXPERIMENT, plan)] if overrides else [(stage, [stage]) for stage in plan]
    timings = []
    for name, stages in batches:
        try:
            with params_kept_on_failure(repo / "params.yaml"):  # dvc exp run writes the overrides into it
                timings.append(_stage_task(name, params)(name, str(repo), extra_env, timeout,
                                                         overrides or None, stages if overrides else None))
        except StageFailed:
            if "validate" in stages:  # failed validation: its report says why (always written)
                _publish("validate", repo)
            raise
        for stage in stages:
            _publish(stage, repo, mlflow_ui)
    return timings


@flow(name=FLOW_NAME, log_prints=True)
def tokenskip_pipeline(
    repo_dir: str | None = None, stages: list[str] | None = None, overrides: list[str] | None = None
) -> dict[str, Any] | None:
    """Run the DVC stages of ``repo_dir`` (default: the current directory) in dvc.yaml's order.

    ``overrides`` (``key=value``, as ``dvc exp run -S``) run the stages as one DVC experiment with
    those params, recorded on the MLflow parent run. Returns the gate decision:
    {"registered_model", "version", "ratio"} of the champion, or None.
    """
    start = time.monotonic()
    logger = get_run_logger()
    repo = Path(repo_dir).resolve() if repo_dir else Path.cwd()
    overrides = check_overrides(overrides or [])
    params = load_params(repo / "params.yaml")
    if overrides:  # validated before DVC writes params.yaml or deletes an output
        params = validated_overrides(repo / "params.yaml", overrides)
    plan = plan_stages(read_dvc_stages(repo), stages)
    logger.info("repository %s; stages to run: %s", repo, ", ".join(plan))
    tracking_uri = resolve_uri(params.mlflow.tracking_uri, repo, os.environ)
    with _parent_run(params, repo, tracking_uri, overrides) as (client, parent):
        parent_id = parent.info.run_id
        mlflow_ui = links.mlflow_ui_base(tracking_uri, os.environ)
        run_url = links.mlflow_run_url(mlflow_ui, parent.info.experiment_id, parent_id)
        logger.info("MLflow parent run %s at %s: %s", parent_id, tracking_uri, run_url)
        create_link_artifact(run_url, link_text=f"MLflow run {parent.info.run_name}",
                             key="tokenskip-mlflow-run",
                             description="The MLflow parent run of this flow run (stages nest under it)")
        extra_env = {PARENT_RUN_ENV: parent_id, "MLFLOW_TRACKING_URI": tracking_uri}
        timings = _run_stages(plan, params, repo, extra_env, overrides, mlflow_ui)
        wall = time.monotonic() - start
        _log_to_parent(client, parent_id, timings, wall)
        experiment = next((t["experiment"] for t in timings if t.get("experiment")), None)
        if experiment:
            client.set_tag(parent_id, "dvc.experiment", experiment)
        if timings and all(t["status"] in NO_OP_STATUSES for t in timings):
            logger.info("every stage was up to date: parent run %s marked as a no-op", parent_id)
            client.set_tag(parent_id, "tokenskip.no_op", "true")
            client.set_tag(parent_id, "mlflow.note.content", "No-op: DVC found every stage up to date.")
    create_table_artifact([{k: v for k, v in t.items() if k != "experiment"} for t in timings],
                          key="tokenskip-stage-timings",
                          description=f"dvc repro per stage; flow wall time {wall:.1f} s")
    return _summarize(repo, plan, timings, wall)


def _summarize(
    repo: Path, ran: list[str], timings: list[dict[str, Any]], wall: float
) -> dict[str, Any] | None:
    logger = get_run_logger()
    stage_sum = sum(t["seconds"] for t in timings)
    logger.info("flow wall %.1f s, stages %.1f s, flow overhead %.1f s", wall, stage_sum, wall - stage_sum)
    evaluation = fr.read_report(repo / "reports" / "evaluate.json") if "evaluate" in ran else None
    if evaluation:
        logger.info("\n%s", fr.results_markdown(evaluation))
    register = fr.read_report(repo / "reports" / "register.json") if "register" in ran else None
    decision = fr.champion_of(register)
    logger.info("%s", fr.champion_line(decision) if register else "Champion: register stage not run")
    return decision


def final_summary(repo: Path) -> str:
    """What `make run` prints at the end: the results and gate tables and the champion."""
    reports = repo / "reports"
    return fr.final_tables(fr.read_report(reports / "evaluate.json"),
                           fr.read_report(reports / "register.json"))


def run_once(repo: Path, stages: list[str] | None = None, overrides: list[str] | None = None) -> int:
    """Run the flow once and print the evaluation table and the champion; the exit code: 0, the
    failed stage's own code when it is deterministic (2 bad input, 3 validation failed, 4 no
    champion), else 1."""
    try:
        tokenskip_pipeline(repo_dir=str(repo), stages=stages, overrides=overrides)
    except (StageFailed, TokenSkipError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if isinstance(exc, StageFailed):
            return int(ExitCode.FAILURE) if exc.transient or exc.exit_code is None else exc.exit_code
        return exit_code_of(exc)
    print("\n" + final_summary(repo))
    return 0

