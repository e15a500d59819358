#!/usr/bin/env bash
# The laptop path for users with Docker (or Podman): create a kind cluster, build the image,
# load it into the cluster and install the Helm chart with it. Safe to rerun: it reuses the
# cluster and upgrades the release.
#
#   hack/kind.sh            # or: make kind
#
# Settings (environment):
#   KIND_CLUSTER      kind cluster name                         (default: exocorp)
#   IMAGE             image reference to build and load         (default: exocorp:dev)
#   CONTAINER_ENGINE  docker or podman                          (default: docker if present)
#   NAMESPACE         platform namespace                        (default: exocorp-system)
#   RELEASE           Helm release name                         (default: exocorp)
#   HELM_EXTRA_ARGS   extra arguments for `helm upgrade --install`, e.g. "--set gateway.ingress.enabled=true"
#   KIND, HELM, KUBECTL  the binaries to use                    (default: from PATH)
set -euo pipefail

cd "$(dirname "$0")/.."

KIND_CLUSTER=${KIND_CLUSTER:-exocorp}
IMAGE=${IMAGE:-exocorp:dev}
NAMESPACE=${NAMESPACE:-exocorp-system}
RELEASE=${RELEASE:-exocorp}
KIND=${KIND:-kind}
HELM=${HELM:-helm}
KUBECTL=${KUBECTL:-kubectl}
HELM_EXTRA_ARGS=${HELM_EXTRA_ARGS:-}
if [[ -z "${CONTAINER_ENGINE:-}" ]]; then
  if command -v docker >/dev/null 2>&1; then CONTAINER_ENGINE=docker
  elif command -v podman >/dev/null 2>&1; then CONTAINER_ENGINE=podman
  else CONTAINER_ENGINE=docker
  fi
fi

step() { printf '\n==> %s\n' "$*"; }
need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "error: '$1' not found. $2" >&2
    exit 1
  }
}

need "$CONTAINER_ENGINE" "Install Docker (https://docs.docker.com/get-docker/) or Podman and set CONTAINER_ENGINE=podman."
need "$KIND" "Install kind: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
need "$HELM" "Install helm 3, or run 'exocorp cluster build' and set HELM=~/.cache/exocorp/k8s/<versions>/bin/helm."
need "$KUBECTL" "Install kubectl, or use the one 'exocorp cluster build' puts in ~/.cache/exocorp/k8s/<versions>/bin."
if [[ "$CONTAINER_ENGINE" == podman ]]; then
  export KIND_EXPERIMENTAL_PROVIDER=podman
fi

step "kind cluster '$KIND_CLUSTER'"
if "$KIND" get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  echo "reusing the existing cluster"
else
  "$KIND" create cluster --name "$KIND_CLUSTER" --wait 120s
fi
CONTEXT="kind-$KIND_CLUSTER"

step "building $IMAGE with $CONTAINER_ENGINE"
"$CONTAINER_ENGINE" build -t "$IMAGE" \
  --build-arg "REVISION=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" .

step "loading $IMAGE into the cluster"
if [[ "$CONTAINER_ENGINE" == podman ]]; then
  archive=$(mktemp -t exocorp-image.XXXXXX.tar)
  trap 'rm -f "$archive"' EXIT
  podman save -o "$archive" "$IMAGE"
  "$KIND" load image-archive "$archive" --name "$KIND_CLUSTER"
else
  "$KIND" load docker-image "$IMAGE" --name "$KIND_CLUSTER"
fi

step "namespace $NAMESPACE (Pod Security: restricted)"
"$KUBECTL" --context "$CONTEXT" create namespace "$NAMESPACE" --dry-run=client -o yaml \
  | "$KUBECTL" --context "$CONTEXT" apply -f -
"$KUBECTL" --context "$CONTEXT" label namespace "$NAMESPACE" --overwrite \
  pod-security.kubernetes.io/enforce=restricted \
  pod-security.kubernetes.io/warn=restricted \
  pod-security.kubernetes.io/audit=restricted

repository=${IMAGE%:*}
tag=${IMAGE##*:}
if [[ "$repository" == "$IMAGE" || "$tag" == */* ]]; then  # no tag given
  repository=$IMAGE
  tag=latest
fi

existed=false
if "$HELM" --kube-context "$CONTEXT" status "$RELEASE" --namespace "$NAMESPACE" >/dev/null 2>&1; then
  existed=true
fi

step "installing the chart (release $RELEASE)"
# kind has a default StorageClass, so the SQLite claim binds. Cookies are not Secure because the
# laptop path serves plain HTTP through a port-forward.
# shellcheck disable=SC2086  # HELM_EXTRA_ARGS is a list of words on purpose
"$HELM" --kube-context "$CONTEXT" upgrade --install "$RELEASE" charts/exocorp \
  --namespace "$NAMESPACE" \
  --set image.repository="$repository" \
  --set image.tag="$tag" \
  --set image.pullPolicy=Never \
  --set gateway.cookieSecure=false \
  --wait --timeout 5m $HELM_EXTRA_ARGS

if [[ "$existed" == true ]]; then
  step "restarting the pods on the freshly loaded image"
  "$KUBECTL" --context "$CONTEXT" -n "$NAMESPACE" rollout restart deploy -l "app.kubernetes.io/instance=$RELEASE"
  "$KUBECTL" --context "$CONTEXT" -n "$NAMESPACE" rollout status deploy -l "app.kubernetes.io/instance=$RELEASE" --timeout 5m
fi

if [[ "$RELEASE" == *exocorp* ]]; then prefix=$RELEASE; else prefix=$RELEASE-exocorp; fi

step "done"
cat <<MSG
The platform runs in kind cluster '$KIND_CLUSTER' (kubectl context $CONTEXT).

  $KUBECTL --context $CONTEXT -n $NAMESPACE get pods
  $KUBECTL --context $CONTEXT -n $NAMESPACE port-forward svc/$prefix-gateway 8000:80
  curl http://127.0.0.1:8000/healthz

Rebuild and roll out after a code change: rerun hack/kind.sh (or make kind).
Delete everything: $KIND delete cluster --name $KIND_CLUSTER
MSG
