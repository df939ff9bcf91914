#!/usr/bin/env bash
# Docker engine and registry-free CI images.
#
#   bash .ci/images.sh [up]     install docker.io + debootstrap if missing, start dockerd if
#                               nothing answers, build every cortiware-ci/* image (idempotent)
#   bash .ci/images.sh engine   only the package install + engine start
#   bash .ci/images.sh rootfs   only the packages + the cached root file system (no engine):
#                               safe to run in the background early in .ci/run
#   bash .ci/images.sh stop     stop the dockerd this script started (by the PID it recorded)
#   bash .ci/images.sh status   engine, images and cache state
#
# No image registry is used: the base image is a Debian bookworm root file system made by
# debootstrap from Debian's package mirror and loaded with `docker import`; every other image
# is built FROM it with the Dockerfiles under .ci/docker/. The root file system tarball is
# cached under .ci/work/ (git-ignored): a second run in the same checkout costs seconds, while
# a fresh clone (CI) always runs debootstrap itself, whatever images the engine still has.
# CORTIWARE_CI_FRESH_IMAGES=1 (or `up --fresh`) rebuilds everything from scratch.
#
# Images made here:
#   cortiware-ci/debian:base   bookworm minbase + postgresql-15, redis-server, python3, venv
#   cortiware-ci/postgres:15   entrypoint honouring POSTGRES_USER/_PASSWORD/_DB, all addresses
#   cortiware-ci/redis:7       redis-server on all addresses, nothing persisted
#   cortiware-ci/python:3.11   base for the service Dockerfile (BASE_IMAGE build argument)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$ROOT/.ci/work"
DOCKERD_PID_FILE="$WORK/dockerd.pid"
DOCKERD_LOG="$WORK/dockerd.log"
SUITE=bookworm
MIRROR="${CORTIWARE_CI_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
INCLUDE="postgresql-15,redis-server,python3,python3-venv,ca-certificates"
BASE_IMAGE=cortiware-ci/debian:base
# Bump when the way the root file system is made changes (the cache key includes it).
ROOTFS_RECIPE=1

log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$WORK"
export DEBIAN_FRONTEND=noninteractive
# The legacy builder needs nothing outside the engine (no buildx plugin, no frontend image).
export DOCKER_BUILDKIT=0
# The engine started here listens on the default socket; ignore a stray remote DOCKER_HOST.
unset DOCKER_HOST DOCKER_CONTEXT

ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} from Debian's packages"
  if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >"$WORK/apt.log" 2>&1; then
    apt-get update -q >>"$WORK/apt.log" 2>&1 || true
    apt-get install -y -q --no-install-recommends "${missing[@]}" >>"$WORK/apt.log" 2>&1 \
      || { tail -20 "$WORK/apt.log" >&2; die "apt-get install ${missing[*]} failed"; }
  fi
}

engine_answers() { timeout 5 docker info >/dev/null 2>&1; }

our_dockerd_pid() {
  # Prints the PID recorded by this script if that process is still a dockerd.
  [ -f "$DOCKERD_PID_FILE" ] || return 1
  local pid
  pid="$(cat "$DOCKERD_PID_FILE")"
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = dockerd ] || return 1
  echo "$pid"
}

start_engine() {
  ensure_packages
  if engine_answers; then
    log "docker engine already answering"
    return 0
  fi
  if our_dockerd_pid >/dev/null; then
    log "dockerd $(our_dockerd_pid) is starting; waiting for it"
  else
    log "starting dockerd (log: ${DOCKERD_LOG#"$ROOT"/})"
    # 9>&-: the engine must not inherit (and hold) the lock below.
    dockerd >"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
    echo $! >"$DOCKERD_PID_FILE"
  fi
  local pid i
  pid="$(cat "$DOCKERD_PID_FILE")"
  for i in $(seq 1 120); do
    engine_answers && { log "dockerd $pid answering after ~$((i / 2)) s"; return 0; }
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -30 "$DOCKERD_LOG" >&2
      rm -f "$DOCKERD_PID_FILE"
      die "dockerd exited; see ${DOCKERD_LOG#"$ROOT"/}"
    fi
    sleep 0.5
  done
  tail -30 "$DOCKERD_LOG" >&2
  die "dockerd did not answer within 60 s"
}

stop_engine() {
  local pid i
  if ! pid="$(our_dockerd_pid)"; then
    rm -f "$DOCKERD_PID_FILE"
    log "no dockerd started by this script is running"
    return 0
  fi
  log "stopping dockerd $pid"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$DOCKERD_PID_FILE"; log "dockerd $pid stopped"; return 0; }
    sleep 0.5
  done
  log "dockerd $pid still running after 30 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$DOCKERD_PID_FILE"
}

rootfs_key() {
  printf '%s|%s|%s|minbase|%s' "$SUITE" "$MIRROR" "$INCLUDE" "$ROOTFS_RECIPE" | sha256sum | cut -c1-12
}

