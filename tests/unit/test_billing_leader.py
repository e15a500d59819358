"""Leader election on a Lease, against an in-memory API server that enforces resourceVersion
preconditions the way the real one does (the real one is in test_billing_cluster.py)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from exocorp.billing.leader import LeaderElector, format_micro_time
from exocorp.billing.settings import BillingSettings
from exocorp.k8s import ApiError

pytestmark = pytest.mark.unit


class FakeLeases:
    """GET / POST / PUT of Leases with optimistic concurrency, and injectable failures."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.version = 0
        self.fail = False
        self.writes = 0

    def _check(self) -> None:
        if self.fail:
            raise OSError("connection refused")

    async def get_or_none(self, resource: Any, name: str, namespace: str) -> dict[str, Any] | None:
        self._check()
        obj = self.objects.get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    async def create(self, resource: Any, body: dict[str, Any], namespace: str) -> dict[str, Any]:
        self._check()
        key = (namespace, body["metadata"]["name"])
        if key in self.objects:
            raise ApiError(409, "AlreadyExists", "leases already exists")
        return self._store(key, body)

    async def replace(self, resource: Any, name: str, body: dict[str, Any],
                      namespace: str) -> dict[str, Any]:
        self._check()
        key = (namespace, name)
        current = self.objects.get(key)
        if current is None:
            raise ApiError(404, "NotFound", "not found")
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        return self._store(key, body)

    def _store(self, key: tuple[str, str], body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        self.writes += 1
        obj = copy.deepcopy(body)
        obj["metadata"]["resourceVersion"] = str(self.version)
        self.objects[key] = obj
        return copy.deepcopy(obj)

    def spec(self) -> dict[str, Any]:
        ((_, obj),) = self.objects.items()
        spec: dict[str, Any] = obj["spec"]
        return spec


class Clock:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = datetime(2030, 1, 1, tzinfo=UTC)

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


def settings(identity: str) -> BillingSettings:
    return BillingSettings(identity=identity, lease_name="metering", namespace="exocorp-system",
                           lease_duration_seconds=15, renew_deadline_seconds=10,
                           retry_period_seconds=2)


def elector(api: FakeLeases, clock: Clock, identity: str) -> LeaderElector:
    return LeaderElector(api, settings(identity),  # type: ignore[arg-type]
                         monotonic=lambda: clock.mono, wall=lambda: clock.wall)


async def test_the_first_candidate_creates_the_lease_and_the_second_follows() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    await a.step()
    await b.step()
    assert (a.is_leader, b.is_leader) == (True, False)
    spec = api.spec()
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert spec["acquireTime"] == spec["renewTime"] == format_micro_time(clock.wall)
    assert spec["renewTime"].endswith(".000000Z")


async def test_renewal_moves_only_the_renew_time() -> None:
    api, clock = FakeLeases(), Clock()
    a = elector(api, clock, "a")
    await a.step()
    acquired = api.spec()["acquireTime"]
    clock.advance(2)
    await a.step()
    spec = api.spec()
    assert (spec["holderIdentity"], spec["acquireTime"], spec["leaseTransitions"]) == (
        "a", acquired, 0)
    assert spec["renewTime"] == format_micro_time(clock.wall)
    assert a.is_leader


async def test_a_follower_waits_a_full_duration_from_its_own_observation() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    await a.step()
    await b.step()  # b first sees a's record now
    for _ in range(7):  # a stops renewing (crashed); b keeps trying
        clock.advance(2)
        await b.step()
    assert not b.is_leader  # 14 s < 15 s since b saw the record change
    clock.advance(2)
    await b.step()
    assert b.is_leader
    spec = api.spec()
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("b", 1)
    assert spec["acquireTime"] == format_micro_time(clock.wall)


async def test_a_renewing_leader_is_never_displaced() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    for _ in range(30):
        await a.step()
        await b.step()
        clock.advance(2)
    assert (a.is_leader, b.is_leader) == (True, False)
    assert api.spec()["leaseTransitions"] == 0


async def test_of_two_takeovers_of_an_expired_lease_one_wins() -> None:
    api, clock = FakeLeases(), Clock()
    a, b, c = (elector(api, clock, n) for n in "abc")
    await a.step()
    await b.step()
    await c.step()
    clock.advance(16)
    # Both read the expired record, then both write it: the second write carries a stale
    # resourceVersion and gets 409.
    lease_b = await api.get_or_none(None, "metering", "exocorp-system")
    lease_c = await api.get_or_none(None, "metering", "exocorp-system")
    real_get = api.get_or_none
    reads = iter([lease_b, lease_c])

    async def stale_get(*args: Any) -> dict[str, Any] | None:
        return next(reads)

    api.get_or_none = stale_get  # type: ignore[method-assign]
    await b.step()
    await c.step()
    api.get_or_none = real_get  # type: ignore[method-assign]
    assert (b.is_leader, c.is_leader) == (True, False)
    assert api.spec()["holderIdentity"] == "b"


async def test_a_leader_that_cannot_renew_steps_down_at_the_deadline() -> None:
    api, clock = FakeLeases(), Clock()
    a = elector(api, clock, "a")
    await a.step()
    api.fail = True
    for _ in range(4):
        clock.advance(2)
        await a.step()
        assert a.is_leader  # 8 s without renewal: still within the 10 s deadline
    clock.advance(2)
    assert not a.is_leader  # expires by itself, even before the next attempt returns
    await a.step()
    assert not a.is_leader
    api.fail = False
    await a.step()  # nobody else took it: the same replica acquires it again
    assert a.is_leader


async def test_a_leader_that_finds_another_holder_steps_down_at_once() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    await a.step()
    # b takes over (say a was paused for longer than the lease duration).
    await b.step()
    clock.advance(16)
    await b.step()
    assert b.is_leader
    await a.step()
    assert not a.is_leader
    assert api.spec()["holderIdentity"] == "b"


async def test_release_lets_a_follower_take_over_without_waiting() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    await a.step()
    await b.step()
    await a.release()
    assert not a.is_leader
    assert "holderIdentity" not in api.spec()
    await b.step()
    assert b.is_leader
    assert api.spec()["leaseTransitions"] == 1


async def test_release_by_a_follower_writes_nothing() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, clock, "a"), elector(api, clock, "b")
    await a.step()
    await b.step()
    writes = api.writes
    await b.release()
    assert api.writes == writes
    assert api.spec()["holderIdentity"] == "a"
