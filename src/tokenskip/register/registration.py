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
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.io import file_sha256, read_json
from tokenskip.core.params import Params
from tokenskip.core.prompts import ratio_key
from tokenskip.register.gate import Thresholds, judge, promotion_order
from tokenskip.register.inputs import as_result, content_key, paired_results, ratio_results
from tokenskip.register.registry import (
    CONTENT_TAG,
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
    versions_of_content,
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
from tokenskip.register.weights import shared_weights

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
    return file_sha256(path) if path.is_file() else "none"


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


def _environment_tags(base_report: Path) -> dict[str, str]:
    """``env.<key>`` tags of the versions and CPU capability base-model ran with (its report)."""
    try:
        environment = json.loads(base_report.read_text(encoding="utf-8")).get("environment") or {}
    except (OSError, ValueError):
        return {}
    return {f"env.{key}": str(value) for key, value in environment.items()}


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
        **_environment_tags(inputs.reports / "base-model.json"),
    }
    parent, opened = open_parent_run(tracking, key, f"pipeline-{key[:8]}", tags)
    log_params_once(tracking, parent, flatten(params.model_dump(by_alias=True))
                    | flatten(evaluate.get("decoding") or {}, "decoding."))
    baselines = {
        f"baseline.{name}.{metric}": value
        for name, row in (evaluate.get("baselines") or {}).items()
        for metric, value in (row or {}).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    log_metrics_once(tracking, parent, baselines)
    if inputs.test_set is not None:
        n_test = int(evaluate.get("n_test") or 0) or None
        log_test_set(tracking, parent.info.run_id, inputs.test_set, params.data, n_test)
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
            "repetition_penalty": params.model.repetition_penalty,
        },
    }


def _gate(rows: dict, paired: dict, params: Params, champion: Any) -> dict[float, Any]:
    gates = params.gates
    thresholds = Thresholds(gates.max_accuracy_drop, gates.min_token_reduction, gates.decision)
    return {ratio: judge(as_result(ratio, row), paired[ratio][gates.reference], gates.reference, thresholds,
                         champion)
            for ratio, row in rows.items()}


def _register_versions(
    tracking: Tracking, name: str, content: str, runs: RunLogger | None, inputs: tuple[dict, dict],
    params: Params,
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
    experiment = os.environ.get(DVC_EXPERIMENT_ENV)
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


@dataclass
class RunLogger:
    """Opens this pipeline run's MLflow runs on first use: the parent, the finetune child, a run per
    ratio. Not used at all when every version of the model and evaluation is registered already."""

    tracking: Tracking
    inputs: RegisterInputs
    params: Params
    evaluate: dict
    finetune: dict
    key: str
    parent: Any = None
    opened: bool = False
    finetune_run_id: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def parent_id(self) -> str:
        """The parent run's id (opening it, with the finetune child run, on first use)."""
        if self.parent is None:
            self.parent, self.opened = _parent(
                self.tracking, self.inputs, self.params, self.evaluate, self.key)
            self.finetune_run_id = finetune_run(
                self.tracking, self.parent, self.params.finetune.model_dump(), self.finetune,
                self.inputs.finetune_report, self.inputs.model_dir).info.run_id
            self.extra = _serving_extra(self.inputs, self.params)
            self.extra["weights"] = shared_weights(
                self.tracking, self.finetune_run_id, self.inputs.model_dir, self.inputs.base_dir)
        return self.parent.info.run_id

    def ratio_run(self, ratio: float, row: dict, verdict: Any, drops: dict) -> tuple[str, str]:
        """The ratio's child run and logged model: (run id, model id)."""
        self.parent_id  # noqa: B018  (opens the parent on first use)
        return ratio_run(self.tracking, self.parent, ratio, row, verdict, drops, self.extra)


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
    from tokenskip.core.hf import finetuned_kind

    name = registered_model_name(params.mlflow.registered_model, params.model.name, params.data.dataset)
    content = content_key(inputs.model_dir, finetuned_kind(inputs.model_dir), inputs.evaluate)
    runs = RunLogger(tracking, inputs, params, evaluate, finetune, key)
    outcome = _register_versions(tracking, name, content, runs, gate_inputs, params)
    promoted = not os.environ.get(DVC_EXPERIMENT_ENV)
    if promoted:
        apply_aliases(tracking, name, [str(outcome.versions[r].version) for r in outcome.order])
    if runs.parent is not None:
        set_tags(tracking, runs.parent_id, {"registered_model": name})
        if runs.opened:
            finish_run(tracking, runs.parent_id)
    parent_id = runs.parent_id if runs.parent is not None else next(
        v.tags[PARENT_RUN_TAG] for v in outcome.versions.values())
    final = alias_version(tracking, name, "champion")
    report = outcome_report(name, parent_id, gate_inputs[0], outcome, final)
    report["aliases_moved"] = promoted
    report["champion_uri"] = f"models:/{name}@champion" if final is not None else None  # pyfunc.load_model
    return report
