"""Live training curves: inside the flow, the Trainer logs to MLflow as it trains.

When the flow set ``TOKENSKIP_PARENT_RUN_ID`` and ``MLFLOW_TRACKING_URI``, the finetune child run of
that parent (the one register fills in later, found by its tags) is opened here and the Trainer's
MLflow callback logs loss, learning rate and gradient norm into it every ``logging_steps``. Outside
the flow (a plain ``dvc repro``) nothing is logged here and register copies the curve afterwards.
"""

from __future__ import annotations

import os

from tokenskip.tracking.names import FINETUNE_CHILD, PARENT_RUN_ENV, ROLE_TAG
from tokenskip.tracking.retries import Retry
from tokenskip.tracking.runs import get_run, open_child_run
from tokenskip.tracking.store import open_store


def finetune_run_id(tracking_uri: str, parent_id: str) -> str:
    """The finetune child run under ``parent_id``: found by its tags, else created with them.

    The flow's MLflow HTTP retry settings reach this process through its environment."""
    tracking = open_store(tracking_uri, Retry())
    parent = get_run(tracking, parent_id, PARENT_RUN_ENV)
    return open_child_run(tracking, parent, FINETUNE_CHILD, {ROLE_TAG: FINETUNE_CHILD}).info.run_id


def report_to(main_process: bool) -> str:
    """``mlflow`` (with the run prepared in the environment) inside the flow, else ``none``.

    Only the main process opens the run; the Trainer logs from it alone. The callback's own params
    (every TrainingArguments field) are not logged: register logs the finetune params.
    """
    parent_id, uri = os.environ.get(PARENT_RUN_ENV), os.environ.get("MLFLOW_TRACKING_URI")
    if not (parent_id and uri):
        return "none"
    if main_process:
        os.environ["MLFLOW_RUN_ID"] = finetune_run_id(uri, parent_id)
        os.environ["MLFLOW_MAX_LOG_PARAMS"] = "0"
        os.environ.setdefault("HF_MLFLOW_LOG_ARTIFACTS", "false")
    return "mlflow"
