"""The runtime objects of one exocorp, built as plain manifests from its spec and release.

Pure functions: the operator's reconciler applies what they return with server-side apply, so
the same input always yields the same objects and a hand edit to any field we set is reverted;
the gateway renders them for the owner's manifest preview."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from exocorp import names
from exocorp.model import (
    Component,
    ComponentSize,
    DomainKind,
    Exocorp,
    ExocorpReleaseSpec,
    Probe,
    canonical_domains,
)
from exocorp.model.footprint import SIZES, STATE_VOLUME_SIZE, admitted_resources
from exocorp.model.quantity import parse_quantity
from exocorp.names import runtime_namespace
from exocorp.runtime.settings import RuntimeSettings

Obj = dict[str, Any]

SERVICE_ACCOUNT = "exocorp-runtime"
CREDENTIALS_SECRET = "provider-credentials"  # noqa: S105 (an object name)
MANIFEST_CONFIGMAP = "effective-manifest"
STATE_CLAIM = "state"
INGRESS = "routes"
_DNS = {"protocol": "UDP", "port": 53}


def credential_key(provider: str) -> str:
    """Environment variable a provider's credential is exposed as (ANTHROPIC_API_KEY, ...)."""
    return f"{provider.upper().replace('-', '_')}_API_KEY"


def stable_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RuntimeInputs:
    """What the builders need besides the exocorp itself."""

    release: ExocorpReleaseSpec
    revision: str
    """Name of the revision being run (a pod-template label, for tracing pods to revisions)."""
    credentials: dict[str, str]
    """Copied Secret data (base64 values) keyed by environment variable name."""
    settings: RuntimeSettings


def _labels(exo: Exocorp, component: str | None = None) -> dict[str, str]:
    labels = {
        names.LABEL_MANAGED_BY: names.MANAGER,
        names.LABEL_PART_OF: "exocorp",
        names.LABEL_EXOCORP: exo.metadata.name,
    }
    shard = exo.metadata.labels.get(names.LABEL_SHARD)
    if shard:
        labels[names.LABEL_SHARD] = shard
    if component:
        labels[names.LABEL_COMPONENT] = component
        labels[names.LABEL_NAME] = component
    return labels


def _meta(exo: Exocorp, name: str, *, namespaced: bool = True,
          component: str | None = None, annotations: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name, "labels": _labels(exo, component)}
    if namespaced:
        meta["namespace"] = runtime_namespace(exo.metadata.name)
    if annotations:
        meta["annotations"] = annotations
    return meta


def owner_reference(exo: Exocorp) -> Obj:
    """Cluster-scoped owner: lets the garbage collector remove what a crash left behind."""
    return {
        "apiVersion": names.API_VERSION, "kind": names.EXOCORP_KIND,
        "name": exo.metadata.name, "uid": exo.metadata.uid or "",
        "controller": True, "blockOwnerDeletion": True,
    }


def namespace(exo: Exocorp) -> Obj:
    meta = _meta(exo, runtime_namespace(exo.metadata.name), namespaced=False)
    for mode in ("enforce", "audit", "warn"):
        meta["labels"][f"pod-security.kubernetes.io/{mode}"] = "restricted"
        meta["labels"][f"pod-security.kubernetes.io/{mode}-version"] = "latest"
    meta["ownerReferences"] = [owner_reference(exo)]
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def service_account(exo: Exocorp) -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": _meta(exo, SERVICE_ACCOUNT), "automountServiceAccountToken": False}


def _size(exo: Exocorp, component: Component) -> ComponentSize | None:
    sizes = exo.spec.config.component_sizes if exo.spec.config else {}
    return sizes.get(component.name)


