#!/usr/bin/env bash
# PostgreSQL for the MLflow backend store (Debian's `postgresql` package), on 127.0.0.1 only.
#
# First start: initdb into $POSTGRES_DATA_DIR (default $TOKENSKIP_INFRA_DIR/postgres), then role and
# database `mlflow` with a password (POSTGRES_PASSWORD, else a random one kept in
# $TOKENSKIP_INFRA_DIR/postgres.password). Later starts reuse the cluster, its port and the password.
# As root the server runs as the `postgres` user. Health: pg_isready. Records in the env file:
#   MLFLOW_BACKEND_STORE_URI=postgresql+psycopg2://mlflow:<password>@127.0.0.1:<port>/mlflow
# Settings: POSTGRES_PORT (default: the last one, else a free one), POSTGRES_USER / POSTGRES_DB
# (default mlflow), POSTGRES_PASSWORD, POSTGRES_DATA_DIR, POSTGRES_BIN (default the newest
# /usr/lib/postgresql/*/bin), POSTGRES_START_TIMEOUT (default 60 s).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_BIN="${POSTGRES_BIN:-$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)}"
DATA="${POSTGRES_DATA_DIR:-$INFRA_DIR/postgres}"
DB_USER="${POSTGRES_USER:-mlflow}"
DB_NAME="${POSTGRES_DB:-mlflow}"
PW_FILE="$INFRA_DIR/postgres.password"

if [[ -z "$PG_BIN" || ! -x "$PG_BIN/initdb" ]]; then
  echo "postgres: no initdb under /usr/lib/postgresql/*/bin; install it (apt-get install postgresql)" \
    "or set POSTGRES_BIN" >&2
  exit 1
fi

as_pg() {  # run a command as the `postgres` user when we are root (PostgreSQL refuses to run as root)
  if [[ "$(id -u)" -eq 0 ]]; then setpriv --reuid postgres --regid postgres --init-groups -- "$@"; else "$@"; fi
}

psql_admin() {  # psql_admin SQL: one statement as the superuser, over the socket in the data folder
  as_pg "$PG_BIN/psql" -h "$DATA" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtAc "$1"
}

init_cluster() {
  mkdir -p "$DATA"
  if [[ "$(id -u)" -eq 0 ]]; then chown postgres:postgres "$DATA"; fi
  chmod 700 "$DATA"
  if ! as_pg test -w "$DATA"; then
    echo "postgres: the postgres user cannot reach $DATA (a parent folder is private);" \
      "set POSTGRES_DATA_DIR or TOKENSKIP_INFRA_DIR to a path it can traverse" >&2
    exit 1
  fi
  as_pg "$PG_BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 >"$INFRA_DIR/postgres-initdb.log" 2>&1 || {
    tail -n 20 "$INFRA_DIR/postgres-initdb.log" >&2
    exit 1
  }
}

password() {
  if [[ -n "${POSTGRES_PASSWORD:-}" ]]; then echo "$POSTGRES_PASSWORD"
  elif [[ -s "$PW_FILE" ]]; then cat "$PW_FILE"
  else od -An -tx1 -N16 /dev/urandom | tr -d ' \n'
  fi
}

ensure_database() {  # role and database, created once; the password is (re)set every start
  local pw="$1"
  if [[ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" != "1" ]]; then
    psql_admin "CREATE ROLE \"$DB_USER\" LOGIN"
  fi
  psql_admin "ALTER ROLE \"$DB_USER\" PASSWORD '$pw'"
  if [[ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != "1" ]]; then
    psql_admin "CREATE DATABASE \"$DB_NAME\" OWNER \"$DB_USER\""
  fi
}

mkdir -p "$INFRA_DIR"
if running postgres; then
  echo "postgres: already running (pid $PID, port $PORT)"
else
  rm -f "$INFRA_DIR/postgres.pid"
  [[ -f "$DATA/PG_VERSION" ]] || init_cluster
  PORT="$(service_port postgres POSTGRES_PORT)"
  server=("$PG_BIN/postgres" -D "$DATA" -p "$PORT" -c listen_addresses="$INFRA_HOST"
    -c unix_socket_directories="$DATA" -c max_connections=50)
  if [[ "$(id -u)" -eq 0 ]]; then server=(setpriv --reuid postgres --regid postgres --init-groups -- "${server[@]}"); fi
  start_daemon postgres "$PORT" "${server[@]}"
  wait_healthy postgres "${POSTGRES_START_TIMEOUT:-60}" "$PG_BIN/pg_isready" -q -h "$INFRA_HOST" -p "$PORT"
  echo "postgres: started (pid $PID, port $PORT, data $DATA)"
fi
PW="$(password)"
ensure_database "$PW"
(umask 077 && echo "$PW" >"$PW_FILE")
record_env MLFLOW_BACKEND_STORE_URI "postgresql+psycopg2://$DB_USER:$PW@$INFRA_HOST:$PORT/$DB_NAME"
echo "MLFLOW_BACKEND_STORE_URI=postgresql+psycopg2://$DB_USER:***@$INFRA_HOST:$PORT/$DB_NAME"
