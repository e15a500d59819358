"""Credit enforcement: an account whose balance reaches zero is suspended and its running
exocorps are paused; once the suspension outlasts a grace period they are stopped; nothing of it
is resumed or provisioned again until it is topped up.

- **Suspend**: every active account with ``balance <= 0`` becomes ``suspended`` (a conditional
  update: a top-up that lands first wins), audited as ``billing.suspend`` by the billing actor.
- **Pause**: every exocorp of a suspended account whose phase is ``Running`` is paused through
  the lifecycle API (:func:`exocorp.lifecycle.perform.perform`, actor ``system:billing``, reason
  ``billing: credit exhausted``); each pause is an audit event of the system actor. An exocorp
  still starting is paused on a later pass, once it runs.
- **Stop**: a pause keeps the portal and app running, and billing. Once the account has been
  suspended for longer than the grace period (``stop_after``; ``--suspension-grace-hours`` of
  ``exocorp gateway``), every exocorp of it that is not at rest (Draft, Stopped, Destroying) is
  stopped through the lifecycle API (actor ``system:billing``, reason
  ``billing: credit exhausted beyond the grace period``), each an audit event of the system
  actor: its workloads go to zero and running time, so debt, stops growing. Data is kept.
- **Refuse**: the gateway builds each action's ``Caller`` with :func:`billing_state`: resume and
  provision (and a restart of a stopped exocorp) answer 409 while the account is inactive, and
  an action that would raise the account's hourly cost answers 402 ``insufficient_credit``
  unless the balance covers ``--min-credit-hours`` of everything the account would run
  (``exocorp.lifecycle.allowance``).
- **Reactivate**: a top-up that leaves the balance above zero makes the account active again
  (:func:`exocorp.billing.admin.credit_account`). Paused and stopped exocorps stay so: their
  owner resumes or provisions them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from exocorp.billing import metrics
from exocorp.k8s import Kube
from exocorp.lifecycle import NO_BILLING, BillingStanding, ErrorCode, LifecycleError, perform
from exocorp.model import BILLING_ACTOR, Action, ActionRequest, Phase
from exocorp.store import Database, audit, billing
from exocorp.store import metering as repo
from exocorp.store.clock import Clock, utcnow
from exocorp.store.schema import AccountState, ActorKind, BillingAccount, Outcome

__all__ = [
    "PAUSE_REASON",
    "STOP_REASON",
    "SUSPEND_ACTION",
    "EnforcementReport",
    "Enforcer",
    "account_is_active",
    "billing_state",
]

log = logging.getLogger(__name__)

PAUSE_REASON = "billing: credit exhausted"
"""The reason recorded on exocorps paused because their owner's credit ran out."""
STOP_REASON = "billing: credit exhausted beyond the grace period"
"""The reason recorded on exocorps stopped because their owner stayed suspended too long."""
SUSPEND_ACTION = "billing.suspend"
"""Audit action of an account suspended by enforcement."""


def account_is_active(account: BillingAccount | billing.AccountStanding) -> bool:
    """Credit left and not suspended: what resume and provision require."""
    return account.state == AccountState.ACTIVE and account.balance > 0


async def billing_state(session: AsyncSession, user_id: str) -> BillingStanding:
    """A user's billing standing: what the gateway gives the lifecycle for an action on one of
    their exocorps (``Caller.billing``) and for the update handshake. A user without a billing
    account has ``NO_BILLING``."""
    account = await billing.account_standing(session, user_id)
    if account is None:
        return NO_BILLING
    return BillingStanding(active=account_is_active(account),
                           has_price_book=account.rates is not None, balance=account.balance,
                           currency=account.currency, rates=account.rates or {})


@dataclass
class EnforcementReport:
    """What one enforcement pass did."""

    suspended: list[str] = field(default_factory=list)
    """Accounts suspended."""
    paused: list[str] = field(default_factory=list)
    """Exocorps paused."""
    stopped: list[str] = field(default_factory=list)
    """Exocorps stopped (their account's suspension outlasted the grace period)."""
    refused: dict[str, str] = field(default_factory=dict)
    """Exocorp -> why its pause or stop was refused (retried next pass)."""


