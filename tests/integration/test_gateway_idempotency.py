"""Idempotency-Key against the real gateway process, the real operator and control plane:
a replay answers the identical response and acts once; a gateway killed right after its
Kubernetes write (and before it answered or stored the result) is restarted, and the retry gets
the original result with exactly one action and one accepted audit event; PostgreSQL stopped
under concurrent writers: 503 with Retry-After (never 500), recovery without a gateway restart,
no committed write lost, one effect per key."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from exocorp.api_gateway.idempotency import CRASH_AFTER_KUBE_WRITE_ENV
from exocorp.k8s import Kube
from exocorp.k8s import resources as r
from exocorp.lifecycle import perform
from exocorp.store import open_database
from exocorp.store.schema import AuditEvent, ExocorpRecord
from exocorp.testing.platform import PLATFORM_NAMESPACE, GatewayProcess
from exocorp.testing.postgres import restartable_postgres
from exocorp.testing.waiting import eventually
from tests.plugins.cluster import ClusterInfo
from tests.plugins.gateway_cluster import PASSWORD, Api, sample_draft, unique_slug
from tests.plugins.platform import CANARY_SECRET

pytestmark = pytest.mark.integration

Reply = tuple[int, Any, dict[str, str]]


async def until(condition: Any, *, within: float, what: str) -> None:
    async def probe() -> bool:
        return bool(condition())

    await eventually(probe, within=within, what=what)


async def post(api: Api, path: str, key: str | None, body: Any = None) -> Reply:
    headers = {"Idempotency-Key": key} if key else {}
    kwargs: dict[str, Any] = {"headers": headers}
    if body is not None:
        kwargs["json"] = body
    async with api.session.post(api.base + path, **kwargs) as response:
        text = await response.text()
        data = (await response.json(content_type=None)) if text else None
        return response.status, data, dict(response.headers)


def start_gateway(cluster: ClusterInfo, tmp_path: Path, database_url: str, *,
                  crash_key: str | None = None, stale_seconds: float = 2.0) -> GatewayProcess:
    env = {CRASH_AFTER_KUBE_WRITE_ENV: crash_key} if crash_key else {}
    gateway = GatewayProcess(cluster.kubeconfig, tmp_path / f"gw-{uuid.uuid4().hex[:6]}",
                             database_url, env=env,
                             extra_args=("--idempotency-stale-seconds", str(stale_seconds),
                                         "--auth-cache-seconds", "0"))
    gateway.start()
    return gateway


async def events(database_url: str, action: str, exocorp_id: str) -> list[AuditEvent]:
    database = open_database(database_url)
    try:
        async with database.sessionmaker() as s:
            return list((await s.execute(select(AuditEvent).where(
                AuditEvent.action == action, AuditEvent.exocorp_id == exocorp_id))).scalars())
    finally:
        await database.dispose()


async def running_company(api: Api, slug: str) -> dict[str, Any]:
    await api.ok("POST", "/api/registry/companies", 201,
                 json={"slug": slug, "displayName": "Idem", "draft": sample_draft("1.0.0")})
    await api.ok("POST", "/api/registry/provider-secrets", 201,
                  json={"provider": "anthropic", "name": f"k-{slug}", "value": CANARY_SECRET})
    await api.ok("POST", f"/api/registry/companies/{slug}/provision", 202)
    return await api.wait_phase(slug, "Running")


async def retry_until_answered(api: Api, path: str, key: str, body: Any = None,
                               *, within: float = 60) -> tuple[Reply, list[int]]:
    """Retry as a client does: on 409 idempotency_in_progress and 503, after Retry-After."""
    seen: list[int] = []
    deadline = time.monotonic() + within
    while True:
        reply = await post(api, path, key, body)
        seen.append(reply[0])
        retryable = reply[0] == 503 or (reply[0] == 409 and reply[1].get("code")
                                        == "idempotency_in_progress")
        if not retryable or time.monotonic() > deadline:
            return reply, seen
        await asyncio.sleep(min(float(reply[2].get("Retry-After", "1")), 2.0))


async def test_a_replay_is_identical_and_acts_once(
        cluster: ClusterInfo, platform: Kube, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    gateway = start_gateway(cluster, tmp_path, url)
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            api = Api(gateway.url, http)
            await api.signup()
            slug = unique_slug("idem")
            await running_company(api, slug)
            before = await platform.get(r.EXOCORPS, slug)
            key = str(uuid.uuid4())
            path = f"/api/registry/companies/{slug}/restart"
            first = await post(api, path, key, {"reason": "once"})
            assert first[0] == 202, first
            written = await platform.get(r.EXOCORPS, slug)
            assert written["metadata"]["generation"] == before["metadata"]["generation"] + 1
            replays = [await post(api, path, key, {"reason": "once"}) for _ in range(3)]
            for replay in replays:
                assert (replay[0], replay[1]) == (first[0], first[1])
                assert replay[2]["Idempotent-Replayed"] == "true"
            other = await post(api, path, key, {"reason": "twice"})
            assert (other[0], other[1]["code"]) == (422, "idempotency_key_reused")
            after = await platform.get(r.EXOCORPS, slug)
            assert after["metadata"]["generation"] == written["metadata"]["generation"]
            assert after["spec"].get("restartAt") == written["spec"].get("restartAt")
            restarts = await events(url, "restart", slug)
            assert [e.outcome.value for e in restarts] == ["succeeded"]

            # Concurrent requests with one key: one runs, the others wait their turn (409) or,
            # once it finished, get its answer; never a second action.
            await api.settled(slug)
            before = await platform.get(r.EXOCORPS, slug)
            key = str(uuid.uuid4())
            assert gateway.process is not None
            os.kill(gateway.process.pid, signal.SIGSTOP)  # line them up
            try:
                racing = [asyncio.create_task(post(api, path, key, {"reason": "race"}))
                          for _ in range(5)]
                await asyncio.sleep(0.5)
            finally:
                os.kill(gateway.process.pid, signal.SIGCONT)
            replies = await asyncio.gather(*racing)
            original = [x for x in replies if x[0] == 202
                        and "Idempotent-Replayed" not in x[2]]
            busy = [x for x in replies if x[0] == 409]
            assert len(original) == 1, [x[:2] for x in replies]
            assert busy, [x[:2] for x in replies]
            for reply in busy:
                assert reply[1]["code"] == "idempotency_in_progress"
                assert int(reply[2]["Retry-After"]) >= 1
            assert all(x in original or x in busy or x[2].get("Idempotent-Replayed") == "true"
                       for x in replies)
            after = await platform.get(r.EXOCORPS, slug)
            assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
            assert [e.outcome.value for e in await events(url, "restart", slug)] == [
                "succeeded", "succeeded"]
    finally:
        gateway.stop()


async def test_a_gateway_killed_after_its_kubernetes_write_never_acts_twice(
        cluster: ClusterInfo, platform: Kube, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/gateway.db"
    create_key, restart_key = str(uuid.uuid4()), str(uuid.uuid4())
    slug = unique_slug("crash")
    company = {"slug": slug, "displayName": "Crash", "draft": sample_draft("1.0.0")}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        # 1. Company create: the process dies after creating the object, before the
        #    registry row commits.
        gateway = start_gateway(cluster, tmp_path, url, crash_key=create_key)
        try:
            api = Api(gateway.url, http)
            await api.signup()
            with pytest.raises(aiohttp.ClientError):
                await post(api, "/api/registry/companies", create_key, company)
            assert gateway.process is not None
            await until(lambda: not gateway.process.alive(),  # type: ignore[union-attr]
                        within=10, what="gateway exited")
        finally:
            gateway.kill()
        assert await platform.get_or_none(r.EXOCORPS, slug) is not None  # made, not recorded

        # 2. A new gateway on the same database; the retry adopts the object.
        gateway = start_gateway(cluster, tmp_path, url, crash_key=restart_key)
        try:
            api = Api(gateway.url, http)
            (status, created, _), _ = await retry_until_answered(
                api, "/api/registry/companies", create_key, company)
            assert (status, created["id"]) == (201, slug), created
            replay = await post(api, "/api/registry/companies", create_key, company)
            assert (replay[0], replay[1]) == (201, created)
            assert [e.outcome.value for e in await events(url, "company.create", slug)] == [
                "succeeded"]
            database = open_database(url)
            try:
                async with database.sessionmaker() as s:
                    assert await s.scalar(select(func.count()).select_from(
                        ExocorpRecord).where(ExocorpRecord.slug == slug)) == 1
            finally:
                await database.dispose()

            await api.ok("POST", "/api/registry/provider-secrets", 201, json={
                "provider": "anthropic", "name": "main", "value": CANARY_SECRET})
            await api.ok("POST", f"/api/registry/companies/{slug}/provision", 202)
            await api.wait_phase(slug, "Running")
            before = await platform.get(r.EXOCORPS, slug)
            revisions = len((await platform.list(
                r.CONTROLLERREVISIONS, PLATFORM_NAMESPACE,
                label_selector=f"exocorp.io/exocorp={slug}"))["items"])

            # 3. Restart: the process dies right after the patch that carries the action.
            path = f"/api/registry/companies/{slug}/restart"
            with pytest.raises(aiohttp.ClientError):
                await post(api, path, restart_key, {"reason": "crash test"})
            await until(lambda: not gateway.process.alive(),  # type: ignore[union-attr]
                        within=10, what="gateway exited")
        finally:
            gateway.kill()
        written = await platform.get(r.EXOCORPS, slug)
        assert written["metadata"]["generation"] == before["metadata"]["generation"] + 1
        assert written["spec"]["restartAt"] != before["spec"].get("restartAt")
        assert perform.applied_requests(written)[-1]["action"] == "restart"
        assert await events(url, "restart", slug) == []  # it died before auditing

        # 4. A new gateway, the client retries with its key: the original result, no 2nd action.
        gateway = start_gateway(cluster, tmp_path, url)
        try:
            api = Api(gateway.url, http)
            (status, body, _headers), seen = await retry_until_answered(
                api, path, restart_key, {"reason": "crash test"})
            assert status == 202, (status, body)
            assert set(seen[:-1]) <= {409}  # the dead request's claim, until it went stale
            assert (body["action"], body["exocorpId"]) == ("restart", slug)
            after = await platform.get(r.EXOCORPS, slug)
            assert after["metadata"]["generation"] == written["metadata"]["generation"]
            assert after["spec"]["restartAt"] == written["spec"]["restartAt"]
            again = await post(api, path, restart_key, {"reason": "crash test"})
            assert (again[0], again[1], again[2]["Idempotent-Replayed"]) == (202, body, "true")
            audit = await events(url, "restart", slug)
            assert [e.outcome.value for e in audit] == ["succeeded"]
            assert (audit[0].details or {}).get("recoveredRetry") is True
            await api.settled(slug)
            final = await platform.get(r.EXOCORPS, slug)
            assert final["metadata"]["generation"] == written["metadata"]["generation"]
            assert len((await platform.list(
                r.CONTROLLERREVISIONS, PLATFORM_NAMESPACE,
                label_selector=f"exocorp.io/exocorp={slug}"))["items"]) <= revisions + 1
        finally:
            gateway.stop()


async def test_postgresql_restarted_under_traffic(
        cluster: ClusterInfo, platform: Kube, tmp_path: Path) -> None:
    with restartable_postgres("exocorp_outage") as (server, postgres):
        gateway = start_gateway(cluster, tmp_path, server.url, stale_seconds=3.0)
        try:
            await _outage(gateway, postgres, server.url, platform)
        finally:
            gateway.stop()


async def _outage(gateway: GatewayProcess, postgres: Any, url: str, platform: Kube) -> None:
    writers, outage_seconds = 4, 4.0
    statuses: Counter[int] = Counter()
    during: Counter[int] = Counter()
    bad: list[Any] = []
    created: dict[str, str] = {}  # slug -> key, for every 201 a client received
    attempts: dict[str, int] = Counter()
    phase = {"down": False, "done": False}
    marks: dict[str, float] = {}

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        api = Api(gateway.url, http)
        await api.ok("POST", "/api/auth/signup", 201,
                     json={"email": "writer@example.com", "password": PASSWORD})
        prefix = unique_slug("pg")

        async def writer(n: int) -> None:
            i = 0
            while not phase["done"]:
                slug, key = f"{prefix}-{n}-{i}", str(uuid.uuid4())
                i += 1
                while True:  # retry this one create with its key until it has an answer
                    attempts[slug] += 1
                    try:
                        status, body, headers = await post(
                            api, "/api/registry/companies", key,
                            {"slug": slug, "displayName": "Writer"})
                    except aiohttp.ClientError as error:
                        bad.append(("connection", repr(error)))
                        await asyncio.sleep(0.2)
                        continue
                    statuses[status] += 1
                    if phase["down"]:
                        during[status] += 1
                    if status == 503:
                        if "Retry-After" not in headers:
                            bad.append(("503 without Retry-After", body))
                        await asyncio.sleep(0.3)
                        continue
                    if status == 409 and body["code"] == "idempotency_in_progress":
                        await asyncio.sleep(0.3)
                        continue
                    if status == 201:
                        created[slug] = key
                        if "up" in marks and "first_ok" not in marks:
                            marks["first_ok"] = time.monotonic()
                    else:
                        bad.append((status, body))
                    break

        tasks = [asyncio.create_task(writer(n)) for n in range(writers)]
        try:
            await until(lambda: len(created) >= 6, within=60, what="writes before outage")
            postgres.stop()
            phase["down"] = True
            marks["down"] = time.monotonic()

            async def readiness() -> int:
                async with http.get(gateway.url + "/readyz") as response:
                    return response.status

            await eventually(readiness, lambda s: s == 503, within=10, what="readyz 503")
            await asyncio.sleep(outage_seconds)
            postgres.start()
            phase["down"] = False
            marks["up"] = time.monotonic()
            await eventually(readiness, lambda s: s == 200, within=60, what="readyz 200 again")
            marks["ready"] = time.monotonic()
            settled = len(created)
            await until(lambda: len(created) >= settled + 6, within=60,
                        what="writes after the outage")
        finally:
            phase["done"] = True
            await asyncio.gather(*tasks, return_exceptions=True)

    assert statuses[500] == 0, statuses
    assert not bad, bad[:5]
    assert during[503] > 0, during
    assert set(during) <= {503, 409, 201}, during  # 201: answered before the stop took effect
    database = open_database(url)
    try:
        async with database.sessionmaker() as s:
            rows = set((await s.execute(select(ExocorpRecord.slug).where(
                ExocorpRecord.slug.like(f"{prefix}-%")))).scalars())
    finally:
        await database.dispose()
    assert set(created) <= rows  # every acknowledged write survived
    objects = {o["metadata"]["name"] for o in (await platform.list_all(r.EXOCORPS))["items"]
               if o["metadata"]["name"].startswith(prefix)}
    assert rows == objects  # one object per row, nothing half-made
    assert len(rows) == len(created)  # no effect without an acknowledged answer
    print(f"\noutage figures: requests={sum(statuses.values())} during_outage="
          f"{sum(during.values())} 503s={during[503]} statuses={dict(statuses)} "
          f"created={len(created)} retried_keys={sum(1 for v in attempts.values() if v > 1)} "
          f"ready_after_start={marks['ready'] - marks['up']:.1f}s "
          f"first_write_after_start={marks.get('first_ok', marks['ready']) - marks['up']:.1f}s")
    with contextlib.suppress(Exception):
        for slug in rows:
            await platform.delete(r.EXOCORPS, slug)
