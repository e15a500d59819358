"""A short-lived in-process cache of what authentication and authorization read from the
database on every request: live sessions (-> principal; agent tokens are never cached), memberships
(user, exocorp -> registry row and role) and a user's fleet (-> rows and roles); and what an
exocorp's detail answer reads to say which actions are allowed (its saved draft, its owner's
billing standing and allowance), which any write this process serves drops (a write is rare; a
detail read is the most common request).

Entries live ``GatewaySettings.auth_cache_seconds`` (default 5 s; 0 turns the cache off), by the
gateway's clock. This process drops entries itself when it changes what they say (logout, company
creation and destruction), so its own clients never see stale answers. Another replica's change
(a logout there, a session revoked by an admin, a membership removed) is seen here within that
time: the price of answering reads without a database round trip (see docs/api.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from exocorp.api_gateway.principal import Principal, Via
from exocorp.lifecycle import Allowance, BillingStanding
from exocorp.store.registry import MemberExocorp
from exocorp.store.schema import ExocorpRecord, Role

__all__ = ["AccessCache", "ActionInputs"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
_MAX_ENTRIES = 50_000


@dataclass(frozen=True)
class _Entry(Generic[V]):
    value: V
    until: datetime


class _TTLMap(Generic[K, V]):
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._items: dict[K, _Entry[V]] = {}

    def get(self, key: K) -> V | None:
        entry = self._items.get(key)
        if entry is None:
            return None
        if self._clock() >= entry.until:
            self._items.pop(key, None)
            return None
        return entry.value

    def put(self, key: K, value: V, ttl: timedelta, *, not_after: datetime | None = None) -> None:
        until = self._clock() + ttl
        if not_after is not None:
            until = min(until, not_after)
        if len(self._items) >= _MAX_ENTRIES:
            self._items.pop(next(iter(self._items)))
        self._items[key] = _Entry(value, until)

    def drop(self, predicate: Callable[[K], bool]) -> None:
        for key in [k for k in self._items if predicate(k)]:
            del self._items[key]

    def clear(self) -> None:
        self._items.clear()


@dataclass(frozen=True)
class ActionInputs:
    """What planning an exocorp's actions reads from the database."""

    draft: Mapping[str, Any] | None
    standing: BillingStanding
    allowance: Allowance


class AccessCache:
    def __init__(self, seconds: float, clock: Callable[[], datetime]) -> None:
        self.ttl = timedelta(seconds=seconds)
        self.enabled = seconds > 0
        self.principals: _TTLMap[tuple[str, Via], Principal] = _TTLMap(clock)
        """(SHA-256 of a session token, how it came) -> principal: one entry per way, so a hit
        is the answer itself, never a copy with another ``via``."""
        self.access: _TTLMap[tuple[str, str], tuple[ExocorpRecord, Role]] = _TTLMap(clock)
        """(user id, exocorp id) -> registry row and role (members only)."""
        self.fleets: _TTLMap[str, list[MemberExocorp]] = _TTLMap(clock)
        """user id -> the exocorps the user owns or is a member of (destroyed ones included)."""
        self._fleet_loads: dict[str, asyncio.Future[list[MemberExocorp]]] = {}
        """user id -> the load of that fleet under way (:meth:`fleet_once`)."""
        self._fleet_changes = 0
        """Bumped whenever fleets are dropped: a load that started before must not be kept."""
        self.action_inputs: _TTLMap[str, ActionInputs] = _TTLMap(clock)
        """exocorp id -> what its action availability read from the database."""

    def principal(self, token_hash: str, via: Via) -> Principal | None:
        return self.principals.get((token_hash, via)) if self.enabled else None

    def remember_principal(self, token_hash: str, principal: Principal,
                           not_after: datetime | None = None) -> None:
        if self.enabled:
            self.principals.put((token_hash, principal.via), principal, self.ttl,
                                not_after=not_after)

    def forget_principal(self, token_hash: str) -> None:
        self.principals.drop(lambda key: key[0] == token_hash)

    def role(self, user_id: str, exocorp_id: str) -> tuple[ExocorpRecord, Role] | None:
        return self.access.get((user_id, exocorp_id)) if self.enabled else None

    def remember_role(self, user_id: str, record: ExocorpRecord, role: Role) -> None:
        if self.enabled:
            self.access.put((user_id, record.id), (record, role), self.ttl)

    async def fleet_once(self, user_id: str,
                         load: Callable[[], Awaitable[list[MemberExocorp]]],
                         ) -> list[MemberExocorp]:
        """The user's fleet: cached, else loaded by ``load``, once for every request that asks
        meanwhile. A fleet is hundreds of rows in a large account; when its entry expired under
        load, every request in flight loaded it again (the p99 tail of ``my-companies``). A load
        that a change overtakes is neither kept nor joined: this process's own clients never
        see a fleet from before their change."""
        if not self.enabled:
            return await load()
        rows = self.fleets.get(user_id)
        if rows is not None:
            return rows
        future = self._fleet_loads.get(user_id)
        if future is None:
            future = asyncio.ensure_future(self._load_fleet(user_id, load, self._fleet_changes))
            self._fleet_loads[user_id] = future
        # Shielded: a caller that goes away must not cancel the load the others wait on.
        return await asyncio.shield(future)

    async def _load_fleet(self, user_id: str,
                          load: Callable[[], Awaitable[list[MemberExocorp]]],
                          changes: int) -> list[MemberExocorp]:
        """``changes``: the count of drops when the load was asked for."""
        try:
            rows = await load()
        finally:
            if self._fleet_loads.get(user_id) is asyncio.current_task():
                del self._fleet_loads[user_id]
        if changes == self._fleet_changes:
            self.fleets.put(user_id, rows, self.ttl)
        return rows

    def _drop_fleets(self, predicate: Callable[[str], bool]) -> None:
        self._fleet_changes += 1
        self.fleets.drop(predicate)
        for user_id in [key for key in self._fleet_loads if predicate(key)]:
            del self._fleet_loads[user_id]  # later requests load afresh

    def inputs(self, exocorp_id: str) -> ActionInputs | None:
        return self.action_inputs.get(exocorp_id) if self.enabled else None

    def remember_inputs(self, exocorp_id: str, inputs: ActionInputs) -> None:
        if self.enabled:
            self.action_inputs.put(exocorp_id, inputs, self.ttl)

    def forget_action_inputs(self) -> None:
        """This process served a write: a draft, a credit, a limit or an action may have
        changed what any exocorp's actions depend on."""
        self.action_inputs.clear()

    def forget_exocorp(self, exocorp_id: str) -> None:
        """An exocorp was created or destroyed, or its memberships changed."""
        self.access.drop(lambda key: key[1] == exocorp_id)
        self._drop_fleets(lambda key: True)

    def forget_user(self, user_id: str) -> None:
        """A user's sessions, tokens, role or memberships changed."""
        self.principals.drop(lambda key: True)
        self.access.drop(lambda key: key[0] == user_id)
        self._drop_fleets(lambda key: key == user_id)