def container_resources(exo: Exocorp, component: Component) -> dict[str, dict[str, str]]:
    """What a container asks for: a size named in the exocorp's config wins; else the release's
    values as written (the namespace's LimitRange fills in the rest); else small."""
    size = _size(exo, component)
    if size is None and component.resources is not None:
        res = component.resources
        out: dict[str, dict[str, str]] = {}
        for kind, values in (("requests", res.requests), ("limits", res.limits)):
            if values is not None:
                picked = {k: v for k, v in (("cpu", values.cpu), ("memory", values.memory)) if v}
                if picked:
                    out[kind] = picked
        if out:
            return out
    chosen = SIZES[size or ComponentSize.SMALL]
    return {"requests": {"cpu": chosen.cpu_request, "memory": chosen.memory_request},
            "limits": {"cpu": chosen.cpu_limit, "memory": chosen.memory_limit}}


def resource_quota(exo: Exocorp, release: ExocorpReleaseSpec) -> Obj:
    """Room for every component at full size, doubled for the surge of a rolling update. Counts
    what each container is admitted with, values the LimitRange fills in included: the quota
    refuses a pod whose defaulted requests or limits it has no room for."""
    totals = {"requests.cpu": 0.0, "requests.memory": 0.0, "limits.cpu": 0.0,
              "limits.memory": 0.0}
    pods = 0
    for component in release.components:
        admitted = admitted_resources(component, _size(exo, component))
        replicas = max(component.replicas, 1)
        pods += replicas
        for key, amount in (("requests.cpu", admitted.cpu_request),
                            ("requests.memory", admitted.memory_request),
                            ("limits.cpu", admitted.cpu_limit),
                            ("limits.memory", admitted.memory_limit)):
            totals[key] += float(parse_quantity(amount)) * replicas
    hard = {
        "requests.cpu": f"{round(totals['requests.cpu'] * 2000)}m",
        "limits.cpu": f"{round(totals['limits.cpu'] * 2000)}m",
        "requests.memory": f"{round(totals['requests.memory'] * 2 / 2**20)}Mi",
        "limits.memory": f"{round(totals['limits.memory'] * 2 / 2**20)}Mi",
        "pods": str(pods * 2 + 2),
        # One claim is used. Quota admission charges a create before it is stored, and a create
        # cut short (the operator killed mid-request) stays charged until the quota controller
        # recounts (every 5 minutes by default): room for one more keeps the claim re-creatable.
        "persistentvolumeclaims": "2",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }
    return {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": _meta(exo, "exocorp-quota"), "spec": {"hard": hard}}


def limit_range(exo: Exocorp) -> Obj:
    """Defaults (the small size) for what a release leaves out; at most the large size."""
    small, large = SIZES[ComponentSize.SMALL], SIZES[ComponentSize.LARGE]
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": _meta(exo, "exocorp-limits"),
            "spec": {"limits": [{
                "type": "Container",
                "default": {"cpu": small.cpu_limit, "memory": small.memory_limit},
                "defaultRequest": {"cpu": small.cpu_request, "memory": small.memory_request},
                "max": {"cpu": large.cpu_limit, "memory": large.memory_limit},
            }]}}


def network_policies(exo: Exocorp, release: ExocorpReleaseSpec,
                     settings: RuntimeSettings) -> list[Obj]:
    """Deny everything, then allow: DNS, traffic between the exocorp's own pods, HTTPS to
    model providers (public addresses only), and the ingress controller to routed ports."""
    ns = runtime_namespace(exo.metadata.name)
    policies: list[Obj] = [
        {"metadata": _meta(exo, "default-deny"),
         "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
        {"metadata": _meta(exo, "allow-dns"),
         "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
             "to": [{"namespaceSelector": {"matchLabels": {
                 "kubernetes.io/metadata.name": "kube-system"}}}],
             "ports": [_DNS, {"protocol": "TCP", "port": 53}]}]}},
        {"metadata": _meta(exo, "allow-same-exocorp"),
         "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                  "ingress": [{"from": [{"podSelector": {}}]}],
                  "egress": [{"to": [{"podSelector": {}}]}]}},
        {"metadata": _meta(exo, "allow-provider-https"),
         "spec": {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
             "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [
                 "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]}}],
             "ports": [{"protocol": "TCP", "port": 443}]}]}},
    ]
    routed = [c for c in release.components if (c.portal or c.app) and c.ports]
    if routed:
        policies.append({"metadata": _meta(exo, "allow-ingress-controller"), "spec": {
            "podSelector": {"matchExpressions": [{
                "key": names.LABEL_COMPONENT, "operator": "In",
                "values": sorted(c.name for c in routed)}]},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": settings.ingress_namespace}}}],
                "ports": sorted(({"protocol": p.protocol.value, "port": p.port}
                                 for c in routed for p in c.ports),
                                key=lambda p: (p["port"], p["protocol"]))}]}})
    for policy in policies:
        policy["apiVersion"] = "networking.k8s.io/v1"
        policy["kind"] = "NetworkPolicy"
        policy["metadata"]["namespace"] = ns
    return policies


