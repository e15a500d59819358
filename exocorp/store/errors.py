"""Typed store errors: the gateway maps each to one HTTP status, never to a raw driver error.

Named for the outcome they report (``Conflict``, ``NotFound``) rather than with an ``Error``
suffix: they read as the answer at ``except`` sites, like HTTP statuses.
"""

from __future__ import annotations

__all__ = [
    "AccountDisabled",
    "Conflict",
    "InvalidCredentials",
    "NotFound",
    "StaleVersion",
    "StoreError",
]


class StoreError(Exception):
    """Base of every error the store raises on purpose. Messages never contain secrets."""


class NotFound(StoreError):  # noqa: N818
    """The named record does not exist (HTTP 404)."""


class Conflict(StoreError):  # noqa: N818
    """The write collides with existing state (HTTP 409).

    ``field`` names the unique attribute that collided (``"slug"``, ``"email"``...) when there is
    one, so an API can point at it.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class StaleVersion(Conflict):
    """An optimistic write named a version that is no longer current (HTTP 409)."""

    def __init__(self, message: str, *, current_version: int) -> None:
        super().__init__(message, field="version")
        self.current_version = current_version


class InvalidCredentials(StoreError):  # noqa: N818
    """Unknown, wrong, expired or revoked credentials (HTTP 401). Deliberately unspecific."""


class AccountDisabled(StoreError):  # noqa: N818
    """Correct credentials for a disabled user (HTTP 403)."""
