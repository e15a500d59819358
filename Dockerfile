# syntax=docker/dockerfile:1
# One image for both processes of the Exocorp platform:
#   exocorp operator   (kopf operator; /metrics and /healthz on --metrics-port, default 8080)
#   exocorp gateway    (REST API; /healthz, /readyz, /metrics on --port, default 8000)
# Build:  make image   (= docker build -t exocorp:dev . , or podman; docs/deployment.md)
# Health: no HEALTHCHECK here. The two processes serve different ports, and Kubernetes ignores
#         HEALTHCHECK: the Helm chart sets liveness/readiness probes (docs/deployment.md).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: resolve the locked dependencies into a virtual environment ---------------------
# Needs only a Python 3.11 with `venv` on PATH as $PYTHON (python:3.11-slim, or a Debian base
# with python3.11-venv): uv comes from a throwaway venv, never from the system pip, and the
# environment's interpreter is whatever $PYTHON resolves to in the base (the same in both stages).
FROM ${PYTHON_IMAGE} AS builder
ARG PYTHON=python3.11
ARG UV_VERSION=0.13.8
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/exocorp
RUN "${PYTHON}" -m venv /opt/uv && /opt/uv/bin/pip install "uv==${UV_VERSION}"
WORKDIR /src
# Dependencies first (cached until uv.lock changes), exactly as locked, without dev tools.
COPY pyproject.toml uv.lock README.md ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --python "${PYTHON}"
# Then the package itself (with the dashboard's build in exocorp/api_gateway/ui_dist/ when it
# was built first: `make image` does), installed (not editable) into the same environment.
COPY exocorp ./exocorp
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-editable --python "${PYTHON}" \
    && /opt/exocorp/bin/exocorp --version

# --- runtime: the slim base, the environment, a numeric non-root user -----------------------
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="exocorp" \
      org.opencontainers.image.description="Exocorp platform: operator and REST gateway (exocorp operator | exocorp gateway)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="https://github.com/exocorp/exocorp" \
      org.opencontainers.image.url="https://github.com/exocorp/exocorp" \
      org.opencontainers.image.documentation="https://github.com/exocorp/exocorp/blob/main/docs/deployment.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Exocorp"
ENV PATH=/opt/exocorp/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=builder /opt/exocorp /opt/exocorp
# The SQLite database lives here (a volume in Kubernetes); owned by the runtime user.
RUN install -d -m 0750 -o 65532 -g 65532 /var/lib/exocorp
WORKDIR /tmp
USER 65532:65532
EXPOSE 8000 8080
ENTRYPOINT ["exocorp"]
CMD ["--help"]
