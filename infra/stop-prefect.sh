#!/usr/bin/env bash
# Stop the Prefect API server started by infra/start-prefect.sh (its database stays in
# $TOKENSKIP_INFRA_DIR/prefect). Stop the worker first (infra/stop-worker.sh) or it keeps retrying.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stop_daemon prefect
forget_env PREFECT_API_URL
