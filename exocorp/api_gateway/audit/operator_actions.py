"""Audit events for what the platform does by itself: the operator's automatic rollbacks.

The operator has no database: when a revision fails and the rollback policy is automatic, it
writes the last successful revision back into the spec as ``lastAction: rollback`` requested by
``system:exocorp-operator``, and the new revision enters ``status.history`` with that requester.
The gateway, which watches every Exocorp, turns each such history entry into one audit event
(actor kind ``system``, actor id ``system:exocorp-operator``, action ``rollback``, the entry's
reason, ``details.automatic``), dated when the revision was made.

Exactly once: an event's ``requestId`` is derived from (exocorp, revision number, revision name);
before writing, the gateway looks for it, under a PostgreSQL transaction-level advisory lock on
that key, so two replicas cannot both miss it (``store.audit.record_audit_event_once``). Entries
already recorded are remembered in memory, so a pass costs nothing once everything is recorded.
The system audit worker (``api_gateway.workers``) runs a pass every ``INTERVAL`` seconds once the
watch cache is ready; entries the operator wrote while no gateway ran are recorded when one
starts (the history keeps ``revisionHistoryLimit`` entries). The billing service records its own
system actions (``billing:`` pauses) itself; they are not repeated here.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from aiohttp import web

from exocorp.api_gateway.keys import CACHE, CLOCK, DATABASE
from exocorp.model import OPERATOR_ACTOR, Exocorp, RevisionSummary
from exocorp.model.base import parse_rfc3339_or_none
from exocorp.store import audit
from exocorp.store.schema import ActorKind, Outcome

__all__ = ["INTERVAL", "SYSTEM_AUDIT", "SystemAudit", "record_operator_actions"]

log = logging.getLogger(__name__)

INTERVAL: Final = 2.0
"""Seconds between passes over the watch cache."""


@dataclass
class SystemAudit:
    """This process's recorder state."""

    done: set[str] = field(default_factory=set)
    """Keys of the operator actions this process knows are recorded."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One pass at a time in this process (the database check covers other processes)."""


SYSTEM_AUDIT: web.AppKey[SystemAudit] = web.AppKey("exocorp.admin.system_audit")


def _key(exocorp: str, entry: RevisionSummary) -> str:
    digest = hashlib.sha256(f"{exocorp}\0{entry.number}\0{entry.name}".encode()).hexdigest()
    return f"operator-{digest[:48]}"


def _lock(key: str) -> int:
    """The advisory lock every replica takes to record the event of ``key``."""
    return int.from_bytes(bytes.fromhex(key[-16:]), "big", signed=True)


def _when(entry: RevisionSummary, fallback: datetime) -> datetime:
    return parse_rfc3339_or_none(entry.created_at) or fallback


def _operator_entries(exocorp: Exocorp) -> list[RevisionSummary]:
    return [entry for entry in reversed(exocorp.status.history)  # oldest first
            if entry.requested_by == OPERATOR_ACTOR and entry.action is not None]


async def record_operator_actions(app: web.Application) -> int:
    """One pass: record every operator action in the cache not recorded yet; returns how many
    events were written."""
    state = app[SYSTEM_AUDIT]
    written = 0
    async with state.lock:
        for cached in app[CACHE].exocorps.values():
            exocorp = cached.model
            for entry in _operator_entries(exocorp):
                key = _key(exocorp.metadata.name, entry)
                if key in state.done:
                    continue
                if await _record_once(app, exocorp.metadata.name, entry, key):
                    written += 1
                state.done.add(key)
    return written


async def _record_once(app: web.Application, name: str, entry: RevisionSummary,
                       key: str) -> bool:
    assert entry.action is not None
    async with app[DATABASE].sessionmaker.begin() as s:
        event = await audit.record_audit_event_once(
            s, lock=_lock(key), exocorp_id=name, request_id=key, actor_kind=ActorKind.SYSTEM,
            actor_id=OPERATOR_ACTOR, action=entry.action.value, outcome=Outcome.SUCCEEDED,
            reason=entry.reason,
            details={"automatic": True, "revision": entry.name, "number": entry.number,
                     "version": entry.version},
            now=_when(entry, app[CLOCK]()))
    if event is None:
        return False
    log.info("recorded the operator's %s of %s (revision %s) in the audit trail",
             entry.action.value, name, entry.name)
    return True
