"""The update handshake answer (SPEC section 4): may this exocorp move to a newer release?"""

from __future__ import annotations

from enum import StrEnum

from exocorp.model.base import WireModel
from exocorp.model.release import Channel


class HandshakeStatus(StrEnum):
    """The four answers."""

    UP_TO_DATE = "up_to_date"
    """No newer release on the channel."""
    UPDATE_AVAILABLE = "update_available"
    """A newer release can be applied now."""
    INSTALL_REQUIRED = "install_required"
    """Nothing installed yet, or the installed release was withdrawn."""
    BLOCKED = "blocked"
    """A newer release exists but cannot be applied now (see reasons)."""


class HandshakeReasonCode(StrEnum):
    """Machine-readable reasons attached to an answer."""

    NOT_INSTALLED = "not_installed"
    INSTALLED_WITHDRAWN = "installed_withdrawn"
    INSTALLED_UNKNOWN = "installed_unknown"
    RELEASE_NOT_FOUND = "release_not_found"
    RELEASE_WITHDRAWN = "release_withdrawn"
    NOT_ON_CHANNEL = "not_on_channel"
    DOWNGRADE = "downgrade"
    VERSION_CONSTRAINT = "version_constraint"
    PROVIDER_MISSING = "provider_missing"
    CONFIG_INCOMPATIBLE = "config_incompatible"
    IN_PROGRESS = "in_progress"
    BILLING_INACTIVE = "billing_inactive"


class HandshakeReason(WireModel):
    """One reason, for programs (code) and people (message)."""

    code: HandshakeReasonCode
    message: str


class UpdateHandshake(WireModel):
    """The answer of GET /api/registry/companies/:id/update-handshake."""

    status: HandshakeStatus
    """The answer."""
    channel: Channel
    """The channel the answer was computed for."""
    installed_version: str | None = None
    """The version the exocorp is on (absent while Draft)."""
    available_version: str | None = None
    """The release an update would move to, when there is one."""
    reasons: list[HandshakeReason] = []
    """Why the answer is not update_available or up_to_date (and notes otherwise)."""
