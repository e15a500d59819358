# Entry points for people and CI. `make dev` runs the platform; `make test` runs every test.
SHELL := /bin/bash
UV_VERSION := 0.13.8
DEBIAN_PACKAGES := postgresql-15 prometheus openssl procps
UV := python3 -m uv

.PHONY: dev test unit integration e2e lint typecheck bootstrap system-deps python-deps control-plane crds clean

dev: bootstrap ## run the platform locally (control plane, operator, gateway); Ctrl-C stops it
	$(UV) run exocorp dev

test: bootstrap lint typecheck ## the whole suite: unit, integration, e2e
	$(UV) run pytest tests

unit: python-deps
	$(UV) run pytest tests/unit

integration: bootstrap
	$(UV) run pytest tests/integration

e2e: bootstrap
	$(UV) run pytest tests/e2e

lint: python-deps
	$(UV) run ruff check .
	$(UV) run lint-imports

typecheck: python-deps
	$(UV) run mypy

bootstrap: system-deps python-deps control-plane

system-deps: ## Debian packages the tests start (PostgreSQL) or call (openssl)
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

kind: ## laptop path with Docker or Podman: kind cluster, image build and load, chart install (hack/kind.sh)
	bash hack/kind.sh

helm-lint: python-deps ## lint the Helm chart with every documented values file, check generated manifests
	@helm=$$($(UV) run python -c 'from exocorp.testing import binaries; print(binaries.ensure().helm)') && \
	$$helm lint --strict charts/exocorp && \
	for f in charts/exocorp/ci/*-values.yaml; do $$helm lint --strict charts/exocorp -f $$f || exit 1; done && \
	HELM=$$helm $(UV) run python hack/render-manifests.py --check && \
	HELM=$$helm $(UV) run python hack/chart-readme.py --check
