"""The register stage's job: track the pipeline run in MLflow, register one version per ratio,
gate them and move the ``champion``/``challenger`` aliases; returns reports/register.json.

Order of work (each step idempotent, so a failed run is completed by a re-run): read and check
the inputs -> connect -> parent run (tags, params, baselines, artifacts) -> finetune child run ->
per ratio: child run (metrics, evaluated outputs, pyfunc model) -> then the registry, in one short
burst: registered model, one version per ratio (created with all its tags), aliases. Nothing is
written to MLflow before the inputs are known to be complete, and nothing to the registry before
every model is logged.

The caller decides the ``dvc exp run`` policy (the CLI reads it from DVC's environment): in an
experiment the versions are registered and tagged with it (``experiment``), existing versions
are left as they are, and the aliases are not moved (``promote=False``): promotion stays with
the flow and ``dvc repro``.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from tokenskip.core.params import Params
from tokenskip.core.prompts import ratio_key
from tokenskip.register.gate import Thresholds, judge, promotion_order
from tokenskip.register.inputs import RegisterInputs, as_result, read_inputs
from tokenskip.register.pipeline_run import RunLogger
from tokenskip.register.registry import (
    CONTENT_TAG,
    PARENT_RUN_TAG,
    Outcome,
    alias_version,
    apply_aliases,
    baseline_champion,
    content_key,
    ensure_registered_model,
    ensure_version,
    outcome_report,
    registered_model_name,
    result_from_tags,
    version_description,
    version_tags,
    versions_of_content,
)
from tokenskip.tracking.retries import Retry
from tokenskip.tracking.runs import finish_run, set_tags
from tokenskip.tracking.store import Tracking, connect, globally, resolve_uri


def _gate(rows: dict, paired: dict, params: Params, champion: Any) -> dict[float, Any]:
    gates = params.gates
    thresholds = Thresholds(gates.max_accuracy_drop, gates.min_token_reduction, gates.decision)
    return {ratio: judge(as_result(ratio, row), paired[ratio][gates.reference], gates.reference, thresholds,
                         champion)
            for ratio, row in rows.items()}


def _register_versions(
    tracking: Tracking, name: str, content: str, runs: RunLogger | None, inputs: tuple[dict, dict],
    params: Params, experiment: str | None = None,
) -> Outcome:
    """Gate every ratio; log its child run and model unless all its versions exist; then find or
    create the versions (content-keyed: the same model and evaluation are never a second version).

    The registry is written last, in one short burst (registered model, versions, then aliases by
    the caller): a failure while logging the models leaves the registry untouched. Under
    ``dvc exp run`` existing versions are left as they are.
    """
    rows, paired = inputs
    existing = versions_of_content(tracking, name, content)
    baseline = baseline_champion(tracking, name, content, existing)
    previous = str(baseline.version) if baseline is not None else "none"
    verdicts = _gate(rows, paired, params, result_from_tags(baseline) if baseline is not None else None)
    drops = {r: {ref: p.accuracy_drop for ref, p in by_ref.items()} for r, by_ref in paired.items()}
    logged = {}
    for ratio, row in rows.items():
        found = existing.get(ratio_key(ratio))
        if found is not None:
            logged[ratio] = (found.run_id, found.source.removeprefix("models:/"), found.tags)
        elif runs is not None:
            logged[ratio] = (*runs.ratio_run(ratio, row, verdicts[ratio], drops[ratio]), None)
    ensure_registered_model(tracking, name)
    versions = {}
    for ratio, row in rows.items():
        run_id, model_id, old_tags = logged[ratio]
        if experiment and old_tags is not None:  # an experiment does not rewrite registered versions
            versions[ratio] = existing[ratio_key(ratio)]
            continue
        run_ids = {"run_id": run_id, CONTENT_TAG: content,
                   PARENT_RUN_TAG: old_tags[PARENT_RUN_TAG] if old_tags else runs.parent_id,
                   "finetune_run_id": old_tags["finetune_run_id"] if old_tags else runs.finetune_run_id}
        tags = version_tags(ratio, row, verdicts[ratio], run_ids, previous, drops[ratio])
        if experiment:
            tags["dvc_experiment_baseline"] = experiment
        description = version_description(ratio, row, verdicts[ratio])
        versions[ratio] = ensure_version(tracking, name, f"models:/{model_id}", model_id, run_id, tags,
                                         description)
    order = promotion_order([as_result(r, row) for r, row in rows.items()], list(verdicts.values()))
    return Outcome(versions, verdicts, order, existing, baseline, drops)


def register(
    inputs: RegisterInputs,
    params: Params,
    params_text: str = "",
    promote: bool = True,
    experiment: str | None = None,
) -> dict[str, Any]:
    """Track, register, gate and alias; return the reports/register.json payload.

    ``promote``: move the ``champion``/``challenger`` aliases; ``experiment``: the DVC experiment
    the versions belong to (tagged ``dvc_experiment_baseline``; existing versions are left as
    they are). The store: ``MLFLOW_TRACKING_URI`` or params ``mlflow.tracking_uri``, a relative
    path taken from the working directory (the repository, where DVC runs the stage).
    """
    started = time.perf_counter()
    evaluate, finetune, rows, paired = read_inputs(inputs, params)
    settings = params.mlflow
    key = hashlib.sha256(
        inputs.evaluate.read_bytes() + inputs.finetune_report.read_bytes() + params_text.encode()
    ).hexdigest()
    retry = Retry(settings.retries, settings.retry_backoff_s)
    uri = resolve_uri(settings.tracking_uri, Path.cwd())
    tracking = connect(uri, settings.experiment, settings.artifact_location, retry)
    with globally(tracking.uri):
        runs = RunLogger(tracking, inputs, params, evaluate, finetune, key)
        report = _track_and_register(tracking, runs, (rows, paired), promote, experiment)
    report.update(tracking_uri=tracking.uri, seconds=round(time.perf_counter() - started, 2))
    return report


def _track_and_register(
    tracking: Tracking, runs: RunLogger, gate_inputs: tuple[dict, dict], promote: bool, experiment: str | None
) -> dict[str, Any]:
    """Everything that talks to MLflow, in the order that makes a re-run complete a cut-short one."""
    from tokenskip.core.hf import finetuned_kind

    inputs, params = runs.inputs, runs.params
    name = registered_model_name(params.mlflow.registered_model, params.model.name, params.data.dataset)
    kind = finetuned_kind(inputs.model_dir)
    content = content_key(inputs.model_dir, kind, runs.evaluate, inputs.per_question)
    outcome = _register_versions(tracking, name, content, runs, gate_inputs, params, experiment)
    if promote:
        apply_aliases(tracking, name, [str(outcome.versions[r].version) for r in outcome.order])
    if runs.parent is not None:
        set_tags(tracking, runs.parent_id, {"registered_model": name})
        if runs.opened:
            finish_run(tracking, runs.parent_id)
    parent_id = runs.parent_id if runs.parent is not None else next(
        v.tags[PARENT_RUN_TAG] for v in outcome.versions.values())
    final = alias_version(tracking, name, "champion")
    report = outcome_report(name, parent_id, gate_inputs[0], outcome, final)
    report["aliases_moved"] = promote
    report["champion_uri"] = f"models:/{name}@champion" if final is not None else None  # pyfunc.load_model
    return report
