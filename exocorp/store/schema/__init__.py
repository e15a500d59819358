"""The platform's tables as SQLAlchemy models; ``Base.metadata`` is what migrations must match."""

from exocorp.store.schema.accounts import RecoveryKit, User, UserSession
from exocorp.store.schema.audit import ActorKind, AuditEvent, Outcome
from exocorp.store.schema.base import NAMING_CONVENTION, Base
from exocorp.store.schema.billing import (
    AccountState,
    BillingAccount,
    CreditEntry,
    CreditKind,
    PriceBook,
    UsageEvent,
)
from exocorp.store.schema.clients import (
    OperatorClient,
    OperatorClientExocorp,
    OperatorToken,
    TokenKind,
)
from exocorp.store.schema.idempotency import IdempotencyRecord
from exocorp.store.schema.limits import ResourceLimits, ThrottleCounter
from exocorp.store.schema.registry import Draft, ExocorpRecord, Invitation, Membership, Role

__all__ = [
    "NAMING_CONVENTION",
    "AccountState",
    "ActorKind",
    "AuditEvent",
    "Base",
    "BillingAccount",
    "CreditEntry",
    "CreditKind",
    "Draft",
    "ExocorpRecord",
    "IdempotencyRecord",
    "Invitation",
    "Membership",
    "OperatorClient",
    "OperatorClientExocorp",
    "OperatorToken",
    "Outcome",
    "PriceBook",
    "RecoveryKit",
    "ResourceLimits",
    "Role",
    "ThrottleCounter",
    "TokenKind",
    "UsageEvent",
    "User",
    "UserSession",
]
