#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, kwok, helm) from the Go module proxy into a per-version cache outside the repository.
# Already-built binaries are skipped. Prints which component it builds and how long it took.
# Usage: hack/build-control-plane.sh            (versions below; override with env vars)
set -euo pipefail

K8S_VERSION=${EXOCORP_K8S_VERSION:-1.36.3}
ETCD_VERSION=${EXOCORP_ETCD_VERSION:-3.6.16}
KWOK_VERSION=${EXOCORP_KWOK_VERSION:-0.8.0}
HELM_VERSION=${EXOCORP_HELM_VERSION:-3.21.4}
CACHE_ROOT=${EXOCORP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/exocorp}
BIN=${EXOCORP_K8S_BIN:-$CACHE_ROOT/k8s/v$K8S_VERSION-etcd$ETCD_VERSION-kwok$KWOK_VERSION-helm$HELM_VERSION/bin}
WORK=$CACHE_ROOT/build
export GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

mkdir -p "$BIN" "$WORK"
start_all=$(date +%s)
step() { printf '[build %4ds] %s\n' "$(( $(date +%s) - start_all ))" "$*"; }
have() { for b in "$@"; do [ -x "$BIN/$b" ] || return 1; done; }

build_kube() {
  if have kube-apiserver kube-controller-manager kube-scheduler kubectl; then
    step "kubernetes v$K8S_VERSION: cached"; return; fi
  local sv="0.${K8S_VERSION#1.}" d="$WORK/k8s-$K8S_VERSION"
  step "kubernetes v$K8S_VERSION: resolving modules"
  rm -rf "$d"; mkdir -p "$d"; cd "$d"
  go mod init local/k8sbuild >/dev/null 2>&1
  printf '\ngodebug default=go1.26\n' >> go.mod
  local gomod mods
  gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  # The staging list comes from the real go.mod, so it cannot drift from the release.
  mods=$(sed -n 's|^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*|\1|p' "$gomod")
  for m in $mods; do go mod edit "-replace=$m=$m@v$sv"; done
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  go get "k8s.io/kubernetes@v$K8S_VERSION" >/dev/null
  go mod tidy >/dev/null
  local minor ldf date_
  minor=$(echo "$K8S_VERSION" | cut -d. -f2); date_=$(date -u +%Y-%m-%dT%H:%M:%SZ); ldf="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldf="$ldf -X $p.gitTreeState=clean -X $p.buildDate=$date_"
  done
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    have "$c" && continue
    step "kubernetes v$K8S_VERSION: building $c"
    go build -trimpath -ldflags "$ldf" -o "$BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$BIN/$c.tmp" "$BIN/$c"
  done
}

build_etcd() {
  if have etcd; then step "etcd v$ETCD_VERSION: cached"; return; fi
  local d="$WORK/etcd-$ETCD_VERSION"
  step "etcd v$ETCD_VERSION: building"
  rm -rf "$d"; mkdir -p "$d"; cd "$d"
  go mod init local/etcdbuild >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >/dev/null
  go build -trimpath -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

build_kwok() {
  if have kwok; then step "kwok v$KWOK_VERSION: cached"; return; fi
  step "kwok v$KWOK_VERSION: building"
  GOBIN="$WORK/gobin" go install -trimpath "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  mv "$WORK/gobin/kwok" "$BIN/kwok"
  # Stock stage definitions ship in the module; keep a copy beside the binary.
  local src
  src=$(go env GOMODCACHE)/sigs.k8s.io/kwok@v$KWOK_VERSION/kustomize/stage
  rm -rf "$BIN/../kwok-stages"; cp -r "$src" "$BIN/../kwok-stages"; chmod -R u+w "$BIN/../kwok-stages"
}

build_helm() {
  if have helm; then step "helm v$HELM_VERSION: cached"; return; fi
  local major="${HELM_VERSION%%.*}" minor
  minor=$(echo "$K8S_VERSION" | cut -d. -f2)
  step "helm v$HELM_VERSION: building"
  GOBIN="$WORK/gobin" go install -trimpath -ldflags "-X helm.sh/helm/v$major/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v$major/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v$major/pkg/chartutil.k8sVersionMinor=$minor" \
    "helm.sh/helm/v$major/cmd/helm@v$HELM_VERSION"
  mv "$WORK/gobin/helm" "$BIN/helm"
}

case "${1:-all}" in
  all) build_etcd; build_kwok; build_helm; build_kube ;;
  etcd|kwok|helm|kube) "build_$1" ;;
  path) echo "$BIN"; exit 0 ;;
  *) echo "usage: $0 [all|etcd|kwok|helm|kube|path]" >&2; exit 2 ;;
esac
step "done: binaries in $BIN"
