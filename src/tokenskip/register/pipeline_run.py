"""The pipeline run (the parent of every run the stage logs) and :class:`RunLogger`, which opens
the parent, the finetune child run and a run per ratio on first use.

The parent carries the git commit, the dvc.lock digest, the versions base-model ran with, every
param, the baselines' figures, the test set as its input and the reports as artifacts.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenskip.core.io import file_sha256
from tokenskip.core.params import Params
from tokenskip.register.inputs import RegisterInputs
from tokenskip.register.runs import finetune_run, flatten, log_test_set, ratio_run, read_records
from tokenskip.register.weights import shared_weights
from tokenskip.tracking.runs import log_artifact_once, log_metrics_once, log_params_once, open_parent_run
from tokenskip.tracking.store import Tracking

PARENT_ARTIFACTS = ("pareto.png", "pareto.csv", "validation", "outputs.jsonl", "evaluate.json")


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


def _environment_tags(base_report: Path) -> dict[str, str]:
    """``env.<key>`` tags of the versions and CPU capability base-model ran with (its report)."""
    try:
        environment = json.loads(base_report.read_text(encoding="utf-8")).get("environment") or {}
    except (OSError, ValueError):
        return {}
    return {f"env.{key}": str(value) for key, value in environment.items()}


def open_pipeline_run(
    tracking: Tracking, inputs: RegisterInputs, params: Params, evaluate: dict, key: str
) -> tuple[Any, bool]:
    """The parent run, found or created, with its tags, params, baselines, test set and reports:
    (run, opened_here)."""
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
    for name in PARENT_ARTIFACTS:
        log_artifact_once(tracking, parent, inputs.reports / name, "reports")
    return parent, opened


def serving_extra(inputs: RegisterInputs, params: Params) -> dict[str, Any]:
    """What every ratio run logs beside its metrics: evaluated outputs, per-question rows, the model
    folders and the serving settings of its pyfunc model."""
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
            self.parent, self.opened = open_pipeline_run(
                self.tracking, self.inputs, self.params, self.evaluate, self.key)
            self.finetune_run_id = finetune_run(
                self.tracking, self.parent, self.params.finetune.model_dump(), self.finetune,
                self.inputs.finetune_report, self.inputs.model_dir).info.run_id
            self.extra = serving_extra(self.inputs, self.params)
            self.extra["weights"] = shared_weights(
                self.tracking, self.finetune_run_id, self.inputs.model_dir, self.inputs.base_dir)
        return self.parent.info.run_id

    def ratio_run(
        self, ratio: float, row: dict, verdict: Any, drops: dict, lineage: dict[str, str]
    ) -> tuple[str, str]:
        """The ratio's child run and logged model: (run id, model id). The model is tagged with
        ``lineage``, this pipeline run and the finetune run."""
        parent_id = self.parent_id  # opens the parent on first use
        tags = {**lineage, "parent_run_id": parent_id, "finetune_run_id": self.finetune_run_id}
        return ratio_run(self.tracking, self.parent, ratio, row, verdict, drops, self.extra, tags)
