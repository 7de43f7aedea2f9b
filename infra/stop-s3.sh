#!/usr/bin/env bash
# Stop the moto S3 server of infra/start-s3.sh (its objects are lost: moto keeps them in memory).
# An external endpoint (S3_ENDPOINT_URL) is never stopped: there is nothing of ours to stop.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stop_daemon s3
