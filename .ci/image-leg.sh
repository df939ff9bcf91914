#!/usr/bin/env bash
# CI leg: build the service's Dockerfile from a locally made base image (no registry) and
# check the container: /api/health/live answers 200 {"status":"ok"} from the host with zero
# configuration (development: embedded SQLite, in-memory stores), it runs as non-root, and
# its HEALTHCHECK turns healthy.
#
#   bash .ci/image-leg.sh
#
# Needs the project's .venv (for `pip wheel`). Starts dockerd if nothing answers; always
# removes its container and stops the dockerd it started (by PID) on the way out.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WORK="$ROOT/.ci/work"
WHEELS="$WORK/wheels"
IMAGE="${CORTIWARE_CI_IMAGE:-cortiware:ci}"
BASE_IMAGE="${CORTIWARE_CI_BASE_IMAGE:-cortiware-ci/python:3.11}"
NAME="cortiware-ci-image-leg-$$"
mkdir -p "$WORK"
export DOCKER_BUILDKIT=0
unset DOCKER_HOST DOCKER_CONTEXT

log() { printf '[image-leg %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() {
  log "FAILED: $*"
  if docker inspect "$NAME" >/dev/null 2>&1; then
    log "container logs (last 40 lines):"
    docker logs --tail 40 "$NAME" >&2 2>&1 || true
  fi
  exit 1
}

[ -x .venv/bin/pip ] || { log "error: .venv/bin/pip missing; run \`make install\` first"; exit 1; }

cleanup() {
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  bash "$ROOT/.ci/images.sh" stop
}
started=$SECONDS
trap cleanup EXIT

bash .ci/images.sh up
t_images=$((SECONDS - started))

# Wheels for the service and every runtime dependency, made on the host (which reaches the
# package index), so the image build needs no network at all.
t=$SECONDS
rm -rf "$WHEELS"
log "pip wheel --wheel-dir ${WHEELS#"$ROOT"/} ."
.venv/bin/pip wheel --quiet --disable-pip-version-check --wheel-dir "$WHEELS" . \
  >"$WORK/pip-wheel.log" 2>&1 || { tail -30 "$WORK/pip-wheel.log" >&2; fail "pip wheel"; }
# The image's Python may differ in patch version from the host's (Debian's 3.11.2 vs 3.11.7):
# ask it which requirements its own markers call for that the host did not fetch.
for _ in 1 2 3 4 5; do
  mapfile -t need < <(docker run --rm --network none -v "$WHEELS:/wheels:ro" \
    -v "$ROOT/.ci/docker/wheel-closure.py:/wheel-closure.py:ro" "$BASE_IMAGE" \
    python3 /wheel-closure.py /wheels cortiware)
  [ ${#need[@]} -eq 0 ] && break
  log "the image's Python also needs: ${need[*]}"
  .venv/bin/pip wheel --quiet --disable-pip-version-check --wheel-dir "$WHEELS" "${need[@]}" \
    >>"$WORK/pip-wheel.log" 2>&1 || { tail -30 "$WORK/pip-wheel.log" >&2; fail "pip wheel ${need[*]}"; }
done
[ ${#need[@]} -eq 0 ] || fail "wheel set still incomplete for the image: ${need[*]}"
t_wheels=$((SECONDS - t))
log "$(find "$WHEELS" -name '*.whl' | wc -l) wheels in ${t_wheels} s"

t=$SECONDS
log "docker build --build-arg BASE_IMAGE=$BASE_IMAGE -t $IMAGE ."
docker build --force-rm --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" . >"$WORK/image-build.log" 2>&1 \
  || { tail -40 "$WORK/image-build.log" >&2; fail "docker build"; }
grep -q 'installing prebuilt wheels' "$WORK/image-build.log" \
  || fail "the build did not use the prebuilt wheels"
t_build=$((SECONDS - t))
log "image built in ${t_build} s ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%d MB", $1/1e6}'))"

# The image's own metadata: non-root user, entry point, health check.
user="$(docker image inspect -f '{{.Config.User}}' "$IMAGE")"
entrypoint="$(docker image inspect -f '{{json .Config.Entrypoint}}' "$IMAGE")"
[ "$entrypoint" = '["cortiware"]' ] || fail "entrypoint is $entrypoint"
[ -n "$(docker image inspect -f '{{if .Config.Healthcheck}}yes{{end}}' "$IMAGE")" ] \
  || fail "the image has no HEALTHCHECK"

# Zero configuration: no -e at all. The health check runs every 2 s here (instead of the
# image's 15 s) so the leg does not wait for it; the command checked is the image's own.
t=$SECONDS
docker run -d --name "$NAME" -p 127.0.0.1::8000 --health-interval=2s --health-start-period=30s \
  "$IMAGE" >/dev/null
ports="$(docker port "$NAME" 8000/tcp)"
port="${ports%%$'\n'*}"
port="${port##*:}"
[ -n "$port" ] || fail "no published port"
url="http://127.0.0.1:$port/api/health/live"
log "container $NAME (image user '$user') published on $url"

body=""
deadline=$((SECONDS + 120))
while [ "$SECONDS" -lt "$deadline" ]; do
  [ "$(docker inspect -f '{{.State.Running}}' "$NAME")" = true ] || fail "the container exited"
  if body="$(.venv/bin/python - "$url" 2>/dev/null <<'PY'
import json
import sys
import urllib.request

with urllib.request.urlopen(sys.argv[1], timeout=2) as resp:
    data = json.load(resp)
    if resp.status != 200 or data != {"status": "ok"}:
        sys.exit(f"{resp.status} {data!r}")
    print(json.dumps(data))
PY
  )"; then
    break
  fi
  body=""
  sleep 0.5
done
[ -n "$body" ] || fail "$url never answered 200 {\"status\":\"ok\"}"
t_live=$((SECONDS - t))
log "GET /api/health/live -> 200 $body after ${t_live} s"

uid="$(docker exec "$NAME" id -u)"
[ "$uid" != 0 ] || fail "the service runs as root"
pid1_uid="$(docker exec "$NAME" cat /proc/1/status | awk '/^Uid:/ {print $2}')"
[ "$pid1_uid" != 0 ] || fail "PID 1 runs as root"
log "runs as uid $uid (PID 1 uid $pid1_uid)"

# (Captured first: `docker logs | grep -q` would fail under pipefail when grep exits early.)
container_logs="$(docker logs "$NAME" 2>&1)"
grep -q 'embedded default' <<<"$container_logs" \
  || fail "the first log lines do not say it runs on the embedded default"

status=""
deadline=$((SECONDS + 60))
while [ "$SECONDS" -lt "$deadline" ]; do
  status="$(docker inspect -f '{{.State.Health.Status}}' "$NAME")"
  [ "$status" = healthy ] && break
  [ "$status" = unhealthy ] && break
  sleep 0.5
done
[ "$status" = healthy ] || {
  docker inspect -f '{{json .State.Health}}' "$NAME" >&2
  fail "HEALTHCHECK status is '$status'"
}
log "HEALTHCHECK: healthy after $((SECONDS - t)) s"

log "OK: image leg passed (engine+images ${t_images} s, wheels ${t_wheels} s," \
  "build ${t_build} s, live ${t_live} s; leg $((SECONDS - started)) s)"
