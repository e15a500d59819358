"""Exocorp registry rows: names and domains reserved exactly once, memberships."""

from __future__ import annotations

import asyncio

import pytest

from exocorp.security import PasswordHasher
from exocorp.store import Conflict, Database, NotFound, accounts, registry
from exocorp.store.schema import ExocorpRecord, Role
from tests.plugins.database import FakeClock

pytestmark = pytest.mark.integration


async def _user(db: Database, hasher: PasswordHasher, email: str = "ada@example.com") -> str:
    async with db.sessionmaker.begin() as s:
        return (await accounts.create_user(s, email=email, password="pw", hasher=hasher)).user.id


async def _create(
    db: Database,
    owner: str,
    *,
    exocorp_id: str = "acme-1",
    slug: str = "acme",
    portal: str | None = None,
    app: str | None = None,
) -> ExocorpRecord:
    async with db.sessionmaker.begin() as s:
        return await registry.create_exocorp(
            s,
            exocorp_id=exocorp_id,
            slug=slug,
            owner_user_id=owner,
            display_name=slug.title(),
            portal_domain=portal or f"{slug}.portal.test",
            app_domain=app or f"{slug}.app.test",
        )


async def test_create_reserves_names_and_makes_owner_a_member(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    owner = await _user(database, fast_hasher)
    record = await _create(database, owner)
    async with database.sessionmaker() as s:
        assert (await registry.get_exocorp(s, "acme-1")).portal_domain == "acme.portal.test"
        found = await registry.find_exocorp_by_slug(s, "acme")
        assert found is not None
        assert found.id == record.id
        assert await registry.get_role(s, exocorp_id="acme-1", user_id=owner) is Role.OWNER
        mine = await registry.list_user_exocorps(s, owner)
        assert [(m.exocorp.id, m.role) for m in mine] == [("acme-1", Role.OWNER)]


@pytest.mark.parametrize(
    ("clash", "field"),
    [
        ({"exocorp_id": "other", "slug": "acme"}, "slug"),
        ({"exocorp_id": "acme-1", "slug": "other"}, "id"),
        ({"exocorp_id": "other", "slug": "other", "portal": "acme.portal.test"}, "domain"),
        ({"exocorp_id": "other", "slug": "other", "app": "acme.app.test"}, "domain"),
    ],
)
async def test_each_reserved_name_is_unique(
    database: Database, fast_hasher: PasswordHasher, clash: dict[str, str], field: str
) -> None:
    owner = await _user(database, fast_hasher)
    await _create(database, owner)
    with pytest.raises(Conflict) as caught:
        await _create(database, owner, **clash)
    assert caught.value.field == field
    async with database.sessionmaker() as s:
        assert len(await registry.list_exocorps(s)) == 1


async def test_concurrent_reservations_of_one_slug_have_one_winner(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    owners = [await _user(database, fast_hasher, f"u{i}@example.com") for i in range(6)]
    results = await asyncio.gather(
        *(
            _create(
                database,
                owner,
                exocorp_id=f"corp-{i}",
                slug="contested",
                portal=f"p{i}.portal.test",
                app=f"a{i}.app.test",
            )
            for i, owner in enumerate(owners)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, ExocorpRecord)]
    losers = [r for r in results if isinstance(r, Conflict)]
    assert (len(winners), len(losers)) == (1, 5), results
    assert {loser.field for loser in losers} == {"slug"}
    async with database.sessionmaker() as s:
        rows = await registry.list_exocorps(s)
        assert [r.id for r in rows] == [winners[0].id]
        # The losers left nothing behind, not even a membership.
        for owner in owners:
            expected = 1 if owner == winners[0].owner_user_id else 0
            assert len(await registry.list_user_exocorps(s, owner)) == expected


async def test_conflict_keeps_the_callers_transaction_usable(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    owner = await _user(database, fast_hasher)
    await _create(database, owner)
    async with database.sessionmaker.begin() as s:
        with pytest.raises(Conflict):
            await registry.create_exocorp(
                s,
                exocorp_id="x",
                slug="acme",
                owner_user_id=owner,
                display_name="X",
                portal_domain="x.portal.test",
                app_domain="x.app.test",
            )
        await registry.create_exocorp(
            s,
            exocorp_id="y",
            slug="why",
            owner_user_id=owner,
            display_name="Y",
            portal_domain="y.portal.test",
            app_domain="y.app.test",
        )
    async with database.sessionmaker() as s:
        assert [r.id for r in await registry.list_exocorps(s)] == ["acme-1", "y"]


async def test_unknown_owner_and_equal_domains_are_refused(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    with pytest.raises(NotFound):
        await _create(database, "usr_missing")
    owner = await _user(database, fast_hasher)
    with pytest.raises(ValueError, match="differ"):
        await _create(database, owner, portal="same.test", app="same.test")


async def test_destroyed_exocorps_keep_their_names(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    owner = await _user(database, fast_hasher)
    await _create(database, owner)
    async with database.sessionmaker.begin() as s:
        first = await registry.mark_destroyed(s, "acme-1", now=clock())
        clock.advance(hours=1)
        again = await registry.mark_destroyed(s, "acme-1", now=clock())
    assert first.destroyed_at == again.destroyed_at != clock()
    with pytest.raises(Conflict, match="belonged to an exocorp that was destroyed"):
        await _create(database, owner, exocorp_id="acme-2")
    async with database.sessionmaker() as s:
        assert await registry.list_exocorps(s) == []
        assert len(await registry.list_exocorps(s, include_destroyed=True)) == 1
        assert await registry.list_user_exocorps(s, owner) == []


async def test_memberships(database: Database, fast_hasher: PasswordHasher) -> None:
    owner = await _user(database, fast_hasher)
    member = await _user(database, fast_hasher, "bob@example.com")
    stranger = await _user(database, fast_hasher, "eve@example.com")
    await _create(database, owner)
    async with database.sessionmaker.begin() as s:
        await registry.add_member(s, exocorp_id="acme-1", user_id=member)
        with pytest.raises(Conflict):
            await registry.add_member(s, exocorp_id="acme-1", user_id=member)
        with pytest.raises(NotFound):
            await registry.add_member(s, exocorp_id="nope", user_id=member)
        with pytest.raises(NotFound):
            await registry.add_member(s, exocorp_id="acme-1", user_id="usr_missing")
    async with database.sessionmaker.begin() as s:
        assert await registry.get_role(s, exocorp_id="acme-1", user_id=member) is Role.MEMBER
        assert await registry.get_role(s, exocorp_id="acme-1", user_id=stranger) is None
        members = await registry.list_members(s, "acme-1")
        assert {(m.user_id, m.role) for m in members} == {
            (owner, Role.OWNER),
            (member, Role.MEMBER),
        }
        assert [m.role for m in await registry.list_user_exocorps(s, member)] == [Role.MEMBER]
        with pytest.raises(Conflict):
            await registry.remove_member(s, exocorp_id="acme-1", user_id=owner)
        assert await registry.remove_member(s, exocorp_id="acme-1", user_id=member)
        assert not await registry.remove_member(s, exocorp_id="acme-1", user_id=member)
        assert await registry.list_user_exocorps(s, member) == []
