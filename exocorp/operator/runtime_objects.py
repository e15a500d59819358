"""Runtime objects: what an exocorp's namespace holds (namespace, quota, policies, the
credentials Secret, Deployments, Services, the route), applied server-side only when they changed,
put back when someone else edited them, and removed when the release no longer has them; plus
the provider credentials they carry and whether TLS is issued."""

from __future__ import annotations

import asyncio
import logging
import time

from exocorp.k8s import ApiError, Kube, Obj
from exocorp.k8s import resources as r
from exocorp.model import (
    Exocorp,
    ExocorpReleaseSpec,
)
from exocorp.operator import ownership
from exocorp.operator.cache import ObjectCache
from exocorp.operator.settings import OperatorSettings
from exocorp.runtime import builders

log = logging.getLogger(__name__)
# cert-manager's Certificates: TLS is issued when the one for an exocorp's domains is Ready.
CERTIFICATES = r.Resource("cert-manager.io", "v1", "certificates", "Certificate", True)


# Managers whose writes to our objects are expected: ourselves, and the control plane's own
# controllers (which write status, or metadata such as a Deployment's revision annotation).
_EXPECTED_MANAGERS = frozenset({"exocorp", "kube-controller-manager", "kube-scheduler",
                                "kube-apiserver", "kwok"})

# Where each kind the builders make is applied.
RESOURCES = {resource.kind: resource for resource in (
    r.NAMESPACES, r.SERVICEACCOUNTS, r.RESOURCEQUOTAS, r.LIMITRANGES, r.NETWORKPOLICIES,
    r.SECRETS, r.CONFIGMAPS, r.PVCS, r.SERVICES, r.DEPLOYMENTS, r.INGRESSES)}


def _version(obj: Obj) -> str:
    """What changes when someone changes the object's content: its generation where it has one
    (status updates leave it alone, so a Deployment rolling out is not re-applied on every
    status change), else its resourceVersion."""
    meta = obj.get("metadata", {})
    generation = meta.get("generation")
    return f"g{generation}" if generation is not None else f"r{meta.get('resourceVersion', '')}"


def _edited_by_someone_else(live: Obj) -> bool:
    """True when a manager we do not expect owns content fields (not metadata, not status)."""
    for entry in live.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") in _EXPECTED_MANAGERS or entry.get("subresource"):
            continue
        fields = entry.get("fieldsV1") or {}
        if set(fields) - {"f:metadata", "f:status"}:
            return True
    return False


class RuntimeObjects:
    """Applies an exocorp's runtime objects and remembers what it applied."""

    def __init__(self, kube: Kube, cache: ObjectCache, settings: OperatorSettings) -> None:
        self.kube = kube
        self.cache = cache
        self.settings = settings
        self._applied: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._secret_written_at: dict[tuple[str, str, str], float] = {}

    def credentials(self, exo: Exocorp, release: ExocorpReleaseSpec,
                    ) -> tuple[dict[str, str], set[str], set[str]]:
        """Copy each bound provider Secret's value; report required providers left unbound,
        and bound Secrets refused because they are not the owner's credentials."""
        data: dict[str, str] = {}
        bound: set[str] = set()
        refused: set[str] = set()
        for binding in exo.spec.provider_bindings:
            secret = self.cache.get("Secret", binding.secret_name, self.settings.namespace)
            if secret is not None and not ownership.credential_of(secret, exo.spec.owner,
                                                                  binding):
                refused.add(binding.secret_name)
                continue
            value = (secret or {}).get("data", {}).get("value")
            if value:
                data[builders.credential_key(binding.provider)] = value
                bound.add(binding.provider)
        required = set(release.required_providers)
        if exo.spec.config is not None:
            required |= set(exo.spec.config.required_providers)
        return data, required - bound, refused

    async def _apply(self, resource: r.Resource, body: Obj) -> None:
        meta = body["metadata"]
        key = (resource.kind, meta.get("namespace", ""), meta["name"])
        desired = builders.stable_hash(body)
        if resource.kind == "Secret":
            await self._write_secret(key, body, desired)
            return
        live = self.cache.get(resource.kind, meta["name"], meta.get("namespace", ""))
        recorded = self._applied.get(key)
        if live is not None and recorded == (desired, _version(live)):
            return  # unchanged since we applied it: no round trip
        if live is not None and _edited_by_someone_else(live):
            # Server-side apply keeps what another manager added (an extra list item, say);
            # a merge patch of our whole content first puts every field back as we want it.
            content = {k: v for k, v in body.items() if k not in ("apiVersion", "kind",
                                                                  "metadata")}
            await self.kube.patch(resource, meta["name"], content,
                                  namespace=meta.get("namespace"), patch_type="merge")
        result = await self.kube.apply(resource, body)
        self.cache.store(resource.kind, result)
        self._applied[key] = (desired, _version(result))

    async def _write_secret(self, key: tuple[str, str, str], body: Obj, desired: str) -> None:
        """Secrets in exocorp namespaces are written, never read (the operator may not read
        Secrets outside the platform namespace): server-side apply when the content changed, and
        again every ``secret_refresh_seconds`` so a copy deleted or edited by hand comes back.
        The API server's answer (which carries the data) is not kept."""
        now = time.monotonic()
        recorded = self._applied.get(key)
        written_at = self._secret_written_at.get(key)
        if (recorded is not None and recorded[0] == desired and written_at is not None
                and now - written_at < self.settings.secret_refresh_seconds):
            return
        await self.kube.apply(r.SECRETS, body)
        self._applied[key] = (desired, "")
        self._secret_written_at[key] = now

    async def tls_issued(self, exo: Exocorp, ns: str) -> bool:
        """cert-manager's Certificate for the exocorp's domains is Ready (the certificate Secret
        itself is not read). Without a TLS issuer there is none: pending."""
        if not self.settings.tls_issuer:
            return False
        try:
            cert = await self.kube.get_or_none(CERTIFICATES, builders.tls_secret_name(exo), ns)
        except ApiError as err:  # cert-manager not installed, or not allowed: not issued
            log.debug("certificate of %s not readable: %s", exo.metadata.name, err.reason)
            return False
        conditions = ((cert or {}).get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    async def _delete(self, resource: r.Resource, name: str, namespace: str) -> None:
        if self.cache.get(resource.kind, name, namespace) is None:
            return
        await self.kube.delete(resource, name, namespace)
        self.cache.forget(resource.kind, namespace, name)
        self._applied.pop((resource.kind, namespace, name), None)

    async def apply_runtime(self, exo: Exocorp, inputs: builders.RuntimeInputs, ns: str) -> None:
        first, *rest = builders.runtime_objects(exo, inputs)
        await self._apply(RESOURCES[first["kind"]], first)
        # Everything else lives in that namespace and is independent: apply concurrently.
        await asyncio.gather(*(self._apply(RESOURCES[body["kind"]], body) for body in rest))
        # Components an earlier release had and this one does not; routes while stopped.
        wanted = {c.name for c in inputs.release.components}
        for kind, resource in (("Deployment", r.DEPLOYMENTS), ("Service", r.SERVICES)):
            for obj in self.cache.owned(exo.metadata.name, kind):
                obj_name = obj["metadata"]["name"]
                if obj["metadata"].get("namespace") == ns and obj_name not in wanted:
                    await self._delete(resource, obj_name, ns)
        if not any(body["kind"] == "Ingress" for body in rest):
            await self._delete(r.INGRESSES, builders.INGRESS, ns)
