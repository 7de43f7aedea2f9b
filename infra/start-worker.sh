#!/usr/bin/env bash
# Start a Prefect worker on a `process` work pool (created if missing) as a daemon.
#
#   infra/start-prefect.sh && infra/start-worker.sh
#   tokenskip deploy --pool tokenskip-process                # the nightly deployment on this pool
#
# API: PREFECT_API_URL from the environment (a shared Prefect server), else from
# $TOKENSKIP_INFRA_DIR/env (written by start-prefect.sh). Pool: TOKENSKIP_WORK_POOL (default
# tokenskip-process); worker name TOKENSKIP_WORKER_NAME (default tokenskip-<host>); at most
# TOKENSKIP_WORKER_LIMIT (default 1) flow runs at once; PREFECT_WORKER_QUERY_SECONDS: poll interval.
# Flow runs inherit the worker's environment, plus every KEY=VALUE of $TOKENSKIP_INFRA_DIR/env
# (MLFLOW_TRACKING_URI, MLFLOW_S3_ENDPOINT_URL, AWS_* of the other start scripts), so runs of
# the pipeline track to the shared MLflow server when it is up. Healthy = the worker is ONLINE.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=worker
load_env  # what the other start scripts recorded (a variable already set wins)
# flow runs talk to the MLflow server, never to its database: keep its password out of their env
unset MLFLOW_BACKEND_STORE_URI
POOL="${TOKENSKIP_WORK_POOL:-tokenskip-process}"
WORKER_NAME="${TOKENSKIP_WORKER_NAME:-tokenskip-$(hostname)}"
if [[ -z "${PREFECT_API_URL:-}" ]]; then
  echo "$NAME: no PREFECT_API_URL (run infra/start-prefect.sh first, or export it)" >&2
  exit 1
fi
API="${PREFECT_API_URL%/}"
if running "$NAME"; then
  echo "$NAME: already running (pid $PID) on pool $POOL at $API"
  exit 0
fi
if ! http_ok "$API/health"; then
  echo "$NAME: the Prefect API at $API does not answer (start it: infra/start-prefect.sh)" >&2
  exit 1
fi
export PREFECT_HOME="${PREFECT_HOME:-$INFRA_DIR/prefect}" PYTHONUNBUFFERED=1
# the venv first on PATH: flow runs start `dvc`, which starts `tokenskip`
[[ -n "$INFRA_BIN" ]] && export PATH="$INFRA_BIN:$PATH"

pool_type() { curl -fsS --max-time 5 "$API/work_pools/$POOL" | "$(infra_cmd python)" -c \
  'import json, sys; print(json.load(sys.stdin)["type"])'; }
if type_now="$(pool_type 2>/dev/null)"; then
  if [[ "$type_now" != process ]]; then
    echo "$NAME: work pool $POOL exists with type '$type_now', not 'process'" \
      "(set TOKENSKIP_WORK_POOL to another name)" >&2
    exit 1
  fi
else
  "$(infra_cmd prefect)" work-pool create "$POOL" --type process >/dev/null
  echo "$NAME: created work pool $POOL (type process)"
fi

worker_online() {  # the worker named WORKER_NAME sent a heartbeat after STARTED (UTC, ISO 8601)
  curl -fsS --max-time 5 -X POST -H 'content-type: application/json' \
    -d '{"workers": {"status": {"any_": ["ONLINE"]}}}' "$API/work_pools/$POOL/workers/filter" |
    "$(infra_cmd python)" -c 'import json, sys
beats = [w["last_heartbeat_time"] for w in json.load(sys.stdin) if w["name"] == sys.argv[1]]
sys.exit(0 if beats and max(beats) >= sys.argv[2] else 1)' "$WORKER_NAME" "$STARTED"
}

cd "$INFRA_ROOT"
STARTED="$(date -u +%Y-%m-%dT%H:%M:%S)"
# default SIGINT: a background job of a script ignores it, and the worker stops on SIGTERM by
# sending itself SIGINT (it would never stop)
start_daemon "$NAME" 0 env --default-signal=INT "$(infra_cmd prefect)" worker start --pool "$POOL" --type process \
  --name "$WORKER_NAME" --limit "${TOKENSKIP_WORKER_LIMIT:-1}"
wait_healthy "$NAME" "${WORKER_START_TIMEOUT_S:-90}" worker_online
record_env TOKENSKIP_WORK_POOL "$POOL"
echo "$NAME: $WORKER_NAME running (pid $PID) on pool $POOL at $API; log $INFRA_DIR/$NAME.log"
