"""Drafts: versioned saves with optimistic concurrency."""

from __future__ import annotations

import asyncio

import pytest

from exocorp.security import PasswordHasher
from exocorp.store import Conflict, Database, NotFound, StaleVersion, accounts, drafts, registry
from exocorp.store.schema import Draft
from tests.plugins.database import FakeClock

pytestmark = pytest.mark.integration

CONFIG = {"agents": [{"name": "ceo", "provider": "anthropic"}], "teams": []}


async def _exocorp(db: Database, hasher: PasswordHasher, exocorp_id: str = "acme-1") -> str:
    async with db.sessionmaker.begin() as s:
        user = await accounts.find_user_by_email(s, "ada@example.com")
        if user is None:
            user = (
                await accounts.create_user(s, email="ada@example.com", password="pw", hasher=hasher)
            ).user
        await registry.create_exocorp(
            s,
            exocorp_id=exocorp_id,
            slug=exocorp_id,
            owner_user_id=user.id,
            display_name="Acme",
            portal_domain=f"{exocorp_id}.portal.test",
            app_domain=f"{exocorp_id}.app.test",
        )
    return exocorp_id


async def test_create_read_save(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    exocorp_id = await _exocorp(database, fast_hasher)
    async with database.sessionmaker.begin() as s:
        draft = await drafts.create_draft(s, config=CONFIG, exocorp_id=exocorp_id, now=clock())
    assert draft.version == 1
    clock.advance(minutes=1)
    changed = {**CONFIG, "teams": [{"name": "eng"}]}
    async with database.sessionmaker.begin() as s:
        saved = await drafts.save_draft(
            s, draft.id, config=changed, expected_version=1, now=clock()
        )
    assert (saved.version, saved.config, saved.updated_at) == (2, changed, clock())
    async with database.sessionmaker() as s:
        again = await drafts.get_exocorp_draft(s, exocorp_id)
    assert (again.id, again.version, again.config) == (draft.id, 2, changed)
    assert again.created_at == draft.created_at


async def test_stale_save_is_refused_and_changes_nothing(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    exocorp_id = await _exocorp(database, fast_hasher)
    async with database.sessionmaker.begin() as s:
        draft = await drafts.create_draft(s, config=CONFIG, exocorp_id=exocorp_id)
        await drafts.save_draft(s, draft.id, config={"v": 2}, expected_version=1)
    with pytest.raises(StaleVersion) as caught:
        async with database.sessionmaker.begin() as s:
            await drafts.save_draft(s, draft.id, config={"v": "lost"}, expected_version=1)
    assert caught.value.current_version == 2
    assert isinstance(caught.value, Conflict)
    async with database.sessionmaker() as s:
        assert (await drafts.get_draft(s, draft.id)).config == {"v": 2}


async def test_concurrent_saves_from_one_version_have_one_winner(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    exocorp_id = await _exocorp(database, fast_hasher)
    async with database.sessionmaker.begin() as s:
        draft = await drafts.create_draft(s, config=CONFIG, exocorp_id=exocorp_id)

    async def save(n: int) -> Draft:
        async with database.sessionmaker.begin() as s:
            return await drafts.save_draft(s, draft.id, config={"writer": n}, expected_version=1)

    results = await asyncio.gather(*(save(n) for n in range(5)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, Draft)]
    assert len(winners) == 1, results
    assert all(isinstance(r, StaleVersion) for r in results if r not in winners)
    async with database.sessionmaker() as s:
        final = await drafts.get_draft(s, draft.id)
    assert (final.version, final.config) == (2, winners[0].config)


async def test_one_draft_per_exocorp(database: Database, fast_hasher: PasswordHasher) -> None:
    exocorp_id = await _exocorp(database, fast_hasher)
    async with database.sessionmaker.begin() as s:
        await drafts.create_draft(s, config=CONFIG, exocorp_id=exocorp_id)
    with pytest.raises(Conflict):
        async with database.sessionmaker.begin() as s:
            await drafts.create_draft(s, config=CONFIG, exocorp_id=exocorp_id)


async def test_free_standing_draft_is_bound_later(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    async with database.sessionmaker.begin() as s:  # an agent's draft: no exocorp, no user yet
        draft = await drafts.create_draft(s, config=CONFIG)
    assert draft.exocorp_id is None
    first = await _exocorp(database, fast_hasher, "acme-1")
    second = await _exocorp(database, fast_hasher, "acme-2")
    async with database.sessionmaker.begin() as s:
        bound = await drafts.bind_draft(s, draft.id, first)
        assert bound.exocorp_id == first
        assert (await drafts.bind_draft(s, draft.id, first)).exocorp_id == first  # idempotent
        with pytest.raises(Conflict):
            await drafts.bind_draft(s, draft.id, second)
        other = await drafts.create_draft(s, config=CONFIG)
        with pytest.raises(Conflict):  # first already has a draft
            await drafts.bind_draft(s, other.id, first)
    async with database.sessionmaker() as s:
        assert (await drafts.get_exocorp_draft(s, first)).id == draft.id


async def test_missing_drafts(database: Database, fast_hasher: PasswordHasher) -> None:
    exocorp_id = await _exocorp(database, fast_hasher)
    async with database.sessionmaker.begin() as s:
        with pytest.raises(NotFound):
            await drafts.get_draft(s, "drf_missing")
        with pytest.raises(NotFound):
            await drafts.get_exocorp_draft(s, exocorp_id)
        with pytest.raises(NotFound):
            await drafts.save_draft(s, "drf_missing", config={}, expected_version=1)
        with pytest.raises(NotFound):
            await drafts.create_draft(s, config={}, exocorp_id="no-such-exocorp")
