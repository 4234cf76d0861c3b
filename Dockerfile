# syntax=docker/dockerfile:1.7
# One image for every Grantline role: `grantline run <service>`, `grantline migrate`, `grantline sandbox`.
# Build:  docker build -t grantline:dev .
# Run:    docker run --read-only --tmpfs /tmp grantline:dev run vault

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.8.22

FROM ${UV_IMAGE} AS uv

# ---- builder: resolve the workspace from uv.lock into /opt/venv ---------------------------------------
FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
# Compile bytecode now: the final image runs with a read-only root filesystem and cannot write .pyc files.
# Copy (not hard-link) so the venv does not depend on uv's cache; use the base image's interpreter only.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src

# Third-party dependencies first, in their own layer: it only changes when uv.lock does.
COPY pyproject.toml uv.lock ./
COPY libs/contract/pyproject.toml libs/contract/
COPY libs/nats-fixes/pyproject.toml libs/nats-fixes/
COPY libs/nats-fixes/README.md libs/nats-fixes/
COPY libs/runtime/pyproject.toml libs/runtime/
COPY libs/runner/pyproject.toml libs/runner/
COPY libs/runner/README.md libs/runner/
COPY libs/devstack/pyproject.toml libs/devstack/
COPY libs/providers/pyproject.toml libs/providers/
COPY libs/sandbox/pyproject.toml libs/sandbox/
COPY services/auth-gateway/pyproject.toml services/auth-gateway/
COPY services/vault/pyproject.toml services/vault/
COPY services/refresher/pyproject.toml services/refresher/
COPY services/satisfaction/pyproject.toml services/satisfaction/
COPY services/audit/pyproject.toml services/audit/
COPY services/runner-auth/pyproject.toml services/runner-auth/
COPY services/notifier/pyproject.toml services/notifier/
COPY services/proxy/pyproject.toml services/proxy/
COPY cli/pyproject.toml cli/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace

# Then the workspace members themselves, installed as wheels (not editable): the final stage has no /src.
COPY libs/ libs/
COPY services/ services/
COPY cli/ cli/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable
# Services run under -OO (cli/service_entry.py), which reads *.opt-2.pyc: compile those too, or each
# start would compile the venv again in memory.
RUN /opt/venv/bin/python -m compileall -q -j 0 -o 2 /opt/venv/lib

# ---- final: the interpreter, the venv, a non-root user; no compilers, no uv, no sources -----------------
FROM ${PYTHON_IMAGE}
ARG UID=10001
RUN groupadd --system --gid "${UID}" grantline \
    && useradd --system --uid "${UID}" --gid grantline --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin grantline
COPY --from=builder /opt/venv /opt/venv
# The NATS permission file, for `grantline nats-config` run from the image.
COPY deploy/nats/permissions.yaml /etc/grantline/nats-permissions.yaml
# HOME and TMPDIR point at /tmp, the only writable path (an emptyDir in Kubernetes, a tmpfs in compose).
# Services listen on every interface inside the container; the platform decides what reaches them.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    GRANTLINE_HTTP_HOST=0.0.0.0 \
    GRANTLINE_HTTP_PORT=8080
WORKDIR /tmp
USER ${UID}:${UID}
EXPOSE 8080
ENTRYPOINT ["grantline"]
CMD ["run", "auth-gateway"]
