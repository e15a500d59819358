"""A thin async client over kubernetes_asyncio speaking plain JSON dicts.

The rest of the platform uses only this module (and ``resources``): it keeps the generated
client's model classes out of our code, and gives one place for retries, patch types and
watch semantics."""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import json
import os
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from exocorp.k8s.errors import ApiError
from exocorp.k8s.resources import Resource

Obj = dict[str, Any]
PatchType = Literal["merge", "json", "strategic", "apply"]
_PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
FIELD_MANAGER = "exocorp"
_MAX_THROTTLE_RETRIES = 10


def _retry_after(header: str | None) -> float:
    try:
        return min(max(float(header or 1), 0.1), 10.0)
    except ValueError:
        return 1.0


class Kube:
    """An API-server connection. Create with :meth:`connect`; close with :meth:`close`."""

    def __init__(self, api: k8s_client.ApiClient) -> None:
        self._api = api

    @classmethod
    async def connect(cls, kubeconfig: str | Path | None = None) -> Kube:
        """From a kubeconfig file, else ``$KUBECONFIG``, else the in-cluster service account,
        else ``~/.kube/config``."""
        configuration = await load_configuration(kubeconfig)
        _resolve_proxy(configuration)
        api = k8s_client.ApiClient(configuration)
        _without_environment_lookups(api)
        _smaller_tls_read_buffers()
        return cls(api)

    async def close(self) -> None:
        await self._api.close()

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def host(self) -> str:
        return str(self._api.configuration.host)

    # -- raw request --------------------------------------------------------------------------

    async def _raw(
        self, method: str, path: str, *, query: dict[str, Any] | None = None,
        body: Any = None, content_type: str = "application/json",
        request_timeout: float | aiohttp.ClientTimeout | None = 30.0,
    ) -> aiohttp.ClientResponse:
        params = [(k, str(v).lower() if isinstance(v, bool) else v)
                  for k, v in (query or {}).items() if v is not None]
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        response: aiohttp.ClientResponse = await self._api.call_api(
            path, method, query_params=params, header_params=headers, body=body,
            auth_settings=["BearerToken"], _preload_content=False, _request_timeout=request_timeout,
        )
        return response

    async def request(
        self, method: str, path: str, *, query: dict[str, Any] | None = None,
        body: Any = None, content_type: str = "application/json",
    ) -> Obj:
        """One call; a 429 (throttled, or a new CRD's storage still initialising) is retried
        after the server's Retry-After, as client-go does."""
        for attempt in range(_MAX_THROTTLE_RETRIES + 1):
            response = await self._raw(method, path, query=query, body=body,
                                       content_type=content_type)
            async with response:
                data = await response.read()
                payload = _decode(data)
                if 200 <= response.status < 300:
                    return payload
                if response.status == 429 and attempt < _MAX_THROTTLE_RETRIES:
                    await asyncio.sleep(_retry_after(response.headers.get("Retry-After")))
                    continue
                raise ApiError(response.status, str(payload.get("reason", response.reason)),
                               str(payload.get("message", data[:300].decode(errors="replace"))),
                               payload)
        raise AssertionError("unreachable")

    # -- verbs --------------------------------------------------------------------------------

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> Obj:
        return await self.request("GET", resource.path(namespace, name))

    async def get_or_none(self, resource: Resource, name: str,
                          namespace: str | None = None) -> Obj | None:
        try:
            return await self.get(resource, name, namespace)
        except ApiError as err:
            if err.not_found:
                return None
            raise

    async def list(self, resource: Resource, namespace: str | None = None, *,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None) -> Obj:
        return await self.request("GET", resource.path(namespace), query={
            "labelSelector": label_selector, "fieldSelector": field_selector,
            "limit": limit, "continue": continue_,
        })

    async def list_all(self, resource: Resource, namespace: str | None = None, *,
                       label_selector: str | None = None, page: int = 500) -> Obj:
        """Every item, following ``continue`` tokens; returns the last page's metadata."""
        items: list[Obj] = []
        result: Obj = {}
        async for result in self.list_pages(resource, namespace, label_selector=label_selector,
                                            page=page):
            items.extend(result.get("items", []))
        result["items"] = items
        return result

    async def list_pages(self, resource: Resource, namespace: str | None = None, *,
                         label_selector: str | None = None,
                         page: int = 500) -> AsyncIterator[Obj]:
        """One list, a page at a time (following ``continue`` tokens), so a caller that keeps
        less than the whole objects never holds more than a page of them; the last page's
        metadata carries the list's resourceVersion."""
        token: str | None = None
        while True:
            result = await self.list(resource, namespace, label_selector=label_selector,
                                     limit=page, continue_=token)
            token = result.get("metadata", {}).get("continue")
            yield result
            if not token:
                return

    async def create(self, resource: Resource, body: Obj, namespace: str | None = None) -> Obj:
        return await self.request("POST", resource.path(namespace), body=body)

    async def replace(self, resource: Resource, name: str, body: Obj,
                      namespace: str | None = None, subresource: str | None = None) -> Obj:
        return await self.request("PUT", resource.path(namespace, name, subresource), body=body)

    async def patch(self, resource: Resource, name: str, patch: Any, *,
                    namespace: str | None = None, patch_type: PatchType = "merge",
                    subresource: str | None = None, force: bool = True,
                    field_manager: str = FIELD_MANAGER) -> Obj:
        query: dict[str, Any] = {"fieldManager": field_manager}
        if patch_type == "apply":
            query["force"] = force
        # The REST layer serialises dicts as JSON for every patch type (YAML is a superset).
        return await self.request("PATCH", resource.path(namespace, name, subresource),
                                  query=query, body=patch,
                                  content_type=_PATCH_CONTENT_TYPES[patch_type])

    async def apply(self, resource: Resource, body: Obj, *, namespace: str | None = None,
                    field_manager: str = FIELD_MANAGER) -> Obj:
        """Server-side apply: we own exactly the fields we send; hand edits to them revert."""
        name = body["metadata"]["name"]
        ns = namespace or body["metadata"].get("namespace")
        return await self.patch(resource, name, body, namespace=ns, patch_type="apply",
                                field_manager=field_manager)

    async def delete(self, resource: Resource, name: str, namespace: str | None = None, *,
                     propagation: str = "Background", missing_ok: bool = True) -> Obj | None:
        try:
            return await self.request("DELETE", resource.path(namespace, name),
                                      body={"propagationPolicy": propagation})
        except ApiError as err:
            if missing_ok and err.not_found:
                return None
            raise

    async def watch(self, resource: Resource, namespace: str | None = None, *,
                    resource_version: str | None = None, label_selector: str | None = None,
                    timeout_seconds: int = 300) -> AsyncIterator[Obj]:
        """Yield watch events (``type``, ``object``) including BOOKMARKs until the server
        ends the stream. A 410 Gone (as an error event or status) raises ApiError(410)."""
        query = {"watch": True, "allowWatchBookmarks": True,
                 "resourceVersion": resource_version, "labelSelector": label_selector,
                 "timeoutSeconds": timeout_seconds}
        response = await self._raw("GET", resource.path(namespace), query=query,
                                   request_timeout=aiohttp.ClientTimeout(total=timeout_seconds + 30,
                                                                 sock_read=timeout_seconds + 30))
        async with response:
            if response.status != 200:
                payload = _decode(await response.read())
                raise ApiError(response.status, str(payload.get("reason", "")),
                               str(payload.get("message", "")), payload)
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object", {})
                    raise ApiError(int(status.get("code", 500)), str(status.get("reason", "")),
                                   str(status.get("message", "")), status)
                yield event


