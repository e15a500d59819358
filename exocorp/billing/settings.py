"""Billing settings: one dataclass, filled from the environment (or built directly in tests)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

__all__ = ["BillingSettings", "DefaultPriceBook", "SettingsError", "default_identity"]


class SettingsError(ValueError):
    """A billing setting from the environment is malformed; the message names the variable."""


@dataclass(frozen=True)
class DefaultPriceBook:
    """The price book created at start-up when no default price book exists."""

    name: str = "standard"
    """Unique name of the book."""
    currency: str = "USD"
    """ISO 4217 code; amounts are integers in its minor units."""
    rates: Mapping[str, int] = field(default_factory=lambda: {"*": 1})
    """Component name -> minor units per replica-second; ``"*"`` prices every other component."""

    @classmethod
    def from_json(cls, text: str) -> DefaultPriceBook:
        """``{"name": "standard", "currency": "USD", "rates": {"*": 1, "agents": 2}}``."""
        try:
            data: Any = json.loads(text)
        except ValueError as err:
            raise SettingsError(f"EXOCORP_DEFAULT_PRICE_BOOK is not JSON: {err}") from None
        if not isinstance(data, dict) or not isinstance(data.get("rates"), dict):
            raise SettingsError(
                'EXOCORP_DEFAULT_PRICE_BOOK must be an object with "rates", e.g. '
                '{"name": "standard", "currency": "USD", "rates": {"*": 1}}'
            )
        unknown = set(data) - {"name", "currency", "rates"}
        if unknown:
            raise SettingsError(f"EXOCORP_DEFAULT_PRICE_BOOK: unknown keys {sorted(unknown)}")
        rates = data["rates"]
        for component, rate in rates.items():
            if not isinstance(rate, int) or isinstance(rate, bool) or rate < 0:
                raise SettingsError(
                    f"EXOCORP_DEFAULT_PRICE_BOOK: rate of {component!r} must be a "
                    "non-negative integer (minor units per replica-second)"
                )
        name = data.get("name", cls.name)
        currency = data.get("currency", cls.currency)
        if not isinstance(name, str) or not 1 <= len(name) <= 200:
            raise SettingsError("EXOCORP_DEFAULT_PRICE_BOOK: name must be 1-200 characters")
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
            raise SettingsError("EXOCORP_DEFAULT_PRICE_BOOK: currency must be an ISO 4217 code")
        return cls(name=name, currency=currency.upper(), rates=dict(rates))


def default_identity(environ: Mapping[str, str] | None = None) -> str:
    """This process as a lease holder: ``<pod name>_<pid>`` (the pod name is ``$POD_NAME``, else
    the host name, which Kubernetes sets to the pod name)."""
    env = os.environ if environ is None else environ
    pod = env.get("POD_NAME") or socket.gethostname()
    return f"{pod}_{os.getpid()}"


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {raw!r}")
    return value


def _hours(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(
            f"EXOCORP_SUSPENSION_GRACE_HOURS must be a number of hours, got {raw!r}") from None
    if not 0 <= value < 10**6:
        raise SettingsError(f"EXOCORP_SUSPENSION_GRACE_HOURS must be 0 or more, got {raw!r}")
    return value


@dataclass(frozen=True)
class BillingSettings:
    """Everything the metering loop, leader election and enforcement depend on."""

    namespace: str = "exocorp-system"
    """Platform namespace: the metering Lease lives here."""
    lease_name: str = "exocorp-billing-metering"
    """Name of the Lease that elects the one replica that meters."""
    identity: str = field(default_factory=default_identity)
    """This replica's holder identity in the Lease."""
    lease_duration_seconds: float = 15.0
    """How long a lease is honoured after its holder's last renewal was observed."""
    renew_deadline_seconds: float = 10.0
    """The leader steps down if it has not renewed for this long (must be below the duration)."""
    retry_period_seconds: float = 2.0
    """How often candidates try to acquire and the leader renews."""
    interval_seconds: float = 30.0
    """Time between two metering passes of the leader."""
    default_price_book: DefaultPriceBook | None = field(default_factory=DefaultPriceBook)
    """Created at start-up when no default price book exists (None: create nothing)."""
    suspension_grace: timedelta = timedelta(hours=72)
    """How long a suspended account's exocorps stay paused before enforcement stops them (a
    pause keeps the portal and app running, and billing)."""

    def __post_init__(self) -> None:
        if not 0 < self.renew_deadline_seconds < self.lease_duration_seconds:
            raise SettingsError("the renew deadline must be positive and below the lease duration")
        if not 0 < self.retry_period_seconds < self.renew_deadline_seconds:
            raise SettingsError("the retry period must be positive and below the renew deadline")
        if self.interval_seconds <= 0:
            raise SettingsError("the metering interval must be positive")
        if self.suspension_grace < timedelta(0):
            raise SettingsError("the suspension grace period cannot be negative")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> BillingSettings:
        """Settings from ``EXOCORP_NAMESPACE``, ``EXOCORP_METERING_INTERVAL_SECONDS``,
        ``EXOCORP_METERING_LEASE_NAME``, ``EXOCORP_METERING_LEASE_DURATION_SECONDS``,
        ``EXOCORP_METERING_RENEW_DEADLINE_SECONDS``, ``EXOCORP_METERING_RETRY_PERIOD_SECONDS``,
        ``EXOCORP_DEFAULT_PRICE_BOOK`` (JSON), ``EXOCORP_SUSPENSION_GRACE_HOURS``, ``POD_NAME``;
        ``overrides`` win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "identity": default_identity(env),
            "interval_seconds": _float(env, "EXOCORP_METERING_INTERVAL_SECONDS", 30.0),
            "lease_duration_seconds": _float(
                env, "EXOCORP_METERING_LEASE_DURATION_SECONDS", 15.0
            ),
            "renew_deadline_seconds": _float(
                env, "EXOCORP_METERING_RENEW_DEADLINE_SECONDS", 10.0
            ),
            "retry_period_seconds": _float(env, "EXOCORP_METERING_RETRY_PERIOD_SECONDS", 2.0),
        }
        if env.get("EXOCORP_NAMESPACE"):
            values["namespace"] = env["EXOCORP_NAMESPACE"]
        if env.get("EXOCORP_METERING_LEASE_NAME"):
            values["lease_name"] = env["EXOCORP_METERING_LEASE_NAME"]
        grace = env.get("EXOCORP_SUSPENSION_GRACE_HOURS")
        if grace:
            values["suspension_grace"] = timedelta(hours=_hours(grace))
        book = env.get("EXOCORP_DEFAULT_PRICE_BOOK")
        if book:
            values["default_price_book"] = DefaultPriceBook.from_json(book)
        values.update(overrides)
        return cls(**values)
