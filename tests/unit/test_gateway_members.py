"""Members on the unit rig: the owner invites by e-mail, the invitee sees it on `me` and accepts
or declines, roles decide what each may do, members leave or are removed, all of it audited."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from exocorp.testing import samples
from tests.plugins.gateway import Gateway

pytestmark = pytest.mark.unit

ACME = "/api/registry/companies/acme"
PASSWORD = "correct horse battery"


async def _call(client: Any, method: str, path: str, expect: int, **kwargs: Any) -> Any:
    async with client.request(method, path, **kwargs) as response:
        body = await response.json() if response.content_type.endswith("json") else None
        assert response.status == expect, (method, path, response.status, body)
        return body


async def _person(gateway: Gateway, email: str) -> tuple[aiohttp.ClientSession, str]:
    client = gateway.new_client()
    body = await _call(client, "POST", "/api/auth/signup", 201,
                       json={"email": email, "password": PASSWORD})
    return client, body["user"]["id"]


async def _joined(gateway: Gateway, email: str, role: str) -> tuple[aiohttp.ClientSession, str]:
    await _call(gateway.client, "POST", ACME + "/invitations", 201,
                json={"email": email, "role": role})
    client, user_id = await _person(gateway, email)
    me = await _call(client, "GET", "/api/auth/me", 200)
    await _call(client, "POST", f"/api/registry/invitations/{me['invitations'][0]['id']}/accept",
                200)
    return client, user_id


async def test_an_invited_person_sees_the_invitation_on_me_and_joins_by_accepting(
        gateway: Gateway) -> None:
    owner = await gateway.signup("owner@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    # Invited before having an account: the invitation waits for the address.
    sent = await _call(gateway.client, "POST", ACME + "/invitations", 201,
                       json={"email": "Ann@Example.com"})
    assert (sent["role"], sent["invitedBy"], sent["exocorpId"]) == (
        "member", "owner@example.com", "acme")
    again = await _call(gateway.client, "POST", ACME + "/invitations", 409,
                        json={"email": "ann@example.com", "role": "viewer"})
    assert again["code"] == "already_invited"
    listed = await _call(gateway.client, "GET", ACME + "/members", 200)
    assert [m["email"] for m in listed["members"]] == ["owner@example.com"]
    assert [i["email"] for i in listed["invitations"]] == ["Ann@Example.com"]

    ann, ann_id = await _person(gateway, "ann@example.com")
    await _call(ann, "GET", ACME, 404)  # not a member yet: the exocorp does not exist for her
    me = await _call(ann, "GET", "/api/auth/me", 200)
    assert [(i["exocorpId"], i["displayName"], i["role"], i["invitedBy"])
            for i in me["invitations"]] == [("acme", "Acme", "member", "owner@example.com")]
    # Only the invitee may answer it.
    stranger, _ = await _person(gateway, "eve@example.com")
    await _call(stranger, "POST", f"/api/registry/invitations/{sent['id']}/accept", 404)

    joined = await _call(ann, "POST", f"/api/registry/invitations/{sent['id']}/accept", 200)
    assert joined == {"exocorpId": "acme", "userId": ann_id, "role": "member"}
    me = await _call(ann, "GET", "/api/auth/me", 200)
    assert me["invitations"] == []
    assert {"exocorpId": "acme", "role": "member"} in me["memberships"]
    assert (await _call(ann, "GET", ACME, 200))["id"] == "acme"
    await _call(ann, "POST", f"/api/registry/invitations/{sent['id']}/accept", 404)
    again = await _call(gateway.client, "POST", ACME + "/invitations", 409,
                        json={"email": "ann@example.com"})
    assert again["code"] == "already_member"

    listed = await _call(ann, "GET", ACME + "/members", 200)
    assert [(m["email"], m["role"]) for m in listed["members"]] == [
        ("owner@example.com", "owner"), ("ann@example.com", "member")]
    assert listed["invitations"] == []  # the owner's to see
    assert owner["user"]["id"] == listed["members"][0]["userId"]


async def test_what_each_role_may_do(gateway: Gateway) -> None:
    owner = await gateway.signup("owner@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    ann, _ann_id = await _joined(gateway, "ann@example.com", "member")
    bob, bob_id = await _joined(gateway, "bob@example.com", "viewer")
    draft = {"draft": samples.draft("1.0.0")}

    # A member reads, edits the draft and drives the lifecycle...
    await _call(ann, "GET", ACME + "/draft", 200)
    await _call(ann, "POST", ACME + "/draft", 200, json=draft)
    refused = await _call(ann, "POST", ACME + "/stop", 409)
    assert refused["code"] == "invalid_phase"  # allowed to ask; a Draft cannot stop
    # ...but never destroys, nor manages members.
    for method, path, body in [
            ("DELETE", ACME, {"confirm": "acme"}),
            ("POST", ACME + "/invitations", {"email": "x@example.com"}),
            ("PATCH", f"{ACME}/members/{bob_id}", {"role": "member"}),
            ("DELETE", f"{ACME}/members/{bob_id}", None)]:
        answer = await _call(ann, method, path, 403, json=body)
        assert answer["code"] == "owner_required", path

    # A viewer only reads.
    assert (await _call(bob, "GET", ACME, 200))["role"] == "viewer"
    fleet = await _call(bob, "GET", "/api/registry/my-companies", 200)
    assert [(c["id"], c["role"]) for c in fleet["companies"]] == [("acme", "viewer")]
    await _call(bob, "GET", ACME + "/draft", 200)
    await _call(bob, "GET", ACME + "/bindings", 200)
    viewer_writes: list[tuple[str, Any]] = [
        (ACME + "/draft", draft), (ACME + "/stop", None), (ACME + "/provision", None)]
    for path, payload in viewer_writes:
        answer = await _call(bob, "POST", path, 403, json=payload)
        assert answer["code"] == "viewer_read_only", path

    # The owner makes the viewer a member: the next request already counts.
    changed = await _call(gateway.client, "PATCH", f"{ACME}/members/{bob_id}", 200,
                          json={"role": "member"})
    assert changed["role"] == "member"
    await _call(bob, "POST", ACME + "/draft", 200, json=draft)
    refused = await _call(gateway.client, "PATCH", f"{ACME}/members/{owner['user']['id']}", 409,
                          json={"role": "viewer"})
    assert refused["code"] == "owner_role"
    bad = await _call(gateway.client, "PATCH", f"{ACME}/members/{bob_id}", 400,
                      json={"role": "owner"})
    assert [e["field"] for e in bad["errors"]] == ["role"]


async def test_leaving_removing_declining_and_revoking_are_audited(gateway: Gateway) -> None:
    owner = await gateway.signup("owner@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    ann, ann_id = await _joined(gateway, "ann@example.com", "member")
    _bob, bob_id = await _joined(gateway, "bob@example.com", "viewer")

    await _call(ann, "DELETE", f"{ACME}/members/{ann_id}", 204)  # ann leaves
    await _call(ann, "GET", ACME, 404)
    await _call(gateway.client, "DELETE", f"{ACME}/members/{bob_id}", 204)  # bob is removed
    await _call(gateway.client, "DELETE", f"{ACME}/members/{bob_id}", 404)
    refused = await _call(gateway.client, "DELETE", f"{ACME}/members/{owner['user']['id']}", 409)
    assert refused["code"] == "owner_cannot_leave"

    sent = await _call(gateway.client, "POST", ACME + "/invitations", 201,
                       json={"email": "carl@example.com"})
    carl, _ = await _person(gateway, "carl@example.com")
    await _call(carl, "POST", f"/api/registry/invitations/{sent['id']}/decline", 204)
    assert (await _call(carl, "GET", "/api/auth/me", 200))["invitations"] == []
    await _call(carl, "POST", f"/api/registry/invitations/{sent['id']}/accept", 404)
    sent = await _call(gateway.client, "POST", ACME + "/invitations", 201,
                       json={"email": "dora@example.com"})
    await _call(gateway.client, "DELETE", f"{ACME}/invitations/{sent['id']}", 204)
    await _call(gateway.client, "DELETE", f"{ACME}/invitations/{sent['id']}", 404)

    trail = await _call(gateway.client, "GET", ACME + "/audit?limit=100", 200)
    seen = [(e["action"], e["outcome"]) for e in reversed(trail["events"])
            if e["action"].startswith("member.")]
    assert seen == [
        ("member.invite", "succeeded"), ("member.invitation.accept", "succeeded"),
        ("member.invite", "succeeded"), ("member.invitation.accept", "succeeded"),
        ("member.remove", "succeeded"), ("member.remove", "succeeded"),
        ("member.remove", "refused"), ("member.remove", "refused"),
        ("member.invite", "succeeded"), ("member.invitation.decline", "succeeded"),
        ("member.invite", "succeeded"), ("member.invitation.revoke", "succeeded"),
        ("member.invitation.revoke", "refused"),
    ]
