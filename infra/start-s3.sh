#!/usr/bin/env bash
# S3-compatible object store for MLflow artifacts and the DVC remote, and its buckets.
#
# Without S3_ENDPOINT_URL: starts `moto_server` (moto's S3 in server mode) on 127.0.0.1. moto keeps
# every object IN MEMORY: stopping it loses them (fine for tests and demos, not for a team).
# With S3_ENDPOINT_URL (MinIO, Ceph, AWS: https://s3.<region>.amazonaws.com): starts nothing and only
# creates the buckets there (with the AWS_* credentials of the environment).
# Buckets: S3_MLFLOW_BUCKET (default tokenskip-mlflow), S3_DVC_BUCKET (default tokenskip-dvc).
# Records in the env file: MLFLOW_S3_ENDPOINT_URL, AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, MLFLOW_ARTIFACTS_DESTINATION (s3://<mlflow bucket>/artifacts,
# read by start-mlflow.sh) and TOKENSKIP_DVC_REMOTE_URL (s3://<dvc bucket>/dvc).
# Settings: S3_PORT (default: the last one, else a free one), S3_START_TIMEOUT (default 60 s).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MLFLOW_BUCKET="${S3_MLFLOW_BUCKET:-tokenskip-mlflow}"
DVC_BUCKET="${S3_DVC_BUCKET:-tokenskip-dvc}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-tokenskip}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-tokenskip-secret}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

if [[ -n "${S3_ENDPOINT_URL:-}" ]]; then
  ENDPOINT="$S3_ENDPOINT_URL"
  echo "s3: using $ENDPOINT (nothing started)"
elif running s3; then
  ENDPOINT="http://$INFRA_HOST:$PORT"
  echo "s3: already running (pid $PID, port $PORT)"
else
  rm -f "$INFRA_DIR/s3.pid"
  PORT="$(service_port s3 S3_PORT)"
  ENDPOINT="http://$INFRA_HOST:$PORT"
  start_daemon s3 "$PORT" "$(infra_cmd moto_server)" -H "$INFRA_HOST" -p "$PORT"
  wait_healthy s3 "${S3_START_TIMEOUT:-60}" http_ok "$ENDPOINT/moto-api/config"
  echo "s3: moto started (pid $PID, port $PORT; objects live in memory only)"
fi

# buckets: created when missing (an existing one, e.g. after a restart of a real store, is kept)
"$(infra_cmd python)" - "$ENDPOINT" "$MLFLOW_BUCKET" "$DVC_BUCKET" <<'PY'
import sys

import boto3
from botocore.exceptions import ClientError

endpoint, *buckets = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint)
for bucket in buckets:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        s3.create_bucket(Bucket=bucket)
        print(f"s3: bucket {bucket} created")
PY

record_env AWS_ACCESS_KEY_ID "$AWS_ACCESS_KEY_ID"
record_env AWS_SECRET_ACCESS_KEY "$AWS_SECRET_ACCESS_KEY"
record_env AWS_DEFAULT_REGION "$AWS_DEFAULT_REGION"
record_env AWS_ENDPOINT_URL "$ENDPOINT"
record_env MLFLOW_S3_ENDPOINT_URL "$ENDPOINT"
record_env MLFLOW_ARTIFACTS_DESTINATION "s3://$MLFLOW_BUCKET/artifacts"
record_env TOKENSKIP_DVC_REMOTE_URL "s3://$DVC_BUCKET/dvc"
echo "AWS_ENDPOINT_URL=$ENDPOINT"