unmount_under() {
  # Unmount anything debootstrap may have left mounted inside $1 (deepest first).
  local dir="$1" m
  [ -d "$dir" ] || return 0
  findmnt -rn -o TARGET | awk -v d="$dir" 'index($0, d "/") == 1' | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

build_rootfs_tar() {
  # Prints the path of the cached root file system tarball, making it if needed.
  local key tar tmp
  key="$(rootfs_key)"
  tar="$WORK/rootfs/$SUITE-$key.tar"
  if [ -s "$tar" ] && [ "${FRESH:-0}" != 1 ]; then
    log "root file system cached: ${tar#"$ROOT"/}"
    echo "$tar"
    return 0
  fi
  mkdir -p "$WORK/rootfs"
  tmp="$WORK/rootfs/$SUITE-$key.dir"
  unmount_under "$tmp"
  rm -rf --one-file-system "$tmp"
  log "debootstrap --variant=minbase --include=$INCLUDE $SUITE (about 40 s)"
  local start=$SECONDS
  if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$tmp" "$MIRROR" \
    >"$WORK/debootstrap.log" 2>&1; then
    tail -30 "$WORK/debootstrap.log" >&2
    unmount_under "$tmp"
    die "debootstrap failed; see ${WORK#"$ROOT"/}/debootstrap.log"
  fi
  unmount_under "$tmp"
  log "debootstrap done in $((SECONDS - start)) s"
  # Slim it down: package caches, lists, the packaged default cluster (the image makes its own).
  rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/* \
    "$tmp"/var/lib/postgresql/15/main "$tmp"/etc/postgresql/15/main \
    "$tmp"/usr/share/doc/* "$tmp"/usr/share/man/* "$tmp"/usr/share/locale/*
  tar --numeric-owner -C "$tmp" -cf "$tar.partial" .
  mv "$tar.partial" "$tar"
  rm -rf --one-file-system "$tmp"
  log "root file system tarball: ${tar#"$ROOT"/} ($(du -h "$tar" | cut -f1))"
  echo "$tar"
}

image_label() {
  docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

build_base_image() {
  # Reused only when this checkout's .ci/work holds the tarball it was imported from: a fresh
  # clone (as in CI) always makes the root file system itself, whatever the engine kept.
  local key tar
  key="$(rootfs_key)"
  tar="$WORK/rootfs/$SUITE-$key.tar"
  if [ "${FRESH:-0}" != 1 ] && [ -s "$tar" ] \
    && [ "$(image_label "$BASE_IMAGE" org.cortiware.ci.rootfs)" = "$key" ] \
    && [ "$(image_label "$BASE_IMAGE" org.cortiware.ci.rootfs-tar)" = "$(stat -c %Y-%s "$tar")" ]; then
    log "$BASE_IMAGE present (rootfs $key, ${tar#"$ROOT"/})"
    return 0
  fi
  tar="$(build_rootfs_tar)"
  log "docker import -> $BASE_IMAGE"
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "LABEL org.cortiware.ci.rootfs=$key" \
    --change "LABEL org.cortiware.ci.rootfs-tar=$(stat -c %Y-%s "$tar")" \
    --change 'CMD ["bash"]' \
    "$tar" "$BASE_IMAGE" >/dev/null
}

build_image() {
  local name="$1" dir="$2" out args=()
  [ "${FRESH:-0}" = 1 ] && args+=(--no-cache)
  log "docker build -> $name"
  if ! out="$(docker build --force-rm "${args[@]}" -t "$name" "$dir" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "docker build $name failed"
  fi
}

build_images() {
  build_base_image
  build_image cortiware-ci/postgres:15 "$ROOT/.ci/docker/postgres"
  build_image cortiware-ci/redis:7 "$ROOT/.ci/docker/redis"
  build_image cortiware-ci/python:3.11 "$ROOT/.ci/docker/python"
  # Dangling leftovers of earlier builds of these images (and of images built FROM them) only.
  local t=$SECONDS
  docker image prune -f --filter label=org.cortiware.ci.rootfs >/dev/null 2>&1 || true
  [ $((SECONDS - t)) -lt 3 ] || log "pruned superseded cortiware-ci images in $((SECONDS - t)) s"
}

status() {
  if pid="$(our_dockerd_pid)"; then echo "dockerd: running, pid $pid (started by this script)"
  elif engine_answers; then echo "dockerd: answering (not started by this script)"
  else echo "dockerd: not running"; fi
  ls -lh "$WORK/rootfs" 2>/dev/null || echo "rootfs cache: none"
  if engine_answers; then docker image ls 'cortiware-ci/*'; fi
}

cmd="${1:-up}"
shift || true
FRESH="${CORTIWARE_CI_FRESH_IMAGES:-0}"
[ "${1:-}" = --fresh ] && FRESH=1
# One `up`/`engine`/`rootfs` at a time per checkout: .ci/run may start `rootfs` early in the
# background (to overlap debootstrap with other work); a later `up` then waits here and
# reuses its result.
if [ "$cmd" = up ] || [ "$cmd" = engine ] || [ "$cmd" = rootfs ]; then
  exec 9>"$WORK/images.lock"
  if ! flock -n 9; then
    log "another images.sh is running in this checkout; waiting for it"
    flock 9
  fi
fi
case "$cmd" in
  up)
    start=$SECONDS
    start_engine
    build_images
    log "engine and images ready in $((SECONDS - start)) s"
    ;;
  engine) start_engine ;;
  rootfs)
    # Packages and the root file system tarball only; no engine is started, so it can run in
    # the background beside `make test` (whose harness would otherwise see an engine).
    ensure_packages
    build_rootfs_tar >/dev/null
    ;;
  stop) stop_engine ;;
  status) status ;;
  *) die "usage: $0 [up [--fresh]|rootfs [--fresh]|engine|stop|status]" ;;
esac
