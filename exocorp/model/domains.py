"""The two canonical domains every exocorp reserves at creation (SPEC section 8)."""

from __future__ import annotations

from exocorp.model.status import DomainKind

_MAX_HOST = 253


def canonical_host(slug: str, base: str) -> str:
    """`<slug>.<base>`, lowercased; raises ValueError when the result is no valid host name."""
    base = base.strip().strip(".").lower()
    if not base:
        raise ValueError("a domain base is required, e.g. portal.example.com")
    host = f"{slug.lower()}.{base}"
    if len(host) > _MAX_HOST or any(not 0 < len(label) <= 63 for label in host.split(".")):
        raise ValueError(f"{host!r} is not a valid host name")
    return host


def canonical_domains(slug: str, *, portal_base: str, app_base: str) -> dict[DomainKind, str]:
    """The portal and app host names of the exocorp with this slug."""
    return {
        DomainKind.PORTAL: canonical_host(slug, portal_base),
        DomainKind.APP: canonical_host(slug, app_base),
    }
