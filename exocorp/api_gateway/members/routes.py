"""Members of an exocorp: the owner invites people by e-mail, lists members, changes a role or
removes someone; an invited person accepts or declines (the invitation is on `me`), and a
member may leave. Roles are in docs/api.md ("Roles"): only the owner manages members. Every
change is in the exocorp's audit trail."""

from __future__ import annotations

from aiohttp import web

from exocorp.api_gateway.access import exocorp_access
from exocorp.api_gateway.agents.routes import require_human
from exocorp.api_gateway.audited import audited
from exocorp.api_gateway.errors import conflict, forbidden, not_found
from exocorp.api_gateway.keys import ACCESS_CACHE, CLOCK, DATABASE
from exocorp.api_gateway.routing import Auth, RouteTable, json_body, json_response
from exocorp.api_gateway.schemas import (
    InvitationView,
    InviteRequest,
    MembershipAnswer,
    MembersResponse,
    MemberView,
    RoleChangeRequest,
)
from exocorp.api_gateway.views import invitation_view, timestamp
from exocorp.store import accounts, members, registry
from exocorp.store.errors import Conflict, NotFound
from exocorp.store.schema import Role

routes = RouteTable("members", "Who works on an exocorp: invitations, roles, leaving.")

_COMPANY = "/api/registry/companies/{id}"
_INVITATION = "/api/registry/invitations/{invitation_id}"


@routes.get(_COMPANY + "/members", summary="Members and invitations", auth=Auth.MEMBER,
            response=MembersResponse)
async def list_members(request: web.Request) -> web.Response:
    """Everyone with a role in the exocorp, the owner first. The owner also sees the open
    invitations."""
    access = await exocorp_access(request, request.match_info["id"])
    async with request.app[DATABASE].sessionmaker.begin() as s:
        rows = await members.member_rows(s, access.exocorp_id)
        invitations = (await members.list_invitations(s, access.exocorp_id)
                       if access.role is Role.OWNER else [])
        owner = next(m.email for m in rows if m.role is Role.OWNER)
    return json_response(MembersResponse(
        members=[MemberView(user_id=m.user_id, email=m.email, role=m.role.value,
                            since=timestamp(m.since) or "") for m in rows],
        invitations=[invitation_view(i, access.record, owner) for i in invitations]))


@routes.post(_COMPANY + "/invitations", summary="Invite a person", auth=Auth.OWNER,
             body=InviteRequest, response=InvitationView, status=201, errors=(409,))
async def invite(request: web.Request) -> web.Response:
    """Invite an e-mail address as ``member`` (default) or ``viewer``. The person sees the
    invitation on ``GET /api/auth/me`` (after signing up, if they have no account yet) and
    accepts or declines it. 409 ``already_member`` or ``already_invited``."""
    exocorp_id = request.match_info["id"]
    async with audited(request, "member.invite", exocorp_id=exocorp_id) as note:
        access = await exocorp_access(request, exocorp_id, owner_only=True)
        body = await json_body(request, InviteRequest)
        note.details.update(email=body.email, role=body.role)
        async with request.app[DATABASE].sessionmaker.begin() as s:
            try:
                invitation = await members.invite(
                    s, exocorp_id=exocorp_id, email=body.email, role=Role(body.role),
                    invited_by=access.principal.user_id or "", now=request.app[CLOCK]())
            except Conflict as error:
                code = "already_invited" if "invited" in str(error) else "already_member"
                raise conflict(str(error), code=code) from None
            owner = await accounts.get_user(s, access.record.owner_user_id)
        note.details["invitationId"] = invitation.id
        return json_response(invitation_view(invitation, access.record, owner.email),
                             status=201)


@routes.delete(_COMPANY + "/invitations/{invitation_id}", summary="Revoke an invitation",
               auth=Auth.OWNER, status=204)
async def revoke_invitation(request: web.Request) -> web.Response:
    """The invitation disappears from the invitee's ``me``. 404 when it is not open."""
    exocorp_id = request.match_info["id"]
    invitation_id = request.match_info["invitation_id"]
    async with audited(request, "member.invitation.revoke", exocorp_id=exocorp_id) as note:
        await exocorp_access(request, exocorp_id, owner_only=True)
        note.details["invitationId"] = invitation_id
        async with request.app[DATABASE].sessionmaker.begin() as s:
            try:
                gone = await members.delete_invitation(s, invitation_id, exocorp_id=exocorp_id)
            except NotFound:
                raise not_found(f"no open invitation {invitation_id!r}") from None
        note.details["email"] = gone.email
        return web.Response(status=204)


@routes.patch(_COMPANY + "/members/{user_id}", summary="Change a member's role",
              auth=Auth.OWNER, body=RoleChangeRequest, response=MembershipAnswer,
              errors=(409,))
