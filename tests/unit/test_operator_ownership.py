"""The operator's ownership rules (exocorp/operator/ownership.py) as pure functions; the attacks
they stop run on the real control plane in tests/integration/test_operator_ownership.py."""

from __future__ import annotations

from typing import Any

import pytest

from exocorp import names
from exocorp.model import ProviderBinding
from exocorp.operator.ownership import credential_of, owns_namespace

pytestmark = pytest.mark.unit


def _namespace(labels: dict[str, str], owners: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": "exo-prod", "labels": labels, "ownerReferences": owners}}


OURS = {"kind": "Exocorp", "uid": "uid-1", "name": "prod"}


@pytest.mark.parametrize(("labels", "owners", "uid", "expected"), [
    ({names.LABEL_EXOCORP: "prod"}, [OURS], "uid-1", True),
    ({}, [], "uid-1", False),  # another team's namespace
    ({names.LABEL_EXOCORP: "prod"}, [], "uid-1", False),  # the label alone proves nothing
    ({names.LABEL_EXOCORP: "prod"}, [OURS], "uid-2", False),  # an earlier exocorp of that name
    ({names.LABEL_EXOCORP: "other"}, [OURS], "uid-1", False),
    ({names.LABEL_EXOCORP: "prod"}, [{**OURS, "kind": "Deployment"}], "uid-1", False),
    ({names.LABEL_EXOCORP: "prod"}, [OURS], None, False),
])
def test_a_namespace_is_ours_only_with_our_label_and_uid(
        labels: dict[str, str], owners: list[dict[str, Any]], uid: str | None,
        expected: bool) -> None:
    assert owns_namespace(_namespace(labels, owners), "prod", uid) is expected


def _secret(**labels: str) -> dict[str, Any]:
    return {"metadata": {"name": "pc-main", "labels": labels}}


BINDING = ProviderBinding(provider="anthropic", secret_name="pc-main")
OWNER_LABELS = {names.LABEL_ACCOUNT: "usr_ada", names.LABEL_PROVIDER: "anthropic",
                names.LABEL_CREDENTIAL: "true"}


@pytest.mark.parametrize(("labels", "expected"), [
    (OWNER_LABELS, True),
    ({**OWNER_LABELS, names.LABEL_ACCOUNT: "usr_eve"}, False),  # another account's
    ({**OWNER_LABELS, names.LABEL_PROVIDER: "openai"}, False),  # another provider's
    ({names.LABEL_ACCOUNT: "usr_ada", names.LABEL_PROVIDER: "anthropic"}, False),
    ({}, False),  # any Secret of the platform namespace
])
def test_a_credential_is_copied_only_for_its_owner_and_provider(
        labels: dict[str, str], expected: bool) -> None:
    assert credential_of(_secret(**labels), "usr_ada", BINDING) is expected
