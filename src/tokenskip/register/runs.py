"""The child runs of one pipeline run: the finetune run and one run per ratio (metrics, gate tags,
its evaluated outputs and per-question table, the pyfunc model). Each is found again on a re-run,
and what it already holds is not logged twice."""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any

from tokenskip.core.hf import ADAPTER_SUBDIR
from tokenskip.core.params import DataParams
from tokenskip.core.prompts import ratio_key
from tokenskip.register.gate import Verdict
from tokenskip.register.inputs import loss_curve
from tokenskip.tracking.names import FINETUNE_CHILD, ROLE_TAG
from tokenskip.tracking.runs import (
    finish_run,
    log_artifact_once,
    log_metrics_once,
    log_params_once,
    open_child_run,
    set_tags,
)
from tokenskip.tracking.store import Tracking

MODEL_ID_TAG = "tokenskip.model_id"
PER_QUESTION_TABLE = "per_question.json"  # MlflowClient().load_table(experiment_id, this, run_ids=[...])
_METRIC_UNSAFE = re.compile(r"[^\w\-. /]")  # MLflow metric names: letters, digits, _ - . space /


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists become their JSON text."""
    if isinstance(tree, dict):
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: json.dumps(tree) if isinstance(tree, list) else tree}


def breakdown_figures(row: dict[str, Any]) -> dict[str, float]:
    """The ``breakdown`` of one evaluate.json ratio row as metrics named
    ``<dimension>.<group>.<figure>`` (e.g. ``level.5.accuracy``; characters MLflow refuses in a
    metric name become ``_``); none when the dataset has no levels or subjects."""
    flat = flatten(row.get("breakdown") or {})
    return {_METRIC_UNSAFE.sub("_", key): value for key, value in flat.items()
            if isinstance(value, int | float) and not isinstance(value, bool)}


def finetune_run(
    tracking: Tracking, parent: Any, finetune_params: dict, report: dict, report_path: Path, model_dir: Path
) -> Any:
    """The finetune child run: its params, the numbers of finetune.json, the loss curve, the adapter."""
    run = open_child_run(tracking, parent, FINETUNE_CHILD, {ROLE_TAG: FINETUNE_CHILD})
    log_params_once(tracking, run, flatten(finetune_params, "finetune."))
    numbers = {k: v for k, v in report.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    curve = loss_curve(report, report_path)
    if "loss" in run.data.metrics:  # the Trainer logged it live (inside the flow)
        curve = []
    log_metrics_once(tracking, run, numbers, "loss", curve)
    log_artifact_once(tracking, run, model_dir / ADAPTER_SUBDIR)
    finish_run(tracking, run.info.run_id)
    return run


def outputs_for(outputs: list[dict], ratio: float) -> list[dict]:
    """The evaluated outputs of TokenSkip at ``ratio`` among reports/outputs.jsonl's."""
    def g_of(record: dict) -> float:
        value = record.get("g", record.get("ratio"))
        return 1.0 if value is None else float(value)

    return [s for s in outputs if s.get("method", "tokenskip") == "tokenskip" and abs(g_of(s) - ratio) < 1e-6]


