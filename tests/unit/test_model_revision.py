"""Revision content, its stable hash and the revision name."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from exocorp.model import ExocorpSpec, RevisionContent, content_hash, revision_name

pytestmark = pytest.mark.unit

CONTENT: dict[str, Any] = {
    "release": {"channel": "stable", "version": "1.0.0"},
    "config": {
        "agents": [{"name": "ceo", "role": "ceo", "provider": "anthropic", "model": "m"}],
        "componentSizes": {"worker": "large", "portal": "small"},
    },
    "rebuildNonce": 2,
}


def test_hash_is_sha256_of_canonical_json_first_ten_hex() -> None:
    content = RevisionContent.model_validate(CONTENT)
    canonical = (
        '{"config":{"agents":[{"model":"m","name":"ceo","provider":"anthropic","role":"ceo"}],'
        '"componentSizes":{"portal":"small","worker":"large"}},'
        '"rebuildNonce":2,"release":{"version":"1.0.0"}}'
    )
    assert content.canonical_json() == canonical
    assert content_hash(content) == hashlib.sha256(canonical.encode()).hexdigest()[:10]
    assert revision_name("acme", content) == f"acme-{content_hash(content)}"


def test_hash_ignores_key_order_and_spelled_out_defaults() -> None:
    reordered = json.loads(json.dumps(CONTENT, sort_keys=True))
    explicit = json.loads(json.dumps(CONTENT))
    explicit["config"] |= {"teams": [], "requiredProviders": []}
    explicit["release"]["channel"] = "stable"
    hashes = {
        content_hash(RevisionContent.model_validate(body))
        for body in (CONTENT, reordered, explicit)
    }
    assert len(hashes) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"rebuildNonce": 3},
        {"release": {"channel": "beta", "version": "1.0.0"}},
        {"release": {"channel": "stable", "version": "1.0.1"}},
        {"config": {"componentSizes": {"worker": "small"}}},
    ],
)
def test_any_content_change_changes_the_hash(change: dict[str, Any]) -> None:
    before = RevisionContent.model_validate(CONTENT)
    after = RevisionContent.model_validate(CONTENT | change)
    assert content_hash(before) != content_hash(after)


def test_content_from_a_spec() -> None:
    base = {"owner": "o", "displayName": "d", "slug": "acme"}
    assert RevisionContent.from_spec(ExocorpSpec.model_validate(base)) is None
    spec = ExocorpSpec.model_validate(
        base
        | {
            "provisioned": True,
            "release": CONTENT["release"],
            "config": CONTENT["config"],
            "rebuildNonce": 2,
            "paused": True,
            "pauseReason": "not part of the content",
        }
    )
    assert RevisionContent.from_spec(spec) == RevisionContent.model_validate(CONTENT)


def test_long_exocorp_names_are_shortened_to_a_valid_name() -> None:
    content = RevisionContent.model_validate(CONTENT)
    name = revision_name("a" * 250, content)
    assert len(name) == 253
    assert name.endswith("-" + content_hash(content))
