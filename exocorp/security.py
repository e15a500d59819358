"""Password hashing, opaque tokens, recovery kits and secret fingerprints.

Only derived values (hashes, fingerprints) are ever stored or shown. A freshly generated secret is
wrapped in :class:`Secret`, whose ``repr`` and ``str`` are masked, so that putting it in a log line,
an exception or a dataclass ``repr`` by mistake does not leak it; callers ``reveal()`` it exactly
once, to hand it to its owner.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Final

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "RECOVERY_KIT_PREFIX",
    "PasswordHasher",
    "Secret",
    "fingerprint",
    "hash_token",
    "new_recovery_kit",
    "new_token",
    "normalize_recovery_kit",
    "token_matches",
]


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret value that does not print itself."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        """The secret itself: call this only where the value is handed to its owner."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


class PasswordHasher:
    """argon2id password hashing with rehash-on-login when the parameters change.

    The defaults are argon2-cffi's RFC 9106 "low memory" profile. Tests pass cheaper parameters
    (``PasswordHasher.for_tests()``); hashes made with either verify with both, and
    :meth:`needs_rehash` reports hashes made with parameters other than this hasher's.
    """

    def __init__(self, parameters: argon2.Parameters | None = None) -> None:
        params = parameters or argon2.profiles.RFC_9106_LOW_MEMORY
        if params.type is not argon2.Type.ID:
            raise ValueError("only argon2id is accepted for password hashing")
        self._hasher = argon2.PasswordHasher.from_parameters(params)
        self._dummy_hash: str | None = None

    @classmethod
    def for_tests(cls) -> PasswordHasher:
        """The cheapest argon2id parameters: fast tests, never production."""
        return cls(argon2.profiles.CHEAPEST)

    @property
    def memory_bytes(self) -> int:
        """Memory one hash or verification holds while it runs."""
        return int(self._hasher.memory_cost) * 1024

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """True when ``password`` matches; False for a mismatch or an unreadable hash."""
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def verify_nothing(self, password: str) -> bool:
        """Spend the time of a real verification and fail: used for unknown accounts, so that
        response times do not reveal which emails are registered."""
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        self.verify(self._dummy_hash, password)
        return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True


def new_token(prefix: str, nbytes: int = 32) -> Secret:
    """A fresh opaque bearer secret such as ``exo_sess_<43 url-safe chars>`` (256 bits).

    The prefix names the token's kind, so that a leaked token is recognisable by secret scanners
    and by whoever finds it in a paste.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", prefix):
        raise ValueError("token prefix must be lowercase letters, digits and underscores")
    return Secret(f"{prefix}_{secrets.token_urlsafe(nbytes)}")


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a high-entropy secret: what the database stores and looks up.

    A fast hash is right here (unlike passwords): the input has 128+ bits of entropy, so there is
    nothing to brute-force, and lookups by hash stay an index probe.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, expected_hash: str) -> bool:
    """Constant-time check that ``token`` hashes to ``expected_hash``."""
    return hmac.compare_digest(hash_token(token), expected_hash)


def fingerprint(value: str) -> str:
    """A short, safe-to-show identifier of a secret (first 12 hex digits of its SHA-256).

    48 bits tell two credentials apart at a glance; they are useless for recovering a
    high-entropy provider key.
    """
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


# Recovery kits: Crockford base32 (no I, L, O, U), so that a human can copy one from paper.
RECOVERY_KIT_PREFIX: Final = "EXO"
_KIT_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_KIT_GROUPS: Final = 6
_KIT_GROUP_LEN: Final = 5  # 6 x 5 symbols x 5 bits = 150 bits of entropy
_KIT_CONFUSABLES: Final = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_recovery_kit() -> Secret:
    """A fresh recovery kit such as ``EXO-7K3QD-M2X9A-...`` (six groups of five)."""
    groups = (
        "".join(secrets.choice(_KIT_ALPHABET) for _ in range(_KIT_GROUP_LEN))
        for _ in range(_KIT_GROUPS)
    )
    return Secret("-".join((RECOVERY_KIT_PREFIX, *groups)))


def normalize_recovery_kit(text: str) -> str | None:
    """The canonical form of a typed kit, or None when it cannot be one.

    Case, spaces, dashes and the look-alikes O/I/L are forgiven, so the kit hashes the same however
    it was copied.
    """
    compact = re.sub(r"[\s\-]", "", text.upper())
    body_len = _KIT_GROUPS * _KIT_GROUP_LEN
    if len(compact) == body_len + len(RECOVERY_KIT_PREFIX) and compact.startswith(
        RECOVERY_KIT_PREFIX
    ):
        compact = compact[len(RECOVERY_KIT_PREFIX) :]
    compact = compact.translate(_KIT_CONFUSABLES)
    if len(compact) != body_len or any(c not in _KIT_ALPHABET for c in compact):
        return None
    groups = [compact[i : i + _KIT_GROUP_LEN] for i in range(0, len(compact), _KIT_GROUP_LEN)]
    return "-".join((RECOVERY_KIT_PREFIX, *groups))


# Pairing codes: what an agent shows its human, typed on the approval page (SPEC section 7), so
# the approval goes to the agent's own human and not to whoever opened the link first.
_PAIRING_GROUP_LEN: Final = 4  # 2 x 4 symbols x 5 bits = 40 bits; wrong guesses are capped


def new_pairing_code() -> Secret:
    """A fresh pairing code such as ``K3QD-M2X9``."""
    return Secret("-".join("".join(secrets.choice(_KIT_ALPHABET)
                                   for _ in range(_PAIRING_GROUP_LEN)) for _ in range(2)))


def normalize_pairing_code(text: str) -> str:
    """The canonical form of a typed code (case, spaces, dashes and look-alikes forgiven);
    anything that cannot be a code still hashes, and simply never matches."""
    compact = re.sub(r"[\s\-]", "", text.upper()).translate(_KIT_CONFUSABLES)
    return f"{compact[:_PAIRING_GROUP_LEN]}-{compact[_PAIRING_GROUP_LEN:]}"
