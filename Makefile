# Entry points for people and CI. `make dev` runs the platform; `make test` runs every test.
SHELL := /bin/bash
UV_VERSION := 0.13.8
# podman, buildah, mmdebstrap, runc: the image test builds and runs the Dockerfile without Docker
DEBIAN_PACKAGES := postgresql-15 prometheus openssl procps chromium podman buildah mmdebstrap runc
UV := python3 -m uv
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' exocorp/__init__.py)
IMAGE ?= exocorp:dev
# Docker when its daemon answers, otherwise podman; override with CONTAINER_ENGINE=...
CONTAINER_ENGINE ?= $(shell docker info >/dev/null 2>&1 && echo docker || echo podman)
# The base image: any Python 3.11 with venv (docs/deployment.md)
PYTHON_IMAGE ?= python:3.11-slim-bookworm

.PHONY: openapi-lint version image dev test ui unit integration e2e lint typecheck bootstrap system-deps python-deps control-plane crds clean

dev: bootstrap ui ## run the platform locally (control plane, operator, gateway); Ctrl-C stops it
	$(UV) run exocorp dev $(DEV_ARGS)

test: bootstrap lint typecheck ui ## the whole suite: unit, integration, e2e
	$(UV) run pytest tests

unit: python-deps
	$(UV) run pytest tests/unit

integration: bootstrap
	$(UV) run pytest tests/integration

e2e: bootstrap ui
	$(UV) run pytest tests/e2e

ui: ## build the dashboard (ui/) into exocorp/api_gateway/ui_dist/; skipped when its inputs are unchanged
	bash hack/build-ui.sh

lint: python-deps openapi-lint
	$(UV) run ruff check .
	$(UV) run lint-imports

OPENAPI_LINT := tools/openapi-lint
openapi-lint: python-deps ## docs/openapi.json: openapi-spec-validator and redocly lint (pinned), zero errors
	$(UV) run openapi-spec-validator docs/openapi.json
	@test -x $(OPENAPI_LINT)/node_modules/.bin/redocly || npm ci --prefix $(OPENAPI_LINT) --no-audit --no-fund --ignore-scripts
	$(OPENAPI_LINT)/node_modules/.bin/redocly lint docs/openapi.json --config $(OPENAPI_LINT)/redocly.yaml

typecheck: python-deps
	$(UV) run mypy

bootstrap: system-deps python-deps control-plane

system-deps: ## Debian packages the tests start (PostgreSQL), call (openssl) or drive (chromium)
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

python-deps:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install -q uv==$(UV_VERSION)
	$(UV) sync --frozen

control-plane: python-deps ## build etcd, Kubernetes, kwok and helm from the Go module proxy (cached)
	$(UV) run exocorp cluster build

crds: python-deps
	$(UV) run exocorp crds --write

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache

version: ## print the version (single source: exocorp/__init__.py)
	@echo $(VERSION)

image: ui ## build the container image $(IMAGE) with Docker or podman (the dashboard built first)
	$(CONTAINER_ENGINE) build -t $(IMAGE) \
	  --build-arg PYTHON_IMAGE=$(PYTHON_IMAGE) \
	  --build-arg VERSION=$(VERSION) \
	  --build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
	  --build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) .

kind: ## laptop path with Docker or Podman: kind cluster, image build and load, chart install (hack/kind.sh)
	bash hack/kind.sh

helm-lint: python-deps ## lint the Helm chart with every documented values file, check generated manifests
	@helm=$$($(UV) run python -c 'from exocorp.testing import binaries; print(binaries.ensure().helm)') && \
	$$helm lint --strict charts/exocorp && \
	for f in charts/exocorp/ci/*-values.yaml; do $$helm lint --strict charts/exocorp -f $$f || exit 1; done && \
	HELM=$$helm $(UV) run python hack/render-manifests.py --check && \
	HELM=$$helm $(UV) run python hack/chart-readme.py --check
