"""What the operator may treat as an exocorp's own: its runtime namespace and its provider
credentials.

A runtime namespace is named ``exo-<slug>``, and a slug is whatever a tenant picks, so the name
alone proves nothing: another team's ``exo-prod`` may exist before anyone creates the exocorp
``prod``. The operator creates the namespace itself (a create, never an apply, so an existing
one is not taken over) and afterwards writes into it or deletes it only while it carries this
exocorp's label and an owner reference with this exocorp's uid. Likewise, a provider Secret is
copied into a runtime only when its labels say it is a credential of the exocorp's owner for
that provider (the gateway checks this when binding; a spec edited with kubectl is checked
here).
"""

from __future__ import annotations

from typing import Any

from exocorp import names
from exocorp.k8s import ApiError, Kube
from exocorp.k8s import resources as r
from exocorp.model import Exocorp, ProviderBinding
from exocorp.operator.cache import ObjectCache
from exocorp.runtime import builders

Obj = dict[str, Any]
NAMESPACE_NOT_OWNED = "NamespaceNotOwned"
CREDENTIAL_NOT_OWNED = "CredentialNotOwned"


def owns_namespace(namespace: Obj, name: str, uid: str | None) -> bool:
    """True when ``namespace`` carries the exocorp's label and its uid as owner."""
    meta = namespace.get("metadata") or {}
    if (meta.get("labels") or {}).get(names.LABEL_EXOCORP) != name or not uid:
        return False
    return any(ref.get("uid") == uid and ref.get("kind") == names.EXOCORP_KIND
               for ref in meta.get("ownerReferences") or [])


def not_owned_message(namespace: str) -> str:
    return (f"namespace {namespace} already exists and was not created by this exocorp (it "
            f"lacks this exocorp's label and uid): the operator neither adopts, writes into "
            f"nor deletes it; delete or rename it, or choose another slug")


async def claim_namespace(kube: Kube, cache: ObjectCache, exo: Exocorp) -> str | None:
    """Make sure the runtime namespace exists and is this exocorp's: create it when absent.
    Returns why it may not be used, or None."""
    body = builders.namespace(exo)
    name = body["metadata"]["name"]
    live = cache.get("Namespace", name, "") or await kube.get_or_none(r.NAMESPACES, name)
    if live is None:
        try:
            live = await kube.create(r.NAMESPACES, body)
        except ApiError as err:
            if err.status != 409:
                raise
            live = await kube.get_or_none(r.NAMESPACES, name)  # someone else was quicker
            if live is None:
                raise
        cache.store("Namespace", live)
    if owns_namespace(live, exo.metadata.name, exo.metadata.uid):
        return None
    return not_owned_message(name)


async def namespace_to_delete(kube: Kube, exocorp: Obj) -> tuple[str, bool | None]:
    """The runtime namespace of a deleted exocorp and what to do with it: True (ours: delete
    it), False (someone else's: leave it), None (gone)."""
    meta = exocorp.get("metadata") or {}
    name = names.runtime_namespace(meta.get("name", ""))
    live = await kube.get_or_none(r.NAMESPACES, name)
    if live is None:
        return name, None
    return name, owns_namespace(live, meta.get("name", ""), meta.get("uid"))


def credential_of(secret: Obj | None, owner: str, binding: ProviderBinding) -> bool:
    """True when ``secret`` is a provider credential of ``owner`` for the binding's provider
    (the labels the gateway writes on the credentials it stores)."""
    labels = ((secret or {}).get("metadata") or {}).get("labels") or {}
    return (labels.get(names.LABEL_CREDENTIAL) == "true"
            and labels.get(names.LABEL_ACCOUNT) == owner
            and labels.get(names.LABEL_PROVIDER) == binding.provider)
