"""An API server for the operator's unit tests: kmock's Kubernetes emulator (objects kept in
memory, served over HTTP on a local port) and a real ``Kube`` client connected to it through a
kubeconfig, so the operator's code runs unchanged, down to its HTTP requests. No tests here."""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp.web
import kmock
import pytest
import pytest_asyncio
from kmock._internal import parsing

from exocorp.k8s import Kube, Obj
from exocorp.k8s import resources as r

_APPLY = "application/apply-patch+yaml"
# Namespace objects: /api/v1/namespaces[/<name>[/status|/finalize]].
_NAMESPACES = re.compile(r"^/api/v1/namespaces(?:/([^/]+)(?:/(status|finalize))?)?$")
_kmock_parse_path = parsing.parse_path


def _ref(resource: r.Resource) -> kmock.resource:
    return kmock.resource(group=resource.group, version=resource.version, plural=resource.plural)


def _parse_path(path: str) -> parsing.ParsedPath:
    """kmock 0.8 reads the path of a Namespace object (``/api/v1/namespaces[/<name>]``) as the
    namespace prefix of some other resource (and fails on a create); read it as the
    cluster-scoped ``namespaces`` resource it is."""
    match = _NAMESPACES.match(path)
    if match is None:
        return _kmock_parse_path(path)
    name, subresource = match.groups()
    return parsing.ParsedPath("", "v1", "namespaces", None, name, subresource)


@dataclass(frozen=True)
class Write:
    """One request that changes something, as the API server saw it."""

    verb: str  # create, patch, apply, delete
    plural: str
    name: str | None
    namespace: str | None = None
    subresource: str | None = None
    body: Any = None


class ApiServer(kmock.KubernetesEmulator):
    """kmock's emulator plus what the operator relies on from a real API server: every write
    gets a new resourceVersion, and a server-side apply creates what does not exist yet."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._versions = itertools.count(1000)
        self._sent: dict[int, Obj] = {}
        # What the operator lists before anything of the kind exists.
        for resource in (r.CONTROLLERREVISIONS, r.NAMESPACES, r.EXOCORPS, r.RELEASES):
            self.resources[_ref(resource)] = kmock.ResourceInfo()

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.resource is not None and isinstance(request.data, dict) \
                and request.action in (kmock.action.CREATE, kmock.action.UPDATE):
            self._sent[request.id] = copy.deepcopy(request.data)
            # What is stored gets a new resourceVersion (the write's body is what the emulator
            # stores or merges in; ``writes`` reports it as sent).
            request.data.setdefault("metadata", {})["resourceVersion"] = \
                str(next(self._versions))
            key = (request.resource, request.namespace, str(request.name))
            if request.headers.get("Content-Type") == _APPLY and (
                    key not in self.objects or self.objects[key].deleted):
                async with self._lock:
                    self.objects[key] = {}
        response: aiohttp.web.StreamResponse = await super()._handle(request)
        return response

    def store(self, resource: r.Resource, body: Obj) -> Obj:
        """Store ``body`` as if created earlier (its resourceVersion kept, else "1")."""
        meta = body["metadata"]
        meta.setdefault("resourceVersion", "1")
        self.objects[_ref(resource), meta.get("namespace"), meta["name"]] = body
        return body

    def stored(self, resource: r.Resource, name: str,
               namespace: str | None = None) -> Obj | None:
        """The stored object, or None when it does not exist (or was deleted)."""
        key = (_ref(resource), namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        stored: Obj = self.objects[key].raw
        return stored

    def writes(self) -> list[Write]:
        """Every request that changed something, in order."""
        out = []
        for request in self:
            if request.resource is None or request.action not in (
                    kmock.action.CREATE, kmock.action.UPDATE, kmock.action.DELETE):
                continue
            verb = {kmock.action.CREATE: "create", kmock.action.DELETE: "delete"}.get(
                request.action, "apply" if request.headers.get("Content-Type") == _APPLY
                else "patch")
            name = request.name or (request.data or {}).get("metadata", {}).get("name")
            out.append(Write(verb, str(request.resource.plural), name, request.namespace,
                             request.subresource, self._sent.get(request.id, request.data)))
        return out


@pytest_asyncio.fixture
async def api_server() -> AsyncIterator[ApiServer]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parsing, "parse_path", _parse_path)
        async with ApiServer() as server, kmock.Server(server):
            yield server


@pytest_asyncio.fixture
async def api_client(api_server: ApiServer, tmp_path: Path) -> AsyncIterator[Kube]:
    """A client of ``api_server``, connected the way the operator connects (a kubeconfig)."""
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
              "clusters": [{"name": "test", "cluster": {"server": str(api_server.url)}}],
              "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
              "users": [{"name": "test", "user": {"token": "unit-test"}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    client = await Kube.connect(path)
    try:
        yield client
    finally:
        await client.close()
