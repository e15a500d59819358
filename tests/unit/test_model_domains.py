"""The canonical domains of SPEC section 8."""

from __future__ import annotations

import pytest

from exocorp.model import DomainKind, canonical_domains, canonical_host

pytestmark = pytest.mark.unit


def test_canonical_domains() -> None:
    assert canonical_domains(
        "acme", portal_base="portal.example.com", app_base="app.example.com"
    ) == {
        DomainKind.PORTAL: "acme.portal.example.com",
        DomainKind.APP: "acme.app.example.com",
    }


def test_bases_are_normalised() -> None:
    assert canonical_host("acme", " .Portal.Example.COM. ") == "acme.portal.example.com"


@pytest.mark.parametrize("base", ["", ".", "a..b", "x" * 64 + ".com", ("a" * 60 + ".") * 5])
def test_invalid_hosts_are_refused(base: str) -> None:
    with pytest.raises(ValueError, match=r"host|base"):
        canonical_host("acme", base)
