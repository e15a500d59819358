"""Provider credentials: Kubernetes Secrets in the platform namespace, one per (account, name).

The value lives only in the Secret's ``data.value`` (what the operator copies into a runtime).
Everything the API shows comes from labels and annotations: the account, the provider, the
credential's name, a fingerprint of the value and when it was last rotated. The Secret's name
(the credential's id, what a draft's ``providerBindings[].secretName`` names) is derived from the
account and the credential name, so re-posting a name finds the same Secret and rotates it.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any, Final

from exocorp import names

# Annotation names of the gateway's credential Secrets (next to the labels in exocorp.names).
ANNOTATION_CREDENTIAL_NAME: Final = names.ANNOTATION_CREDENTIAL_NAME
ANNOTATION_FINGERPRINT: Final = names.ANNOTATION_FINGERPRINT
ANNOTATION_ROTATED_AT: Final = names.ANNOTATION_ROTATED_AT

CREDENTIAL_SELECTOR: Final = f"{names.LABEL_CREDENTIAL}=true"
"""Label selector of every credential Secret (what the watch cache lists)."""


@dataclass(frozen=True)
class Credential:
    """Metadata of one credential Secret (never its value)."""

    id: str
    """The Secret's name."""
    account: str
    provider: str
    name: str
    fingerprint: str | None
    created_at: str | None
    rotated_at: str | None
    resource_version: str | None


def secret_name(account: str, name: str) -> str:
    """``pc-<name>-<hash>``: readable in kubectl, unique per (account, name)."""
    digest = hashlib.sha256(f"{account}\0{name}".encode()).hexdigest()[:12]
    return f"pc-{name[:40].rstrip('-')}-{digest}"


def from_secret(obj: dict[str, Any]) -> Credential | None:
    """The metadata of a credential Secret (None for a Secret that is not one)."""
    meta = obj.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    account = labels.get(names.LABEL_ACCOUNT)
    provider = labels.get(names.LABEL_PROVIDER)
    if not account or not provider or not meta.get("name"):
        return None
    return Credential(
        id=meta["name"],
        account=account,
        provider=provider,
        name=annotations.get(ANNOTATION_CREDENTIAL_NAME) or meta["name"],
        fingerprint=annotations.get(ANNOTATION_FINGERPRINT),
        created_at=meta.get("creationTimestamp"),
        rotated_at=annotations.get(ANNOTATION_ROTATED_AT),
        resource_version=meta.get("resourceVersion"),
    )


def secret_body(*, namespace: str, account: str, provider: str, name: str, value: str,
                fingerprint: str, rotated_at: str | None) -> dict[str, Any]:
    annotations = {ANNOTATION_CREDENTIAL_NAME: name, ANNOTATION_FINGERPRINT: fingerprint}
    if rotated_at:
        annotations[ANNOTATION_ROTATED_AT] = rotated_at
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": secret_name(account, name),
            "namespace": namespace,
            "labels": {
                names.LABEL_ACCOUNT: account,
                names.LABEL_PROVIDER: provider,
                names.LABEL_CREDENTIAL: "true",
                names.LABEL_PART_OF: "exocorp",
            },
            "annotations": annotations,
        },
        "data": {names.SECRET_VALUE_KEY: base64.b64encode(value.encode()).decode()},
    }
