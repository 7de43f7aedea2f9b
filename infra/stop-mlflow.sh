#!/usr/bin/env bash
# Stop the MLflow server of infra/start-mlflow.sh (runs, models and artifacts stay in PostgreSQL and S3).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MLFLOW_SERVER_DIR="$INFRA_DIR" MLFLOW_SERVER_NAME=mlflow "$INFRA_ROOT/mlflow/server.sh" stop
