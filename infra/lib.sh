# Shared helpers of the infra/ start and stop scripts (sourced, not run).
#
# Every service keeps its state under $TOKENSKIP_INFRA_DIR (default: <repo>/.infra, git-ignored):
#   <name>.pid   "<pid> <port>" of the running daemon (its own process group, started by setsid)
#   <name>.log   its stdout and stderr
#   env          KEY=VALUE lines the start scripts record for clients (source it: `set -a; . .infra/env`)
# Ports are free ones picked at start unless the service's *_PORT variable is set.

INFRA_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INFRA_ROOT="$(dirname "$INFRA_HERE")"
INFRA_DIR="${TOKENSKIP_INFRA_DIR:-$INFRA_ROOT/.infra}"
INFRA_HOST="127.0.0.1"
if [[ -x "$INFRA_ROOT/.venv/bin/python" ]]; then INFRA_BIN="$INFRA_ROOT/.venv/bin"; else INFRA_BIN=""; fi
export MLFLOW_DISABLE_TELEMETRY=true PREFECT_SERVER_ANALYTICS_ENABLED=false DVC_NO_ANALYTICS=1 DO_NOT_TRACK=1

infra_cmd() {  # infra_cmd NAME: the venv's executable NAME when present, else NAME from PATH
  if [[ -n "$INFRA_BIN" && -x "$INFRA_BIN/$1" ]]; then echo "$INFRA_BIN/$1"; else echo "$1"; fi
}

free_port() {
  "$(infra_cmd python)" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

alive() { kill -0 "$1" 2>/dev/null; }

port_free() {  # port_free PORT: nobody listens on 127.0.0.1:PORT
  "$(infra_cmd python)" -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" \
    2>/dev/null
}

service_port() {  # service_port NAME VAR: $VAR if set, else NAME's last port (if free), else a free one
  local name="$1" var="$2" last=""
  if [[ -n "${!var:-}" ]]; then echo "${!var}"; return 0; fi
  if [[ -f "$INFRA_DIR/$name.port" ]]; then last="$(cat "$INFRA_DIR/$name.port")"; fi
  if [[ -n "$last" ]] && port_free "$last"; then echo "$last"; else free_port; fi
}

load_env() {  # export what the start scripts recorded in $INFRA_DIR/env, unless already set
  [[ -f "$INFRA_DIR/env" ]] || return 0
  local key value
  while IFS='=' read -r key value; do
    if [[ -n "$key" && -z "${!key:-}" ]]; then export "$key=$value"; fi
  done <"$INFRA_DIR/env"
}

read_pid() {  # read_pid NAME: sets PID and PORT from $INFRA_DIR/NAME.pid; fails when absent
  local file="$INFRA_DIR/$1.pid"
  [[ -f "$file" ]] || return 1
  read -r PID PORT <"$file" || return 1
  [[ -n "${PID:-}" && -n "${PORT:-}" ]]
}

running() { read_pid "$1" && alive "$PID"; }  # running NAME

record_env() {  # record_env KEY VALUE: set KEY=VALUE in $INFRA_DIR/env (replacing an older value)
  mkdir -p "$INFRA_DIR"
  touch "$INFRA_DIR/env"
  (  # owner-only: it holds the database password and the object-store keys
    umask 077
    grep -v "^$1=" "$INFRA_DIR/env" >"$INFRA_DIR/env.tmp" || true
    echo "$1=$2" >>"$INFRA_DIR/env.tmp"
    mv "$INFRA_DIR/env.tmp" "$INFRA_DIR/env"
  )
}

forget_env() {  # forget_env KEY...: remove keys from $INFRA_DIR/env
  [[ -f "$INFRA_DIR/env" ]] || return 0
  local key
  for key in "$@"; do
    grep -v "^$key=" "$INFRA_DIR/env" >"$INFRA_DIR/env.tmp" || true
    mv "$INFRA_DIR/env.tmp" "$INFRA_DIR/env"
  done
}

start_daemon() {  # start_daemon NAME PORT CMD...: run CMD in its own process group, record "<pid> <port>"
  local name="$1" port="$2"
  shift 2
  mkdir -p "$INFRA_DIR"
  setsid "$@" >"$INFRA_DIR/$name.log" 2>&1 </dev/null &
  echo "$! $port" >"$INFRA_DIR/$name.pid"
  echo "$port" >"$INFRA_DIR/$name.port"  # a restart reuses it (service_port): clients keep their URLs
}

wait_healthy() {  # wait_healthy NAME TIMEOUT_S CHECK...: poll CHECK until it succeeds; stop NAME on failure
  local name="$1" timeout="$2" waited=0
  shift 2
  read_pid "$name" || return 1
  until "$@" >/dev/null 2>&1; do
    if ! alive "$PID"; then
      echo "$name exited during start-up; last lines of $INFRA_DIR/$name.log:" >&2
      tail -n 20 "$INFRA_DIR/$name.log" >&2
      rm -f "$INFRA_DIR/$name.pid"
      return 1
    fi
    if (( waited >= timeout * 2 )); then
      echo "$name not healthy after ${timeout} s; stopping it (log: $INFRA_DIR/$name.log)" >&2
      stop_daemon "$name" >/dev/null
      return 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
}

http_ok() { curl -fsS --max-time 2 "$1" >/dev/null; }  # http_ok URL

stop_daemon() {  # stop_daemon NAME: TERM its process group, KILL after 15 s, remove the PID file
  local name="$1"
  if ! read_pid "$name"; then
    echo "$name: not running"
    return 0
  fi
  if alive "$PID"; then
    kill -TERM -- "-$PID" 2>/dev/null || kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 30); do alive "$PID" || break; sleep 0.5; done
    if alive "$PID"; then kill -KILL -- "-$PID" 2>/dev/null || kill -KILL "$PID" 2>/dev/null || true; fi
  fi
  rm -f "$INFRA_DIR/$name.pid"
  echo "$name: stopped (pid $PID, port $PORT)"
}
