"""Live training curves: inside the flow, the Trainer logs to MLflow as it trains.

When the flow set ``TOKENSKIP_PARENT_RUN_ID`` and ``MLFLOW_TRACKING_URI``, the finetune child run of
that parent (the one register fills in later, found by its tags) is opened here and the Trainer's
MLflow callback logs loss, learning rate and gradient norm into it every ``logging_steps``. Outside
the flow (a plain ``dvc repro``) nothing is logged here and register copies the curve afterwards.
"""

from __future__ import annotations

import os

from tokenskip.core.mlflow_names import CHILD_TAG, FINETUNE_CHILD, PARENT_RUN_ENV, PARENT_TAG, ROLE_TAG


def finetune_run_id(tracking_uri: str, parent_id: str) -> str:
    """The finetune child run under ``parent_id``: found by its tags, else created with them."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    parent = client.get_run(parent_id)
    found = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}' and tags.`{CHILD_TAG}` = '{FINETUNE_CHILD}'",
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    tags = {PARENT_TAG: parent_id, CHILD_TAG: FINETUNE_CHILD, ROLE_TAG: FINETUNE_CHILD,
            "mlflow.runName": FINETUNE_CHILD}
    return client.create_run(parent.info.experiment_id, tags=tags).info.run_id


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