_AT_REST = frozenset({Phase.DRAFT.value, Phase.STOPPED.value, Phase.DESTROYING.value})
"""Phases with nothing running to stop."""


def _phase(body: Mapping[str, Any] | None) -> str | None:
    if body is None:
        return None
    phase = (body.get("status") or {}).get("phase")
    return phase if isinstance(phase, str) else None


class Enforcer:
    """Suspends exhausted accounts, pauses their running exocorps and, once a suspension
    outlasts ``stop_after`` (None: never), stops them."""

    def __init__(self, kube: Kube, database: Database, namespace: str, *,
                 clock: Clock = utcnow, stop_after: timedelta | None = None) -> None:
        self.kube = kube
        self.database = database
        self.namespace = namespace
        self.clock = clock
        self.stop_after = stop_after

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
        if await self._enforce(exocorp_id, account, Action.PAUSE, PAUSE_REASON, report):
            metrics.ENFORCEMENT_PAUSES.inc()
            report.paused.append(exocorp_id)
            log.info("exocorp %s paused: its owner's credit is exhausted", exocorp_id)

    async def stop_one(self, exocorp_id: str, account: BillingAccount,
                       report: EnforcementReport) -> None:
        if await self._enforce(exocorp_id, account, Action.STOP, STOP_REASON, report):
            metrics.ENFORCEMENT_STOPS.inc()
            report.stopped.append(exocorp_id)
            log.info("exocorp %s stopped: its owner's account stayed suspended beyond the "
                     "grace period", exocorp_id)

    async def _enforce(self, exocorp_id: str, account: BillingAccount, action: Action,
                       reason: str, report: EnforcementReport) -> bool:
        """Carry out ``action`` as the billing actor and audit it; False when refused."""
        request = ActionRequest(action=action, reason=reason)
        caller = perform.Caller(actor=BILLING_ACTOR,
                                billing=BillingStanding(active=False, has_price_book=True))
        try:
            await perform.perform(self.kube, self.namespace, exocorp_id, request, caller,
                                  now=self.clock())
        except LifecycleError as err:
            # Not in that phase any more, or changed meanwhile: the next pass looks again.
            report.refused[exocorp_id] = err.detail
            if err.code not in (ErrorCode.INVALID_PHASE, ErrorCode.IN_PROGRESS,
                                ErrorCode.CONCURRENT_CHANGE):
                log.warning("billing %s of %s refused: %s", action.value, exocorp_id,
                            err.detail)
            return False
        async with self.database.sessionmaker.begin() as session:
            await audit.record_audit_event(
                session,
                actor_kind=ActorKind.SYSTEM,
                actor_id=BILLING_ACTOR,
                action=action.value,
                outcome=Outcome.SUCCEEDED,
                exocorp_id=exocorp_id,
                reason=reason,
                details={"accountId": account.id, "balance": account.balance,
                         "currency": account.currency},
                now=self.clock(),
            )
        return True

    def _grace_over(self, account: BillingAccount) -> bool:
        return (self.stop_after is not None and account.suspended_at is not None
                and self.clock() - account.suspended_at >= self.stop_after)

    async def run_pass(self, bodies: Iterable[Mapping[str, Any]]) -> EnforcementReport:
        """Suspend exhausted accounts, then pause the running exocorps of suspended ones, or
        stop every one not at rest once the suspension outlasts the grace period. ``bodies``
        are the Exocorp objects as last listed (their phase picks the candidates; the
        lifecycle API checks the live object again)."""
        report = EnforcementReport()
        await self.suspend_exhausted(report)
        by_name = {str((b.get("metadata") or {}).get("name")): b for b in bodies}
        async with self.database.sessionmaker() as session:
            candidates = await repo.suspended_accounts_exocorps(session)
        for record, account in candidates:
            phase = _phase(by_name.get(record.id))
            if phase is None or phase in _AT_REST:
                continue
            async with self.database.sessionmaker() as session:
                fresh = await billing.get_account(session, account.id)
            if account_is_active(fresh):
                continue  # topped up meanwhile
            if self._grace_over(fresh):
                await self.stop_one(record.id, fresh, report)
            elif phase == Phase.RUNNING.value:
                await self.pause_one(record.id, fresh, report)
        return report
