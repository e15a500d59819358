"""Semantic versions (https://semver.org 2.0.0): parsing and precedence."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import total_ordering

from exocorp.model.base import SEMVER_PATTERN

_SEMVER = re.compile(SEMVER_PATTERN)

# Sort key of one pre-release identifier: numeric ones rank below alphanumeric ones.
_Identifier = tuple[int, int, str]


@total_ordering
@dataclass(frozen=True, eq=False)
class Version:
    """A parsed version; ordering and equality are semver precedence (build metadata ignored)."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = field(default="")

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse `text`; raises ValueError naming the text when it is not a semantic version."""
        if _SEMVER.fullmatch(text) is None:
            raise ValueError(
                f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH[-PRE][+BUILD])"
            )
        core, _, build = text.partition("+")
        core, _, pre = core.partition("-")
        major, minor, patch = (int(part) for part in core.split("."))
        return cls(major, minor, patch, tuple(pre.split(".")) if pre else (), build)

    def _precedence(self) -> tuple[int, int, int, int, tuple[_Identifier, ...]]:
        # A release outranks its own pre-releases (1.0.0 > 1.0.0-rc.1), hence the flag before them.
        identifiers = tuple(
            (0, int(part), "") if part.isdigit() else (1, 0, part) for part in self.prerelease
        )
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, identifiers)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._precedence() < other._precedence()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._precedence() == other._precedence()

    def __hash__(self) -> int:
        return hash(self._precedence())

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + self.build
        return text


def is_semver(text: str) -> bool:
    """True when `text` is a semantic version."""
    return _SEMVER.fullmatch(text) is not None
