"""Semantic version parsing and precedence (semver.org 2.0.0, section 11)."""

from __future__ import annotations

import pytest

from exocorp.model import Version, is_semver

pytestmark = pytest.mark.unit


def test_precedence_follows_the_semver_specification_example() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "1.10.0",
        "2.0.0",
    ]
    parsed = [Version.parse(text) for text in ordered]
    assert sorted(reversed(parsed)) == parsed
    assert [str(version) for version in parsed] == ordered


def test_build_metadata_does_not_affect_precedence() -> None:
    assert Version.parse("1.0.0+build.1") == Version.parse("1.0.0+build.2")
    assert hash(Version.parse("1.0.0+a")) == hash(Version.parse("1.0.0"))
    assert str(Version.parse("1.0.0-rc.1+sha.5114f85")) == "1.0.0-rc.1+sha.5114f85"


@pytest.mark.parametrize(
    "text",
    ["1", "1.0", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0-01", "1.0.0+", " 1.0.0", "1.0.0 ", "1.0.0\n"],
)
def test_malformed_versions_are_rejected(text: str) -> None:
    assert not is_semver(text)
    with pytest.raises(ValueError, match="not a semantic version"):
        Version.parse(text)


def test_versions_do_not_compare_with_strings() -> None:
    assert Version.parse("1.0.0") != "1.0.0"
    with pytest.raises(TypeError):
        _ = Version.parse("1.0.0") < "2.0.0"  # type: ignore[operator]
