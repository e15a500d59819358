"""The login throttle under the attacks of issue 13 (3): concurrent guesses racing the check, every
client sharing the Ingress's address, unbounded argon2id memory, and one replica's count not seen
by another."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import argon2
import pytest
from aiohttp.test_utils import TestClient, TestServer

from exocorp.api_gateway.app import create_app
from exocorp.api_gateway.keys import HASH_GATE
from exocorp.security import PasswordHasher
from exocorp.testing.waiting import eventually
from tests.plugins.gateway import Gateway, GatewayFactory

pytestmark = pytest.mark.unit

PASSWORD = "correct horse battery"
WRONG = {"email": "ada@example.com", "password": "wrong password!"}


async def _statuses(client: Any, bodies: list[dict[str, str]],
                    headers: list[dict[str, str]] | None = None) -> Counter[int]:
    async def one(i: int) -> int:
        response = await client.post("/api/auth/login", json=bodies[i],
                                     headers=(headers or [{}] * len(bodies))[i])
        return int(response.status)
    return Counter(await asyncio.gather(*(one(i) for i in range(len(bodies)))))


async def test_concurrent_wrong_passwords_get_exactly_the_limit_of_guesses(
        make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(login_max_failures=5, login_max_failures_per_ip=1000)
    await gateway.signup("ada@example.com")
    statuses = await _statuses(gateway.new_client(), [WRONG] * 40)
    assert statuses == {401: 5, 429: 35}


async def test_behind_a_trusted_proxy_one_client_cannot_lock_out_the_others(
        make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(login_max_failures_per_ip=10, trusted_proxies=("127.0.0.0/8",))
    await gateway.signup("ada@example.com")
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    bodies = [{"email": f"user{i}@example.com", "password": "guess guess guess"}
              for i in range(50)]
    assert (await _statuses(gateway.new_client(), bodies, [attacker] * 50))[429] == 40
    neighbour = await gateway.new_client().post(
        "/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.2"})
    assert neighbour.status == 200
    # The attacker's own address stays throttled, whatever it claims further left.
    again = await gateway.new_client().post(
        "/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.2, 203.0.113.7"})
    assert again.status == 429


async def test_an_untrusted_peer_cannot_pick_its_address_with_x_forwarded_for(
        make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(login_max_failures_per_ip=10)  # no trusted proxy
    bodies = [{"email": f"user{i}@example.com", "password": "guess guess guess"}
              for i in range(20)]
    spoofed = [{"X-Forwarded-For": f"192.0.2.{i}"} for i in range(20)]
    assert (await _statuses(gateway.new_client(), bodies, spoofed)) == {401: 10, 429: 10}


class _BlockingHasher(PasswordHasher):
    """argon2id that holds every verification until released: how many run at once is then
    exactly how many the gateway let in."""

    def __init__(self) -> None:
        super().__init__(argon2.profiles.CHEAPEST)
        self.release = threading.Event()
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def verify(self, password_hash: str, password: str) -> bool:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.release.wait(timeout=30)
        with self._lock:
            self.running -= 1
        return super().verify(password_hash, password)

    def verify_nothing(self, password: str) -> bool:
        return self.verify("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA", password)


async def test_concurrent_hashes_are_bounded_and_the_rest_get_503_with_retry_after(
        make_gateway: GatewayFactory) -> None:
    hasher = _BlockingHasher()
    gateway = await make_gateway(hasher=hasher, hash_concurrency=2, hash_queue=1,
                                 login_max_failures=100, login_max_failures_per_ip=100)
    client = gateway.new_client()
    waiting = [asyncio.create_task(client.post("/api/auth/login", json=WRONG)) for _ in range(3)]
    async def running_and_queued() -> tuple[int, int]:
        return hasher.running, gateway.client.app[HASH_GATE]._waiting
    await eventually(running_and_queued, lambda n: n == (2, 1), interval=0.01,
                     what="two hashes running, one waiting")
    refused = await client.post("/api/auth/login", json=WRONG)
    assert refused.status == 503
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await refused.json())["code"] == "busy"
    hasher.release.set()
    assert [r.status for r in await asyncio.gather(*waiting)] == [401, 401, 401]
    assert hasher.peak == 2


def test_the_hash_slots_follow_the_memory_limit() -> None:
    from exocorp.api_gateway.hash_gate import hash_slots
    mib = 1024 * 1024
    assert hash_slots(memory_limit_bytes=512 * mib, hash_memory_bytes=64 * mib) == 4
    assert hash_slots(memory_limit_bytes=256 * mib, hash_memory_bytes=64 * mib) == 2
    assert hash_slots(memory_limit_bytes=128 * mib, hash_memory_bytes=64 * mib) == 1


async def test_every_replica_counts_against_the_same_limit(gateway: Gateway) -> None:
    await gateway.signup("ada@example.com")
    other = create_app(gateway.settings, kube=gateway.kube, database=gateway.database,
                       cache=gateway.cache, hasher=PasswordHasher.for_tests(),
                       clock=gateway.clock)
    replica: TestClient[Any, Any] = TestClient(TestServer(other))
    await replica.start_server()
    try:
        for _ in range(3):  # login_max_failures=3 in the fixture, spent on the first replica
            response = await gateway.new_client().post("/api/auth/login", json=WRONG)
            assert response.status == 401
        response = await replica.post("/api/auth/login",
                                      json={"email": "ada@example.com", "password": PASSWORD})
        assert response.status == 429
    finally:
        await replica.close()
