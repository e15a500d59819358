"""Base classes and constrained scalar types shared by every wire model.

Every model speaks camelCase on the wire (Kubernetes and JSON API convention) and snake_case in
Python. Field docstrings become schema descriptions, so `kubectl explain` shows them.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

# Regular expressions are written in the subset that Python, pydantic-core (Rust) and the
# Kubernetes API server (Go RE2) all accept, because the same pattern is enforced in all three.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SEMVER_PATTERN = (
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-((0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(\+([0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*))?$"
)
# Kubernetes resource.Quantity, e.g. "250m", "1.5", "512Mi".
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# IANA service name, what Kubernetes accepts as a container port name.
PORT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# DNS subdomain (RFC 1123), what Kubernetes accepts as a Secret name.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields ignored.

    Used for observed state (status, object metadata), which a newer operator may extend.
    """

    # validate_by_name + validate_by_alias is pydantic's current spelling of populate_by_name.
    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        use_attribute_docstrings=True,
        extra="ignore",
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready camelCase form, without unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class SpecModel(WireModel):
    """A desired-state or request model: an unknown field is an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _check_rfc3339(value: str) -> str:
    if not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 timestamp, e.g. 2024-05-01T12:00:00Z")
    try:
        parse_rfc3339(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a real date and time") from None
    return value


DnsLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
"""A lowercase RFC 1123 label: usable as a Kubernetes object name and a DNS name part."""

SemVer = Annotated[str, Field(max_length=128, pattern=SEMVER_PATTERN)]
"""A semantic version (https://semver.org), without a leading "v"."""

Quantity = Annotated[str, Field(max_length=32, pattern=QUANTITY_PATTERN)]
"""A Kubernetes quantity string such as "250m" or "512Mi"."""

Rfc3339 = Annotated[
    str,
    AfterValidator(_check_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time", "maxLength": 64}),
]
"""An RFC 3339 timestamp kept as the exact string the client sent (so patches stay stable)."""

ProviderName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
"""A model provider id such as "anthropic" or "openai"."""

ShortText = Annotated[str, Field(max_length=1024)]
"""A human-written sentence: a reason, a message."""


def parse_rfc3339(value: str) -> datetime:
    """An RFC 3339 timestamp ("Z" or an offset, either case) as an aware datetime in UTC; the one
    parser of the platform's timestamps. ValueError when it is not one."""
    try:
        parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return parsed.astimezone(UTC)


def parse_rfc3339_or_none(value: str | None) -> datetime | None:
    """`parse_rfc3339` for optional or best-effort fields: None when absent or unreadable."""
    if not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        return None


def _printable(value: str) -> str:
    # Control (Cc: NUL, newline, escape ...) and format (Cf: bidi overrides, zero-width ...)
    # characters hide or garble what a name or reason shows in the dashboard, logs and kubectl.
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cf")), None)
    if bad is not None:
        raise ValueError(f"must not contain control or format characters (U+{ord(bad):04X})")
    return value


Printable = AfterValidator(_printable)
"""Refuses control and format characters: add it to every free-text field a person types
(names, reasons); the 400 names the field."""

ReasonText = Annotated[str, Field(max_length=1024), Printable]
"""A reason typed by a person (input only: what is read back from the cluster is ShortText)."""


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z` suffix and second precision, as Kubernetes writes timestamps."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
