"""Audit events for every mutating request, accepted or refused.

Wrap a mutating handler's work in :func:`audited`::

    async with audited(request, "pause", exocorp_id=exocorp_id) as note:
        note.reason = body.reason
        ...                        # raise Problem / LifecycleError to refuse
        note.details["toVersion"] = "1.2.0"

On normal exit the event is recorded as ``succeeded``; when the block raises, as ``refused``
(a 4xx: validation, authorization, state conflict) or ``failed`` (anything else), with the
problem's detail as the error, and the exception propagates unchanged. Each event is written in
its own transaction, so a refused action's event is not rolled back with it. The actor is the
request's principal (or ``note.actor`` when set, e.g. a user who just signed up).

A handler whose work is outside the database (a lifecycle action: its record is the Kubernetes
write) sets ``note.answer`` to its response: the succeeded event and the answer stored under
the request's Idempotency-Key then commit in one transaction, not two.

Action names: the nine lifecycle actions by name (``provision``, ..., ``destroy``); otherwise
``<object>.<verb>``: ``company.create``, ``draft.save``, ``provider_secret.save``,
``provider_secret.delete``, ``auth.signup``, ``auth.login``, ``auth.logout``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from exocorp.api_gateway.access import principal_of
from exocorp.api_gateway.errors import as_problem
from exocorp.api_gateway.idempotency import answered, store_answer
from exocorp.api_gateway.keys import CLOCK, DATABASE, REQUEST_ID
from exocorp.store import audit
from exocorp.store.schema import ActorKind, Outcome

__all__ = ["AuditNote", "audited", "record_event"]

log = logging.getLogger(__name__)


@dataclass
class AuditNote:
    """What the event will say; the handler fills it in as it learns."""

    exocorp_id: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    actor: tuple[ActorKind, str | None] | None = None
    """Overrides the principal (e.g. the user a signup just created)."""
    answer: web.Response | None = None
    """The handler's response, stored under the Idempotency-Key with the succeeded event."""


async def record_event(request: web.Request, action: str, outcome: Outcome, note: AuditNote, *,
                       error: str | None = None) -> None:
    """Append one event in its own transaction (with ``note.answer``, when it succeeded)."""
    kind, actor_id = note.actor or principal_of(request).audit_actor
    answer = note.answer if outcome is Outcome.SUCCEEDED else None
    async with request.app[DATABASE].sessionmaker.begin() as s:
        await audit.record_audit_event(
            s, actor_kind=kind, actor_id=actor_id, action=action, outcome=outcome,
            exocorp_id=note.exocorp_id, reason=note.reason, error=error,
            request_id=request.get(REQUEST_ID), details=note.details or None,
            now=request.app[CLOCK]())
        stored = answer is not None and await store_answer(s, request, answer)
    if answer is not None and stored:
        answered(request, answer)


@asynccontextmanager
async def audited(request: web.Request, action: str, *, exocorp_id: str | None = None,
                  ) -> AsyncIterator[AuditNote]:
    note = AuditNote(exocorp_id=exocorp_id)
    try:
        yield note
    except Exception as error:
        problem = as_problem(error)
        refused = problem is not None and problem.status < 500
        try:
            await record_event(request, action, Outcome.REFUSED if refused else Outcome.FAILED,
                               note, error=problem.detail if problem else "internal error")
        except Exception:
            log.exception("could not record the audit event of a %s %s", "refused"
                          if refused else "failed", action)
        raise
    try:
        await record_event(request, action, Outcome.SUCCEEDED, note)
    except Exception:
        # The action happened; answering 500 now would misreport it. Alert on this log line.
        log.exception("could not record the audit event of a succeeded %s (exocorp %s)",
                      action, note.exocorp_id)
