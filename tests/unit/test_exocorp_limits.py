"""Exocorp limits of issue 13 (2): an account with almost no credit created as many exocorps as
it liked (25 of 25). Platform owners set a per-account limit (a default and per account) and a
platform-wide cap; creation beyond them is 409 ``limit_exceeded`` and creates nothing."""

from __future__ import annotations

import pytest

from tests.plugins import gateway_admin as admin_support
from tests.plugins.gateway import Gateway

pytestmark = pytest.mark.unit


async def _create(client: object, slug: str) -> tuple[int, dict[str, object]]:
    response = await client.post(  # type: ignore[attr-defined]
        "/api/registry/companies", json={"slug": slug, "displayName": slug.title()})
    return response.status, await response.json()


async def test_limits_stop_one_account_and_the_platform_from_growing_without_bound(
        gateway: Gateway) -> None:
    admin = await admin_support.platform_owner(gateway)
    assert (await admin.put("/api/admin/limits/default", json={"maxExocorps": 2})).status == 200
    assert (await admin.put("/api/admin/limits/platform", json={"maxExocorps": 3})).status == 200
    mallory, _ = await admin_support.user(gateway, "mallory@example.com")
    statuses = [(await _create(mallory, f"corp-{i}"))[0] for i in range(25)]
    assert statuses == [201, 201] + [409] * 23
    status, problem = await _create(mallory, "one-more")
    assert (status, problem["code"]) == (409, "limit_exceeded")
    assert gateway.kube.objects.get(("exocorps", "", "one-more")) is None
    me = await (await mallory.get("/api/auth/me")).json()
    assert me["limits"] == {"maxExocorps": 2, "exocorps": 2, "cpu": "0", "memory": "0",
                            "storage": "0"}  # drafts run nothing

    bob, bob_id = await admin_support.user(gateway, "bob@example.com")
    assert (await _create(bob, "bob-one"))[0] == 201
    status, problem = await _create(bob, "bob-two")  # the platform's 3 are taken
    assert (status, problem["code"]) == (409, "limit_exceeded")
    assert "platform" in str(problem["detail"])

    assert (await admin.put("/api/admin/limits/platform",
                            json={"maxExocorps": None})).status == 200
    assert (await admin.put(f"/api/admin/limits/{bob_id}", json={"maxExocorps": 1})).status == 200
    assert (await _create(bob, "bob-two"))[0] == 409  # his own limit now
    limits = await (await admin.get("/api/admin/limits")).json()
    assert limits["default"] == {"maxExocorps": 2}
    assert limits["platform"] == {}  # absent: unlimited
    assert limits["exocorps"] == 3


async def test_only_platform_owners_set_limits(gateway: Gateway) -> None:
    mallory, mallory_id = await admin_support.user(gateway, "mallory@example.com")
    response = await mallory.put(f"/api/admin/limits/{mallory_id}", json={"maxExocorps": 99})
    assert response.status == 403
    admin = await admin_support.platform_owner(gateway)
    for scope, body in (("default", {"maxExocorps": -1}), ("nobody", {"maxExocorps": 1}),
                        ("default", {"maxExocorps": "many"})):
        response = await admin.put(f"/api/admin/limits/{scope}", json=body)
        assert response.status in (400, 404), (scope, body, response.status)
