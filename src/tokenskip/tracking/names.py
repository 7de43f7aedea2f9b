"""Names shared by the stages that write to MLflow (finetune's live curves, register) and the flow."""

PARENT_RUN_ENV = "TOKENSKIP_PARENT_RUN_ID"  # the flow's MLflow parent run, set for every stage
PARENT_TAG = "mlflow.parentRunId"
CHILD_TAG = "tokenskip.child"  # a child run's name under its parent (found again on a re-run)
ROLE_TAG = "tokenskip.role"
RUN_KEY_TAG = "tokenskip.run_key"  # a pipeline run's key (a hash of the stage's inputs)
FINETUNE_CHILD = "finetune"
