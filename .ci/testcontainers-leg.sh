#!/usr/bin/env bash
# CI leg: the integration tests through testcontainers, against images built here with no
# registry (.ci/images.sh). Proves the harness's "Docker engine answers" path for real.
#
#   bash .ci/testcontainers-leg.sh [extra pytest args]
#
# Needs the project's .venv (made by `make test`/`make install`). Starts dockerd if nothing
# answers and always stops the dockerd it started (by PID) on the way out. Fails unless the
# harness reports `backend: testcontainers`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="$ROOT/.ci/work"
mkdir -p "$WORK"
OUT="$WORK/testcontainers-leg.log"

log() { printf '[testcontainers-leg %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[ -x .venv/bin/pytest ] || { log "error: .venv/bin/pytest missing; run \`make install\` first"; exit 1; }

started=$SECONDS
trap 'bash "$ROOT/.ci/images.sh" stop' EXIT

bash .ci/images.sh up
images_s=$((SECONDS - started))

# The harness must choose testcontainers: no explicit URLs may leak in from the environment.
unset CORTIWARE_TEST_DATABASE_URL CORTIWARE_TEST_REDIS_URL DOCKER_HOST DOCKER_CONTEXT
export TESTCONTAINERS_RYUK_DISABLED=true
export TC_HOST=127.0.0.1
# This machine has a /.dockerenv, which otherwise makes testcontainers dial the bridge address.
export TESTCONTAINERS_CONNECTION_MODE=docker_host
export CORTIWARE_TEST_POSTGRES_IMAGE=cortiware-ci/postgres:15
export CORTIWARE_TEST_REDIS_IMAGE=cortiware-ci/redis:7

log "pytest tests/integration through testcontainers (output also in ${OUT#"$ROOT"/})"
tests_start=$SECONDS
# Independent evidence of what the run did: the engine's container-start events, streamed
# (the engine keeps only a short backlog of past events).
EVENTS="$WORK/testcontainers-leg.events"
docker events --filter type=container --filter event=start --format '{{.From}}' >"$EVENTS" &
events_pid=$!
trap 'kill "$events_pid" 2>/dev/null || true; bash "$ROOT/.ci/images.sh" stop' EXIT
set +e
.venv/bin/pytest tests/integration -p no:cacheprovider "$@" 2>&1 | tee "$OUT"
rc=${PIPESTATUS[0]}
set -e
tests_s=$((SECONDS - tests_start))
sleep 1
kill "$events_pid" 2>/dev/null || true
wait "$events_pid" 2>/dev/null || true
started_images="$(sort "$EVENTS" | uniq -c)"
log "containers started during the run:${started_images:+$'\n'}${started_images:- none}"

leftover="$(docker ps -aq --filter "ancestor=cortiware-ci/postgres:15" --filter "ancestor=cortiware-ci/redis:7" | wc -l)"
if [ "$leftover" -gt 0 ]; then
  log "warning: $leftover test container(s) left behind; removing them"
  docker ps -aq --filter "ancestor=cortiware-ci/postgres:15" --filter "ancestor=cortiware-ci/redis:7" \
    | xargs -r docker rm -f >/dev/null
fi

if [ "$rc" -ne 0 ]; then
  log "FAILED: pytest exited $rc"
  exit "$rc"
fi
if ! grep -q 'backend: testcontainers' "$OUT"; then
  log "FAILED: the harness did not report 'backend: testcontainers' (another backend was picked, or the banner was swallowed by pytest's output capture)"
  grep -i 'backend:' "$OUT" >&2 || true
  exit 1
fi
for image in "$CORTIWARE_TEST_POSTGRES_IMAGE" "$CORTIWARE_TEST_REDIS_IMAGE"; do
  grep -qF " $image" <<<"$started_images" || {
    log "FAILED: no $image container was started during the run"
    exit 1
  }
done
log "OK: integration tests passed on testcontainers" \
  "(engine+images ${images_s} s, tests ${tests_s} s, leg $((SECONDS - started)) s)"
