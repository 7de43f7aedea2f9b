#!/usr/bin/env bash
# Stop the whole scale-out stack in reverse order: worker, Prefect, MLflow, S3, PostgreSQL.
# Every stop script runs even when an earlier one fails; the exit status is non-zero if any failed.
# Data kept: the PostgreSQL cluster and the env file in $TOKENSKIP_INFRA_DIR (moto's objects are lost).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

status=0
for service in worker prefect mlflow s3 postgres; do
  script="$INFRA_HERE/stop-$service.sh"
  if [[ -f "$script" ]]; then
    bash "$script" || status=1
  fi
done
exit "$status"