async def load_configuration(kubeconfig: str | Path | None = None) -> k8s_client.Configuration:
    """Connection settings. ``$KUBECONFIG`` is read now, not when the library was imported."""
    configuration = k8s_client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        await k8s_config.load_kube_config(config_file=str(path),
                                          client_configuration=configuration)
        return configuration
    try:
        k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration)
    except k8s_config.ConfigException:
        await k8s_config.load_kube_config(client_configuration=configuration)
    return configuration


def _resolve_proxy(configuration: k8s_client.Configuration) -> None:
    """The proxy the environment names for the API server, read once (see below)."""
    target = urlsplit(str(configuration.host))
    proxy = urllib.request.getproxies().get(target.scheme)
    if configuration.proxy is None and proxy and target.hostname \
            and not urllib.request.proxy_bypass(target.hostname):
        configuration.proxy = proxy


def _without_environment_lookups(api: k8s_client.ApiClient) -> None:
    """kubernetes_asyncio's session trusts the environment, so aiohttp looks up the proxy
    variables and ~/.netrc in a worker thread on every request (a tenth of the operator's CPU
    under load). The proxy is resolved once instead; credentials come from the kubeconfig,
    never from ~/.netrc. Same connector, so the same TLS settings and pool size."""
    rest = api.rest_client
    old = rest.pool_manager
    # The library's buffer size: watch events can carry objects up to etcd's 1.5 MiB limit.
    rest.pool_manager = aiohttp.ClientSession(connector=old.connector, trust_env=False,
                                              read_bufsize=2**21)
    old.detach()


# asyncio gives every TLS connection a 256 KiB read buffer up front. A client holds one
# connection per watch plus a pool of up to 100 for requests: at N = 1,000 the buffers were
# about a sixth of the operator's traced memory (bench/results/operator-memory-300.txt).
# Reads of large lists just take more, smaller chunks.
TLS_READ_BUFFER = 64 * 1024


def _smaller_tls_read_buffers() -> None:
    """Only for connections opened from now on; the same for every client in the process."""
    asyncio.sslproto.SSLProtocol.max_size = min(asyncio.sslproto.SSLProtocol.max_size,
                                                TLS_READ_BUFFER)


def _decode(data: bytes) -> Obj:
    if not data:
        return {}
    try:
        value = json.loads(data)
    except ValueError:
        return {"message": data[:300].decode(errors="replace")}
    return value if isinstance(value, dict) else {"items": value}
