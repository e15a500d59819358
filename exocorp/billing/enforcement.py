"""Credit enforcement: an account whose balance reaches zero is suspended and its running
exocorps are paused; nothing of it is resumed or provisioned again until it is topped up.

- **Suspend**: every active account with ``balance <= 0`` becomes ``suspended`` (a conditional
  update: a top-up that lands first wins), audited as ``billing.suspend`` by the billing actor.
- **Pause**: every exocorp of a suspended account whose phase is ``Running`` is paused through
  the lifecycle API (:func:`exocorp.lifecycle.perform.perform`, actor ``system:billing``, reason
  ``billing: credit exhausted``); each pause is an audit event of the system actor. An exocorp
  still starting is paused on a later pass, once it runs.
- **Refuse**: the gateway builds each action's ``Caller`` with :func:`billing_state`: resume and
  provision (and a restart of a stopped exocorp) answer 409 while the account is inactive.
- **Reactivate**: a top-up that leaves the balance above zero makes the account active again
  (:func:`exocorp.billing.admin.credit_account`). Paused exocorps stay paused: their owner
  resumes them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.billing import metrics
from exocorp.k8s import Kube
from exocorp.lifecycle import NO_BILLING, BillingStanding, ErrorCode, LifecycleError, perform
from exocorp.model import BILLING_ACTOR, Action, ActionRequest, Phase
from exocorp.store import Database, NotFound, audit, billing
from exocorp.store import metering as repo
from exocorp.store.clock import Clock, utcnow
from exocorp.store.schema import AccountState, ActorKind, BillingAccount, Outcome

__all__ = [
    "PAUSE_REASON",
    "SUSPEND_ACTION",
    "EnforcementReport",
    "Enforcer",
    "account_is_active",
    "billing_state",
]

log = logging.getLogger(__name__)

PAUSE_REASON = "billing: credit exhausted"
"""The reason recorded on exocorps paused because their owner's credit ran out."""
SUSPEND_ACTION = "billing.suspend"
"""Audit action of an account suspended by enforcement."""


def account_is_active(account: BillingAccount) -> bool:
    """Credit left and not suspended: what resume and provision require."""
    return account.state == AccountState.ACTIVE and account.balance > 0


async def billing_state(session: AsyncSession, user_id: str) -> BillingStanding:
    """A user's billing standing: what the gateway gives the lifecycle for an action on one of
    their exocorps (``Caller.billing``) and for the update handshake. A user without a billing
    account has ``NO_BILLING``."""
    try:
        account = await billing.get_account_for_user(session, user_id)
    except NotFound:
        return NO_BILLING
    book = await billing.effective_price_book(session, account)
    return BillingStanding(active=account_is_active(account), has_price_book=book is not None)


@dataclass
class EnforcementReport:
    """What one enforcement pass did."""

    suspended: list[str] = field(default_factory=list)
    """Accounts suspended."""
    paused: list[str] = field(default_factory=list)
    """Exocorps paused."""
    refused: dict[str, str] = field(default_factory=dict)
    """Exocorp -> why its pause was refused (retried next pass)."""


def _phase(body: Mapping[str, Any] | None) -> str | None:
    if body is None:
        return None
    phase = (body.get("status") or {}).get("phase")
    return phase if isinstance(phase, str) else None


class Enforcer:
    """Suspends exhausted accounts and pauses their running exocorps."""

    def __init__(self, kube: Kube, database: Database, namespace: str, *,
                 clock: Clock = utcnow) -> None:
        self.kube = kube
        self.database = database
        self.namespace = namespace
        self.clock = clock

    async def suspend_exhausted(self, report: EnforcementReport) -> None:
        async with self.database.sessionmaker.begin() as session:
            for account in await repo.exhausted_active_accounts(session):
                now = self.clock()
                if not await repo.suspend_if_exhausted(session, account.id, now=now):
                    continue
                await audit.record_audit_event(
                    session,
                    actor_kind=ActorKind.SYSTEM,
                    actor_id=BILLING_ACTOR,
                    action=SUSPEND_ACTION,
                    outcome=Outcome.SUCCEEDED,
                    reason=PAUSE_REASON,
                    details={"accountId": account.id, "userId": account.user_id,
                             "balance": account.balance, "currency": account.currency},
                    now=now,
                )
                report.suspended.append(account.id)
                log.info("billing account %s suspended: balance %s %s", account.id,
                         account.balance, account.currency)

    async def pause_one(self, exocorp_id: str, account: BillingAccount,
                        report: EnforcementReport) -> None:
        request = ActionRequest(action=Action.PAUSE, reason=PAUSE_REASON)
        caller = perform.Caller(actor=BILLING_ACTOR,
                                billing=BillingStanding(active=False, has_price_book=True))
        try:
            await perform.perform(self.kube, self.namespace, exocorp_id, request, caller,
                                  now=self.clock())
        except LifecycleError as err:
            # Not running any more, or changed meanwhile: the next pass looks again.
            report.refused[exocorp_id] = err.detail
            if err.code not in (ErrorCode.INVALID_PHASE, ErrorCode.IN_PROGRESS,
                                ErrorCode.CONCURRENT_CHANGE):
                log.warning("billing pause of %s refused: %s", exocorp_id, err.detail)
            return
        async with self.database.sessionmaker.begin() as session:
            await audit.record_audit_event(
                session,
                actor_kind=ActorKind.SYSTEM,
                actor_id=BILLING_ACTOR,
                action=Action.PAUSE.value,
                outcome=Outcome.SUCCEEDED,
                exocorp_id=exocorp_id,
                reason=PAUSE_REASON,
                details={"accountId": account.id, "balance": account.balance,
                         "currency": account.currency},
                now=self.clock(),
            )
        metrics.ENFORCEMENT_PAUSES.inc()
        report.paused.append(exocorp_id)
        log.info("exocorp %s paused: its owner's credit is exhausted", exocorp_id)

    async def run_pass(self, bodies: Iterable[Mapping[str, Any]]) -> EnforcementReport:
        """Suspend exhausted accounts, then pause the running exocorps of suspended ones.
        ``bodies`` are the Exocorp objects as last listed (their phase picks the candidates;
        the lifecycle API checks the live object again)."""
        report = EnforcementReport()
        await self.suspend_exhausted(report)
        by_name = {str((b.get("metadata") or {}).get("name")): b for b in bodies}
        async with self.database.sessionmaker() as session:
            candidates = await repo.suspended_accounts_exocorps(session)
        for record, account in candidates:
            if _phase(by_name.get(record.id)) != Phase.RUNNING.value:
                continue
            async with self.database.sessionmaker() as session:
                fresh = await billing.get_account(session, account.id)
            if account_is_active(fresh):
                continue  # topped up meanwhile
            await self.pause_one(record.id, fresh, report)
        return report
