"""Accounts: signup with billing account, credit and recovery kit; password and kit logins."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from exocorp.security import PasswordHasher, hash_token
from exocorp.store import (
    AccountDisabled,
    Conflict,
    Database,
    InvalidCredentials,
    accounts,
    billing,
)
from exocorp.store.schema import CreditEntry, CreditKind, RecoveryKit, User
from tests.plugins.database import FakeClock

pytestmark = pytest.mark.integration


async def _signup(
    db: Database, hasher: PasswordHasher, email: str = "Ada@Example.com", credit: int = 500
) -> accounts.NewUser:
    async with db.sessionmaker.begin() as s:
        return await accounts.create_user(
            s, email=email, password="pw-1234567", signup_credit=credit, hasher=hasher
        )


async def test_signup_creates_account_credit_and_kit(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    new = await _signup(database, fast_hasher, credit=500)
    assert new.user.email == "Ada@Example.com"
    assert new.user.email_normalized == "ada@example.com"
    assert not new.user.platform_owner
    assert new.account.user_id == new.user.id
    async with database.sessionmaker() as s:
        account = await billing.get_account_for_user(s, new.user.id)
        credits = await billing.list_credits(s, account.id)
        kit_row = await s.get(RecoveryKit, new.user.id)
        stored_user = await accounts.get_user(s, new.user.id)
        assert await billing.ledger_balance(s, account.id) == 500
    assert account.balance == 500
    assert [(c.kind, c.amount) for c in credits] == [(CreditKind.SIGNUP, 500)]
    # Only hashes are stored.
    assert kit_row is not None
    assert kit_row.kit_hash == hash_token(new.recovery_kit.reveal())
    assert stored_user.password_hash.startswith("$argon2id$")
    assert "pw-1234567" not in stored_user.password_hash


async def test_zero_signup_credit_writes_no_credit_entry(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    new = await _signup(database, fast_hasher, credit=0)
    async with database.sessionmaker() as s:
        assert await billing.list_credits(s, new.account.id) == []
        assert (await billing.get_account(s, new.account.id)).balance == 0


async def test_email_is_unique_case_insensitively(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    await _signup(database, fast_hasher, email="ada@example.com")
    with pytest.raises(Conflict) as caught:
        await _signup(database, fast_hasher, email="  ADA@example.COM ")
    assert caught.value.field == "email"
    async with database.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(User)) == 1
        assert await accounts.find_user_by_email(s, "Ada@EXAMPLE.com") is not None


async def test_concurrent_signups_with_one_email_create_one_user(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    results = await asyncio.gather(
        *(
            _signup(database, fast_hasher, email="race@x.io" if i % 2 else "RACE@x.io")
            for i in range(6)
        ),
        return_exceptions=True,
    )
    created = [r for r in results if isinstance(r, accounts.NewUser)]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert (len(created), len(conflicts)) == (1, 5), results
    async with database.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(User)) == 1
        assert await s.scalar(select(func.count()).select_from(CreditEntry)) == 1


async def test_password_login(database: Database, fast_hasher: PasswordHasher) -> None:
    new = await _signup(database, fast_hasher)
    async with database.sessionmaker.begin() as s:
        user = await accounts.authenticate_password(
            s, email="ADA@example.com", password="pw-1234567", hasher=fast_hasher
        )
        assert user.id == new.user.id
        for email, password in [("ada@example.com", "wrong"), ("nobody@example.com", "pw")]:
            with pytest.raises(InvalidCredentials) as caught:
                await accounts.authenticate_password(
                    s, email=email, password=password, hasher=fast_hasher
                )
            assert str(caught.value) == "wrong email or password"  # same answer for both


async def test_password_login_upgrades_weak_hashes(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    new = await _signup(database, fast_hasher)
    stronger = PasswordHasher()
    async with database.sessionmaker.begin() as s:
        await accounts.authenticate_password(
            s, email="ada@example.com", password="pw-1234567", hasher=stronger
        )
    async with database.sessionmaker() as s:
        rehashed = (await accounts.get_user(s, new.user.id)).password_hash
    assert not stronger.needs_rehash(rehashed)
    assert rehashed != new.user.password_hash


async def test_disabled_user_cannot_log_in(database: Database, fast_hasher: PasswordHasher) -> None:
    new = await _signup(database, fast_hasher)
    async with database.sessionmaker.begin() as s:
        await accounts.set_disabled(s, new.user.id, True)
    async with database.sessionmaker.begin() as s:
        with pytest.raises(AccountDisabled):
            await accounts.authenticate_password(
                s, email="ada@example.com", password="pw-1234567", hasher=fast_hasher
            )
        with pytest.raises(AccountDisabled):
            await accounts.authenticate_recovery_kit(
                s, email="ada@example.com", kit=new.recovery_kit.reveal()
            )
        with pytest.raises(InvalidCredentials):  # a wrong password says nothing about the state
            await accounts.authenticate_password(
                s, email="ada@example.com", password="nope", hasher=fast_hasher
            )


async def test_recovery_kit_login_rotates_the_kit(
    database: Database, fast_hasher: PasswordHasher, clock: FakeClock
) -> None:
    new = await _signup(database, fast_hasher)
    first = new.recovery_kit.reveal()
    typed = first.lower().replace("-", " ")  # copied sloppily from paper
    async with database.sessionmaker.begin() as s:
        login = await accounts.authenticate_recovery_kit(
            s, email="ada@example.com", kit=typed, now=clock()
        )
    second = login.recovery_kit.reveal()
    assert login.user.id == new.user.id
    assert second != first
    async with database.sessionmaker.begin() as s:
        with pytest.raises(InvalidCredentials):  # the used kit is spent
            await accounts.authenticate_recovery_kit(s, email="ada@example.com", kit=first)
        kit_row = await s.get(RecoveryKit, new.user.id)
        assert kit_row is not None
        assert kit_row.generation == 2
        assert kit_row.kit_hash == hash_token(second)
    async with database.sessionmaker.begin() as s:
        third = await accounts.authenticate_recovery_kit(s, email="ada@example.com", kit=second)
    assert third.recovery_kit.reveal() not in (first, second)


async def test_recovery_kit_belongs_to_its_user(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    ada = await _signup(database, fast_hasher, email="ada@example.com")
    await _signup(database, fast_hasher, email="bob@example.com")
    async with database.sessionmaker.begin() as s:
        for kit in (ada.recovery_kit.reveal(), "EXO-not-a-kit", ""):
            with pytest.raises(InvalidCredentials):
                await accounts.authenticate_recovery_kit(s, email="bob@example.com", kit=kit)


async def test_one_kit_used_concurrently_logs_in_once(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    new = await _signup(database, fast_hasher)

    async def use() -> accounts.KitLogin:
        async with database.sessionmaker.begin() as s:
            return await accounts.authenticate_recovery_kit(
                s, email="ada@example.com", kit=new.recovery_kit.reveal()
            )

    results = await asyncio.gather(*(use() for _ in range(4)), return_exceptions=True)
    logins = [r for r in results if isinstance(r, accounts.KitLogin)]
    assert len(logins) == 1, results
    assert all(isinstance(r, InvalidCredentials) for r in results if r not in logins)
    async with database.sessionmaker() as s:
        kit_row = await s.get(RecoveryKit, new.user.id)
    assert kit_row is not None
    assert kit_row.kit_hash == hash_token(logins[0].recovery_kit.reveal())


async def test_rotate_recovery_kit_on_request(
    database: Database, fast_hasher: PasswordHasher
) -> None:
    new = await _signup(database, fast_hasher)
    async with database.sessionmaker.begin() as s:
        fresh = await accounts.rotate_recovery_kit(s, new.user.id)
    async with database.sessionmaker.begin() as s:
        with pytest.raises(InvalidCredentials):
            await accounts.authenticate_recovery_kit(
                s, email="ada@example.com", kit=new.recovery_kit.reveal()
            )
        await accounts.authenticate_recovery_kit(s, email="ada@example.com", kit=fresh.reveal())


async def test_set_password(database: Database, fast_hasher: PasswordHasher) -> None:
    new = await _signup(database, fast_hasher)
    async with database.sessionmaker.begin() as s:
        await accounts.set_password(s, new.user.id, "new-password", hasher=fast_hasher)
    async with database.sessionmaker.begin() as s:
        await accounts.authenticate_password(
            s, email="ada@example.com", password="new-password", hasher=fast_hasher
        )
        with pytest.raises(InvalidCredentials):
            await accounts.authenticate_password(
                s, email="ada@example.com", password="pw-1234567", hasher=fast_hasher
            )


async def test_bootstrap_platform_owner(database: Database, fast_hasher: PasswordHasher) -> None:
    async with database.sessionmaker.begin() as s:
        created = await accounts.bootstrap_platform_owner(
            s, email="root@example.com", password="pw", hasher=fast_hasher
        )
    assert created.user.platform_owner
    assert not created.promoted
    plain = await _signup(database, fast_hasher, email="ops@example.com")
    # Whoever signed up with the address holds its password: never promoted silently.
    with pytest.raises(Conflict):
        async with database.sessionmaker.begin() as s:
            await accounts.bootstrap_platform_owner(
                s, email="OPS@example.com", password="owner-pw-123", hasher=fast_hasher
            )
    async with database.sessionmaker.begin() as s:
        assert not (await accounts.get_user(s, plain.user.id)).platform_owner
        taken = await accounts.bootstrap_platform_owner(
            s, email="ops@example.com", password="owner-pw-123", promote_existing=True,
            hasher=fast_hasher,
        )
    assert taken.promoted
    assert taken.user.id == plain.user.id
    async with database.sessionmaker.begin() as s:
        assert (await accounts.get_user(s, plain.user.id)).platform_owner
        # The taken-back account's password and recovery kit were replaced.
        with pytest.raises(InvalidCredentials):
            await accounts.authenticate_password(
                s, email="ops@example.com", password="pw-1234567", hasher=fast_hasher
            )
        await accounts.authenticate_password(
            s, email="ops@example.com", password="owner-pw-123", hasher=fast_hasher
        )
        with pytest.raises(InvalidCredentials):
            await accounts.authenticate_recovery_kit(
                s, email="ops@example.com", kit=plain.recovery_kit.reveal()
            )
        assert len(await accounts.list_users(s)) == 2