def ratio_figures(row: dict, verdict: Verdict, drops: dict[str, float]) -> dict[str, float]:
    """The child run's metrics: evaluate's numbers, the gate's statistics, the drop per reference."""
    paired = verdict.paired
    figures = {k: v for k, v in row.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    figures.update(
        accuracy_drop=paired.accuracy_drop,
        accuracy_drop_ci_low=paired.accuracy_drop_ci[0],
        accuracy_drop_ci_high=paired.accuracy_drop_ci[1],
        token_reduction=paired.token_reduction,
        token_reduction_ci_low=paired.token_reduction_ci[0],
        token_reduction_ci_high=paired.token_reduction_ci[1],
        mcnemar_p=paired.mcnemar_p,
        **{f"accuracy_drop_{ref}": drop for ref, drop in drops.items()},
    )
    figures.update(breakdown_figures(row))
    return figures


def _log_tables(tracking: Tracking, run_id: str, ratio: float, extra: dict) -> None:
    outputs = outputs_for(extra["outputs"], ratio)
    if outputs:
        text = "".join(json.dumps(s) + "\n" for s in outputs)
        tracking.call("log outputs", lambda: tracking.client.log_text(run_id, text, "outputs.jsonl"))
    rows = [r for r in extra["per_question"] if r.get("condition") == f"g={ratio_key(ratio)}"]
    logged = tracking.call("list artifacts", lambda: tracking.client.list_artifacts(run_id))
    if rows and PER_QUESTION_TABLE not in {a.path for a in logged}:  # log_table appends: log once
        columns = {key: [r.get(key) for r in rows] for key in rows[0]}
        tracking.call("log per-question table",
                      lambda: tracking.client.log_table(run_id, columns, PER_QUESTION_TABLE))


def describe_model(
    tracking: Tracking, run_id: str, model_id: str, figures: dict, tags: dict[str, str]
) -> None:
    """Link ``figures`` to the logged model as its metrics (what its page and its registry version
    show) and set its ``tags`` (lineage), each unless it is there already."""
    from mlflow.entities import Metric

    model = tracking.call("get logged model", lambda: tracking.client.get_logged_model(model_id))
    linked = {m.key for m in model.metrics or []}
    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, 0, model_id=model_id) for k, v in figures.items()
             if k not in linked and v is not None and math.isfinite(v)]
    for start in range(0, len(batch), 1000):
        chunk = batch[start : start + 1000]
        tracking.call("link metrics to the model",
                      lambda chunk=chunk: tracking.client.log_batch(run_id, metrics=chunk))
    missing = {k: v for k, v in tags.items() if model.tags.get(k) != v}
    if missing:
        tracking.call("tag the model", lambda: tracking.client.set_logged_model_tags(model_id, missing))


def ratio_run(
    tracking: Tracking, parent: Any, ratio: float, row: dict, verdict: Verdict, drops: dict[str, float],
    extra: dict, lineage: dict[str, str],
) -> tuple[str, str]:
    """Child run of one ratio: metrics, gate tags, its outputs and per-question table, and the pyfunc
    model (logged once) with the figures as its metrics and ``lineage`` as its tags. Returns (run
    id, logged model id)."""
    import mlflow
    from tokenskip.register.pyfunc_model import log_pyfunc

    label = ratio_key(ratio)
    run = open_child_run(tracking, parent, f"ratio-{label}", {ROLE_TAG: "ratio", "ratio": label})
    run_id = run.info.run_id
    log_params_once(tracking, run, {"ratio": label})
    figures = ratio_figures(row, verdict, drops)
    log_metrics_once(tracking, run, figures)
    tags = {"gate": "passed" if verdict.passed else "failed", "gate_reason": verdict.reason,
            "reference": verdict.reference, "decision": verdict.decision}
    set_tags(tracking, run_id, tags | {f"accuracy_drop_{ref}": f"{d:.6g}" for ref, d in drops.items()})
    _log_tables(tracking, run_id, ratio, extra)
    model_id = run.data.tags.get(MODEL_ID_TAG)
    if not model_id:

        def log_model() -> str:
            with mlflow.start_run(run_id=run_id, nested=True):
                return log_pyfunc(extra["model_dir"], extra["base_dir"], ratio, **extra["serving"],
                                  weights=extra.get("weights")).model_id

        model_id = tracking.call(f"log model ratio {label}", log_model)
        set_tags(tracking, run_id, {MODEL_ID_TAG: model_id})
    describe_model(tracking, run_id, model_id, figures, lineage)
    finish_run(tracking, run_id)
    return run_id, model_id


def log_test_set(
    tracking: Tracking, run_id: str, test_file: Path, params: DataParams, n_test: int | None
) -> None:
    """Log the evaluated test problems as the run's input dataset (context ``test``, with digest);
    ``test_file`` is read in ``params.dataset``'s format."""
    import mlflow.data
    import pandas as pd
    from mlflow.entities import Dataset, DatasetInput, InputTag

    from tokenskip.core.problems import load_file

    problems = load_file(params, test_file, "test")[:n_test]
    frame = pd.DataFrame([p.to_record() for p in problems])
    name = f"{params.dataset}-test"
    data = mlflow.data.from_pandas(frame, source=str(test_file), name=name, targets="gold")
    entry = DatasetInput(Dataset(**data.to_dict()), tags=[InputTag("mlflow.data.context", "test")])
    tracking.call("log the test set", lambda: tracking.client.log_inputs(run_id, datasets=[entry]))


def read_records(path: Path | None, optional: bool = False) -> list[dict]:
    """JSON Lines records of ``path``; none when it is not given (or, if ``optional``, missing or empty)."""
    from tokenskip.core.io import read_jsonl

    if path is None or (optional and (not path.is_file() or not path.stat().st_size)):
        return []
    return read_jsonl(path)
