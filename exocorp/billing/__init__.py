"""Billing: price books, metering running time into usage events exactly once, and credit
enforcement. See docs/billing.md.

Public surface::

    from exocorp.billing import MeteringService, BillingSettings, billing_state

    service = MeteringService(kube, database, BillingSettings.from_env())
    await service.start()   # every replica campaigns for the Lease; the holder meters
    ...
    async with database.sessionmaker() as s:
        standing = await billing_state(s, user_id)   # -> exocorp.lifecycle.perform.Caller
    await service.stop()

HTTP routes live in ``exocorp.api_gateway.billing.routes``; metrics on
``exocorp.billing.metrics.REGISTRY``.
"""

from exocorp.billing import admin, metrics
from exocorp.billing.enforcement import (
    PAUSE_REASON,
    STOP_REASON,
    EnforcementReport,
    Enforcer,
    account_is_active,
    billing_state,
)
from exocorp.billing.leader import LeaderElector
from exocorp.billing.metering import (
    Counters,
    InvalidStatus,
    LostRace,
    Meter,
    MeteredWindow,
    PassReport,
    plan_windows,
    read_counters,
)
from exocorp.billing.service import MeteringService, RunReport, ensure_default_price_book
from exocorp.billing.settings import BillingSettings, DefaultPriceBook, SettingsError

__all__ = [
    "PAUSE_REASON",
    "STOP_REASON",
    "BillingSettings",
    "Counters",
    "DefaultPriceBook",
    "EnforcementReport",
    "Enforcer",
    "InvalidStatus",
    "LeaderElector",
    "LostRace",
    "Meter",
    "MeteredWindow",
    "MeteringService",
    "PassReport",
    "RunReport",
    "SettingsError",
    "account_is_active",
    "admin",
    "billing_state",
    "ensure_default_price_book",
    "metrics",
    "plan_windows",
    "read_counters",
]
