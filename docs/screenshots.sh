#!/usr/bin/env bash
# Remake docs/mlflow-registry.png, docs/mlflow-champion-version.png and docs/prefect-flow-run.png from this clone's last `make run`:
# starts `tokenskip ui` (MLflow + Prefect on 127.0.0.1), finds the registered model
# (reports/register.json) and the latest tokenskip-pipeline flow run (Prefect REST API), and
# takes both pages with headless Chromium (Debian: apt-get install -y chromium).
#   docs/screenshots.sh            # ports 5000 / 4200, or MLFLOW_PORT / PREFECT_PORT
set -euo pipefail
cd "$(dirname "$0")/.."
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
[ -n "$CHROMIUM" ] || { echo "error: chromium not found (apt-get install -y chromium)" >&2; exit 2; }
MLFLOW_PORT="${MLFLOW_PORT:-5000}"
PREFECT_PORT="${PREFECT_PORT:-4200}"
PY=.venv/bin/python
log="$(mktemp)"
.venv/bin/tokenskip ui --mlflow-port "$MLFLOW_PORT" --prefect-port "$PREFECT_PORT" >"$log" 2>&1 &
ui=$!
trap 'kill -TERM "$ui" 2>/dev/null || true; wait "$ui" 2>/dev/null || true; rm -f "$log"' EXIT  # a background job ignores SIGINT
for _ in $(seq 240); do
  grep -q "Ctrl-C stops both" "$log" && break
  kill -0 "$ui" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 1
done
model="$($PY -c 'import json; print(json.load(open("reports/register.json"))["registered_model"])')"
flow_run="$(curl -sf -X POST -H 'Content-Type: application/json' \
  -d '{"sort": "START_TIME_DESC", "limit": 1, "flows": {"name": {"any_": ["tokenskip-pipeline"]}}}' \
  "http://127.0.0.1:$PREFECT_PORT/api/flow_runs/filter" | $PY -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')"
shot() {
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1600,1000 \
    --virtual-time-budget=20000 --screenshot="$1" "$2" 2>/dev/null
  echo "$1 <- $2"
}
champion="$($PY -c 'import json; c = json.load(open("reports/register.json"))["champion"]; print(c["version"] if c else "")')"
shot docs/mlflow-registry.png "http://127.0.0.1:$MLFLOW_PORT/#/models/$model"
[ -z "$champion" ] || shot docs/mlflow-champion-version.png "http://127.0.0.1:$MLFLOW_PORT/#/models/$model/versions/$champion"
shot docs/prefect-flow-run.png "http://127.0.0.1:$PREFECT_PORT/runs/flow-run/$flow_run?tab=Artifacts"
