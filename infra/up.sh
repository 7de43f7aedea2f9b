#!/usr/bin/env bash
# Start the whole scale-out stack, in order: PostgreSQL, S3 (moto, or S3_ENDPOINT_URL), MLflow, then
# the Prefect server and its process worker when infra/start-prefect.sh / start-worker.sh exist.
# Each start script is idempotent, so running up.sh again only starts what is down. At the end the
# env file is printed (passwords and keys masked): clients load it with
#   set -a; . "${TOKENSKIP_INFRA_DIR:-.infra}/env"; set +a
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for service in postgres s3 mlflow prefect worker; do
  script="$INFRA_HERE/start-$service.sh"
  if [[ -f "$script" ]]; then
    bash "$script"
  else
    echo "$service: no $script (skipped)"
  fi
done
echo "--- $INFRA_DIR/env"
sed -E 's#(://[^:/@]+:)[^@]+@#\1***@#; s#^(AWS_SECRET_ACCESS_KEY=).*#\1***#' "$INFRA_DIR/env"
