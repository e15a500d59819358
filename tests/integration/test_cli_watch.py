"""`exocorp watch` follows an exocorp's live stream from the real gateway while the real operator
moves it: run as a person runs it (the installed command, in its own process, logged in with
`exocorp login`), it prints each phase as it happens, exits 0 at `--until`, and ends when the
exocorp is destroyed."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.plugins.canary import CANARY_SECRET
from tests.plugins.gateway_cluster import PASSWORD, GatewayUnderTest, sample_draft, unique_slug

pytestmark = pytest.mark.integration
WITHIN = 180


class Cli:
    """The `exocorp` command in a subprocess, with its own credentials file."""

    def __init__(self, config: Path) -> None:
        self.env = {**os.environ, "EXOCORP_CONFIG": str(config)}

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "exocorp.cli", *args, env=self.env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)

    async def run(self, *args: str) -> str:
        proc = await self.start(*args)
        out, err = await proc.communicate()
        assert proc.returncode == 0, f"exocorp {' '.join(args)}: {err.decode()}"
        return out.decode()


async def _line(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=WITHIN)
    assert line, "the watch ended early"
    return line.decode().strip()


async def test_watch_prints_the_phases_as_they_happen_and_ends_with_the_exocorp(
        gateway: GatewayUnderTest, tmp_path: Path) -> None:
    api = gateway.client()
    email = f"{unique_slug('watcher')}@example.com"
    await api.signup(email)
    slug = unique_slug("watch")
    await api.ok("POST", "/api/registry/companies", 201,
                 json={"slug": slug, "displayName": "Watched"})
    await api.ok("POST", f"/api/registry/companies/{slug}/draft", 201,
                 json={"draft": sample_draft()})
    await api.ok("POST", "/api/registry/provider-secrets", 201,
                 json={"provider": "anthropic", "name": "main", "value": CANARY_SECRET})
    cli = Cli(tmp_path / "credentials.json")
    password = tmp_path / "password"
    password.write_text(PASSWORD + "\n")
    await cli.run("login", "--server", gateway.base, "--email", email,
                  "--password-file", str(password))

    watch = await cli.start("watch", slug, "--until", "Running")
    try:
        # The stream opens with the exocorp as it is, before anything happens to it.
        assert (await _line(watch)).startswith(f"{slug}: Draft (")
        await cli.run("provision", slug)
        seen = [await _line(watch)]
        while not seen[-1].startswith(f"{slug}: Running"):
            seen.append(await _line(watch))
        assert await asyncio.wait_for(watch.wait(), timeout=WITHIN) == 0
    finally:
        if watch.returncode is None:
            watch.kill()
            await watch.wait()
    phases = [line.split()[1] for line in seen]
    assert phases[0] in ("Provisioning", "Starting"), seen
    # In order: never back to an earlier phase on the way up.
    order = ["Provisioning", "Starting", "Running"]
    assert [order.index(p) for p in phases] == sorted(order.index(p) for p in phases), seen
    assert "version 1.0.0, revision 1" in seen[-1]

    follow = await cli.start("watch", slug)
    try:
        assert (await _line(follow)).startswith(f"{slug}: Running")
        await cli.run("destroy", slug, "--confirm", slug)
        last = await _line(follow)
        while last != f"{slug}: deleted":
            assert last.startswith(f"{slug}: Destroying"), last
            last = await _line(follow)
        assert await asyncio.wait_for(follow.wait(), timeout=WITHIN) == 0
    finally:
        if follow.returncode is None:
            follow.kill()
            await follow.wait()
    assert CANARY_SECRET not in (tmp_path / "credentials.json").read_text()
