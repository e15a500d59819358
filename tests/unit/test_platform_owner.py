"""Platform-owner bootstrap against the takeover of issue 13 (1): an attacker who signs up with the
admin's e-mail before the admin runs ``exocorp platform-owner`` must not become platform owner."""

from __future__ import annotations

from pathlib import Path

import pytest

from exocorp import cli
from exocorp.api_gateway.main import (
    StartupError,
    bootstrap_configured_owner,
    bootstrap_platform_owner,
)
from exocorp.security import PasswordHasher
from exocorp.store import accounts
from exocorp.store.errors import Conflict
from tests.plugins.gateway import Gateway, GatewayFactory

pytestmark = pytest.mark.unit

ADMIN = "admin@example.com"
ADMIN_PASSWORD = "the admin's own password"
ATTACKER_PASSWORD = "attacker knows this one"


async def _attacker_signs_up_first(gateway: Gateway) -> None:
    response = await gateway.client.post("/api/auth/signup",
                                          json={"email": ADMIN, "password": ATTACKER_PASSWORD})
    assert response.status == 201


async def test_an_existing_account_is_never_promoted_silently(gateway: Gateway) -> None:
    await _attacker_signs_up_first(gateway)
    with pytest.raises(Conflict, match="already registered"):
        await bootstrap_platform_owner(gateway.database, ADMIN, ADMIN_PASSWORD,
                                       hasher=PasswordHasher.for_tests(), only_if_none=False)
    # The attacker's session still has no admin power.
    assert (await gateway.client.get("/api/admin/companies")).status == 403
    async with gateway.database.sessionmaker() as s:
        user = await accounts.find_user_by_email(s, ADMIN)
    assert user is not None
    assert not user.platform_owner


async def test_an_explicit_promotion_resets_the_password_and_ends_every_session(
        gateway: Gateway) -> None:
    await _attacker_signs_up_first(gateway)
    created = await bootstrap_platform_owner(gateway.database, ADMIN, ADMIN_PASSWORD,
                                             hasher=PasswordHasher.for_tests(),
                                             only_if_none=False, promote_existing=True)
    assert created is not None
    assert created.user.platform_owner
    assert created.recovery_kit.reveal().startswith("EXO-")
    assert (await gateway.client.get("/api/admin/companies")).status == 401
    attacker = await gateway.new_client().post(
        "/api/auth/login", json={"email": ADMIN, "password": ATTACKER_PASSWORD})
    assert attacker.status == 401
    admin = gateway.new_client()
    response = await admin.post("/api/auth/login",
                                json={"email": ADMIN, "password": ADMIN_PASSWORD})
    assert response.status == 200
    assert (await admin.get("/api/admin/companies")).status == 200


async def test_the_gateway_start_refuses_an_owner_e_mail_held_by_someone_else(
        gateway: Gateway) -> None:
    await _attacker_signs_up_first(gateway)
    with pytest.raises(StartupError, match="--promote-existing"):
        await bootstrap_configured_owner(gateway.database, ADMIN, ADMIN_PASSWORD,
                                         hasher=PasswordHasher.for_tests())


async def test_public_signup_opens_only_once_a_platform_owner_exists(
        make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(signup_requires_owner=True)
    response = await gateway.client.post("/api/auth/signup",
                                         json={"email": ADMIN, "password": ATTACKER_PASSWORD})
    assert response.status == 403
    assert (await response.json())["code"] == "signup_closed"
    async with gateway.database.sessionmaker() as s:
        assert await accounts.list_users(s) == []
    await bootstrap_platform_owner(gateway.database, ADMIN, ADMIN_PASSWORD,
                                   hasher=PasswordHasher.for_tests())
    await gateway.signup("someone@example.com")


def test_the_command_refuses_an_existing_account_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    password_file = tmp_path / "password"
    password_file.write_text(ADMIN_PASSWORD)
    args = ["platform-owner", "--email", ADMIN, "--password-file", str(password_file),
            "--database-url", url]
    assert cli.main(args) == 0
    capsys.readouterr()
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--promote-existing" in err
    assert "Traceback" not in err
    assert cli.main([*args, "--promote-existing"]) == 0
    out = capsys.readouterr().out
    assert "password reset" in out
    assert "EXO-" in out
