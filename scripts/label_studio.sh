#!/usr/bin/env bash
# Start or stop a Label Studio server of our own: its own venv (.venv-labelstudio, `make label-studio`),
# sqlite in DATA_DIR, loopback only, a user and a legacy API token from the environment.
#   scripts/label_studio.sh start DATA_DIR PORT   # returns once /health answers (bounded), prints the URL
#   scripts/label_studio.sh stop DATA_DIR
# Environment: LABEL_STUDIO_USERNAME, LABEL_STUDIO_PASSWORD, LABEL_STUDIO_USER_TOKEN (defaults below, for tests
# only), LOCAL_FILES_DOCUMENT_ROOT (default /: local-files storages may name any folder), LS_START_TIMEOUT (s).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LS="${LABEL_STUDIO_VENV:-$ROOT/.venv-labelstudio}/bin/label-studio"
cmd="${1:?start|stop}"; data="${2:?DATA_DIR}"; port="${3:-8080}"
case "$cmd" in
start)
  [ -x "$LS" ] || { echo "label_studio.sh: $LS missing: run 'make label-studio'" >&2; exit 3; }
  mkdir -p "$data"
  export LABEL_STUDIO_BASE_DATA_DIR="$data" \
    LABEL_STUDIO_USERNAME="${LABEL_STUDIO_USERNAME:-robot@example.com}" \
    LABEL_STUDIO_PASSWORD="${LABEL_STUDIO_PASSWORD:-robot-instseg-test}" \
    LABEL_STUDIO_USER_TOKEN="${LABEL_STUDIO_USER_TOKEN:-robotinstsegtesttoken0000000000000000000}" \
    LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true \
    LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true LOCAL_FILES_SERVING_ENABLED=true \
    LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT="${LOCAL_FILES_DOCUMENT_ROOT:-/}" \
    LOCAL_FILES_DOCUMENT_ROOT="${LOCAL_FILES_DOCUMENT_ROOT:-/}" \
    SECRET_KEY="${SECRET_KEY:-robot-instseg-local-only}" \
    SENTRY_DSN= FRONTEND_SENTRY_DSN= COLLECT_ANALYTICS=false LATEST_VERSION_CHECK=false
  # An ML backend on loopback must be allowed: Label Studio refuses reserved addresses (127.0.0.0/8 among them)
  # by default; this server listens on loopback only, so the default banned subnets are lifted for it.
  export USE_DEFAULT_BANNED_SUBNETS=false
  start=$(date +%s.%N)
  setsid "$LS" start --no-browser --internal-host 127.0.0.1 --port "$port" >"$data/server.log" 2>&1 &
  echo $! >"$data/server.pid"
  for _ in $(seq "${LS_START_TIMEOUT:-240}"); do
    if curl -fs -m 2 "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
      python3 -c "import sys; print(f'http://127.0.0.1:$port up after {float(sys.argv[2]) - float(sys.argv[1]):.1f} s')" \
        "$start" "$(date +%s.%N)"
      exit 0
    fi
    kill -0 "$(cat "$data/server.pid")" 2>/dev/null || { echo "label_studio.sh: server exited; tail of $data/server.log:" >&2; tail -20 "$data/server.log" >&2; exit 1; }
    sleep 1
  done
  echo "label_studio.sh: no /health after ${LS_START_TIMEOUT:-240} s; see $data/server.log" >&2
  "$0" stop "$data" || true
  exit 1 ;;
stop)
  [ -f "$data/server.pid" ] || exit 0
  pid=$(cat "$data/server.pid")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$data/server.pid" ;;
*) echo "usage: $0 start DATA_DIR PORT | stop DATA_DIR" >&2; exit 2 ;;
esac
