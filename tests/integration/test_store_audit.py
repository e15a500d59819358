"""The audit trail: append-only, filtered queries, keyset pagination."""

from __future__ import annotations

import inspect
from datetime import timedelta

import pytest

from exocorp.store import Database, audit
from exocorp.store.schema import ActorKind, AuditEvent, Outcome
from tests.plugins.database import FakeClock

pytestmark = pytest.mark.integration

# (actor kind, actor id, action, exocorp, outcome), one minute apart
EVENTS = [
    (ActorKind.USER, "usr_ada", "provision", "acme", Outcome.SUCCEEDED),
    (ActorKind.USER, "usr_ada", "pause", "acme", Outcome.REFUSED),
    (ActorKind.USER, "usr_bob", "pause", "globex", Outcome.SUCCEEDED),
    (ActorKind.SYSTEM, None, "pause", "acme", Outcome.SUCCEEDED),
    (ActorKind.OPERATOR_CLIENT, "cli_1", "update", "acme", Outcome.FAILED),
    (ActorKind.USER, "usr_bob", "destroy", "globex", Outcome.SUCCEEDED),
    (ActorKind.ANONYMOUS, None, "login", None, Outcome.REFUSED),
]


async def _seed(db: Database, clock: FakeClock) -> list[AuditEvent]:
    written = []
    async with db.sessionmaker.begin() as s:
        for i, (kind, actor, action, exocorp, outcome) in enumerate(EVENTS):
            written.append(
                await audit.record_audit_event(
                    s,
                    actor_kind=kind,
                    actor_id=actor,
                    action=action,
                    exocorp_id=exocorp,
                    outcome=outcome,
                    reason="billing: credit exhausted" if kind is ActorKind.SYSTEM else None,
                    error="deadline exceeded" if outcome is Outcome.FAILED else None,
                    request_id=f"req-{i}",
                    details={"n": i},
                    now=clock(),
                )
            )
            clock.advance(minutes=1)
    return written


async def _actions(db: Database, **filters: object) -> list[str]:
    async with db.sessionmaker() as s:
        page = await audit.query_audit_events(s, newest_first=False, **filters)  # type: ignore[arg-type]
    return [f"{e.action}:{e.request_id}" for e in page.items]


async def test_events_round_trip(database: Database, clock: FakeClock) -> None:
    start = clock()
    written = await _seed(database, clock)
    async with database.sessionmaker() as s:
        page = await audit.query_audit_events(s, limit=100)
    assert [e.id for e in page.items] == sorted((e.id for e in written), reverse=True)
    assert page.next_cursor is None
    system = next(e for e in page.items if e.actor_kind is ActorKind.SYSTEM)
    assert (system.reason, system.created_at, system.details) == (
        "billing: credit exhausted",
        start + timedelta(minutes=3),
        {"n": 3},
    )
    failed = next(e for e in page.items if e.outcome is Outcome.FAILED)
    assert failed.error == "deadline exceeded"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"actor_id": "usr_ada"}, ["provision:req-0", "pause:req-1"]),
        ({"actor_kind": ActorKind.SYSTEM}, ["pause:req-3"]),
        ({"exocorp_id": "globex"}, ["pause:req-2", "destroy:req-5"]),
        ({"action": "pause"}, ["pause:req-1", "pause:req-2", "pause:req-3"]),
        ({"outcome": Outcome.REFUSED}, ["pause:req-1", "login:req-6"]),
        ({"action": "pause", "exocorp_id": "acme"}, ["pause:req-1", "pause:req-3"]),
        ({"action": "pause", "outcome": Outcome.SUCCEEDED, "actor_id": "usr_bob"}, ["pause:req-2"]),
        ({"action": "rollback"}, []),
    ],
)
async def test_filters(
    database: Database, clock: FakeClock, filters: dict[str, object], expected: list[str]
) -> None:
    await _seed(database, clock)
    assert await _actions(database, **filters) == expected


async def test_time_range_is_inclusive_exclusive(database: Database, clock: FakeClock) -> None:
    start = clock()
    await _seed(database, clock)
    assert await _actions(
        database, since=start + timedelta(minutes=2), until=start + timedelta(minutes=4)
    ) == ["pause:req-2", "pause:req-3"]
    assert await _actions(database, since=start + timedelta(minutes=6)) == ["login:req-6"]
    assert await _actions(database, until=start) == []


@pytest.mark.parametrize("newest_first", [True, False])
async def test_keyset_pagination_visits_every_event_once(
    database: Database, clock: FakeClock, newest_first: bool
) -> None:
    written = await _seed(database, clock)
    seen: list[int] = []
    cursor = None
    async with database.sessionmaker() as s:
        while True:
            page = await audit.query_audit_events(
                s, cursor=cursor, limit=2, newest_first=newest_first
            )
            assert len(page.items) <= 2
            seen += [e.id for e in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
            # Appending while paging neither shifts nor repeats rows already ahead or behind.
            await audit.record_audit_event(
                s,
                actor_kind=ActorKind.SYSTEM,
                actor_id=None,
                action="noise",
                outcome=Outcome.SUCCEEDED,
                now=clock(),
            )
    ids = [e.id for e in written]
    if newest_first:
        assert seen == sorted(ids, reverse=True)
    else:
        assert seen[: len(ids)] == ids
        assert len(seen) == len(set(seen))


async def test_page_boundary_exactly_at_limit(database: Database, clock: FakeClock) -> None:
    await _seed(database, clock)
    async with database.sessionmaker() as s:
        page = await audit.query_audit_events(s, limit=len(EVENTS))
        assert len(page.items) == len(EVENTS)
        assert page.next_cursor is None
        with pytest.raises(ValueError, match="limit"):
            await audit.query_audit_events(s, limit=0)


async def test_long_texts_are_clipped(database: Database, clock: FakeClock) -> None:
    async with database.sessionmaker.begin() as s:
        event = await audit.record_audit_event(
            s,
            actor_kind=ActorKind.USER,
            actor_id="usr_ada",
            action="pause",
            outcome=Outcome.REFUSED,
            reason="r" * 10_000,
            error="e" * 10_000,
            now=clock(),
        )
    assert len(event.reason or "") == len(event.error or "") == 4000


def test_the_audit_module_offers_no_way_to_change_history() -> None:
    public = {
        name
        for name, obj in inspect.getmembers(audit, inspect.iscoroutinefunction)
        if not name.startswith("_") and obj.__module__ == audit.__name__
    }
    # Insert (once per operator action, for the system audit) and read: no update, no delete.
    assert public == {"record_audit_event", "record_audit_event_once", "query_audit_events"}
