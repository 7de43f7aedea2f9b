"""The register stage's job: track the pipeline run in MLflow, register one version per ratio,
gate them and move the ``champion``/``challenger`` aliases; returns reports/register.json.

Order of work (each step idempotent, so a failed run is completed by a re-run): read and check
the inputs -> connect -> parent run (tags, params, baselines, artifacts) -> finetune child run ->
per ratio: child run (metrics, evaluated outputs, pyfunc model) -> then the registry, in one short
burst: registered model, one version per ratio (created with all its tags), aliases. Under
``dvc exp run`` (DVC sets ``DVC_EXP_BASELINE_REV``) the versions are registered and tagged with
the experiment, but the aliases are not moved: promotion stays with the flow and
``dvc repro``. Nothing is written to MLflow before the inputs are known to be complete, and
nothing to the registry before every model is logged.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.io import read_json
from tokenskip.core.params import Params
from tokenskip.core.prompts import ratio_key
from tokenskip.register.gate import Thresholds, judge, promotion_order
from tokenskip.register.inputs import as_result, paired_results, ratio_results
from tokenskip.register.registry import (
    PARENT_RUN_TAG,
    Outcome,
    alias_version,
    apply_aliases,
    baseline_champion,
    ensure_registered_model,
    ensure_version,
    outcome_report,
    registered_model_name,
    result_from_tags,
    version_description,
    version_tags,
    versions_of_run,
)
from tokenskip.register.runs import finetune_run, flatten, log_test_set, loss_curve, ratio_run, read_records
from tokenskip.register.tracking import (
    Retry,
    Tracking,
    connect,
    finish_run,
    globally,
    log_artifact_once,
    log_metrics_once,
    log_params_once,
    open_parent_run,
    set_tags,
)

DVC_EXPERIMENT_ENV = "DVC_EXP_BASELINE_REV"  # set by `dvc exp run` for the stages it runs


@dataclass(frozen=True)
class RegisterInputs:
    """Paths given to ``tokenskip register`` (see dvc.yaml)."""

    evaluate: Path
    finetune_report: Path
    model_dir: Path
    base_dir: Path
    reports: Path
    per_question: Path | None = None  # evaluate's per-question table; logged per ratio when given
    test_set: Path | None = None  # the test problems evaluate used (logged as the run's input)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "none"


def _git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def read_inputs(inputs: RegisterInputs, params: Params) -> tuple[dict, dict, dict[float, dict], dict]:
    """(evaluate.json, finetune.json, per-ratio metrics, per-ratio paired comparison with
    ``gates.reference``); any gap is one clear error."""
    from tokenskip.core.hf import finetuned_kind

    evaluate = read_json(inputs.evaluate)
    finetune = read_json(inputs.finetune_report)
    if not isinstance(finetune, dict):
        raise TokenSkipError(f"{inputs.finetune_report}: not a JSON object")
    loss_curve(finetune, inputs.finetune_report)
    rows = ratio_results(evaluate, params.evaluate.ratios, str(inputs.evaluate))
    paired = paired_results(evaluate, params.evaluate.ratios, str(inputs.evaluate))
    reference = params.gates.reference
    missing = [ratio_key(r) for r, by_ref in paired.items() if reference not in by_ref]
    if missing:
        raise TokenSkipError(
            f"{inputs.evaluate}: ratios.{missing[0]}.paired.{reference}: missing; gates.reference="
            f"{reference} needs it (the original model is measured when evaluate.baselines is true)"
        )
    finetuned_kind(inputs.model_dir)
    return evaluate, finetune, rows, paired


def _parent(tracking: Tracking, inputs: RegisterInputs, params: Params, evaluate: dict, key: str) -> Any:
    commit = _git_commit()
    tags = {
        "git_commit": commit,
        "mlflow.source.git.commit": commit,
        "mlflow.source.name": "dvc.yaml:register",
        "mlflow.source.type": "PROJECT",
        "dvc_lock_sha256": _sha256(Path("dvc.lock")),
        "dataset": params.data.dataset,
        "model": params.model.name,
        "n_test": str(evaluate.get("n_test", "")),
    }
    parent, opened = open_parent_run(tracking, key, f"pipeline-{key[:8]}", tags)
    log_params_once(tracking, parent, flatten(params.model_dump(by_alias=True)))
    baselines = {
        f"baseline.{name}.{metric}": value
        for name, row in (evaluate.get("baselines") or {}).items()
        for metric, value in (row or {}).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    log_metrics_once(tracking, parent, baselines)
    if inputs.test_set is not None:
        n_test = int(evaluate.get("n_test") or 0) or None
        log_test_set(tracking, parent.info.run_id, inputs.test_set, params.data.dataset, n_test)
    for name in ("pareto.png", "pareto.csv", "validation", "outputs.jsonl", "evaluate.json"):
        log_artifact_once(tracking, parent, inputs.reports / name, "reports")
    return parent, opened


def _serving_extra(inputs: RegisterInputs, params: Params) -> dict[str, Any]:
    return {
        "outputs": read_records(inputs.reports / "outputs.jsonl", optional=True),
        "per_question": read_records(inputs.per_question),
        "model_dir": inputs.model_dir,
        "base_dir": inputs.base_dir,
        "serving": {
            "instruction": params.model.instruction,
            "max_new_tokens": params.evaluate.max_new_tokens,
            "batch_size": params.evaluate.batch_size,
        },
    }


def _register_versions(
    tracking: Tracking, name: str, parent: Any, ft_run_id: str, inputs: tuple[dict, dict], params: Params,
    extra: dict,
) -> Outcome:
    """Gate every ratio and log its child run and model; then find or create the versions.

    The registry is written last, in one short burst (registered model, versions, then aliases by
    the caller): a failure while logging the models leaves the registry untouched.
    """
    rows, paired = inputs
    parent_id = parent.info.run_id
    existing = versions_of_run(tracking, name, parent_id)
    baseline = baseline_champion(tracking, name, parent_id, existing)
    champion = result_from_tags(baseline) if baseline is not None else None
    previous = str(baseline.version) if baseline is not None else "none"
    gates = params.gates
    thresholds = Thresholds(gates.max_accuracy_drop, gates.min_token_reduction, gates.decision)
    drops = {r: {ref: p.accuracy_drop for ref, p in by_ref.items()} for r, by_ref in paired.items()}
    verdicts, logged, versions = {}, {}, {}
    for ratio, row in rows.items():
        against = paired[ratio][gates.reference]
        verdicts[ratio] = judge(as_result(ratio, row), against, gates.reference, thresholds, champion)
        logged[ratio] = ratio_run(tracking, parent, ratio, row, verdicts[ratio], drops[ratio], extra)
    ensure_registered_model(tracking, name)
    experiment = os.environ.get(DVC_EXPERIMENT_ENV)
    for ratio, row in rows.items():
        run_id, model_id = logged[ratio]
        run_ids = {"run_id": run_id, PARENT_RUN_TAG: parent_id, "finetune_run_id": ft_run_id}
        tags = version_tags(ratio, row, verdicts[ratio], run_ids, previous, drops[ratio])
        if experiment:
            tags["dvc_experiment_baseline"] = experiment
        description = version_description(ratio, row, verdicts[ratio])
        versions[ratio] = ensure_version(tracking, name, f"models:/{model_id}", model_id, run_id, tags,
                                         description)
    order = promotion_order([as_result(r, row) for r, row in rows.items()], list(verdicts.values()))
    return Outcome(versions, verdicts, order, existing, baseline, drops)


def register(inputs: RegisterInputs, params: Params, params_text: str = "") -> dict[str, Any]:
    """Track, register, gate and alias; return the reports/register.json payload."""
    started = time.perf_counter()
    evaluate, finetune, rows, paired = read_inputs(inputs, params)
    settings = params.mlflow
    key = hashlib.sha256(
        inputs.evaluate.read_bytes() + inputs.finetune_report.read_bytes() + params_text.encode()
    ).hexdigest()
    retry = Retry(settings.retries, settings.retry_backoff_s)
    tracking = connect(settings.tracking_uri, settings.experiment, settings.artifact_location, retry)
    with globally(tracking.uri):
        report = _track_and_register(tracking, inputs, params, evaluate, finetune, (rows, paired), key)
    report.update(tracking_uri=tracking.uri, seconds=round(time.perf_counter() - started, 2))
    return report


def _track_and_register(
    tracking: Tracking,
    inputs: RegisterInputs,
    params: Params,
    evaluate: dict,
    finetune: dict,
    gate_inputs: tuple[dict, dict],
    key: str,
) -> dict[str, Any]:
    """Everything that talks to MLflow, in the order that makes a re-run complete a cut-short one."""
    name = registered_model_name(params.mlflow.registered_model, params.model.name, params.data.dataset)
    parent, opened = _parent(tracking, inputs, params, evaluate, key)
    parent_id = parent.info.run_id
    ft_run = finetune_run(tracking, parent, params.finetune.model_dump(), finetune, inputs.finetune_report,
                          inputs.model_dir)
    extra = _serving_extra(inputs, params)
    outcome = _register_versions(tracking, name, parent, ft_run.info.run_id, gate_inputs, params, extra)
    promoted = not os.environ.get(DVC_EXPERIMENT_ENV)
    if promoted:
        apply_aliases(tracking, name, [str(outcome.versions[r].version) for r in outcome.order])
    set_tags(tracking, parent_id, {"registered_model": name})
    if opened:
        finish_run(tracking, parent_id)
    final = alias_version(tracking, name, "champion")
    report = outcome_report(name, parent_id, gate_inputs[0], outcome, final)
    report["aliases_moved"] = promoted
    return report
