#!/usr/bin/env bash
# MLflow tracking server + model registry on 127.0.0.1 (server mode of the pipeline).
#
#   mlflow/server.sh start    start (or report the running one); prints MLFLOW_TRACKING_URI=...
#   mlflow/server.sh status   exit 0 and print the URI if running and healthy, else exit 1
#   mlflow/server.sh stop     stop it (TERM, then KILL after 15 s) and remove the PID file
#
# Then: export MLFLOW_TRACKING_URI=http://127.0.0.1:<port>  (the register stage and the flow use it).
# Settings (environment):
#   MLFLOW_SERVER_PORT            port (default: the last one when free, else a free one)
#   MLFLOW_SERVER_DIR             where mlflow.db, artifacts/, server.pid, server.log live (default: this folder)
#   MLFLOW_SERVER_NAME            name of the PID/log/port files (default server; infra/start-mlflow.sh: mlflow)
#   MLFLOW_BACKEND_STORE_URI      default sqlite:///$MLFLOW_SERVER_DIR/mlflow.db (PostgreSQL: postgresql://...)
#   MLFLOW_ARTIFACTS_DESTINATION  default $MLFLOW_SERVER_DIR/artifacts (or s3://bucket/path)
#   MLFLOW_SERVER_WORKERS         default 1
#   MLFLOW_SERVER_START_TIMEOUT   seconds to wait for /health (default 90)
# infra/start-mlflow.sh runs this script against the infra/ stack (PostgreSQL + S3).
# Job execution is off (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false): the server stays light.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$(dirname "$HERE")/infra/lib.sh"
INFRA_DIR="${MLFLOW_SERVER_DIR:-$HERE}"  # lib.sh keeps <name>.pid / .log / .port here
NAME="${MLFLOW_SERVER_NAME:-server}"
TIMEOUT="${MLFLOW_SERVER_START_TIMEOUT:-90}"
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false

healthy() { http_ok "http://$INFRA_HOST:$1/health"; }

start() {
  if running "$NAME"; then
    echo "MLFLOW_TRACKING_URI=http://$INFRA_HOST:$PORT"
    return 0
  fi
  rm -f "$INFRA_DIR/$NAME.pid"
  local port backend="${MLFLOW_BACKEND_STORE_URI:-sqlite:///$INFRA_DIR/mlflow.db}"
  local artifacts="${MLFLOW_ARTIFACTS_DESTINATION:-$INFRA_DIR/artifacts}"
  port="$(service_port "$NAME" MLFLOW_SERVER_PORT)"
  start_daemon "$NAME" "$port" \
    "$(infra_cmd mlflow)" server --host "$INFRA_HOST" --port "$port" --workers "${MLFLOW_SERVER_WORKERS:-1}" \
    --backend-store-uri "$backend" --artifacts-destination "$artifacts"
  wait_healthy "$NAME" "$TIMEOUT" healthy "$port"
  echo "MLFLOW_TRACKING_URI=http://$INFRA_HOST:$port"
}

status() {
  if running "$NAME" && healthy "$PORT"; then
    echo "MLFLOW_TRACKING_URI=http://$INFRA_HOST:$PORT (pid $PID)"
    return 0
  fi
  echo "mlflow server: not running"
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop_daemon "$NAME" ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
