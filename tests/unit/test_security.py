"""Security primitives: argon2id passwords, opaque tokens, recovery kits, fingerprints."""

from __future__ import annotations

import dataclasses
import re

import argon2
import pytest

from exocorp.security import (
    PasswordHasher,
    Secret,
    fingerprint,
    hash_token,
    new_recovery_kit,
    new_token,
    normalize_recovery_kit,
    token_matches,
)

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher.for_tests()


def test_password_hash_is_argon2id_and_verifies(hasher: PasswordHasher) -> None:
    hashed = hasher.hash("correct horse battery staple")
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert hasher.verify(hashed, "correct horse battery staple")
    assert not hasher.verify(hashed, "Correct horse battery staple")


def test_each_hash_is_salted(hasher: PasswordHasher) -> None:
    assert hasher.hash("same") != hasher.hash("same")


def test_unreadable_hash_does_not_verify_and_needs_rehash(hasher: PasswordHasher) -> None:
    assert not hasher.verify("not-a-hash", "pw")
    assert hasher.needs_rehash("not-a-hash")


def test_rehash_needed_when_parameters_change(hasher: PasswordHasher) -> None:
    cheap = hasher.hash("pw")
    stronger = PasswordHasher(
        argon2.Parameters(
            type=argon2.Type.ID,
            version=19,
            salt_len=16,
            hash_len=32,
            time_cost=2,
            memory_cost=64,
            parallelism=1,
        )
    )
    assert not hasher.needs_rehash(cheap)
    assert stronger.needs_rehash(cheap)
    assert stronger.verify(cheap, "pw")  # old hashes keep working until rehashed
    assert not stronger.needs_rehash(stronger.hash("pw"))


def test_only_argon2id_is_accepted() -> None:
    with pytest.raises(ValueError, match="argon2id"):
        PasswordHasher(dataclasses.replace(argon2.profiles.CHEAPEST, type=argon2.Type.I))


def test_verify_nothing_always_fails(hasher: PasswordHasher) -> None:
    assert hasher.verify_nothing("anything") is False


def test_tokens_are_prefixed_high_entropy_and_unique() -> None:
    tokens = {new_token("exo_sess").reveal() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert token.startswith("exo_sess_")
        # 32 random bytes: 43 URL-safe base64 characters
        assert re.fullmatch(r"[A-Za-z0-9_\-]{43}", token.removeprefix("exo_sess_"))


def test_token_prefix_is_validated() -> None:
    with pytest.raises(ValueError, match="prefix"):
        new_token("Bad Prefix")


def test_token_hash_is_sha256_and_compare_is_exact() -> None:
    token = new_token("exo_agent").reveal()
    digest = hash_token(token)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert token_matches(token, digest)
    assert not token_matches(token + "x", digest)
    assert not token_matches(token, digest.upper())


def test_secret_never_prints_itself() -> None:
    secret = new_token("exo_sess")
    value = secret.reveal()
    for shown in (repr(secret), str(secret), f"{secret}", repr([secret]), repr({"k": secret})):
        assert value not in shown
        assert "*" in shown
    assert Secret("x") == Secret("x")


def test_recovery_kit_format() -> None:
    kit = new_recovery_kit().reveal()
    assert re.fullmatch(r"EXO(-[0-9A-HJKMNP-TV-Z]{5}){6}", kit), kit
    assert normalize_recovery_kit(kit) == kit
    assert len({new_recovery_kit().reveal() for _ in range(100)}) == 100


@pytest.mark.parametrize(
    "typed",
    [
        "exo-{0}",
        "{0}",
        "  EXO {0}  ",
        "{1}",  # groups run together, no prefix
        "exo{1}",
    ],
)
def test_recovery_kit_normalization_forgives_copying(typed: str) -> None:
    kit = new_recovery_kit().reveal()
    body = kit.removeprefix("EXO-")
    variant = typed.format(body.lower().replace("-", " "), body.replace("-", ""))
    assert normalize_recovery_kit(variant) == kit


def test_recovery_kit_normalization_maps_look_alikes() -> None:
    canonical = "EXO-01111-00000-ABCDE-FGHJK-MNPQR-STVWX"
    assert normalize_recovery_kit("exo-oilil-OOOOO-abcde-fghjk-mnpqr-stvwx") == canonical


@pytest.mark.parametrize(
    "bad", ["", "EXO-", "EXO-12345", "EXO-UUUUU-00000-00000-00000-00000-00000"]
)
def test_recovery_kit_normalization_rejects_non_kits(bad: str) -> None:
    assert normalize_recovery_kit(bad) is None


def test_fingerprint_is_short_stable_and_not_the_secret() -> None:
    secret = "sk-ant-" + "x" * 40
    fp = fingerprint(secret)
    assert re.fullmatch(r"[0-9a-f]{12}", fp)
    assert fp == fingerprint(secret)
    assert fp != fingerprint(secret + "y")
    assert fp not in secret
