"""Phase derivation (one precedence list) and the definition of "in progress"."""

from __future__ import annotations

from typing import Any

import pytest

from exocorp.model import (
    ExocorpSpec,
    ExocorpStatus,
    Phase,
    derive_phase,
    rollout_in_progress,
)
from exocorp.model.objects import Exocorp

pytestmark = pytest.mark.unit

STAMP = "2024-05-01T12:00:00Z"
BASE_SPEC: dict[str, Any] = {
    "owner": "o",
    "displayName": "Acme",
    "slug": "acme",
    "provisioned": True,
    "release": {"version": "1.0.0"},
    "config": {},
}
SUCCESS = {"lastSuccessfulRevision": {"name": "acme-abc", "number": 1}}


def cond(type_: str, status: str, reason: str = "Because", generation: int | None = None) -> dict:
    body: dict[str, Any] = {
        "type": type_,
        "status": status,
        "reason": reason,
        "lastTransitionTime": STAMP,
    }
    if generation is not None:
        body["observedGeneration"] = generation
    return body


READY = cond("Ready", "True", generation=2)
STALLED = cond("Stalled", "True")


@pytest.mark.parametrize(
    ("spec", "status", "deleting", "expected"),
    [
        ({}, {"conditions": [READY]}, True, Phase.DESTROYING),
        # A destroy accepted: its spec write bumps the generation just before the delete; it
        # reads Destroying, not Starting, in between.
        ({"lastAction": {"action": "destroy", "requestedBy": "user:1", "at": STAMP}},
         {"conditions": [cond("Ready", "True", generation=1)], **SUCCESS}, False,
         Phase.DESTROYING),
        ({"lastAction": {"action": "restart", "requestedBy": "user:1", "at": STAMP}},
         {"conditions": [cond("Ready", "True", generation=1)], **SUCCESS}, False,
         Phase.STARTING),
        ({"provisioned": False, "release": None, "config": None}, {}, True, Phase.DESTROYING),
        ({"provisioned": False, "release": None, "config": None}, {}, False, Phase.DRAFT),
        ({"stopped": True}, {"conditions": [READY, STALLED]}, False, Phase.STOPPED),
        ({"stopped": True, "paused": True, "pauseReason": "x"}, {}, False, Phase.STOPPED),
        ({"paused": True, "pauseReason": "x"}, {"conditions": [STALLED]}, False, Phase.FAILED),
        ({}, {"conditions": [READY, STALLED]}, False, Phase.FAILED),
        ({"paused": True, "pauseReason": "x"}, {"conditions": [READY]}, False, Phase.PAUSED),
        ({}, {"conditions": [READY]}, False, Phase.RUNNING),
        ({}, {"conditions": [READY], **SUCCESS}, False, Phase.RUNNING),
        ({}, {}, False, Phase.PROVISIONING),
        ({}, {"conditions": [cond("Ready", "Unknown")]}, False, Phase.PROVISIONING),
        ({}, {"conditions": [cond("Ready", "False")], **SUCCESS}, False, Phase.STARTING),
        ({}, {"conditions": [cond("Stalled", "False")], **SUCCESS}, False, Phase.STARTING),
    ],
)
def test_phase_precedence(
    spec: dict[str, Any], status: dict[str, Any], deleting: bool, expected: Phase
) -> None:
    parsed_spec = ExocorpSpec.model_validate(BASE_SPEC | spec)
    parsed_status = ExocorpStatus.model_validate(status)
    assert derive_phase(parsed_spec, parsed_status, generation=2, deleting=deleting) is expected


@pytest.mark.parametrize(
    ("ready", "status_generation", "expected"),
    [
        (cond("Ready", "True", generation=2), None, Phase.RUNNING),
        (cond("Ready", "True", generation=1), 2, Phase.STARTING),  # Ready is from before the change
        (cond("Ready", "True"), 2, Phase.RUNNING),  # falls back to status.observedGeneration
        (cond("Ready", "True"), 1, Phase.STARTING),
        (cond("Ready", "True"), None, Phase.STARTING),
    ],
)
def test_running_needs_ready_for_the_current_generation(
    ready: dict[str, Any], status_generation: int | None, expected: Phase
) -> None:
    status = ExocorpStatus.model_validate(
        {"conditions": [ready], "observedGeneration": status_generation, **SUCCESS}
    )
    assert derive_phase(ExocorpSpec.model_validate(BASE_SPEC), status, generation=2) is expected


def test_without_a_known_generation_ready_is_taken_as_is() -> None:
    status = ExocorpStatus.model_validate({"conditions": [cond("Ready", "True", generation=1)]})
    assert derive_phase(ExocorpSpec.model_validate(BASE_SPEC), status) is Phase.RUNNING


def exocorp(
    conditions: list[dict[str, Any]],
    *,
    generation: int = 2,
    observed: int | None = 2,
    last_action: str | None = None,
) -> Exocorp:
    spec = dict(BASE_SPEC)
    if last_action:
        spec["lastAction"] = {
            "action": last_action,
            "requestedBy": "u",
            "at": STAMP,
            **({"reason": "r"} if last_action == "pause" else {}),
        }
        if last_action == "pause":
            spec |= {"paused": True, "pauseReason": "r"}
    return Exocorp.model_validate(
        {
            "metadata": {"name": "acme", "generation": generation},
            "spec": spec,
            "status": {"conditions": conditions, "observedGeneration": observed},
        }
    )


@pytest.mark.parametrize("reason", ["NewRevision", "RolloutInProgress", "RollingBack"])
def test_progressing_with_a_rollout_reason_is_in_progress(reason: str) -> None:
    assert rollout_in_progress(exocorp([cond("Progressing", "True", reason)]))


@pytest.mark.parametrize(
    "progressing",
    [
        cond("Progressing", "True", "RolloutComplete"),
        cond("Progressing", "False", "RolloutInProgress"),
        cond("Progressing", "Unknown", "NewRevision"),
    ],
)
def test_other_progressing_states_are_not_in_progress(progressing: dict[str, Any]) -> None:
    assert not rollout_in_progress(exocorp([progressing]))


@pytest.mark.parametrize(
    ("action", "observed", "expected"),
    [
        ("update", 1, True),
        ("update", None, True),
        ("restart", 1, True),
        ("rollback", 1, True),
        ("reprovision", 1, True),
        ("provision", 1, True),
        ("update", 2, False),  # observed: the Progressing condition now tells
        ("pause", 1, False),
        ("stop", 1, False),
        (None, 1, False),  # edited by hand: no lastAction, the operator reports progress
    ],
)
def test_an_accepted_rollout_is_in_progress_until_observed(
    action: str | None, observed: int | None, expected: bool
) -> None:
    assert rollout_in_progress(exocorp([], observed=observed, last_action=action)) is expected
