"""Failed-login throttling: too many failures for one e-mail address (or from one client address)
within a window answer 429 with Retry-After, before any password is checked.

The counts live in this process's memory: with several gateway replicas each counts on its own,
so the effective limit is the configured one times the replicas (still a hard bound for online
guessing at argon2id cost). A successful login clears the address's failures.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timedelta

from exocorp.store.clock import Clock, utcnow

_MAX_KEYS = 100_000  # forget the oldest keys beyond this, so memory stays bounded


class LoginThrottle:
    def __init__(self, *, max_failures: int, max_failures_per_ip: int, window: timedelta,
                 clock: Clock = utcnow) -> None:
        self.max_failures = max_failures
        self.max_failures_per_ip = max_failures_per_ip
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[datetime]] = {}

    @staticmethod
    def _keys(email: str, ip: str | None) -> list[tuple[str, str]]:
        keys = [("email", email.strip().lower())]
        if ip:
            keys.append(("ip", ip))
        return keys

    def _limit(self, kind: str) -> int:
        return self.max_failures if kind == "email" else self.max_failures_per_ip

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        entries = self._failures.get(key)
        if entries is None:
            return deque()
        while entries and now - entries[0] >= self.window:
            entries.popleft()
        if not entries:
            del self._failures[key]
        return entries

    def retry_after(self, email: str, ip: str | None) -> int | None:
        """Seconds until another attempt is allowed, or None when it is allowed now."""
        now = self.clock()
        waits = []
        for kind, value in self._keys(email, ip):
            entries = self._recent(f"{kind}:{value}", now)
            if len(entries) >= self._limit(kind):
                # allowed again once enough of the oldest failures have left the window
                oldest_blocking = entries[len(entries) - self._limit(kind)]
                waits.append((oldest_blocking + self.window - now).total_seconds())
        return max(1, math.ceil(max(waits))) if waits else None

    def failed(self, email: str, ip: str | None) -> None:
        now = self.clock()
        for kind, value in self._keys(email, ip):
            key = f"{kind}:{value}"
            entries = self._failures.setdefault(key, deque(maxlen=self._limit(kind)))
            entries.append(now)
        while len(self._failures) > _MAX_KEYS:
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, email: str) -> None:
        self._failures.pop(f"email:{email.strip().lower()}", None)
