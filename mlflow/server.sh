#!/usr/bin/env bash
# MLflow tracking server + model registry on 127.0.0.1 (server mode of the pipeline).
#
#   mlflow/server.sh start    start (or report the running one); prints MLFLOW_TRACKING_URI=...
#   mlflow/server.sh status   exit 0 and print the URI if running and healthy, else exit 1
#   mlflow/server.sh stop     stop it (TERM, then KILL after 10 s) and remove the PID file
#
# Then: export MLFLOW_TRACKING_URI=http://127.0.0.1:<port>  (the register stage and the flow use it).
# Settings (environment):
#   MLFLOW_SERVER_PORT            port (default: a free one)
#   MLFLOW_SERVER_DIR             where mlflow.db, artifacts/, server.pid, server.log live (default: this folder)
#   MLFLOW_BACKEND_STORE_URI      default sqlite:///$MLFLOW_SERVER_DIR/mlflow.db (PostgreSQL: postgresql://...)
#   MLFLOW_ARTIFACTS_DESTINATION  default $MLFLOW_SERVER_DIR/artifacts (or s3://bucket/path)
#   MLFLOW_SERVER_WORKERS         default 1
#   MLFLOW_SERVER_START_TIMEOUT   seconds to wait for /health (default 90)
# Job execution is off (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false): the server stays light.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
DIR="${MLFLOW_SERVER_DIR:-$HERE}"
HOST="127.0.0.1"
PID_FILE="$DIR/server.pid"
LOG_FILE="$DIR/server.log"
TIMEOUT="${MLFLOW_SERVER_START_TIMEOUT:-90}"
if [[ -x "$ROOT/.venv/bin/mlflow" ]]; then MLFLOW="$ROOT/.venv/bin/mlflow"; PY="$ROOT/.venv/bin/python"
else MLFLOW="mlflow"; PY="python3"; fi

read_pid_file() {  # sets PID and PORT from "<pid> <port>"; fails when absent
  [[ -f "$PID_FILE" ]] || return 1
  read -r PID PORT <"$PID_FILE" || return 1
  [[ -n "${PID:-}" && -n "${PORT:-}" ]]
}

alive() { kill -0 "$1" 2>/dev/null; }

healthy() { curl -fsS --max-time 2 "http://$HOST:$1/health" >/dev/null 2>&1; }

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
  if read_pid_file && alive "$PID"; then
    echo "MLFLOW_TRACKING_URI=http://$HOST:$PORT"
    return 0
  fi
  rm -f "$PID_FILE"
  mkdir -p "$DIR"
  local port="${MLFLOW_SERVER_PORT:-$(free_port)}"
  local backend="${MLFLOW_BACKEND_STORE_URI:-sqlite:///$DIR/mlflow.db}"
  local artifacts="${MLFLOW_ARTIFACTS_DESTINATION:-$DIR/artifacts}"
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 \
    setsid "$MLFLOW" server --host "$HOST" --port "$port" --workers "${MLFLOW_SERVER_WORKERS:-1}" \
    --backend-store-uri "$backend" --artifacts-destination "$artifacts" \
    >"$LOG_FILE" 2>&1 </dev/null &
  local pid=$!
  echo "$pid $port" >"$PID_FILE"
  local waited=0
  until healthy "$port"; do
    if ! alive "$pid"; then
      echo "mlflow server exited during start-up; last lines of $LOG_FILE:" >&2
      tail -n 20 "$LOG_FILE" >&2
      rm -f "$PID_FILE"
      return 1
    fi
    if (( waited >= TIMEOUT * 2 )); then
      echo "mlflow server not healthy after ${TIMEOUT} s; stopping it (log: $LOG_FILE)" >&2
      stop >/dev/null
      return 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
  echo "MLFLOW_TRACKING_URI=http://$HOST:$port"
}

stop() {
  if ! read_pid_file; then
    echo "mlflow server: not running (no $PID_FILE)"
    return 0
  fi
  if alive "$PID"; then
    kill -TERM -- "-$PID" 2>/dev/null || kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 20); do alive "$PID" || break; sleep 0.5; done
    if alive "$PID"; then kill -KILL -- "-$PID" 2>/dev/null || kill -KILL "$PID" 2>/dev/null || true; fi
  fi
  rm -f "$PID_FILE"
  echo "mlflow server: stopped (pid $PID, port $PORT)"
}

status() {
  if read_pid_file && alive "$PID" && healthy "$PORT"; then
    echo "MLFLOW_TRACKING_URI=http://$HOST:$PORT (pid $PID)"
    return 0
  fi
  echo "mlflow server: not running"
  return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
