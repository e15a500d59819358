"""The CustomResourceDefinitions of Exocorp and ExocorpRelease, generated from the models.

The committed manifests under manifests/crds/ are this module's output; `exocorp crds --write`
regenerates them and a unit test fails when they drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from exocorp.model.release import ExocorpReleaseSpec, ExocorpReleaseStatus
from exocorp.model.spec import ExocorpSpec
from exocorp.model.status import ExocorpStatus
from exocorp.model.structural import to_structural
from exocorp.names import (
    EXOCORP_KIND,
    EXOCORP_PLURAL,
    GROUP,
    LABEL_PART_OF,
    RELEASE_KIND,
    RELEASE_PLURAL,
    VERSION,
)

# `all` is for namespaced resources, so cluster-scoped ones get their own category. It is not
# "exocorp": kubectl resolves a category before a singular name, so `kubectl describe exocorp acme`
# would then look for "acme" among releases too and fail with "specify only one resource".
CATEGORY = "exocorp-all"
REGENERATE_COMMAND = "exocorp crds --write"
_HEADER = f"# Generated from exocorp/model by `{REGENERATE_COMMAND}`. Do not edit.\n"


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return to_structural(model.model_json_schema(by_alias=True, mode="validation"))


def _object_schema(
    description: str, spec: type[BaseModel], status: type[BaseModel] | None
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": _schema(spec),
    }
    if status is not None:
        properties["status"] = _schema(status)
    return {
        "description": description,
        "type": "object",
        "required": ["spec"],
        "properties": properties,
    }


def _crd(
    *,
    kind: str,
    plural: str,
    short_name: str,
    description: str,
    spec: type[BaseModel],
    status: type[BaseModel] | None,
    columns: list[dict[str, Any]],
) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": _object_schema(description, spec, status)},
        "additionalPrinterColumns": columns,
    }
    if status is not None:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}", "labels": {LABEL_PART_OF: "exocorp"}},
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short_name],
                "categories": [CATEGORY],
            },
            "versions": [version],
        },
    }


def exocorp_crd() -> dict[str, Any]:
    """The Exocorp CRD."""
    return _crd(
        kind=EXOCORP_KIND,
        plural=EXOCORP_PLURAL,
        short_name="exo",
        description="An autonomous AI-agent company: desired state in spec, observed in status.",
        spec=ExocorpSpec,
        status=ExocorpStatus,
        columns=[
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {
                "name": "Version",
                "type": "string",
                "description": "Release version rolled out",
                "jsonPath": ".status.release.version",
            },
            {
                "name": "Ready",
                "type": "string",
                "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
            },
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            {
                "name": "Desired",
                "type": "string",
                "description": "Release version asked for",
                "jsonPath": ".spec.release.version",
                "priority": 1,
            },
            {"name": "Slug", "type": "string", "jsonPath": ".spec.slug", "priority": 1},
            {"name": "Owner", "type": "string", "jsonPath": ".spec.owner", "priority": 1},
            {
                "name": "Revision",
                "type": "integer",
                "jsonPath": ".status.currentRevision.number",
                "priority": 1,
            },
        ],
    )


def release_crd() -> dict[str, Any]:
    """The ExocorpRelease CRD."""
    return _crd(
        kind=RELEASE_KIND,
        plural=RELEASE_PLURAL,
        short_name="exorel",
        description="A published, immutable release of the exocorp runtime.",
        spec=ExocorpReleaseSpec,
        status=ExocorpReleaseStatus,
        columns=[
            {"name": "Version", "type": "string", "jsonPath": ".spec.version"},
            {"name": "Channels", "type": "string", "jsonPath": ".status.channels"},
            {"name": "Blocked", "type": "boolean", "jsonPath": ".spec.blocked"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    )


def crd_documents() -> list[dict[str, Any]]:
    """Both CRDs, Exocorp first."""
    return [exocorp_crd(), release_crd()]


def _dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def render_crds() -> str:
    """Both CRDs as one multi-document YAML stream (deterministic output)."""
    return _HEADER + "---\n".join(_dump(document) for document in crd_documents())


def crd_files() -> dict[str, str]:
    """File name -> content, as committed under manifests/crds/."""
    return {
        f"{GROUP}_{document['spec']['names']['plural']}.yaml": _HEADER + _dump(document)
        for document in crd_documents()
    }


def write_crds(directory: str | Path) -> list[Path]:
    """Write one file per CRD into `directory` (created if needed); returns the paths written."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in crd_files().items():
        path = target / name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
