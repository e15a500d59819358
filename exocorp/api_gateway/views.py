"""Response views built from the store's records and the watch cache's models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.api_gateway.credentials import Credential
from exocorp.api_gateway.schemas import (
    AccountView,
    CompanyDetail,
    CompanyState,
    CompanySummary,
    InvitationView,
    ProviderSecretView,
    UserView,
)
from exocorp.api_gateway.watch_cache import CachedExocorp
from exocorp.model import (
    ConditionStatus,
    ConditionType,
    DomainKind,
    DomainStatus,
    Exocorp,
    format_timestamp,
    get_condition,
    phase_of,
    rollout_in_progress,
)
from exocorp.store import billing
from exocorp.store.errors import NotFound
from exocorp.store.schema import ExocorpRecord, Invitation, Role, User


def timestamp(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment is not None else None


def user_view(user: User) -> UserView:
    return UserView(id=user.id, email=user.email, platform_owner=user.platform_owner,
                    created_at=format_timestamp(user.created_at))


async def account_view(session: AsyncSession, user_id: str) -> AccountView | None:
    """The user's billing account as they see it, or None when they have none (yet)."""
    try:
        account = await billing.get_account_for_user(session, user_id)
    except NotFound:
        return None
    return AccountView(balance=account.balance, currency=account.currency,
                       state=account.state.value)


def _ready(exocorp: Exocorp) -> bool:
    ready = get_condition(exocorp.status.conditions, ConditionType.READY)
    if ready is None or ready.status != ConditionStatus.TRUE:
        return False
    observed = ready.observed_generation or exocorp.status.observed_generation or 0
    return observed >= (exocorp.metadata.generation or 0)


def _domains(record: ExocorpRecord, exocorp: Exocorp) -> list[DomainStatus]:
    if exocorp.status.domains:
        return list(exocorp.status.domains)
    return [DomainStatus(host=record.portal_domain, kind=DomainKind.PORTAL),
            DomainStatus(host=record.app_domain, kind=DomainKind.APP)]


def _summary_fields(record: ExocorpRecord, role: Role, exocorp: Exocorp) -> dict[str, Any]:
    spec, status = exocorp.spec, exocorp.status
    return {
        "id": record.id,
        "slug": record.slug,
        "display_name": spec.display_name,
        "owner": record.owner_user_id,
        "role": role.value,
        "phase": phase_of(exocorp),
        "ready": _ready(exocorp),
        "rollout_in_progress": rollout_in_progress(exocorp),
        "release": spec.release,
        "paused": spec.paused,
        "pause_reason": spec.pause_reason,
        "stopped": spec.stopped,
        "domains": _domains(record, exocorp),
        "current_revision": status.current_revision,
        "last_action": spec.last_action,
        "created_at": timestamp(record.created_at),
    }


def company_summary(record: ExocorpRecord, role: Role, exocorp: Exocorp) -> CompanySummary:
    return CompanySummary(**_summary_fields(record, role, exocorp))


def company_state(exocorp: Exocorp) -> CompanyState:
    spec, status = exocorp.spec, exocorp.status
    return CompanyState(
        conditions=status.conditions,
        components=status.components,
        history=status.history,
        last_successful_revision=status.last_successful_revision,
        release_status=status.release,
        config=spec.config,
        provider_bindings=spec.provider_bindings,
        rollback_policy=spec.rollback_policy,
        generation=exocorp.metadata.generation,
        observed_generation=status.observed_generation,
        failed_revisions_since_success=status.failed_revisions_since_success,
        rollbacks_since_success=status.rollbacks_since_success,
    )


def company_detail(record: ExocorpRecord, role: Role, exocorp: Exocorp) -> CompanyDetail:
    return CompanyDetail(**_summary_fields(record, role, exocorp), **dict(company_state(exocorp)))


def company_summary_json(record: ExocorpRecord, role: Role, entry: CachedExocorp) -> bytes:
    """``company_summary`` as JSON, rendered once per object version and role."""
    key = ("summary", role.value)
    rendered = entry.rendered.get(key)
    if rendered is None:
        rendered = company_summary(record, role, entry.model).model_dump_json(
            by_alias=True, exclude_none=True).encode()
        entry.rendered[key] = rendered
    return rendered


def company_detail_json(record: ExocorpRecord, role: Role, entry: CachedExocorp) -> bytes:
    """``company_detail`` as JSON, rendered once per object version and role."""
    key = ("detail", role.value)
    rendered = entry.rendered.get(key)
    if rendered is None:
        rendered = company_detail(record, role, entry.model).model_dump_json(
            by_alias=True, exclude_none=True).encode()
        entry.rendered[key] = rendered
    return rendered


def secret_view(credential: Credential, bound: list[str]) -> ProviderSecretView:
    return ProviderSecretView(
        id=credential.id, provider=credential.provider, name=credential.name,
        fingerprint=credential.fingerprint, created_at=credential.created_at,
        rotated_at=credential.rotated_at, bound_exocorps=bound)


def invitation_view(invitation: Invitation, record: ExocorpRecord,
                    invited_by: str) -> InvitationView:
    """An open invitation as its invitee (on `me`) and the owner see it."""
    return InvitationView(id=invitation.id, exocorp_id=record.id,
                          display_name=record.display_name, email=invitation.email,
                          role=invitation.role.value,
                          invited_by=invited_by, created_at=timestamp(invitation.created_at) or "")
