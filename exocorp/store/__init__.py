"""Platform records in SQL: SQLAlchemy 2 (async) models, Alembic migrations, repositories.

Public surface::

    from exocorp.store import open_database, upgrade_to_head, accounts, sessions, ...

    db = open_database(url)               # sqlite+aiosqlite:///path or postgresql+asyncpg://...
    await upgrade_to_head(db.engine)
    async with db.sessionmaker.begin() as s:    # one transaction; commits on success
        new = await accounts.create_user(s, email=..., password=..., signup_credit=500)

Repository functions take an ``AsyncSession`` and never commit: the caller decides what one
transaction holds. They raise the typed errors of :mod:`exocorp.store.errors`, never a driver's
IntegrityError. Functions where time matters take ``now`` (timezone-aware; default: wall clock).
"""

from exocorp.store import (
    accounts,
    audit,
    billing,
    drafts,
    idempotency,
    members,
    metering,
    registry,
    sessions,
    tokens,
)
from exocorp.store.engine import (
    DEFAULT_DATABASE_URL,
    Database,
    create_engine,
    database_url_from_env,
    make_sessionmaker,
    open_database,
)
from exocorp.store.errors import (
    AccountDisabled,
    Conflict,
    InvalidCredentials,
    NotFound,
    StaleVersion,
    StoreError,
)
from exocorp.store.migrate import current_revision, head_revision, schema_diff, upgrade_to_head
from exocorp.store.pages import Page

__all__ = [
    "DEFAULT_DATABASE_URL",
    "AccountDisabled",
    "Conflict",
    "Database",
    "InvalidCredentials",
    "NotFound",
    "Page",
    "StaleVersion",
    "StoreError",
    "accounts",
    "audit",
    "billing",
    "create_engine",
    "current_revision",
    "database_url_from_env",
    "drafts",
    "head_revision",
    "idempotency",
    "make_sessionmaker",
    "members",
    "metering",
    "open_database",
    "registry",
    "schema_diff",
    "sessions",
    "tokens",
    "upgrade_to_head",
]
