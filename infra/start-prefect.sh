#!/usr/bin/env bash
# Start the Prefect API server (`prefect server start`) on 127.0.0.1 and record PREFECT_API_URL.
#
#   infra/start-prefect.sh            # PREFECT_PORT, else the port of the last start, else a free one
#   set -a; . .infra/env; set +a      # clients (flows, workers, `prefect` CLI) now talk to it
#
# State: PREFECT_HOME=$TOKENSKIP_INFRA_DIR/prefect (SQLite database prefect.db there). Set
# PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://USER:PASS@HOST:PORT/prefect to keep
# Prefect's database in PostgreSQL instead (the database must exist). PREFECT_UI_ENABLED=false
# skips the UI (faster start). Idempotent: a running server is reported, not restarted.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAME=prefect
if running "$NAME"; then
  echo "$NAME: already running (pid $PID) at http://$INFRA_HOST:$PORT/api"
  record_env PREFECT_API_URL "http://$INFRA_HOST:$PORT/api"
  exit 0
fi

PORT="$(service_port prefect PREFECT_PORT)"  # PREFECT_PORT, else the last one if free, else a free one
API="http://$INFRA_HOST:$PORT/api"
export PREFECT_HOME="$INFRA_DIR/prefect"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_UI_API_URL="$API"
unset PREFECT_API_URL  # the server is the API; a client setting pointing elsewhere is irrelevant here
mkdir -p "$PREFECT_HOME"
db="${PREFECT_API_DATABASE_CONNECTION_URL:-sqlite:///$PREFECT_HOME/prefect.db}"

start_daemon "$NAME" "$PORT" "$(infra_cmd prefect)" server start --host "$INFRA_HOST" --port "$PORT"
wait_healthy "$NAME" "${PREFECT_START_TIMEOUT_S:-150}" http_ok "$API/health"
record_env PREFECT_API_URL "$API"
echo "$NAME: running (pid $PID) at $API; database: ${db%%:*}; log $INFRA_DIR/$NAME.log"
