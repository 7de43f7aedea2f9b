#!/usr/bin/env bash
# MLflow tracking server + model registry on the infra/ stack: backend store PostgreSQL
# (MLFLOW_BACKEND_STORE_URI, from start-postgres.sh) and artifacts proxied to S3
# (MLFLOW_ARTIFACTS_DESTINATION=s3://tokenskip-mlflow/artifacts, MLFLOW_S3_ENDPOINT_URL and AWS_* from
# start-s3.sh). Values set in the environment win over the env file. Runs mlflow/server.sh (one
# worker, job execution off, /health check) with its PID/log/port files in $TOKENSKIP_INFRA_DIR
# as mlflow.*. Records MLFLOW_TRACKING_URI=http://127.0.0.1:<port>.
# Settings: MLFLOW_PORT (default: the last one, else a free one), MLFLOW_SERVER_WORKERS,
# MLFLOW_SERVER_START_TIMEOUT (default 120 s: the first start creates the schema).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

load_env
for key in MLFLOW_BACKEND_STORE_URI MLFLOW_ARTIFACTS_DESTINATION; do
  if [[ -z "${!key:-}" ]]; then
    echo "mlflow: $key is not set; run infra/start-postgres.sh and infra/start-s3.sh first" \
      "(or set it: postgresql+psycopg2://... / s3://bucket/path)" >&2
    exit 1
  fi
done
export MLFLOW_SERVER_DIR="$INFRA_DIR" MLFLOW_SERVER_NAME=mlflow
export MLFLOW_SERVER_START_TIMEOUT="${MLFLOW_SERVER_START_TIMEOUT:-120}"
if [[ -n "${MLFLOW_PORT:-}" ]]; then export MLFLOW_SERVER_PORT="$MLFLOW_PORT"; fi
line="$("$INFRA_ROOT/mlflow/server.sh" start | tail -n 1)"
record_env MLFLOW_TRACKING_URI "${line#MLFLOW_TRACKING_URI=}"
echo "$line"
