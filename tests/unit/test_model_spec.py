"""Exocorp spec, configuration, draft and status validation."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from exocorp.model import (
    ConfigSnapshot,
    Draft,
    Exocorp,
    ExocorpSpec,
    ExocorpStatus,
    RollbackPolicy,
)

pytestmark = pytest.mark.unit


def spec(**overrides: Any) -> dict[str, Any]:
    return {"owner": "acct-1", "displayName": "Acme", "slug": "acme"} | overrides


def errors_of(model: type[Any], body: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return str(caught.value)


def test_defaults_of_a_draft_spec() -> None:
    parsed = ExocorpSpec.model_validate(spec())
    assert parsed.to_wire() == {
        "owner": "acct-1",
        "displayName": "Acme",
        "slug": "acme",
        "providerBindings": [],
        "provisioned": False,
        "paused": False,
        "stopped": False,
        "rebuildNonce": 0,
        "rollbackPolicy": "Automatic",
        "progressDeadlineSeconds": 600,
        "crashLoopRestartThreshold": 3,
        "revisionHistoryLimit": 10,
    }
    assert parsed.rollback_policy is RollbackPolicy.AUTOMATIC


@pytest.mark.parametrize(
    "slug",
    ["ab", "a" * 41, "Acme", "acme-", "-acme", "ac_me", "ac.me", "acmé", "", "ac me"],
)
def test_bad_slugs_are_rejected(slug: str) -> None:
    assert "slug" in errors_of(ExocorpSpec, spec(slug=slug))


@pytest.mark.parametrize("slug", ["abc", "a" * 40, "acme-2", "007"])
def test_good_slugs_are_accepted(slug: str) -> None:
    assert ExocorpSpec.model_validate(spec(slug=slug)).slug == slug


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"provisioned": True}, "needs release and config"),
        ({"paused": True}, "pauseReason is required"),
        ({"paused": True, "pauseReason": " "}, "pauseReason is required"),
        ({"release": {"version": "1.0"}}, "version"),
        ({"release": {"version": "1.0.0", "channel": "edge"}}, "channel"),
        ({"restartAt": "yesterday"}, "RFC 3339"),
        ({"restartAt": "2024-05-01"}, "RFC 3339"),
        ({"restartAt": "2024-05-01T12:00:00"}, "RFC 3339"),
        ({"restartAt": "2024-13-01T12:00:00Z"}, "not a real date"),
        ({"rollbackPolicy": "automatic"}, "rollbackPolicy"),
        ({"progressDeadlineSeconds": 0}, "progressDeadlineSeconds"),
        ({"revisionHistoryLimit": 0}, "revisionHistoryLimit"),
        ({"rebuildNonce": -1}, "rebuildNonce"),
        ({"owner": ""}, "owner"),
        ({"displayName": "x" * 101}, "displayName"),
        (
            {"lastAction": {"action": "explode", "requestedBy": "u", "at": "2024-05-01T12:00:00Z"}},
            "action",
        ),
        ({"providerBindings": [{"provider": "a", "secretName": "s"}] * 2}, "one binding"),
        ({"providerBindings": [{"provider": "a", "secretName": "S!"}]}, "secretName"),
        ({"unknown": True}, "unknown"),
    ],
)
def test_spec_errors(overrides: dict[str, Any], message: str) -> None:
    assert message in errors_of(ExocorpSpec, spec(**overrides))


@pytest.mark.parametrize(
    "stamp", ["2024-05-01T12:00:00Z", "2024-05-01T12:00:00.123456+02:00", "2024-05-01t12:00:00z"]
)
def test_restart_at_keeps_the_exact_rfc3339_string(stamp: str) -> None:
    assert ExocorpSpec.model_validate(spec(restartAt=stamp)).restart_at == stamp


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"agents": [{"name": "ceo", "role": "r", "provider": "p", "model": "m"}] * 2},
            "agent names must be unique",
        ),
        ({"teams": [{"name": "t", "agents": ["ghost"]}]}, "unknown agents: ghost"),
        ({"teams": [{"name": "t"}, {"name": "t"}]}, "team names must be unique"),
        ({"componentSizes": {"portal": "huge"}}, "componentSizes"),
        ({"componentSizes": {"Portal": "small"}}, "componentSizes"),
        ({"agents": [{"name": "ceo", "role": "", "provider": "p", "model": "m"}]}, "role"),
    ],
)
def test_config_errors(config: dict[str, Any], message: str) -> None:
    assert message in errors_of(ConfigSnapshot, config)


def test_config_providers_needed_include_each_agents_provider() -> None:
    config = ConfigSnapshot.model_validate(
        {
            "agents": [
                {"name": "a", "role": "r", "provider": "openai", "model": "m"},
                {"name": "b", "role": "r", "provider": "anthropic", "model": "m"},
            ],
            "requiredProviders": ["mistral", "openai"],
        }
    )
    assert config.providers_needed() == ["anthropic", "mistral", "openai"]


def test_draft_defaults_and_errors() -> None:
    assert Draft.model_validate({}).to_wire()["channel"] == "stable"
    assert "one binding" in errors_of(
        Draft, {"providerBindings": [{"provider": "a", "secretName": "s"}] * 2}
    )
    assert "version" in errors_of(Draft, {"version": "latest"})


def test_status_tolerates_fields_a_newer_operator_adds() -> None:
    status = ExocorpStatus.model_validate({"phase": "Running", "somethingNew": {"x": 1}})
    assert status.to_wire() == {
        "conditions": [],
        "phase": "Running",
        "history": [],
        "components": [],
        "domains": [],
        "failedRevisionsSinceSuccess": 0,
        "rollbacksSinceSuccess": 0,
        "runningSeconds": {},
        "runningSecondsTotal": 0,
    }


def test_status_rejects_unknown_enum_values() -> None:
    assert "phase" in errors_of(ExocorpStatus, {"phase": "Exploding"})
    assert "reason" in errors_of(
        ExocorpStatus,
        {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "not camel",
                    "lastTransitionTime": "2024-05-01T12:00:00Z",
                }
            ]
        },
    )


def test_a_whole_object_parses_with_absent_or_null_status() -> None:
    body = {
        "apiVersion": "exocorp.io/v1alpha1",
        "kind": "Exocorp",
        "metadata": {"name": "acme", "generation": 2, "managedFields": []},
        "spec": spec(),
    }
    assert Exocorp.model_validate(body).status == ExocorpStatus()
    assert Exocorp.model_validate(body | {"status": None}).status == ExocorpStatus()
    assert not Exocorp.model_validate(body).deleting


def test_the_operators_rollout_record_round_trips() -> None:
    wire = {
        "rollout": {
            "key": "abc123",
            "revision": "acme-0123456789",
            "number": 3,
            "action": "update",
            "startedAt": "2024-05-01T12:00:00Z",
            "outcome": "Progressing",
        },
        "runningSecondsAccruedAt": "2024-05-01T12:00:00Z",
    }
    status = ExocorpStatus.model_validate(wire)
    assert status.rollout is not None
    assert status.rollout.number == 3
    assert {k: status.to_wire()[k] for k in wire} == wire
