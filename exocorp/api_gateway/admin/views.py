"""The platform owner's views of exocorps: who owns them and who else has access (platform
records), and where they stand (the watch cache). No API-server round trip.

Every Exocorp in the cache is listed, including objects a cluster admin created with kubectl
(``registered: false``; their owner is the spec's ``owner``). Destroyed exocorps disappear once
their object is gone (the audit trail keeps their story).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.api_gateway.admin.schemas import (
    AdminCompanyDetail,
    AdminCompanySummary,
    DraftInfo,
    MemberView,
    UserRef,
)
from exocorp.api_gateway.audit.schemas import AuditEventView
from exocorp.api_gateway.schemas import CompanyDetail
from exocorp.api_gateway.settings import GatewaySettings
from exocorp.api_gateway.views import company_detail, company_state, timestamp
from exocorp.model import DomainKind, Exocorp, canonical_domains
from exocorp.model.base import parse_rfc3339_or_none
from exocorp.names import runtime_namespace
from exocorp.store import accounts
from exocorp.store import members as store_members
from exocorp.store.schema import Draft, ExocorpRecord, Role

__all__ = [
    "Access",
    "access_of",
    "admin_detail",
    "admin_summary",
    "last_update",
    "record_or_transient",
]


@dataclass
class Access:
    """Who may reach one exocorp, from the platform records."""

    owner: UserRef
    members: list[MemberView] = field(default_factory=list)


async def access_of(session: AsyncSession, exocorps: Sequence[tuple[str, str]],
                    ) -> dict[str, Access]:
    """Exocorp id -> owner and members, for (exocorp id, owner user id) pairs, in two queries."""
    members = await store_members.members_of(session, [exocorp_id for exocorp_id, _ in exocorps])
    owners = await accounts.users_by_id(session, {owner for _, owner in exocorps})
    return {exocorp_id: Access(
        owner=UserRef(id=owner, email=owners[owner].email if owner in owners else None),
        members=[MemberView(user_id=m.user_id, email=m.email, role=m.role.value,
                            since=timestamp(m.since))
                 for m in members.get(exocorp_id, [])])
        for exocorp_id, owner in exocorps}


def record_or_transient(record: ExocorpRecord | None, exocorp: Exocorp,
                        settings: GatewaySettings) -> ExocorpRecord:
    """The platform record, or a stand-in (never stored) for an Exocorp made with kubectl."""
    if record is not None:
        return record
    spec = exocorp.spec
    try:
        domains = canonical_domains(spec.slug, portal_base=settings.portal_base_domain,
                                    app_base=settings.app_base_domain)
    except ValueError:
        domains = {DomainKind.PORTAL: "", DomainKind.APP: ""}
    return ExocorpRecord(id=exocorp.metadata.name, slug=spec.slug, owner_user_id=spec.owner,
                         display_name=spec.display_name, portal_domain=domains[DomainKind.PORTAL],
                         app_domain=domains[DomainKind.APP],
                         created_at=parse_rfc3339_or_none(exocorp.metadata.creation_timestamp)
                         or datetime.now(UTC), destroyed_at=None)


def last_update(exocorp: Exocorp) -> str | None:
    """The newest of: the last accepted action, the latest job's creation and end."""
    moments: Iterable[str | None] = (
        exocorp.spec.last_action.at if exocorp.spec.last_action else None,
        *((exocorp.status.history[0].created_at, exocorp.status.history[0].finished_at)
          if exocorp.status.history else ()),
    )
    parsed = [p for p in map(parse_rfc3339_or_none, moments) if p is not None]
    return timestamp(max(parsed)) if parsed else None


def _base(record: ExocorpRecord | None, exocorp: Exocorp,
          settings: GatewaySettings) -> CompanyDetail:
    return company_detail(record_or_transient(record, exocorp, settings), Role.OWNER, exocorp)


def _summary(base: CompanyDetail, registered: bool, exocorp: Exocorp,
             access: Access | None) -> AdminCompanySummary:
    release = exocorp.spec.release
    status = exocorp.status
    return AdminCompanySummary(
        id=base.id, slug=base.slug, display_name=base.display_name, registered=registered,
        owner=access.owner if access else UserRef(id=exocorp.spec.owner),
        members=access.members if access else [],
        phase=base.phase, ready=base.ready, rollout_in_progress=base.rollout_in_progress,
        channel=release.channel if release else None,
        version=release.version if release else None,
        installed_version=status.release.version if status.release else None,
        latest_job=status.history[0] if status.history else None,
        last_update=last_update(exocorp), paused=base.paused, pause_reason=base.pause_reason,
        stopped=base.stopped, last_action=base.last_action, created_at=base.created_at)


def admin_summary(record: ExocorpRecord | None, exocorp: Exocorp, access: Access | None,
                  settings: GatewaySettings) -> AdminCompanySummary:
    return _summary(_base(record, exocorp, settings), record is not None, exocorp, access)


def admin_detail(record: ExocorpRecord | None, exocorp: Exocorp, access: Access | None,
                 settings: GatewaySettings, *, draft: Draft | None,
                 recent_audit: list[AuditEventView]) -> AdminCompanyDetail:
    base = _base(record, exocorp, settings)
    status = exocorp.status
    return AdminCompanyDetail(
        **dict(_summary(base, record is not None, exocorp, access)),
        **dict(company_state(exocorp)),
        current_revision=base.current_revision, domains=base.domains,
        last_reconcile_seconds=status.last_reconcile_seconds,
        last_reconcile_time=status.last_reconcile_time,
        runtime_namespace=runtime_namespace(exocorp.metadata.name),
        draft=DraftInfo(version=draft.version, updated_at=timestamp(draft.updated_at))
        if draft is not None else None,
        recent_audit=recent_audit)
