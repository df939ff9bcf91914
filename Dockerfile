# Cortiware service image: `cortiware serve` on 0.0.0.0:8000 as a non-root user.
#
#   docker build -t cortiware .                       # a developer with network access
#   docker build --build-arg BASE_IMAGE=cortiware-ci/python:3.11 -t cortiware:ci .   # CI
#
# BASE_IMAGE: any Debian-like image with python3 (3.11) and its venv module. The same image is
# used by both stages, so the virtualenv's interpreter link stays valid.
#
# Wheels: if the build context has wheels in .ci/work/wheels/ (CI makes them on the host with
# `.venv/bin/pip wheel --wheel-dir .ci/work/wheels .`, because a container built from a
# debootstrap image may not reach PyPI), they are installed with --no-index and nothing is
# downloaded. Otherwise the builder stage runs `pip wheel` itself, from PyPI. Wheels built on
# the host must match the base image's Python minor version (3.11) and platform.
#
# No `# syntax=` line and no BuildKit-only instructions: the legacy builder (no frontend image
# to pull) and BuildKit both build it.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    LANG=C.UTF-8
WORKDIR /src
COPY pyproject.toml README.m[d] ./
COPY service ./service
# The wheel[s] pattern may match nothing (then only pyproject.toml lands in /wheels/).
COPY pyproject.toml .ci/work/wheel[s] /wheels/
RUN set -eu; \
    python3 -m venv /opt/venv; \
    if ls /wheels/cortiware-*.whl >/dev/null 2>&1; then \
      echo "installing prebuilt wheels from the build context (no index)"; \
    else \
      echo "no prebuilt wheels: building them (needs the package index)"; \
      /opt/venv/bin/pip wheel --wheel-dir /wheels /src; \
    fi; \
    /opt/venv/bin/pip install --no-index --find-links /wheels cortiware; \
    /opt/venv/bin/pip uninstall -y pip setuptools >/dev/null 2>&1 || true; \
    /opt/venv/bin/cortiware --version

FROM ${BASE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="cortiware" \
      org.opencontainers.image.description="Cortiware platform service: onboarding, monetization, Stripe billing, audit."
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8
# psql for `cortiware db shell` (incident access through ECS Exec). Debian's client package;
# a base image that already has psql (CI's carries postgresql-15) installs nothing.
RUN set -eu; \
    if ! command -v psql >/dev/null 2>&1; then \
      apt-get update; \
      apt-get install -y --no-install-recommends postgresql-client; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    psql --version
RUN groupadd --system --gid 10001 cortiware \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin cortiware \
 && mkdir -p /app \
 && chown 10001:10001 /app
COPY --from=builder /opt/venv /opt/venv
# Working directory of the process: in development (no DATABASE_URL) the embedded SQLite
# file cortiware-dev.sqlite3 is created here, so it belongs to the service user.
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# Liveness only (GET /api/health/live), so a slow dependency never restarts the container.
# HEALTHCHECK_URL overrides the address when the command serves on another port.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/opt/venv/bin/python", "-c", "import json, os, sys, urllib.request as u; r = u.urlopen(os.environ.get('HEALTHCHECK_URL', 'http://127.0.0.1:8000/api/health/live'), timeout=2); sys.exit(0 if r.status == 200 and json.load(r).get('status') == 'ok' else 1)"]
ENTRYPOINT ["cortiware"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