async def change_role(request: web.Request) -> web.Response:
    """``member`` or ``viewer``; the owner's own role cannot change (409 ``owner_role``)."""
    exocorp_id = request.match_info["id"]
    user_id = request.match_info["user_id"]
    async with audited(request, "member.role", exocorp_id=exocorp_id) as note:
        await exocorp_access(request, exocorp_id, owner_only=True)
        body = await json_body(request, RoleChangeRequest)
        note.details.update(userId=user_id, role=body.role)
        async with request.app[DATABASE].sessionmaker.begin() as s:
            try:
                before = await members.change_role(s, exocorp_id=exocorp_id, user_id=user_id,
                                                   role=Role(body.role))
            except NotFound:
                raise not_found(f"{user_id!r} is not a member of {exocorp_id!r}") from None
            except Conflict as error:
                raise conflict(str(error), code="owner_role") from None
        note.details["from"] = before.value
        _forget(request, exocorp_id, user_id)
        return json_response(MembershipAnswer(exocorp_id=exocorp_id, user_id=user_id,
                                              role=body.role))


@routes.delete(_COMPANY + "/members/{user_id}", summary="Remove a member, or leave",
               auth=Auth.MEMBER, status=204, errors=(409,))
async def remove_member(request: web.Request) -> web.Response:
    """The owner removes a member or viewer; anyone but the owner removes themself (leaves).
    The owner cannot leave (409 ``owner_cannot_leave``): destroy the exocorp instead."""
    exocorp_id = request.match_info["id"]
    user_id = request.match_info["user_id"]
    async with audited(request, "member.remove", exocorp_id=exocorp_id) as note:
        access = await exocorp_access(request, exocorp_id)
        leaving = user_id == access.principal.user_id
        note.details.update(userId=user_id, leave=leaving)
        if not leaving and access.role is not Role.OWNER:
            raise forbidden(f"only the owner of {exocorp_id!r} may remove members; you may "
                            "remove yourself (leave)", code="owner_required")
        async with request.app[DATABASE].sessionmaker.begin() as s:
            try:
                removed = await registry.remove_member(s, exocorp_id=exocorp_id, user_id=user_id)
            except Conflict:
                raise conflict("the owner cannot leave their exocorp; destroy it instead",
                               code="owner_cannot_leave") from None
        if not removed:
            raise not_found(f"{user_id!r} is not a member of {exocorp_id!r}")
        _forget(request, exocorp_id, user_id)
        return web.Response(status=204)


async def _answer_invitation(request: web.Request, accept: bool) -> web.Response:
    invitation_id = request.match_info["invitation_id"]
    action = "member.invitation.accept" if accept else "member.invitation.decline"
    async with audited(request, action) as note:
        principal = require_human(request)
        assert principal.user_id is not None
        async with request.app[DATABASE].sessionmaker.begin() as s:
            user = await accounts.get_user(s, principal.user_id)
            try:
                if accept:
                    membership = await members.accept_invitation(
                        s, invitation_id, user=user, now=request.app[CLOCK]())
                    exocorp_id, role = membership.exocorp_id, membership.role
                else:
                    gone = await members.delete_invitation(s, invitation_id, email=user.email)
                    exocorp_id, role = gone.exocorp_id, gone.role
            except NotFound:
                raise not_found(f"no open invitation {invitation_id!r} for you") from None
            except Conflict:  # joined meanwhile (an earlier accept): nothing to change
                raise conflict("you are already a member", code="already_member") from None
        note.exocorp_id = exocorp_id
        note.details.update(invitationId=invitation_id, role=role.value)
        if not accept:
            return web.Response(status=204)
        _forget(request, exocorp_id, principal.user_id)
        return json_response(MembershipAnswer(exocorp_id=exocorp_id, user_id=principal.user_id,
                                              role=role.value))


@routes.post(_INVITATION + "/accept", summary="Accept an invitation", auth=Auth.USER,
             response=MembershipAnswer, errors=(409,))
async def accept_invitation(request: web.Request) -> web.Response:
    """Join the exocorp with the invitation's role. A person's session only (an agent's token:
    403); 404 unless the invitation is open and addressed to the caller's e-mail address."""
    return await _answer_invitation(request, accept=True)


@routes.post(_INVITATION + "/decline", summary="Decline an invitation", auth=Auth.USER,
             status=204)
async def decline_invitation(request: web.Request) -> web.Response:
    """The invitation goes; the owner may invite again. Same rules as accept."""
    return await _answer_invitation(request, accept=False)


def _forget(request: web.Request, exocorp_id: str, user_id: str) -> None:
    # Cached roles and fleets of this replica; other replicas expire theirs within
    # --auth-cache-seconds.
    cache = request.app[ACCESS_CACHE]
    cache.forget_exocorp(exocorp_id)
    cache.forget_user(user_id)


__all__ = ["routes"]
