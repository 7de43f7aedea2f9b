"""The register stage's job: track the pipeline run in MLflow, register one version per ratio,
gate them and move the ``champion``/``challenger`` aliases; returns reports/register.json.

Order of work (each step idempotent, so a failed run is completed by a re-run): read and check
the inputs -> connect -> parent run (tags, params, baselines, artifacts) -> finetune child run ->
per ratio: child run (metrics, evaluated outputs, pyfunc model) -> then the registry, in one short burst:
registered model, one version per ratio (created with all its tags), aliases. Nothing is written
to MLflow before the inputs are known to be complete, and nothing to the registry before every
model is logged.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenskip.core.errors import TokenSkipError
from tokenskip.core.hf import ADAPTER_SUBDIR
from tokenskip.core.io import read_json
from tokenskip.core.params import Params
from tokenskip.core.prompts import ratio_key
from tokenskip.register.gate import Thresholds, judge, promotion_order
from tokenskip.register.registry import (
    PARENT_RUN_TAG,
    Outcome,
    alias_version,
    apply_aliases,
    as_result,
    baseline_champion,
    ensure_registered_model,
    ensure_version,
    outcome_report,
    ratio_results,
    registered_model_name,
    result_from_tags,
    version_tags,
    versions_of_run,
)
from tokenskip.register.tracking import (
    Retry,
    Tracking,
    connect,
    finish_run,
    globally,
    log_artifact_once,
    log_metrics_once,
    log_params_once,
    open_child_run,
    open_parent_run,
    set_tags,
)

MODEL_ID_TAG = "tokenskip.model_id"


@dataclass(frozen=True)
class RegisterInputs:
    """Paths given to ``tokenskip register`` (see dvc.yaml)."""

    evaluate: Path
    finetune_report: Path
    model_dir: Path
    base_dir: Path
    reports: Path


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists become their JSON text."""
    if isinstance(tree, dict):
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: json.dumps(tree) if isinstance(tree, list) else tree}


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


def _loss_curve(finetune: dict[str, Any], source: Path) -> list[tuple[int, float]]:
    curve = []
    for index, point in enumerate(finetune.get("loss_history") or []):
        if (
            not isinstance(point, dict)
            or not isinstance(point.get("step"), int | float)
            or not isinstance(point.get("loss"), int | float)
        ):
            raise TokenSkipError(f"{source}: loss_history.{index}: needs numeric 'step' and 'loss'")
        curve.append((int(point["step"]), float(point["loss"])))
    return curve


def read_inputs(inputs: RegisterInputs, params: Params) -> tuple[dict, dict, dict[float, dict]]:
    """(evaluate.json, finetune.json, per-ratio metrics); any gap is one clear error."""
    from tokenskip.core.hf import finetuned_kind

    evaluate = read_json(inputs.evaluate)
    finetune = read_json(inputs.finetune_report)
    if not isinstance(finetune, dict):
        raise TokenSkipError(f"{inputs.finetune_report}: not a JSON object")
    _loss_curve(finetune, inputs.finetune_report)
    rows = ratio_results(evaluate, params.evaluate.ratios, str(inputs.evaluate))
    finetuned_kind(inputs.model_dir)
    return evaluate, finetune, rows


