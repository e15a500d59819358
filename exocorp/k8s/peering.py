"""kopf's peering resources as plain objects: the CRDs and the cluster-wide peering object through
which only one operator replica acts at a time. Data only (no kopf import), so the test platform
and the chart tooling can install them without importing the operator."""

from __future__ import annotations

from typing import Any


def _crd(plural: str, kind: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {
            "group": "kopf.dev",
            "scope": scope,
            "names": {"plural": plural, "singular": plural[:-1], "kind": kind},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"status": {
                        "type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                    "x-kubernetes-preserve-unknown-fields": True,
                }},
            }],
        },
    }


def peering_crds() -> list[dict[str, Any]]:
    return [_crd("clusterkopfpeerings", "ClusterKopfPeering", "Cluster"),
            _crd("kopfpeerings", "KopfPeering", "Namespaced")]


def peering_object(name: str) -> dict[str, Any]:
    return {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}}
