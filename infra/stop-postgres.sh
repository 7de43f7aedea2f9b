#!/usr/bin/env bash
# Stop the PostgreSQL of infra/start-postgres.sh: fast shutdown (open sessions are rolled back and
# closed), then the PID file goes. The cluster (data folder) and the password stay for the next start.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_BIN="${POSTGRES_BIN:-$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)}"
DATA="${POSTGRES_DATA_DIR:-$INFRA_DIR/postgres}"

if running postgres && [[ -x "$PG_BIN/pg_ctl" ]]; then
  if [[ "$(id -u)" -eq 0 ]]; then as=(setpriv --reuid postgres --regid postgres --init-groups --); else as=(); fi
  "${as[@]}" "$PG_BIN/pg_ctl" -D "$DATA" stop -m fast -w -t 30 >/dev/null 2>&1 || true
fi
stop_daemon postgres