def credentials_secret(exo: Exocorp, credentials: dict[str, str]) -> Obj:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": _meta(exo, CREDENTIALS_SECRET), "data": dict(sorted(credentials.items()))}


def effective_manifest(exo: Exocorp, inputs: RuntimeInputs) -> Obj:
    manifest = {
        "exocorp": exo.metadata.name,
        "slug": exo.spec.slug,
        "revision": inputs.revision,
        "release": inputs.release.model_dump(mode="json", by_alias=True, exclude_none=True),
        "config": (exo.spec.config.model_dump(mode="json", by_alias=True, exclude_none=True)
                   if exo.spec.config else {}),
        "providers": sorted(b.provider for b in exo.spec.provider_bindings),
        "paused": exo.spec.paused,
    }
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(exo, MANIFEST_CONFIGMAP),
            "data": {"manifest.json": json.dumps(manifest, indent=2, sort_keys=True)}}


def state_claim(exo: Exocorp, settings: RuntimeSettings) -> Obj:
    spec: Obj = {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": STATE_VOLUME_SIZE}}}
    if settings.storage_class:
        spec["storageClassName"] = settings.storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": _meta(exo, STATE_CLAIM), "spec": spec}


def _probe(probe: Probe | None) -> Obj | None:
    if probe is None:
        return None
    out: Obj = {"initialDelaySeconds": probe.initial_delay_seconds,
                "periodSeconds": probe.period_seconds, "timeoutSeconds": probe.timeout_seconds,
                "failureThreshold": probe.failure_threshold}
    if probe.http_get is not None:
        out["httpGet"] = {"path": probe.http_get.path, "port": probe.http_get.port}
    elif probe.tcp_socket is not None:
        out["tcpSocket"] = {"port": probe.tcp_socket.port}
    return out


def desired_replicas(exo: Exocorp, component: Component) -> int:
    """Stop takes everything to zero; pause only the agent workloads."""
    if exo.spec.stopped or (exo.spec.paused and component.agent):
        return 0
    return component.replicas


def state_component(release: ExocorpReleaseSpec) -> str | None:
    """The component that mounts the state volume: the portal (the company's own memory)."""
    for component in release.components:
        if component.portal:
            return component.name
    return release.components[0].name if release.components else None


def deployment(exo: Exocorp, component: Component, inputs: RuntimeInputs) -> Obj:
    settings = inputs.settings
    pod_labels = {**_labels(exo, component.name), names.LABEL_REVISION: inputs.revision,
                  **component.pod_labels}
    annotations = {names.ANNOTATION_CREDENTIALS_HASH: stable_hash(inputs.credentials)}
    if exo.spec.restart_at:
        annotations[names.ANNOTATION_RESTART_AT] = exo.spec.restart_at
    container: Obj = {
        "name": component.name,
        "image": component.image,
        "ports": [{"name": p.name, "containerPort": p.port, "protocol": p.protocol.value}
                  for p in component.ports],
        "resources": container_resources(exo, component),
        "envFrom": [{"secretRef": {"name": CREDENTIALS_SECRET}}],
        # Pause state is in the mounted manifest, not the environment: pausing must not
        # restart the portal and app pods.
        "env": [{"name": "EXOCORP_NAME", "value": exo.metadata.name}],
        "volumeMounts": [{"name": "manifest", "mountPath": "/etc/exocorp", "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
        "securityContext": {
            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "runAsNonRoot": True, "runAsUser": settings.runtime_user,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    for key, probe in (("readinessProbe", component.readiness_probe),
                       ("livenessProbe", component.liveness_probe)):
        rendered = _probe(probe)
        if rendered is not None:
            container[key] = rendered
    volumes: list[Obj] = [
        {"name": "manifest", "configMap": {"name": MANIFEST_CONFIGMAP}},
        {"name": "tmp", "emptyDir": {}},
    ]
    if state_component(inputs.release) == component.name:
        container["volumeMounts"].append({"name": "state", "mountPath": "/var/lib/exocorp"})
        volumes.append({"name": "state", "persistentVolumeClaim": {"claimName": STATE_CLAIM}})
    selector = {names.LABEL_EXOCORP: exo.metadata.name, names.LABEL_COMPONENT: component.name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _meta(exo, component.name, component=component.name),
        "spec": {
            "replicas": desired_replicas(exo, component),
            "selector": {"matchLabels": selector},
            "progressDeadlineSeconds": exo.spec.progress_deadline_seconds,
            "revisionHistoryLimit": 2,
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": annotations},
                "spec": {
                    "serviceAccountName": SERVICE_ACCOUNT,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True, "runAsUser": settings.runtime_user,
                        "runAsGroup": settings.runtime_user, "fsGroup": settings.runtime_user,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def service(exo: Exocorp, component: Component) -> Obj | None:
    if not component.ports:
        return None
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": _meta(exo, component.name, component=component.name),
            "spec": {"type": "ClusterIP",
                     "selector": {names.LABEL_EXOCORP: exo.metadata.name,
                                  names.LABEL_COMPONENT: component.name},
                     "ports": [{"name": p.name, "port": p.port, "targetPort": p.name,
                                "protocol": p.protocol.value} for p in component.ports]}}


def domains(exo: Exocorp, settings: RuntimeSettings) -> dict[DomainKind, str]:
    return canonical_domains(exo.spec.slug, portal_base=settings.portal_base_domain,
                             app_base=settings.app_base_domain)


def tls_secret_name(exo: Exocorp) -> str:
    return f"{exo.spec.slug}-tls"


def ingress(exo: Exocorp, release: ExocorpReleaseSpec, settings: RuntimeSettings) -> Obj | None:
    """Routes for the two canonical domains; none while stopped (routes detached)."""
    if exo.spec.stopped:
        return None
    hosts = domains(exo, settings)
    rules = []
    for kind, flag in ((DomainKind.PORTAL, "portal"), (DomainKind.APP, "app")):
        component = next((c for c in release.components if getattr(c, flag)), None)
        if component is None or not component.ports:
            continue
        rules.append({"host": hosts[kind], "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": component.name,
                                    "port": {"number": component.ports[0].port}}}}]}})
    if not rules:
        return None
    annotations = {"cert-manager.io/cluster-issuer": settings.tls_issuer} \
        if settings.tls_issuer else None
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": _meta(exo, INGRESS, annotations=annotations),
            "spec": {"ingressClassName": settings.ingress_class,
                     "tls": [{"hosts": [r["host"] for r in rules],
                              "secretName": tls_secret_name(exo)}],
                     "rules": rules}}


def runtime_objects(exo: Exocorp, inputs: RuntimeInputs) -> list[Obj]:
    """Every object of the exocorp's runtime, in the order the operator applies them: the
    namespace first (everything else lives in it), then the rest."""
    release, settings = inputs.release, inputs.settings
    objects = [
        namespace(exo), service_account(exo), resource_quota(exo, release), limit_range(exo),
        *network_policies(exo, release, settings), credentials_secret(exo, inputs.credentials),
        effective_manifest(exo, inputs), state_claim(exo, settings),
    ]
    for component in release.components:
        svc = service(exo, component)
        if svc is not None:
            objects.append(svc)
        objects.append(deployment(exo, component, inputs))
    route = ingress(exo, release, settings)
    if route is not None:
        objects.append(route)
    return objects
