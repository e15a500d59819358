"""The `exocorp` REST client against the gateway app served over HTTP (the unit rig: the real
app, SQLite, an in-memory API server): login keeps the session in a 0600 file, the commands
print what a person needs, and failures are one line with the documented exit code."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest
import yaml

from exocorp import cli
from exocorp.client import credentials, http
from exocorp.testing import samples
from tests.plugins import gateway_admin as admin_support
from tests.plugins.gateway import Gateway

pytestmark = pytest.mark.unit
PASSWORD = "correct horse battery"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "conf" / "credentials.json"
    monkeypatch.setenv("EXOCORP_CONFIG", str(path))
    return path


async def _exocorp(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(cli.main, list(args))  # urllib blocks: not on the loop
    out, err = capsys.readouterr()
    return code, out, err


class Profiles:
    """The `exocorp` command as several people (or one person's devices), each with its own
    credentials file under tmp_path, all logging in with PASSWORD."""

    def __init__(self, gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str]) -> None:
        self.server = str(gateway.client.make_url("")).rstrip("/")
        self.secret = tmp_path / "password"
        self.secret.write_text(PASSWORD)
        self.tmp_path, self.monkeypatch, self.capsys = tmp_path, monkeypatch, capsys

    async def run(self, profile: str, *args: str) -> tuple[int, str, str]:
        self.monkeypatch.setenv("EXOCORP_CONFIG", str(self.tmp_path / profile / "credentials.json"))
        return await _exocorp(self.capsys, *args)

    async def login(self, profile: str, email: str) -> tuple[int, str, str]:
        return await self.run(profile, "login", "--server", self.server, "--email", email,
                              "--password-file", str(self.secret))


@pytest.fixture
def profiles(gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> Profiles:
    return Profiles(gateway, tmp_path, monkeypatch, capsys)


async def test_login_keeps_the_session_for_the_owner_only_and_commands_use_it(
        gateway: Gateway, config: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    server = str(gateway.client.make_url("")).rstrip("/")
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")

    code, _, err = await _exocorp(capsys, "ls")
    assert (code, err.strip()) == (http.UNAUTHENTICATED, "exocorp ls: not logged in: run "
                                   "`exocorp login --server URL --email ADDRESS`")
    code, out, _ = await _exocorp(capsys, "login", "--server", server, "--email",
                                  "ada@example.com", "--password-file", str(secret))
    assert code == 0
    assert "logged in" in out
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(config.parent).st_mode) == 0o700
    with open(config) as saved:  # noqa: ASYNC230 (a test reading a few bytes)
        assert PASSWORD not in saved.read()

    code, out, _ = await _exocorp(capsys, "ls")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["ID", "NAME", "PHASE", "VERSION"]
    assert row.split() == ["acme", "Acme", "Draft", "-"]
    code, out, _ = await _exocorp(capsys, "ls", "-o", "wide")
    assert out.splitlines()[0].split()[4:7] == ["CHANNEL", "ROLE", "READY"]
    code, out, _ = await _exocorp(capsys, "get", "acme", "-o", "json")
    assert (code, json.loads(out)["id"]) == (0, "acme")
    code, out, _ = await _exocorp(capsys, "get", "acme", "-o", "yaml")
    assert yaml.safe_load(out)["phase"] == "Draft"

    # Refusals: one line each, with the exit code scripts can rely on.
    code, _, err = await _exocorp(capsys, "get", "nope")
    assert (code, err.count("\n")) == (http.NOT_FOUND, 1)
    code, _, err = await _exocorp(capsys, "pause", "acme", "--reason", "maintenance")
    assert code == http.CONFLICT
    assert err.startswith("exocorp pause: cannot pause exocorp 'acme': it is Draft")
    assert "409 invalid_phase" in err
    code, _, err = await _exocorp(capsys, "provision", "acme")  # no credential yet
    assert (code, "provider_missing" in err) == (http.CONFLICT, True)
    code, _, err = await _exocorp(capsys, "destroy", "acme", "--confirm", "acm")
    assert (code, "confirmation_mismatch" in err) == (http.REFUSED, True)

    await gateway.client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": "sk-test-value"})
    code, out, _ = await _exocorp(capsys, "provision", "acme", "--reason", "first start")
    assert (code, out.strip()) == (0, "provision of acme accepted: phase Provisioning")
    code, out, _ = await _exocorp(capsys, "destroy", "acme", "--confirm", "acme")
    assert (code, out.strip()) == (0, "destroy of acme accepted: phase Destroying")

    code, out, _ = await _exocorp(capsys, "logout")
    assert (code, credentials.load()) == (0, None)
    code, _, _ = await _exocorp(capsys, "ls")
    assert code == http.UNAUTHENTICATED


async def test_an_unreachable_server_and_a_wrong_password_are_one_line(
        gateway: Gateway, config: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    await gateway.signup("ada@example.com")
    secret = tmp_path / "password"
    secret.write_text("not the password")
    server = str(gateway.client.make_url("")).rstrip("/")
    code, _, err = await _exocorp(capsys, "login", "--server", server, "--email",
                                  "ada@example.com", "--password-file", str(secret))
    assert code == http.UNAUTHENTICATED
    assert err.count("\n") == 1
    assert credentials.load() is None
    code, _, err = await _exocorp(capsys, "login", "--server", "http://127.0.0.1:9",
                                  "--email", "ada@example.com", "--password-file", str(secret))
    assert code == http.UNAVAILABLE
    assert err.startswith("exocorp login: cannot reach http://127.0.0.1:9")
    code, _, err = await _exocorp(capsys, "login", "--server", server, "--email",
                                  "ada@example.com", "--password-file", str(tmp_path / "none"))
    assert (code, err.count("\n")) == (http.USAGE, 1)


async def test_members_from_the_command_line(
        gateway: Gateway, profiles: Profiles, tmp_path: Path) -> None:
    await gateway.signup("owner@example.com")
    await gateway.company("acme")
    ann = gateway.new_client()
    await ann.post("/api/auth/signup", json={"email": "ann@example.com", "password": PASSWORD})
    as_ = profiles.run
    for who in ("owner", "ann"):
        assert (await profiles.login(who, f"{who}@example.com"))[0] == 0
    code, out, _ = await as_("owner", "invite", "acme", "ann@example.com", "--role", "viewer")
    assert (code, out.startswith("invited ann@example.com to acme as viewer")) == (0, True)
    code, out, _ = await as_("ann", "invitations")
    invitation = out.splitlines()[1].split()[0]
    assert out.splitlines()[1].split()[1:] == ["acme", "viewer", "owner@example.com"]
    assert (await as_("ann", "accept", invitation))[0] == 0
    code, _, err = await as_("ann", "stop", "acme")
    assert (code, "viewer_read_only" in err) == (http.UNAUTHENTICATED, True)
    code, out, _ = await as_("ann", "members", "acme", "-o", "json")
    ann_id = next(m["userId"] for m in json.loads(out)["members"] if m["role"] == "viewer")
    assert (await as_("owner", "set-role", "acme", ann_id, "member"))[0] == 0
    code, out, _ = await as_("owner", "members", "acme")
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [
        ["owner@example.com", "owner"], ["ann@example.com", "member"]]
    assert (await as_("ann", "leave", "acme"))[0] == 0
    assert (await as_("ann", "get", "acme"))[0] == http.NOT_FOUND


async def test_a_recovery_kit_login_says_to_set_a_new_password_and_password_sets_it(
        gateway: Gateway, config: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    kit = (await gateway.signup("ada@example.com"))["recoveryKit"]
    server = str(gateway.client.make_url("")).rstrip("/")
    kit_file, new_file = tmp_path / "kit", tmp_path / "new"
    kit_file.write_text(kit + "\n")
    new_file.write_text("a brand new passphrase\n")
    code, out, _ = await _exocorp(capsys, "login", "--server", server, "--email",
                                  "ada@example.com", "--recovery-kit-file", str(kit_file))
    assert code == 0
    assert kit not in out  # the used kit is dead; the new one is shown once
    assert "new recovery kit" in out
    assert ("this session was opened with the recovery kit: set a new password with "
            "`exocorp password` before anything else") in out
    code, _, err = await _exocorp(capsys, "ls")
    assert code != 0
    assert "exocorp password" in err
    code, out, _ = await _exocorp(capsys, "password", "--password-file", str(new_file))
    assert (code, out.strip()) == (0, "password changed; every other session and agent token "
                                      "of yours has ended")
    assert (await _exocorp(capsys, "ls"))[0] == 0
    again = await gateway.new_client().post("/api/auth/login", json={
        "email": "ada@example.com", "password": "a brand new passphrase"})
    assert again.status == 200


async def test_platform_owners_set_limits_and_disable_users_from_the_command_line(
        gateway: Gateway, profiles: Profiles, tmp_path: Path) -> None:
    await admin_support.platform_owner(gateway)
    ada_id = (await gateway.signup("ada@example.com"))["user"]["id"]
    as_ = profiles.run
    for who, email in (("root", admin_support.ROOT), ("ada", "ada@example.com")):
        assert (await profiles.login(who, email))[0] == 0
    code, out, _ = await as_("root", "admin", "limits")
    assert code == 0
    assert [line.split() for line in out.splitlines()] == [
        ["SCOPE", "EXOCORPS", "CPU", "MEMORY", "STORAGE"],
        ["default", "unlimited", "unlimited", "unlimited", "unlimited"],
        ["platform", "unlimited", "unlimited", "unlimited", "unlimited"],
        ["in", "use", "0", "0", "0", "0"]]

    code, out, _ = await as_("root", "admin", "limits", "set", "default", "--max-exocorps", "1",
                             "--max-memory", "1.5Gi")
    assert (code, out.strip()) == (0, "limits of default: exocorps 1, memory 1536Mi")
    # A malformed quantity: one line naming the field, and nothing changes.
    code, _, err = await as_("root", "admin", "limits", "set", "default", "--max-cpu", "lots")
    assert (code, err.count("\n"), "maxCpu" in err) == (http.REFUSED, 1, True)
    code, out, _ = await as_("root", "admin", "limits", "-o", "json")
    assert json.loads(out)["default"] == {"maxExocorps": 1, "maxMemory": "1536Mi"}
    code, _, err = await as_("ada", "admin", "limits")
    assert code == http.UNAUTHENTICATED
    assert "(403 platform_owner_required)" in err
    code, _, err = await as_("root", "admin", "limits", "set", "usr_nobody")
    assert code == http.NOT_FOUND

    code, out, _ = await as_("root", "admin", "disable", ada_id)
    assert (code, out.strip()) == (0, f"ada@example.com ({ada_id}) is disabled: every session "
                                      "of theirs has ended")
    assert (await as_("ada", "ls"))[0] == http.UNAUTHENTICATED
    code, out, _ = await as_("root", "admin", "enable", ada_id)
    assert (code, out.strip()) == (0, f"ada@example.com ({ada_id}) may log in again")
    assert (await profiles.login("ada", "ada@example.com"))[0] == 0


async def test_logout_everywhere_ends_the_sessions_of_every_device(
        gateway: Gateway, profiles: Profiles, tmp_path: Path) -> None:
    await gateway.signup("ada@example.com")
    on = profiles.run
    for device in ("laptop", "desktop"):
        assert (await profiles.login(device, "ada@example.com"))[0] == 0
    code, out, _ = await on("laptop", "logout", "--everywhere")
    assert (code, out.startswith("logged out everywhere")) == (0, True)
    assert not (tmp_path / "laptop" / "credentials.json").exists()
    assert (await on("desktop", "ls"))[0] == http.UNAUTHENTICATED
    assert (await gateway.client.get("/api/auth/me")).status == 401


async def test_the_manifest_preview_from_the_command_line(
        gateway: Gateway, config: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    await gateway.signup("ada@example.com")
    await gateway.company("acme", draft=samples.draft("1.0.0"))
    await gateway.client.post("/api/registry/provider-secrets", json={
        "provider": "anthropic", "name": "main", "value": "sk-test-value"})
    server = str(gateway.client.make_url("")).rstrip("/")
    secret = tmp_path / "password"
    secret.write_text(PASSWORD)
    assert (await _exocorp(capsys, "login", "--server", server, "--email", "ada@example.com",
                           "--password-file", str(secret)))[0] == 0

    code, out, _ = await _exocorp(capsys, "manifest", "acme")
    documents = list(yaml.safe_load_all(out))
    assert code == 0
    assert documents[0]["kind"] == "Namespace"
    assert {d["metadata"]["name"] for d in documents if d["kind"] == "Deployment"} == {
        "portal", "app", "agents"}
    assert "sk-test-value" not in out
    code, out, _ = await _exocorp(capsys, "manifest", "acme", "-o", "json")
    answer = json.loads(out)
    assert (code, answer["source"], answer["objects"]) == (0, "draft", documents)
    code, _, err = await _exocorp(capsys, "manifest", "nope")
    assert (code, err.count("\n")) == (http.NOT_FOUND, 1)
