"""``tokenskip register``: MLflow runs per ratio, one registry version per ratio, the promotion gate."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from tokenskip.core.params import load_params

DVC_EXPERIMENT_ENV = "DVC_EXP_BASELINE_REV"  # set by `dvc exp run` for the stages it runs


def register(
    evaluate: Path = typer.Option(Path("reports/evaluate.json"), help="Evaluate report (per-ratio metrics)"),
    finetune_report: Path = typer.Option(Path("reports/finetune.json"), help="Finetune report (loss curve)"),
    model: Path = typer.Option(Path("models/tokenskip"), help="Fine-tuned model: model/ and/or adapter/"),
    base: Path = typer.Option(Path("models/base"), help="Base model folder (for an adapter-only model)"),
    reports: Path = typer.Option(
        Path("reports"), help="Reports folder: pareto.png, validation/, outputs.jsonl"
    ),
    per_question: Path | None = typer.Option(
        None, help="Evaluate's per-question table (logged per ratio with mlflow log_table)"
    ),
    data: Path | None = typer.Option(None, help="Data folder: its <dataset>/test.jsonl is the test set"),
    report: Path = typer.Option(Path("reports/register.json"), help="Report (DVC metric)"),
    metrics: Path = typer.Option(Path("reports/metrics.json"), help="Headline metrics (DVC metric)"),
    params: Path = typer.Option(Path("params.yaml"), help="Params file"),
    require_champion: bool | None = typer.Option(
        None, "--require-champion/--no-require-champion",
        help="Exit 4 when no version passes the gate (default: params gates.require_champion)"),
) -> None:
    """Track the pipeline run, register each ratio as a model version, gate and set aliases.

    Tracking store: params mlflow.tracking_uri, or MLFLOW_TRACKING_URI (server mode). Nests under
    TOKENSKIP_PARENT_RUN_ID when the flow set it. Re-running for the same run creates no new versions.
    Under `dvc exp run` (DVC_EXP_BASELINE_REV set) the versions are tagged with the experiment and
    the aliases are not moved. The reports are written either way; then, if asked, no passing
    version is exit code 4.
    """
    from tokenskip.core.errors import NoChampion
    from tokenskip.core.io import nulls_for_non_finite, read_json, write_json
    from tokenskip.core.problems import dataset_file
    from tokenskip.register.inputs import RegisterInputs
    from tokenskip.register.registration import register as run_register
    from tokenskip.register.summary import headline_metrics

    settings = load_params(params)
    test_set = dataset_file(settings.data, data, "test") if data is not None else None
    inputs = RegisterInputs(evaluate, finetune_report, model, base, reports, per_question, test_set)
    experiment = os.environ.get(DVC_EXPERIMENT_ENV) or None
    payload = run_register(inputs, settings, params.read_text(encoding="utf-8"),
                           promote=not experiment, experiment=experiment)
    write_json(report, nulls_for_non_finite(payload))  # a figure the gate failed as NaN: null
    write_json(metrics, nulls_for_non_finite(headline_metrics(payload, read_json(evaluate))))
    typer.echo(
        f"register: {payload['registered_model']}: {payload['created_versions']} new / "
        f"{payload['reused_versions']} existing versions, {champion_summary(payload)}, "
        f"{payload['seconds']} s -> {report}"
    )
    required = settings.gates.require_champion if require_champion is None else require_champion
    if required and not payload["gate_passed"]:  # what the report says: no version of this run passed
        raise NoChampion(f"{payload['registered_model']}: no version of this run passed the gate; "
                         f"{champion_summary(payload)} (see {report}); gates.require_champion is true")


def champion_summary(payload: dict) -> str:
    """Where the champion alias points after the run, and where that version came from."""
    champion = payload["champion"]
    if champion is None:
        return "no champion"
    ratio = champion["ratio"]
    where = f"champion v{champion['version']}" + (f" (g={ratio:g})" if ratio is not None else "")
    if champion["from_this_run"]:
        return where
    under = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in (champion.get("passed_under") or {}).items())  # the gate it passed
    origin = f"kept from pipeline run {champion['pipeline_run_id']}" + (f", passed {under}" if under else "")
    moved = "aliases not moved: dvc exp run" if not payload["aliases_moved"] else "no alias moved"
    return f"{where} {origin} ({moved})"
