"""Provider credentials at account scope. Values go into a Kubernetes Secret in the platform
namespace and nowhere else: answers carry metadata only (id, provider, name, fingerprint,
created, rotated, bound exocorps); no value is logged or audited."""

from __future__ import annotations

from aiohttp import web

from exocorp.api_gateway.access import require_agent_grant, require_user
from exocorp.api_gateway.audited import audited
from exocorp.api_gateway.credentials import (
    Credential,
    from_secret,
    secret_body,
    secret_name,
)
from exocorp.api_gateway.errors import FieldError, conflict, not_found
from exocorp.api_gateway.keys import CACHE, CLOCK, KUBE, SETTINGS
from exocorp.api_gateway.routing import Auth, RouteTable, json_body, json_response
from exocorp.api_gateway.schemas import (
    ProviderSecretList,
    ProviderSecretRequest,
    ProviderSecretSaved,
)
from exocorp.api_gateway.views import secret_view
from exocorp.api_gateway.watch_cache import WatchCache
from exocorp.k8s import ApiError
from exocorp.k8s import resources as r
from exocorp.model import Phase, format_timestamp, phase_of
from exocorp.security import fingerprint

routes = RouteTable("provider-secrets", "Model-provider credentials of your account.")

RUNNING_PHASES = frozenset({Phase.PROVISIONING, Phase.STARTING, Phase.RUNNING, Phase.PAUSED,
                            Phase.FAILED})
"""Phases in which an exocorp's runtime uses its credentials: a credential bound to an exocorp
in one of them cannot be deleted *(defined here)*."""


def _bound(cache: WatchCache, secret_id: str) -> list[str]:
    return sorted(exocorp.metadata.name for exocorp in cache.exocorps_bound_to(secret_id))


@routes.get("/api/registry/provider-secrets", summary="Your provider credentials",
            auth=Auth.USER, response=ProviderSecretList)
async def list_provider_secrets(request: web.Request) -> web.Response:
    """Metadata of every credential of the caller's account (never a value)."""
    principal = require_user(request)
    assert principal.user_id is not None
    cache = request.app[CACHE]
    credentials = sorted(cache.credentials_of(principal.user_id),
                         key=lambda c: (c.provider, c.name))
    return json_response(ProviderSecretList(
        secrets=[secret_view(c, _bound(cache, c.id)) for c in credentials]))


@routes.post("/api/registry/provider-secrets", summary="Store or rotate a provider credential",
             auth=Auth.USER, body=ProviderSecretRequest, response=ProviderSecretSaved,
             status=201, errors=(409,))
async def save_provider_secret(request: web.Request) -> web.Response:
    """Store a credential (201). Posting an existing ``name`` again replaces its value (200,
    ``rotated: true``); exocorps bound to it pick the new value up. The name keeps its provider:
    409 for another one. An agent's token needs its human's grant (403 ``agent_scope``)."""
    principal = require_user(request)
    require_agent_grant(principal, "providerSecrets")
    assert principal.user_id is not None
    app = request.app
    settings = app[SETTINGS]
    async with audited(request, "provider_secret.save") as note:
        body = await json_body(request, ProviderSecretRequest)
        value = body.value.get_secret_value()
        secret_id = secret_name(principal.user_id, body.name)
        note.details.update({"secretId": secret_id, "provider": body.provider,
                             "name": body.name, "fingerprint": fingerprint(value)})
        kube = app[KUBE]
        namespace = settings.platform_namespace
        existing = await kube.get_or_none(r.SECRETS, secret_id, namespace)
        rotated = existing is not None
        if existing is None:
            try:
                obj = await kube.create(r.SECRETS, secret_body(
                    namespace=namespace, account=principal.user_id, provider=body.provider,
                    name=body.name, value=value, fingerprint=fingerprint(value),
                    rotated_at=None), namespace)
            except ApiError as error:
                if not error.conflict:
                    raise
                existing = await kube.get(r.SECRETS, secret_id, namespace)  # a concurrent save
                rotated = True
        if existing is not None:
            current = from_secret(existing)
            if current is None or current.account != principal.user_id:
                raise conflict("this credential name cannot be used", code="name_taken",
                               errors=[FieldError("name", "in use")])
            if current.provider != body.provider:
                raise conflict(
                    f"credential {body.name!r} is for provider {current.provider}; delete it "
                    "first or choose another name", code="provider_mismatch",
                    errors=[FieldError("provider", f"must be {current.provider}")])
            fresh = secret_body(namespace=namespace, account=principal.user_id,
                                provider=body.provider, name=body.name, value=value,
                                fingerprint=fingerprint(value),
                                rotated_at=format_timestamp(app[CLOCK]()))
            try:
                obj = await kube.patch(r.SECRETS, secret_id, {
                    "metadata": {"annotations": fresh["metadata"]["annotations"],
                                 "resourceVersion": existing["metadata"]["resourceVersion"]},
                    "data": fresh["data"]}, namespace=namespace)
            except ApiError as error:
                if error.conflict:
                    raise conflict(f"credential {body.name!r} was changed concurrently; retry",
                                   code="concurrent_change") from None
                raise
        note.details["rotated"] = rotated
        app[CACHE].observe_credential(obj)
        credential = from_secret(obj)
        assert credential is not None
        view = secret_view(credential, _bound(app[CACHE], secret_id))
        return json_response(ProviderSecretSaved(**view.model_dump(), rotated=rotated),
                             status=200 if rotated else 201)


def _owned(request: web.Request, secret_id: str, user_id: str) -> Credential:
    credential = request.app[CACHE].credential(secret_id,
                                               request.app[SETTINGS].platform_namespace)
    if credential is None or credential.account != user_id:
        raise not_found(f"provider secret {secret_id!r} not found")
    return credential


@routes.delete("/api/registry/provider-secrets/{id}", summary="Delete a provider credential",
               auth=Auth.USER, status=204, errors=(404, 409))
async def delete_provider_secret(request: web.Request) -> web.Response:
    """Delete a credential of the caller's account. 409 ``credential_in_use`` while an exocorp
    whose runtime exists (Provisioning, Starting, Running, Paused, Failed) binds it: stop or
    destroy that exocorp, or bind another credential, first. An agent's token needs its
    human's grant (403 ``agent_scope``)."""
    principal = require_user(request)
    require_agent_grant(principal, "providerSecrets")
    assert principal.user_id is not None
    secret_id = request.match_info["id"]
    app = request.app
    async with audited(request, "provider_secret.delete") as note:
        note.details["secretId"] = secret_id
        credential = _owned(request, secret_id, principal.user_id)
        note.details.update({"provider": credential.provider, "name": credential.name})
        in_use = sorted(exocorp.metadata.name for exocorp in
                        app[CACHE].exocorps_bound_to(secret_id)
                        if phase_of(exocorp) in RUNNING_PHASES)
        if in_use:
            raise conflict(f"credential {credential.name!r} is bound to running exocorp(s) "
                           f"{', '.join(in_use)}; stop them or bind another credential first",
                           code="credential_in_use", extra={"boundExocorps": in_use})
        namespace = app[SETTINGS].platform_namespace
        await app[KUBE].delete(r.SECRETS, secret_id, namespace)
        app[CACHE].forget_credential(secret_id, namespace)
        return web.Response(status=204)
