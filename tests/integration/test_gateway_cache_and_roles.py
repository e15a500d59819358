"""On the real control plane: the gateway's reads follow changes made by anyone (kubectl, the
operator) through its watch cache, without an API-server call per read; and roles hold: another
account's exocorp is a 404, a member drives but only the owner destroys."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from exocorp.k8s import Kube, Obj
from exocorp.k8s import resources as r
from exocorp.store import Database, registry
from exocorp.store.schema import Role
from exocorp.testing import samples
from exocorp.testing.platform import PLATFORM_NAMESPACE
from exocorp.testing.waiting import eventually
from tests.plugins.cluster import ClusterInfo
from tests.plugins.gateway_cluster import (
    GatewayUnderTest,
    sample_draft,
    serve_gateway,
    unique_slug,
)

pytestmark = pytest.mark.integration


class CountingKube(Kube):
    """The gateway's own client, counting every API-server request it makes."""

    requests: list[tuple[str, str]]

    async def request(self, method: str, path: str, **kwargs: Any) -> Obj:
        self.requests.append((method, path))
        return await super().request(method, path, **kwargs)


async def load_api_client(cluster: ClusterInfo) -> Any:
    connected = await Kube.connect(cluster.kubeconfig)
    return connected._api


@pytest.fixture
async def counted(cluster: ClusterInfo, platform: Kube,
                  database: Database) -> AsyncIterator[tuple[GatewayUnderTest, CountingKube]]:
    kube = CountingKube(await load_api_client(cluster))
    kube.requests = []
    under_test = await serve_gateway(kube, database, cache_kube=platform)
    try:
        yield under_test, kube
    finally:
        await under_test.close()
        await kube.close()


async def test_reads_follow_outside_changes_without_api_calls(
        counted: tuple[GatewayUnderTest, CountingKube], platform: Kube) -> None:
    gateway, kube = counted
    api = gateway.client()
    user = (await api.signup())["user"]
    slug = unique_slug("cache")
    await api.ok("POST", "/api/registry/companies", 201,
                 json={"slug": slug, "displayName": "Before", "draft": sample_draft("1.0.0")})
    # Changes by others: a cluster admin renames it, publishes a release, adds a credential.
    await platform.patch(r.EXOCORPS, slug, {"spec": {"displayName": "After"}})
    release = samples.release(f"3.0.{len(slug)}", ("beta",))
    await platform.apply(r.RELEASES, release)
    secret = samples.provider_secret(f"kubectl-{slug}", PLATFORM_NAMESPACE, user["id"],
                                     "anthropic", "sk-by-kubectl")
    await platform.apply(r.SECRETS, secret)
    kube.requests.clear()

    renamed = await eventually(lambda: api.company(slug),
                               lambda body: body["displayName"] == "After", within=30)
    assert renamed["phase"] == "Draft"
    catalog = await eventually(
        lambda: api.ok("GET", "/api/registry/company-releases/catalog"),
        lambda body: release["spec"]["version"] in [x["spec"]["version"]
                                                    for x in body["releases"]], within=30)
    assert catalog["newest"]["beta"] >= release["spec"]["version"]
    secrets = await eventually(
        lambda: api.ok("GET", "/api/registry/provider-secrets"),
        lambda body: [x["id"] for x in body["secrets"]] == [f"kubectl-{slug}"], within=30)
    assert set(secrets["secrets"][0]) == {"id", "provider", "name", "createdAt",
                                          "boundExocorps"}
    for path in (f"/api/registry/companies/{slug}", "/api/registry/my-companies",
                 f"/api/registry/companies/{slug}/bindings",
                 f"/api/registry/companies/{slug}/update-handshake",
                 "/api/registry/company-releases/current", "/api/dashboard/summary"):
        for _ in range(5):
            await api.ok("GET", path)
    assert kube.requests == []
    await platform.delete(r.RELEASES, release["metadata"]["name"])
    await platform.delete(r.SECRETS, secret["metadata"]["name"], PLATFORM_NAMESPACE)


async def test_watch_cache_metric_moves(gateway: GatewayUnderTest) -> None:
    async with aiohttp.ClientSession() as http, http.get(gateway.metrics_url) as response:
        text = await response.text()
    line = next(x for x in text.splitlines()
                if x.startswith("exocorp_gateway_watch_cache_last_event_timestamp_seconds "))
    assert float(line.split()[1]) > 1.7e9


async def test_roles_on_the_real_stack(gateway: GatewayUnderTest) -> None:
    owner, member, stranger = gateway.client(), gateway.client(), gateway.client()
    await owner.signup()
    member_id = (await member.signup())["user"]["id"]
    await stranger.signup()
    slug = unique_slug("roles")
    await owner.ok("POST", "/api/registry/companies", 201,
                   json={"slug": slug, "displayName": "Roles", "draft": sample_draft("1.0.0")})
    async with gateway.database.sessionmaker.begin() as s:
        await registry.add_member(s, exocorp_id=slug, user_id=member_id, role=Role.MEMBER)

    for method, path, body in (("GET", "", None), ("GET", "/draft", None),
                               ("GET", "/bindings", None), ("GET", "/update-handshake", None),
                               ("POST", "/draft", {"draft": sample_draft("1.1.0")}),
                               ("POST", "/provision", {}), ("DELETE", "", {"confirm": slug})):
        status, _ = await stranger.call(method, f"/api/registry/companies/{slug}{path}",
                                        json=body)
        assert status == 404, (method, path)
    assert (await stranger.ok("GET", "/api/registry/my-companies"))["companies"] == []

    assert (await member.company(slug))["role"] == "member"
    await member.ok("POST", f"/api/registry/companies/{slug}/draft", 200,
                    json={"draft": sample_draft("1.1.0"), "baseVersion": 1})
    status, refused = await member.call("DELETE", f"/api/registry/companies/{slug}",
                                        json={"confirm": slug})
    assert (status, refused["code"]) == (403, "owner_required")
    exo = await gateway.exocorp(slug)
    assert exo is not None
    assert exo.metadata.deletion_timestamp is None
    await owner.ok("DELETE", f"/api/registry/companies/{slug}", 202, json={"confirm": slug})
