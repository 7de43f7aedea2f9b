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
from tokenskip.register.aliases import (
    alias_version,
    apply_aliases,
    baseline_champion,
    champion_entry,
    held_aliases,
    pipeline_run_of,
)
from tokenskip.register.gate import Thresholds, judge, promotion_order
from tokenskip.register.inputs import RegisterInputs, as_result, read_inputs
from tokenskip.register.outcome import Outcome, outcome_report
from tokenskip.register.pipeline_run import RunLogger
from tokenskip.register.registry import (
    CONTENT_TAG,
    EXPERIMENT_TAG,
    PREVIOUS_CHAMPION_TAG,
    content_key,
    ensure_registered_model,
    ensure_version,
    registered_model_name,
    version_description,
    version_result,
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


def _log_missing(
    runs: RunLogger, rows: dict, existing: dict, verdicts: dict, drops: dict, lineage: dict[str, str]
) -> dict[float, tuple[str, str, Any]]:
    """Per ratio (run id, logged model id, the registered version or None): the child run and model
    of every ratio that has no version yet are logged here."""
    logged = {}
    for ratio, row in rows.items():
        found = existing.get(ratio_key(ratio))
        if found is not None:
            logged[ratio] = (found.run_id, found.source.removeprefix("models:/"), found)
        else:
            logged[ratio] = (*runs.ratio_run(ratio, row, verdicts[ratio], drops[ratio], lineage), None)
    return logged


def _register_versions(
    tracking: Tracking, name: str, content: str, runs: RunLogger, inputs: tuple[dict, dict],
    params: Params, policy: tuple[bool, str | None] = (True, None),
) -> Outcome:
    """Gate every ratio; log its child run and model unless all its versions exist; then find or
    create the versions (content-keyed: the same model and evaluation are never a second version).

    The registry is written last, in one short burst (registered model, versions, then aliases by
    the caller): a failure while logging the models leaves the registry untouched. ``policy``:
    (promote, experiment). Under ``dvc exp run`` existing versions are left as they are; when no
    alias moves (nothing passed), a version holding an alias keeps the verdict tags it earned.
    """
    promote, experiment = policy
    rows, paired = inputs
    existing = versions_of_content(tracking, name, content)
    baseline = baseline_champion(tracking, name, content, existing)
    previous = str(baseline.version) if baseline is not None else "none"
    champion = version_result(tracking, baseline) if baseline is not None else None
    verdicts = _gate(rows, paired, params, champion)
    drops = {r: {ref: p.accuracy_drop for ref, p in by_ref.items()} for r, by_ref in paired.items()}
    order = promotion_order([as_result(r, row) for r, row in rows.items()], list(verdicts.values()))
    lineage = {CONTENT_TAG: content, PREVIOUS_CHAMPION_TAG: previous} | ({EXPERIMENT_TAG: experiment}
                                                                        if experiment else {})
    logged = _log_missing(runs, rows, existing, verdicts, drops, lineage)
    ensure_registered_model(tracking, name)
    held = held_aliases(tracking, name) if promote and not order else {}
    versions, kept = {}, set()
    for ratio, row in rows.items():
        run_id, model_id, found = logged[ratio]
        if found is not None and (experiment or str(found.version) in held):
            versions[ratio] = found  # an experiment, or an alias no one moves: its tags stand
            kept |= {ratio} if str(found.version) in held else set()
            continue
        tags = version_tags(ratio, row, verdicts[ratio], content) | ({EXPERIMENT_TAG: experiment}
                                                                     if experiment else {})
        description = version_description(ratio, row, verdicts[ratio])
        versions[ratio] = ensure_version(tracking, name, f"models:/{model_id}", model_id, run_id, tags,
                                         description)
    return Outcome(versions, verdicts, order, existing, baseline, drops, kept)


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
    outcome = _register_versions(tracking, name, content, runs, gate_inputs, params, (promote, experiment))
    promoted = [str(outcome.versions[r].version) for r in outcome.order] if promote else []
    apply_aliases(tracking, name, promoted)
    if runs.parent is not None:
        set_tags(tracking, runs.parent_id, {"registered_model": name})
        if runs.opened:
            finish_run(tracking, runs.parent_id)
    held = held_aliases(tracking, name)
    champion = champion_entry(tracking, alias_version(tracking, name, "champion"),
                              promoted[0] if promoted else None)
    parent_id = runs.parent_id if runs.parent is not None else pipeline_run_of(
        tracking, next(iter(outcome.versions.values())))
    report = outcome_report(name, parent_id, gate_inputs[0], outcome, held, champion)
    report["aliases_moved"] = promote
    report["champion_uri"] = f"models:/{name}@champion" if champion is not None else None  # pyfunc.load_model
    return report
