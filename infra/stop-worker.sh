#!/usr/bin/env bash
# Stop the Prefect worker started by infra/start-worker.sh (a flow run it started is stopped
# with it: the run's process is in the worker's process group). The work pool stays.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stop_daemon worker
forget_env TOKENSKIP_WORK_POOL