def _parent(tracking: Tracking, inputs: RegisterInputs, params: Params, evaluate: dict, key: str) -> Any:
    tags = {
        "git_commit": _git_commit(),
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
    for name in ("pareto.png", "pareto.csv", "validation", "outputs.jsonl", "evaluate.json"):
        log_artifact_once(tracking, parent, inputs.reports / name, "reports")
    return parent, opened


def _finetune_run(
    tracking: Tracking, parent: Any, inputs: RegisterInputs, params: Params, report: dict
) -> Any:
    run = open_child_run(tracking, parent, "finetune", {"tokenskip.role": "finetune"})
    log_params_once(tracking, run, flatten(params.finetune.model_dump(), "finetune."))
    numbers = {k: v for k, v in report.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    log_metrics_once(tracking, run, numbers, "loss", _loss_curve(report, inputs.finetune_report))
    log_artifact_once(tracking, run, inputs.model_dir / ADAPTER_SUBDIR)
    finish_run(tracking, run.info.run_id)
    return run


def _outputs_for(outputs: list[dict], ratio: float) -> list[dict]:
    def g_of(record: dict) -> float:
        value = record.get("g", record.get("ratio"))
        return 1.0 if value is None else float(value)

    return [s for s in outputs if s.get("method", "tokenskip") == "tokenskip" and abs(g_of(s) - ratio) < 1e-6]


def _ratio_run(tracking: Tracking, parent: Any, ratio: float, row: dict, verdict: Any, extra: dict) -> Any:
    """Child run of one ratio: metrics, gate tags, its evaluated outputs, the pyfunc model (logged once)."""
    import mlflow
    from tokenskip.register.pyfunc_model import log_pyfunc

    label = ratio_key(ratio)
    run = open_child_run(tracking, parent, f"ratio-{label}", {"tokenskip.role": "ratio", "ratio": label})
    log_params_once(tracking, run, {"ratio": label})
    figures = {**row, "accuracy_drop": verdict.accuracy_drop, "token_reduction": verdict.token_reduction}
    log_metrics_once(tracking, run, figures)
    set_tags(
        tracking,
        run.info.run_id,
        {"gate": "passed" if verdict.passed else "failed", "gate_reason": verdict.reason},
    )
    outputs = _outputs_for(extra["outputs"], ratio)
    if outputs:
        tracking.call(
            "log outputs",
            lambda: tracking.client.log_text(
                run.info.run_id, "".join(json.dumps(s) + "\n" for s in outputs), "outputs.jsonl"
            ),
        )
    model_id = run.data.tags.get(MODEL_ID_TAG)
    if not model_id:

        def log_model() -> str:
            with mlflow.start_run(run_id=run.info.run_id, nested=True):
                return log_pyfunc(extra["model_dir"], extra["base_dir"], ratio, **extra["serving"]).model_id

        model_id = tracking.call(f"log model ratio {label}", log_model)
        set_tags(tracking, run.info.run_id, {MODEL_ID_TAG: model_id})
    finish_run(tracking, run.info.run_id)
    return run.info.run_id, model_id


def _read_outputs(path: Path) -> list[dict]:
    from tokenskip.core.io import read_jsonl

    return read_jsonl(path) if path.is_file() and path.stat().st_size else []


def _serving_extra(inputs: RegisterInputs, params: Params) -> dict[str, Any]:
    return {
        "outputs": _read_outputs(inputs.reports / "outputs.jsonl"),
        "model_dir": inputs.model_dir,
        "base_dir": inputs.base_dir,
        "serving": {
            "instruction": params.model.instruction,
            "max_new_tokens": params.evaluate.max_new_tokens,
            "batch_size": params.evaluate.batch_size,
        },
    }


def _register_versions(
    tracking: Tracking, name: str, parent: Any, ft_run_id: str, rows: dict, params: Params, extra: dict
) -> Outcome:
    """Gate every ratio and log its child run and model; then find or create the versions.

    The registry is written last, in one short burst (registered model, versions, then aliases by
    the caller): a failure while logging the models leaves the registry untouched.
    """
    parent_id = parent.info.run_id
    existing = versions_of_run(tracking, name, parent_id)
    baseline = baseline_champion(tracking, name, parent_id, existing)
    champion = result_from_tags(baseline) if baseline is not None else None
    previous = str(baseline.version) if baseline is not None else "none"
    thresholds = Thresholds(params.gates.max_accuracy_drop, params.gates.min_token_reduction)
    reference = as_result(1.0, rows[1.0])
    verdicts, logged, versions = {}, {}, {}
    for ratio, row in rows.items():
        verdicts[ratio] = judge(as_result(ratio, row), reference, thresholds, champion)
        logged[ratio] = _ratio_run(tracking, parent, ratio, row, verdicts[ratio], extra)
    ensure_registered_model(tracking, name)
    for ratio, row in rows.items():
        run_id, model_id = logged[ratio]
        run_ids = {"run_id": run_id, PARENT_RUN_TAG: parent_id, "finetune_run_id": ft_run_id}
        tags = version_tags(ratio, row, verdicts[ratio], run_ids, previous)
        versions[ratio] = ensure_version(tracking, name, f"models:/{model_id}", model_id, run_id, tags)
    order = promotion_order([as_result(r, row) for r, row in rows.items()], list(verdicts.values()))
    return Outcome(versions, verdicts, order, existing, baseline)


def register(inputs: RegisterInputs, params: Params, params_text: str = "") -> dict[str, Any]:
    """Track, register, gate and alias; return the reports/register.json payload."""
    started = time.perf_counter()
    evaluate, finetune, rows = read_inputs(inputs, params)
    settings = params.mlflow
    key = hashlib.sha256(
        inputs.evaluate.read_bytes() + inputs.finetune_report.read_bytes() + params_text.encode()
    ).hexdigest()
    retry = Retry(settings.retries, settings.retry_backoff_s)
    tracking = connect(settings.tracking_uri, settings.experiment, settings.artifact_location, retry)
    with globally(tracking.uri):
        report = _track_and_register(tracking, inputs, params, evaluate, finetune, rows, key)
    report.update(tracking_uri=tracking.uri, seconds=round(time.perf_counter() - started, 2))
    return report


def _track_and_register(
    tracking: Tracking,
    inputs: RegisterInputs,
    params: Params,
    evaluate: dict,
    finetune: dict,
    rows: dict,
    key: str,
) -> dict[str, Any]:
    """Everything that talks to MLflow, in the order that makes a re-run complete a cut-short one."""
    name = registered_model_name(params.mlflow.registered_model, params.model.name, params.data.dataset)
    parent, opened = _parent(tracking, inputs, params, evaluate, key)
    parent_id = parent.info.run_id
    ft_run = _finetune_run(tracking, parent, inputs, params, finetune)
    extra = _serving_extra(inputs, params)
    outcome = _register_versions(tracking, name, parent, ft_run.info.run_id, rows, params, extra)
    apply_aliases(tracking, name, [str(outcome.versions[r].version) for r in outcome.order])
    set_tags(tracking, parent_id, {"registered_model": name})
    if opened:
        finish_run(tracking, parent_id)
    final = alias_version(tracking, name, "champion")
    return outcome_report(name, parent_id, rows, outcome, final)
