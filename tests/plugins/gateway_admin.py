"""Shared helpers of the admin, audit, runtime and agents unit tests (on the gateway's unit
fixtures: the real app on SQLite, an in-memory Kubernetes stand-in). No tests here."""

from __future__ import annotations

import copy
from typing import Any

import aiohttp

from exocorp.api_gateway.main import bootstrap_platform_owner
from exocorp.k8s import resources as r
from exocorp.security import PasswordHasher
from exocorp.store import registry
from exocorp.store.schema import Role
from tests.plugins.gateway import Gateway

Obj = dict[str, Any]
PASSWORD = "correct horse battery"
ROOT = "root@example.com"


async def platform_owner(gateway: Gateway) -> aiohttp.ClientSession:
    """A logged-in platform owner's client."""
    await bootstrap_platform_owner(gateway.database, ROOT, PASSWORD,
                                   hasher=PasswordHasher.for_tests())
    client = gateway.new_client()
    response = await client.post("/api/auth/login", json={"email": ROOT, "password": PASSWORD})
    assert response.status == 200, await response.text()
    return client


async def user(gateway: Gateway, email: str) -> tuple[aiohttp.ClientSession, str]:
    """A new user's logged-in client and id."""
    client = gateway.new_client()
    response = await client.post("/api/auth/signup", json={"email": email, "password": PASSWORD})
    assert response.status == 201, await response.text()
    return client, (await response.json())["user"]["id"]


async def add_member(gateway: Gateway, exocorp_id: str, user_id: str) -> None:
    async with gateway.database.sessionmaker.begin() as s:
        await registry.add_member(s, exocorp_id=exocorp_id, user_id=user_id, role=Role.MEMBER)


def set_status(gateway: Gateway, name: str, status: Obj, **spec: Any) -> Obj:
    """Play the operator: write ``status`` (and spec fields) on the stored object and let the
    watch cache see it."""
    key = (r.EXOCORPS.plural, "", name)
    obj = gateway.kube.objects[key]
    obj["status"] = copy.deepcopy(status)
    obj["spec"].update(spec)
    gateway.kube._stamp(obj)  # a newer resourceVersion, from the same counter as writes
    gateway.cache.exocorps.observe(copy.deepcopy(obj))
    return obj


def running_status(generation: int, *, version: str = "1.0.0", restarts: int = 0,
                   reconcile: float | None = 0.25, history: list[Obj] | None = None) -> Obj:
    """A status the operator would write for a Running exocorp on its first revision."""
    at = "2030-01-01T12:00:00Z"
    return {
        "observedGeneration": generation,
        "phase": "Running",
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Available", "message": "",
             "lastTransitionTime": at, "observedGeneration": generation},
            {"type": "Progressing", "status": "False", "reason": "RolloutComplete",
             "message": "", "lastTransitionTime": at, "observedGeneration": generation}],
        "currentRevision": {"name": "rev-1", "number": 1},
        "lastSuccessfulRevision": {"name": "rev-1", "number": 1},
        "history": history if history is not None else [
            {"name": "rev-1", "number": 1, "version": version, "action": "provision",
             "requestedBy": "user:someone", "outcome": "Succeeded", "createdAt": at,
             "finishedAt": "2030-01-01T12:01:00Z"}],
        "components": [
            {"name": "portal", "desired": 1, "ready": 1, "available": 1, "restarts": 0},
            {"name": "agents", "desired": 2, "ready": 2, "available": 2, "restarts": restarts}],
        "release": {"version": version, "channel": "stable", "status": "Installed"},
        **({"lastReconcileSeconds": reconcile, "lastReconcileTime": "2030-01-01T11:59:00Z"}
           if reconcile is not None else {}),
    }


def provisioned(config: Obj | None = None, **spec: Any) -> Obj:
    """Spec fields of an exocorp provisioned on the stable 1.0.0 release with ``config`` (none
    by default), plus ``spec``."""
    return {"provisioned": True, "release": {"channel": "stable", "version": "1.0.0"},
            "config": config if config is not None else {}, **spec}


def mark_running(gateway: Gateway, name: str, spec: Obj | None = None, **status: Any) -> Obj:
    """Play the operator: ``name`` Running on its current generation (``status``: the options
    of :func:`running_status`), with ``spec`` (e.g. :func:`provisioned`) written on its spec."""
    return set_status(gateway, name, running_status(generation(gateway, name), **status),
                      **(spec or {}))


def generation(gateway: Gateway, name: str) -> int:
    value: int = gateway.kube.objects[(r.EXOCORPS.plural, "", name)]["metadata"]["generation"]
    return value
