"""The settings the runtime objects depend on (a part of the operator's settings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimeSettings:
    """What shapes an exocorp's runtime objects besides its spec and release. The operator's
    ``OperatorSettings`` extends it; the gateway's manifest preview uses these defaults where it
    has no setting of its own."""

    portal_base_domain: str = "portal.exocorp.localhost"
    """Each exocorp's portal is served at <slug>.<portal_base_domain>."""
    app_base_domain: str = "app.exocorp.localhost"
    """Each exocorp's application endpoint is served at <slug>.<app_base_domain>."""
    ingress_class: str = "nginx"
    """ingressClassName of the exocorps' Ingresses."""
    tls_issuer: str = ""
    """cert-manager ClusterIssuer that issues the domains' certificates ('' = no TLS issuer)."""
    ingress_namespace: str = "ingress-nginx"
    """Namespace of the ingress controller, allowed through each exocorp's network policy."""
    storage_class: str = ""
    """StorageClass of the state volumes ('' = the cluster default)."""
    runtime_user: int = 65532
    """Numeric user the runtime containers run as."""
