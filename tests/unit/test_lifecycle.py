"""The lifecycle API: every action from every phase, the 400s and 409s of SPEC section 3, the
exact spec patches, and the update handshake of SPEC section 4."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from exocorp.lifecycle import (
    ALLOWED_PHASES,
    ActionContext,
    ActionRefusedError,
    BillingStanding,
    ErrorCode,
    InvalidRequestError,
    LifecycleError,
    evaluate_handshake,
    parse_action_request,
    plan_action,
    resolve_bindings,
)
from exocorp.lifecycle.plan import rollback_spec
from exocorp.model import (
    Action,
    ActionRequest,
    Channel,
    ConfigSnapshot,
    Exocorp,
    ExocorpReleaseSpec,
    HandshakeReasonCode,
    HandshakeStatus,
    Phase,
    ProviderBinding,
    RevisionContent,
    apply_merge_patch,
    phase_of,
    revision_name,
)

pytestmark = pytest.mark.unit

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
STAMP = "2024-05-01T12:00:00Z"
EARLIER = "2024-04-01T00:00:00Z"
ACTOR = "user-1"


def _release(version: str, **extra: Any) -> ExocorpReleaseSpec:
    return ExocorpReleaseSpec.model_validate(
        {
            "version": version,
            "channels": extra.pop("channels", ["stable"]),
            "requiredProviders": extra.pop("requiredProviders", ["anthropic"]),
            "components": [
                {
                    "name": "portal",
                    "image": f"img/portal:{version}",
                    "portal": True,
                    "ports": [{"name": "http", "port": 8080}],
                },
                {"name": "worker", "image": f"img/worker:{version}", "agent": True},
            ],
            **extra,
        }
    )


def _config(model: str) -> ConfigSnapshot:
    return ConfigSnapshot.model_validate(
        {"agents": [{"name": "ceo", "role": "ceo", "provider": "anthropic", "model": model}]}
    )


CATALOG = [
    _release("0.9.0"),
    _release("1.0.0"),
    _release("1.1.0", optionalProviders=["openai"]),
    _release("2.0.0-beta.1", channels=["beta"]),
]
CONTENT_1 = RevisionContent.model_validate(
    {"release": {"channel": "stable", "version": "0.9.0"}, "config": _config("m0")}
)
CONTENT_2 = RevisionContent.model_validate(
    {"release": {"channel": "stable", "version": "1.0.0"}, "config": _config("m1")}
)
REV_1 = revision_name("acme", CONTENT_1)
REV_2 = revision_name("acme", CONTENT_2)
DRAFT = {"config": _config("m2").to_wire()}
SECRETS = {"anthropic": ["anthropic-key"]}


def _condition(type_: str, status: str, reason: str, generation: int = 4) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "lastTransitionTime": EARLIER,
        "observedGeneration": generation,
    }


def _history(*entries: tuple[str, int, str, str]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "number": number,
            "version": version,
            "outcome": outcome,
            "createdAt": EARLIER,
        }
        for name, number, version, outcome in entries
    ]


SUCCEEDED_HISTORY = _history((REV_2, 2, "1.0.0", "Succeeded"), (REV_1, 1, "0.9.0", "Succeeded"))


def make_exocorp(phase: Phase, **overrides: Any) -> Exocorp:
    """An Exocorp whose derived phase is `phase`; `overrides` replace spec/status/metadata keys."""
    spec: dict[str, Any] = {
        "owner": "acct-1",
        "displayName": "Acme",
        "slug": "acme",
        "provisioned": True,
        "release": {"channel": "stable", "version": "1.0.0"},
        "config": _config("m1").to_wire(),
        "providerBindings": [{"provider": "anthropic", "secretName": "anthropic-key"}],
        "lastAction": {"action": "provision", "requestedBy": "user-0", "at": EARLIER},
    }
    status: dict[str, Any] = {
        "observedGeneration": 4,
        "conditions": [
            _condition("Ready", "True", "Available"),
            _condition("Progressing", "False", "RolloutComplete"),
            _condition("Stalled", "False", "RolloutComplete"),
        ],
        "currentRevision": {"name": REV_2, "number": 2},
        "lastSuccessfulRevision": {"name": REV_2, "number": 2},
        "history": SUCCEEDED_HISTORY,
    }
    metadata: dict[str, Any] = {"name": "acme", "generation": 4, "resourceVersion": "77"}
    if phase is Phase.DRAFT:
        spec = {k: spec[k] for k in ("owner", "displayName", "slug")}
        status = {"observedGeneration": 4}
    elif phase is Phase.PROVISIONING:
        status = {
            "observedGeneration": 4,
            "conditions": [
                _condition("Ready", "False", "ComponentsNotReady"),
                _condition("Progressing", "True", "NewRevision"),
            ],
            "currentRevision": {"name": REV_2, "number": 1},
            "history": _history((REV_2, 1, "1.0.0", "Progressing")),
        }
    elif phase is Phase.STARTING:
        status["conditions"] = [
            _condition("Ready", "False", "ComponentsNotReady"),
            _condition("Progressing", "False", "RolloutComplete"),
        ]
    elif phase is Phase.PAUSED:
        spec |= {"paused": True, "pauseReason": "maintenance"}
    elif phase is Phase.STOPPED:
        spec["stopped"] = True
        status["conditions"] = [_condition("Ready", "False", "Stopped")]
    elif phase is Phase.FAILED:
        status["conditions"] = [
            _condition("Ready", "False", "ComponentsNotReady"),
            _condition("Stalled", "True", "ManualRollbackPolicy"),
        ]
    elif phase is Phase.DESTROYING:
        metadata["deletionTimestamp"] = STAMP
    spec |= overrides.pop("spec", {})
    status |= overrides.pop("status", {})
    metadata |= overrides.pop("metadata", {})
    assert not overrides
    exocorp = Exocorp.model_validate({"metadata": metadata, "spec": spec, "status": status})
    assert phase_of(exocorp) is phase
    return exocorp


ACTIVE = BillingStanding(active=True, has_price_book=True)
INACTIVE = BillingStanding(active=False, has_price_book=True)
NO_BOOK = BillingStanding(active=True, has_price_book=False)


def make_context(**overrides: Any) -> ActionContext:
    values: dict[str, Any] = {
        "actor": ACTOR,
        "now": NOW,
        "releases": CATALOG,
        "draft": DRAFT,
        "revisions": {REV_1: CONTENT_1, REV_2: CONTENT_2},
        "billing": ACTIVE,
        "provider_secrets": SECRETS,
    }
    return ActionContext(**(values | overrides))


def request(action: str, **fields: Any) -> ActionRequest:
    return parse_action_request({"action": action, **fields})


def last_action(action: str, **extra: str) -> dict[str, str]:
    return {"action": action, "requestedBy": ACTOR, "at": STAMP, **extra}


def refused(
    exocorp: Exocorp, req: ActionRequest, context: ActionContext | None = None
) -> LifecycleError:
    with pytest.raises(LifecycleError) as caught:
        plan_action(exocorp, req, context or make_context())
    return caught.value


# --- the whole table: every action from every phase --------------------------------------------

RUNNING_CONFIG_M2 = {
    "agents": [{"name": "ceo", "role": "ceo", "provider": "anthropic", "model": "m2"}]
}
ROLLBACK_TO_REV_1 = {
    "release": {"version": "0.9.0"},
    "config": {"agents": [{"name": "ceo", "role": "ceo", "provider": "anthropic", "model": "m0"}]},
    "lastAction": last_action("rollback", targetRevision=REV_1),
}
UPDATE = {"release": {"version": "1.1.0"}, "lastAction": last_action("update")}
RESTART = {"restartAt": STAMP, "lastAction": last_action("restart", targetRevision=REV_2)}
REPROVISION = {
    "release": {"version": "1.1.0"},
    "config": RUNNING_CONFIG_M2,
    "rebuildNonce": 1,
    "lastAction": last_action("reprovision"),
}
STOP = {"stopped": True, "lastAction": last_action("stop")}
DESTROY = {"lastAction": last_action("destroy")}

# (action, request fields) -> {phase: exact spec patch}; phases not listed must answer 409.
EXPECTED: dict[tuple[str, tuple[tuple[str, str], ...]], dict[Phase, dict[str, Any]]] = {
    ("provision", ()): {
        Phase.DRAFT: {
            "provisioned": True,
            "release": {"channel": "stable", "version": "1.1.0"},
            "config": {
                **RUNNING_CONFIG_M2,
                "teams": [],
                "componentSizes": {},
                "requiredProviders": [],
            },
            "providerBindings": [{"provider": "anthropic", "secretName": "anthropic-key"}],
            "lastAction": last_action("provision"),
        },
        # The stored lastAction was a provision too: a merge patch names only what changes.
        Phase.STOPPED: {"stopped": False, "lastAction": {"requestedBy": ACTOR, "at": STAMP}},
    },
    ("update", ()): {phase: UPDATE for phase in ALLOWED_PHASES[Action.UPDATE]},
    ("restart", ()): {
        Phase.RUNNING: RESTART,
        Phase.PAUSED: RESTART,
        Phase.FAILED: RESTART,
        Phase.STOPPED: RESTART | {"stopped": False},
    },
    ("stop", ()): {phase: STOP for phase in ALLOWED_PHASES[Action.STOP]},
    ("pause", (("reason", "maintenance"),)): {
        Phase.RUNNING: {
            "paused": True,
            "pauseReason": "maintenance",
            "lastAction": last_action("pause", reason="maintenance"),
        }
    },
    ("resume", ()): {
        Phase.PAUSED: {"paused": False, "pauseReason": None, "lastAction": last_action("resume")}
    },
    ("reprovision", ()): {phase: REPROVISION for phase in ALLOWED_PHASES[Action.REPROVISION]},
    ("rollback", ()): {phase: ROLLBACK_TO_REV_1 for phase in ALLOWED_PHASES[Action.ROLLBACK]},
    ("destroy", (("confirm", "acme"),)): {
        phase: DESTROY for phase in ALLOWED_PHASES[Action.DESTROY]
    },
}

MATRIX = [
    pytest.param(action, dict(fields), phase, id=f"{action}-from-{phase.value}")
    for (action, fields) in EXPECTED
    for phase in Phase
]


def test_expected_table_matches_the_allowed_phases() -> None:
    for (action, _fields), patches in EXPECTED.items():
        assert set(patches) == ALLOWED_PHASES[Action(action)], action


def test_allowed_phases_follow_the_spec_table() -> None:
    everything = set(Phase)
    assert {
        Action.PROVISION: {Phase.DRAFT, Phase.STOPPED},
        Action.UPDATE: {Phase.RUNNING, Phase.PAUSED, Phase.STOPPED, Phase.FAILED},
        Action.RESTART: {Phase.RUNNING, Phase.PAUSED, Phase.STOPPED, Phase.FAILED},
        Action.STOP: everything - {Phase.DRAFT, Phase.STOPPED, Phase.DESTROYING},
        Action.PAUSE: {Phase.RUNNING},
        Action.RESUME: {Phase.PAUSED},
        Action.REPROVISION: {Phase.RUNNING, Phase.PAUSED, Phase.STOPPED, Phase.FAILED},
        Action.ROLLBACK: {Phase.RUNNING, Phase.PAUSED, Phase.STOPPED, Phase.FAILED},
        Action.DESTROY: everything - {Phase.DESTROYING},
    } == ALLOWED_PHASES


@pytest.mark.parametrize(("action", "fields", "phase"), MATRIX)
def test_every_action_from_every_phase(action: str, fields: dict[str, str], phase: Phase) -> None:
    exocorp = make_exocorp(phase)
    expected = EXPECTED[(action, tuple(fields.items()))].get(phase)
    if expected is None:
        error = refused(exocorp, request(action, **fields))
        # Provisioning is a rollout: what it refuses, it refuses as "wait" (one code).
        waits = phase is Phase.PROVISIONING
        assert (type(error), error.code) == (
            ActionRefusedError, ErrorCode.IN_PROGRESS if waits else ErrorCode.INVALID_PHASE)
        assert phase.value in error.detail
        return
    plan = plan_action(exocorp, request(action, **fields), make_context())
    assert plan.spec_patch == expected
    assert plan.delete is (action == "destroy")
    # The patch, applied to the stored spec, yields exactly the planned spec.
    assert apply_merge_patch(exocorp.spec.to_wire(), plan.spec_patch) == plan.new_spec.to_wire()
    assert plan.patch == {"metadata": {"resourceVersion": "77"}, "spec": expected}
    assert plan.audit.action == Action(action)
    assert (plan.audit.actor, plan.audit.exocorp, plan.audit.phase) == (ACTOR, "acme", phase)


# --- 400: bad requests, checked before anything else ----------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "   "])
@pytest.mark.parametrize("phase", list(Phase))
def test_pause_without_reason_is_400_in_every_phase(reason: str | None, phase: Phase) -> None:
    error = refused(make_exocorp(phase), request("pause", reason=reason))
    assert (type(error), error.code) == (InvalidRequestError, ErrorCode.REASON_REQUIRED)
    assert [e.field for e in error.field_errors] == ["reason"]


@pytest.mark.parametrize("confirm", [None, "", "ACME", "acme ", "other"])
def test_destroy_without_the_slug_typed_back_is_400(confirm: str | None) -> None:
    error = refused(make_exocorp(Phase.RUNNING), request("destroy", confirm=confirm))
    assert (type(error), error.code) == (InvalidRequestError, ErrorCode.CONFIRMATION_MISMATCH)


def test_destroy_confirmation_is_checked_before_the_phase() -> None:
    error = refused(make_exocorp(Phase.DESTROYING), request("destroy"))
    assert isinstance(error, InvalidRequestError)
    error = refused(make_exocorp(Phase.DESTROYING), request("destroy", confirm="acme"))
    assert (type(error), error.code) == (ActionRefusedError, ErrorCode.INVALID_PHASE)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "update", "version": "1.1"}, "version"),
        ({"action": "update", "version": "v1.1.0"}, "version"),
        ({"action": "update", "version": "01.1.0"}, "version"),
        ({"action": "update", "channel": "nightly"}, "channel"),
        ({"action": "explode"}, "action"),
        ({}, "action"),
        ({"action": "stop", "force": True}, "force"),
        ({"action": "rollback", "revision": 0}, "revision"),
        ({"action": "pause", "reason": "x" * 1025}, "reason"),
    ],
)
def test_malformed_requests_are_400_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(LifecycleError) as caught:
        parse_action_request(body)
    assert isinstance(caught.value, InvalidRequestError)
    assert caught.value.code is ErrorCode.INVALID_REQUEST
    assert any(e.field.startswith(field) for e in caught.value.field_errors), caught.value


def test_a_request_body_that_is_not_an_object_is_400() -> None:
    with pytest.raises(LifecycleError) as caught:
        parse_action_request(["stop"])
    assert isinstance(caught.value, InvalidRequestError)


@pytest.mark.parametrize(
    ("action", "fields"),
    [
        ("stop", {"version": "1.1.0"}),
        ("pause", {"reason": "x", "revision": 1}),
        ("rollback", {"confirm": "acme"}),
        ("destroy", {"confirm": "acme", "channel": "beta"}),
    ],
)
def test_fields_of_another_action_are_400(action: str, fields: dict[str, Any]) -> None:
    error = refused(make_exocorp(Phase.RUNNING), request(action, **fields))
    assert (type(error), error.code) == (InvalidRequestError, ErrorCode.INVALID_REQUEST)


def test_request_fields_accept_snake_and_camel_case() -> None:
    assert request("rollback", revision="3").revision == "3"
    assert ActionRequest(action=Action.UPDATE, version="1.1.0").version == "1.1.0"


# --- provision ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "code"),
    [
        ({"draft": None}, ErrorCode.DRAFT_MISSING),
        ({"draft": {"config": {"agents": [{"name": "Bad Name"}]}}}, ErrorCode.DRAFT_INVALID),
        ({"draft": {"version": "3.0.0", "config": {}}}, ErrorCode.RELEASE_NOT_FOUND),
        ({"draft": {"version": "2.0.0-beta.1", "config": {}}}, ErrorCode.RELEASE_NOT_FOUND),
        ({"draft": {"channel": "canary", "config": {}}}, ErrorCode.RELEASE_NOT_FOUND),
        ({"releases": []}, ErrorCode.RELEASE_NOT_FOUND),
        (
            {
                "releases": [_release("1.1.0", blocked=True, blockedReason="bad")],
                "draft": {"version": "1.1.0"},
            },
            ErrorCode.RELEASE_WITHDRAWN,
        ),
        (
            {"draft": {"config": {"componentSizes": {"gpu": "large"}}}},
            ErrorCode.DRAFT_INVALID,
        ),
        ({"provider_secrets": {}}, ErrorCode.PROVIDER_MISSING),
        (
            {"draft": {"providerBindings": [{"provider": "anthropic", "secretName": "gone"}]}},
            ErrorCode.PROVIDER_MISSING,
        ),
        ({"billing": INACTIVE}, ErrorCode.BILLING_INACTIVE),
        ({"billing": NO_BOOK}, ErrorCode.NO_PRICE_BOOK),
    ],
)
def test_provision_from_draft_conflicts(context: dict[str, Any], code: ErrorCode) -> None:
    error = refused(make_exocorp(Phase.DRAFT), request("provision"), make_context(**context))
    assert (type(error), error.code) == (ActionRefusedError, code)


def test_provision_checks_come_in_the_spec_table_order() -> None:
    # No draft, no release, no provider, no billing: the draft is what is reported.
    context = make_context(draft=None, releases=[], provider_secrets={}, billing=INACTIVE)
    assert refused(make_exocorp(Phase.DRAFT), request("provision"), context).code == (
        ErrorCode.DRAFT_MISSING
    )
    context = make_context(provider_secrets={}, billing=INACTIVE)
    assert refused(make_exocorp(Phase.DRAFT), request("provision"), context).code == (
        ErrorCode.PROVIDER_MISSING
    )


def test_an_invalid_draft_names_its_bad_fields() -> None:
    context = make_context(draft={"config": {"agents": [{"name": "ceo"}]}})
    error = refused(make_exocorp(Phase.DRAFT), request("provision"), context)
    assert any(e.field.startswith("config.agents.0") for e in error.field_errors)


def test_provision_pins_the_draft_version_and_honours_chosen_secrets() -> None:
    draft = {
        "version": "1.0.0",
        "config": _config("m2").to_wire(),
        "providerBindings": [{"provider": "anthropic", "secretName": "team-key"}],
    }
    context = make_context(
        draft=draft, provider_secrets={"anthropic": ["anthropic-key", "team-key"]}
    )
    plan = plan_action(make_exocorp(Phase.DRAFT), request("provision"), context)
    assert plan.new_spec.release is not None
    assert plan.new_spec.release.version == "1.0.0"
    assert plan.new_spec.provider_bindings == [
        ProviderBinding(provider="anthropic", secret_name="team-key")
    ]


def test_provision_binds_optional_providers_when_a_secret_exists() -> None:
    context = make_context(provider_secrets={**SECRETS, "openai": ["oa-2", "oa-1"]})
    plan = plan_action(make_exocorp(Phase.DRAFT), request("provision"), context)
    assert [b.to_wire() for b in plan.new_spec.provider_bindings] == [
        {"provider": "anthropic", "secretName": "anthropic-key"},
        {"provider": "openai", "secretName": "oa-1"},
    ]


@pytest.mark.parametrize(
    ("context", "code"),
    [
        ({"billing": INACTIVE}, ErrorCode.BILLING_INACTIVE),
        ({"billing": NO_BOOK}, ErrorCode.NO_PRICE_BOOK),
        ({"provider_secrets": {}}, ErrorCode.PROVIDER_MISSING),
        ({"releases": [_release("1.1.0")]}, ErrorCode.RELEASE_NOT_FOUND),
    ],
)
def test_provision_from_stopped_conflicts(context: dict[str, Any], code: ErrorCode) -> None:
    error = refused(make_exocorp(Phase.STOPPED), request("provision"), make_context(**context))
    assert (type(error), error.code) == (ActionRefusedError, code)


def test_provision_from_stopped_does_not_need_a_draft() -> None:
    plan = plan_action(make_exocorp(Phase.STOPPED), request("provision"), make_context(draft=None))
    assert plan.spec_patch == {"stopped": False, "lastAction": {"requestedBy": ACTOR, "at": STAMP}}


@pytest.mark.parametrize("action", ["provision", "restart"])
def test_starting_a_stopped_exocorp_ends_a_pause_set_before_the_stop(action: str) -> None:
    stopped = make_exocorp(Phase.STOPPED, spec={"paused": True, "pauseReason": "maintenance"})
    plan = plan_action(stopped, request(action), make_context())
    assert plan.spec_patch["paused"] is False
    assert plan.spec_patch["pauseReason"] is None
    assert plan.spec_patch["stopped"] is False
    assert (plan.new_spec.paused, plan.new_spec.pause_reason) == (False, None)


@pytest.mark.parametrize("action", ["provision", "restart"])
def test_a_billing_pause_is_not_ended_by_starting_without_credit(action: str) -> None:
    stopped = make_exocorp(
        Phase.STOPPED, spec={"paused": True, "pauseReason": "billing: credit exhausted"})
    error = refused(stopped, request(action), make_context(billing=INACTIVE))
    assert (type(error), error.code) == (ActionRefusedError, ErrorCode.BILLING_INACTIVE)
    # Topped up: starting it runs it.
    assert plan_action(stopped, request(action), make_context()).new_spec.paused is False


def test_restart_of_a_paused_exocorp_keeps_it_paused() -> None:
    plan = plan_action(make_exocorp(Phase.PAUSED), request("restart"), make_context())
    assert "paused" not in plan.spec_patch
    assert plan.new_spec.paused is True


# --- in progress --------------------------------------------------------------------------------

ROLLING = {
    "conditions": [
        _condition("Ready", "True", "Available"),
        _condition("Progressing", "True", "RolloutInProgress"),
    ]
}


@pytest.mark.parametrize("action", ["update", "restart", "reprovision", "rollback"])
@pytest.mark.parametrize("phase", [Phase.RUNNING, Phase.PAUSED])
def test_actions_are_409_while_a_revision_rolls_out(action: str, phase: Phase) -> None:
    exocorp = (
        make_exocorp(phase, status=ROLLING)
        if phase is Phase.RUNNING
        else make_exocorp(phase, status={"conditions": ROLLING["conditions"][1:]})
    )
    error = refused(exocorp, request(action))
    assert (type(error), error.code) == (ActionRefusedError, ErrorCode.IN_PROGRESS)


@pytest.mark.parametrize("action", ["update", "restart", "reprovision", "rollback"])
def test_an_accepted_rollout_not_yet_observed_is_in_progress(action: str) -> None:
    # Generation 5 carries an accepted update the operator has not seen (it observed 4).
    exocorp = make_exocorp(
        Phase.STOPPED,
        metadata={"generation": 5},
        spec={"lastAction": {"action": "update", "requestedBy": "user-2", "at": STAMP}},
    )
    error = refused(exocorp, request(action))
    assert (type(error), error.code) == (ActionRefusedError, ErrorCode.IN_PROGRESS)


@pytest.mark.parametrize("action", ["restart", "pause", "resume", "provision", "update"])
def test_an_action_refused_because_a_rollout_runs_says_in_progress(action: str) -> None:
    # Just provisioned: the operator has not observed the generation yet, the phase reads
    # Starting; whatever the phase table says, the answer is "wait", not "invalid phase".
    exocorp = make_exocorp(
        Phase.STARTING,
        metadata={"generation": 5},
        spec={"lastAction": {"action": "provision", "requestedBy": "user-2", "at": STAMP}},
    )
    fields = {"reason": "maintenance"} if action == "pause" else {}
    error = refused(exocorp, request(action, **fields))
    assert (type(error), error.code) == (ActionRefusedError, ErrorCode.IN_PROGRESS)
    assert "Starting" in error.detail


def test_an_unobserved_pause_is_not_a_rollout() -> None:
    exocorp = make_exocorp(
        Phase.PAUSED,
        metadata={"generation": 5},
        spec={
            "lastAction": {
                "action": "pause",
                "requestedBy": "u",
                "at": STAMP,
                "reason": "maintenance",
            }
        },
    )
    plan = plan_action(exocorp, request("update"), make_context())
    assert plan.action is Action.UPDATE
    assert plan.spec_patch["lastAction"]["action"] == "update"
    assert plan.new_spec.release != exocorp.spec.release  # the update goes through


def test_progressing_true_after_a_completed_rollout_is_not_in_progress() -> None:
    status = {
        "conditions": [
            _condition("Ready", "True", "Available"),
            _condition("Progressing", "True", "RolloutComplete"),
        ]
    }
    plan = plan_action(make_exocorp(Phase.RUNNING, status=status), request("restart"),
                       make_context())
    assert plan.action is Action.RESTART
    assert plan.spec_patch["restartAt"] == STAMP


@pytest.mark.parametrize("action", ["stop", "destroy"])
def test_stop_and_destroy_cancel_a_rollout_instead_of_waiting(action: str) -> None:
    fields = {"confirm": "acme"} if action == "destroy" else {}
    plan = plan_action(
        make_exocorp(Phase.RUNNING, status=ROLLING), request(action, **fields), make_context()
    )
    assert plan.action == Action(action)


# --- update -------------------------------------------------------------------------------------


def test_update_to_a_named_version_on_another_channel() -> None:
    plan = plan_action(
        make_exocorp(Phase.RUNNING),
        request("update", version="2.0.0-beta.1", channel="beta"),
        make_context(),
    )
    assert plan.spec_patch == {
        "release": {"channel": "beta", "version": "2.0.0-beta.1"},
        "lastAction": last_action("update"),
    }
    assert plan.audit.details == {"fromVersion": "1.0.0", "toVersion": "2.0.0-beta.1"}


def test_update_carries_the_last_successful_configuration() -> None:
    # The spec holds a configuration whose revision failed; the update starts from the good one.
    exocorp = make_exocorp(Phase.FAILED, spec={"config": _config("broken").to_wire()})
    plan = plan_action(exocorp, request("update"), make_context())
    assert plan.new_spec.config == CONTENT_2.config
    assert plan.new_spec.release is not None
    assert plan.new_spec.release.version == "1.1.0"


def test_update_without_any_successful_revision_keeps_the_spec_configuration() -> None:
    exocorp = make_exocorp(
        Phase.FAILED,
        status={"lastSuccessfulRevision": None, "history": _history((REV_2, 1, "1.0.0", "Failed"))},
    )
    plan = plan_action(exocorp, request("update"), make_context())
    assert plan.spec_patch == UPDATE


@pytest.mark.parametrize(
    ("fields", "context", "detail"),
    [
        ({}, {"releases": CATALOG[:2]}, "up_to_date"),
        ({"version": "1.0.0"}, {}, "up_to_date"),
        ({"version": "0.9.0"}, {}, "rollback"),
        ({"version": "2.0.0-beta.1"}, {}, "not on stable"),
        ({}, {"billing": INACTIVE}, "billing"),
        (
            {},
            {"releases": [*CATALOG[:2], _release("1.1.0", minUpdateFrom="1.0.1")]},
            "updates only from 1.0.1",
        ),
        (
            {},
            {"releases": [*CATALOG[:2], _release("1.1.0", requiredProviders=["openai"])]},
            "openai",
        ),
        (
            {},
            {"releases": [*CATALOG[:2], _release("1.1.0", blocked=True, blockedReason="cve")]},
            "up_to_date",
        ),
        (
            {"version": "1.1.0"},
            {"releases": [*CATALOG[:2], _release("1.1.0", blocked=True, blockedReason="cve")]},
            "withdrawn",
        ),
        ({}, {"releases": [_release("1.1.0")]}, "install_required"),
    ],
)
def test_update_is_409_unless_the_handshake_offers_an_update(
    fields: dict[str, str], context: dict[str, Any], detail: str
) -> None:
    error = refused(
        make_exocorp(Phase.RUNNING), request("update", **fields), make_context(**context)
    )
    assert (type(error), error.code) == (ActionRefusedError, ErrorCode.UPDATE_NOT_AVAILABLE)
    assert detail in error.detail


def test_update_to_an_unpublished_version_is_409() -> None:
    error = refused(make_exocorp(Phase.RUNNING), request("update", version="9.9.9"))
    assert (type(error), error.code) == (ActionRefusedError, ErrorCode.RELEASE_NOT_FOUND)


def test_update_needs_the_last_successful_revision_content() -> None:
    error = refused(make_exocorp(Phase.RUNNING), request("update"), make_context(revisions={}))
    assert (type(error), error.code) == (ActionRefusedError, ErrorCode.REVISION_NOT_FOUND)


# --- restart ------------------------------------------------------------------------------------


def test_restart_reapplies_the_last_successful_revision() -> None:
    exocorp = make_exocorp(
        Phase.FAILED, spec={"release": {"channel": "stable", "version": "1.1.0"}, "rebuildNonce": 3}
    )
    plan = plan_action(exocorp, request("restart"), make_context())
    assert plan.spec_patch == {
        "release": {"version": "1.0.0"},
        "rebuildNonce": 0,
        "restartAt": STAMP,
        "lastAction": last_action("restart", targetRevision=REV_2),
    }


@pytest.mark.parametrize("phase", [Phase.RUNNING, Phase.PAUSED, Phase.STOPPED, Phase.FAILED])
def test_restart_without_a_successful_revision_is_409(phase: Phase) -> None:
    exocorp = make_exocorp(phase, status={"lastSuccessfulRevision": None})
    error = refused(exocorp, request("restart"))
    assert (type(error), error.code) == (ActionRefusedError, ErrorCode.NO_SUCCESSFUL_REVISION)


def test_restart_of_a_stopped_exocorp_needs_active_billing() -> None:
    error = refused(
        make_exocorp(Phase.STOPPED), request("restart"), make_context(billing=INACTIVE)
    )
    assert (type(error), error.code) == (ActionRefusedError, ErrorCode.BILLING_INACTIVE)
    # A running one restarts whatever the billing state (billing pauses it separately).
    plan_action(make_exocorp(Phase.RUNNING), request("restart"), make_context(billing=INACTIVE))


# --- pause and resume ---------------------------------------------------------------------------


def test_pause_trims_the_reason() -> None:
    plan = plan_action(
        make_exocorp(Phase.RUNNING), request("pause", reason="  quota  "), make_context()
    )
    assert plan.new_spec.pause_reason == "quota"
    assert plan.audit.reason == "quota"


def test_resume_with_an_inactive_billing_account_is_409() -> None:
    error = refused(
        make_exocorp(Phase.PAUSED), request("resume"), make_context(billing=INACTIVE)
    )
    assert (type(error), error.code) == (ActionRefusedError, ErrorCode.BILLING_INACTIVE)


def test_resume_records_an_optional_reason() -> None:
    plan = plan_action(
        make_exocorp(Phase.PAUSED), request("resume", reason="credit added"), make_context()
    )
    assert plan.spec_patch["lastAction"] == last_action("resume", reason="credit added")


# --- reprovision --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "code"),
    [
        ({"draft": None}, ErrorCode.DRAFT_MISSING),
        (
            {"draft": {"config": {"teams": [{"name": "a", "agents": ["ghost"]}]}}},
            ErrorCode.DRAFT_INVALID,
        ),
        ({"provider_secrets": {}}, ErrorCode.PROVIDER_MISSING),
    ],
)
def test_reprovision_conflicts(context: dict[str, Any], code: ErrorCode) -> None:
    error = refused(make_exocorp(Phase.RUNNING), request("reprovision"), make_context(**context))
    assert (type(error), error.code) == (ActionRefusedError, code)


def test_reprovision_of_an_identical_configuration_still_makes_a_new_revision() -> None:
    exocorp = make_exocorp(Phase.RUNNING)
    draft = {"version": "1.0.0", "config": _config("m1").to_wire()}
    plan = plan_action(exocorp, request("reprovision"), make_context(draft=draft))
    assert plan.spec_patch == {"rebuildNonce": 1, "lastAction": last_action("reprovision")}
    before = RevisionContent.from_spec(exocorp.spec)
    after = RevisionContent.from_spec(plan.new_spec)
    assert before is not None
    assert after is not None
    assert revision_name("acme", before) != revision_name("acme", after)


# --- rollback -----------------------------------------------------------------------------------


@pytest.mark.parametrize("selector", [1, "1", REV_1])
def test_rollback_to_a_named_revision(selector: int | str) -> None:
    plan = plan_action(
        make_exocorp(Phase.RUNNING), request("rollback", revision=selector), make_context()
    )
    assert plan.spec_patch == ROLLBACK_TO_REV_1
    assert plan.audit.details["targetRevision"] == REV_1



def test_the_operators_automatic_rollback_restores_what_a_requested_one_plans() -> None:
    # The operator writes rollback_spec(content) into the spec; applied to the spec, it must
    # give exactly the spec the planner's rollback gives (lastAction aside).
    exocorp = make_exocorp(Phase.RUNNING)
    plan = plan_action(exocorp, request("rollback", revision=REV_1), make_context())
    automatic = apply_merge_patch(exocorp.spec.to_wire(), rollback_spec(CONTENT_1))
    planned = plan.new_spec.to_wire()
    assert automatic["release"] != exocorp.spec.to_wire()["release"]  # a real change
    assert {k: v for k, v in automatic.items() if k != "lastAction"} == \
        {k: v for k, v in planned.items() if k != "lastAction"}


FAILED_AFTER_UPDATE = {
    "currentRevision": {"name": "acme-failed0000", "number": 3},
    "history": [
        {
            "name": "acme-failed0000",
            "number": 3,
            "version": "1.1.0",
            "outcome": "Failed",
            "createdAt": EARLIER,
        },
        *SUCCEEDED_HISTORY,
    ],
}


def test_default_rollback_target_is_the_newest_success_that_is_not_current() -> None:
    # Current revision 3 failed: the default target is revision 2, the last successful one.
    exocorp = make_exocorp(
        Phase.FAILED,
        spec={"release": {"channel": "stable", "version": "1.1.0"}},
        status=FAILED_AFTER_UPDATE,
    )
    plan = plan_action(exocorp, request("rollback"), make_context())
    assert plan.spec_patch == {
        "release": {"version": "1.0.0"},
        "lastAction": last_action("rollback", targetRevision=REV_2),
    }


@pytest.mark.parametrize(
    ("selector", "status", "code"),
    [
        (3, FAILED_AFTER_UPDATE, ErrorCode.REVISION_NOT_SUCCESSFUL),
        ("acme-failed0000", FAILED_AFTER_UPDATE, ErrorCode.REVISION_NOT_SUCCESSFUL),
        (7, {}, ErrorCode.REVISION_NOT_FOUND),
        ("acme-nope", {}, ErrorCode.REVISION_NOT_FOUND),
        (None, {"history": SUCCEEDED_HISTORY[:1]}, ErrorCode.NO_SUCCESSFUL_REVISION),
        (None, {"history": []}, ErrorCode.NO_SUCCESSFUL_REVISION),
    ],
)
def test_rollback_target_must_exist_and_have_succeeded(
    selector: int | str | None, status: dict[str, Any], code: ErrorCode
) -> None:
    fields = {} if selector is None else {"revision": selector}
    error = refused(make_exocorp(Phase.RUNNING, status=status), request("rollback", **fields))
    assert (type(error), error.code) == (ActionRefusedError, code)


def test_rollback_needs_the_target_content() -> None:
    error = refused(
        make_exocorp(Phase.RUNNING), request("rollback"), make_context(revisions={REV_2: CONTENT_2})
    )
    assert (type(error), error.code) == (ActionRefusedError, ErrorCode.REVISION_NOT_FOUND)


def test_a_reused_revision_name_resolves_to_its_newest_entry() -> None:
    history = _history(
        (REV_1, 3, "0.9.0", "Succeeded"),
        (REV_2, 2, "1.0.0", "Succeeded"),
        (REV_1, 1, "0.9.0", "Failed"),
    )
    exocorp = make_exocorp(
        Phase.RUNNING, status={"history": history, "currentRevision": {"name": REV_2, "number": 2}}
    )
    plan = plan_action(exocorp, request("rollback", revision=REV_1), make_context())
    assert plan.audit.details["targetRevision"] == REV_1


# --- destroy ------------------------------------------------------------------------------------


def test_destroy_deletes_and_names_the_requester() -> None:
    plan = plan_action(
        make_exocorp(Phase.FAILED),
        request("destroy", confirm="acme", reason="done"),
        make_context(),
    )
    assert plan.delete
    assert plan.spec_patch == {"lastAction": last_action("destroy", reason="done")}


def test_a_plan_without_resource_version_patches_only_the_spec() -> None:
    exocorp = make_exocorp(Phase.RUNNING, metadata={"resourceVersion": None})
    plan = plan_action(exocorp, request("stop"), make_context())
    assert plan.patch == {"spec": STOP}


# --- provider bindings --------------------------------------------------------------------------


def test_resolve_bindings_reports_required_optional_and_missing() -> None:
    release = _release("1.1.0", requiredProviders=["anthropic"], optionalProviders=["openai", "x"])
    config = ConfigSnapshot.model_validate(
        {"agents": [{"name": "a", "role": "r", "provider": "mistral", "model": "m"}]}
    )
    needs = resolve_bindings(
        release,
        config,
        [ProviderBinding(provider="openai", secret_name="missing")],
        {"anthropic": ["k"], "openai": ["oa"]},
    )
    assert [(n.provider, n.required, n.secret_name, n.chosen) for n in needs] == [
        ("anthropic", True, "k", False),
        ("mistral", True, None, False),
        ("openai", False, None, True),
        ("x", False, None, False),
    ]


# --- update handshake ---------------------------------------------------------------------------


def handshake(
    exocorp: Exocorp, releases: list[ExocorpReleaseSpec] | None = None, **kwargs: Any
) -> Any:
    options: dict[str, Any] = {"provider_secrets": SECRETS, "billing": ACTIVE} | kwargs
    return evaluate_handshake(exocorp, CATALOG if releases is None else releases, **options)


def test_handshake_update_available() -> None:
    answer = handshake(make_exocorp(Phase.RUNNING))
    assert answer.to_wire() == {
        "status": "update_available",
        "channel": "stable",
        "installedVersion": "1.0.0",
        "availableVersion": "1.1.0",
        "reasons": [],
    }


def test_handshake_up_to_date() -> None:
    answer = handshake(make_exocorp(Phase.RUNNING), CATALOG[:2])
    assert (answer.status, answer.available_version) == (HandshakeStatus.UP_TO_DATE, None)


def test_handshake_on_a_draft_requires_an_install() -> None:
    answer = handshake(make_exocorp(Phase.DRAFT))
    assert answer.status is HandshakeStatus.INSTALL_REQUIRED
    assert (answer.installed_version, answer.available_version) == (None, "1.1.0")
    assert [r.code for r in answer.reasons] == [HandshakeReasonCode.NOT_INSTALLED]


@pytest.mark.parametrize(
    ("releases", "code"),
    [
        (
            [_release("1.0.0", blocked=True, blockedReason="cve-1"), _release("1.1.0")],
            HandshakeReasonCode.INSTALLED_WITHDRAWN,
        ),
        ([_release("1.1.0")], HandshakeReasonCode.INSTALLED_UNKNOWN),
    ],
)
def test_handshake_when_the_installed_release_is_withdrawn_or_gone(
    releases: list[ExocorpReleaseSpec], code: HandshakeReasonCode
) -> None:
    answer = handshake(make_exocorp(Phase.RUNNING), releases)
    assert answer.status is HandshakeStatus.INSTALL_REQUIRED
    assert answer.available_version == "1.1.0"
    assert [r.code for r in answer.reasons] == [code]


def test_handshake_skips_withdrawn_releases() -> None:
    releases = [*CATALOG[:3], _release("1.2.0", blocked=True, blockedReason="cve")]
    assert handshake(make_exocorp(Phase.RUNNING), releases).available_version == "1.1.0"


def test_handshake_orders_by_semver_precedence_not_text() -> None:
    releases = [_release("1.0.0"), _release("1.10.0"), _release("1.9.0"), _release("1.10.0-rc.1")]
    assert handshake(make_exocorp(Phase.RUNNING), releases).available_version == "1.10.0"


def test_handshake_follows_the_requested_channel() -> None:
    answer = handshake(make_exocorp(Phase.RUNNING), channel=Channel.BETA)
    assert (answer.status, answer.available_version) == (
        HandshakeStatus.UPDATE_AVAILABLE,
        "2.0.0-beta.1",
    )


def test_handshake_lists_every_blocking_reason() -> None:
    releases = [
        *CATALOG[:2],
        _release("1.1.0", minUpdateFrom="1.0.5", requiredProviders=["anthropic", "openai"]),
    ]
    answer = handshake(make_exocorp(Phase.RUNNING, status=ROLLING), releases, billing=INACTIVE)
    assert answer.status is HandshakeStatus.BLOCKED
    assert answer.available_version == "1.1.0"
    assert [r.code for r in answer.reasons] == [
        HandshakeReasonCode.VERSION_CONSTRAINT,
        HandshakeReasonCode.PROVIDER_MISSING,
        HandshakeReasonCode.IN_PROGRESS,
        HandshakeReasonCode.BILLING_INACTIVE,
    ]


def test_handshake_min_update_from_is_inclusive() -> None:
    releases = [*CATALOG[:2], _release("1.1.0", minUpdateFrom="1.0.0")]
    assert handshake(make_exocorp(Phase.RUNNING), releases).status is (
        HandshakeStatus.UPDATE_AVAILABLE
    )


def test_handshake_blocks_a_release_missing_a_sized_component() -> None:
    exocorp = make_exocorp(
        Phase.RUNNING,
        spec={"config": {**_config("m1").to_wire(), "componentSizes": {"worker": "large"}}},
    )
    releases = [
        *CATALOG[:2],
        ExocorpReleaseSpec.model_validate(
            {
                "version": "1.1.0",
                "channels": ["stable"],
                "components": [{"name": "portal", "image": "p"}],
            }
        ),
    ]
    answer = handshake(exocorp, releases)
    assert answer.status is HandshakeStatus.BLOCKED
    assert [r.code for r in answer.reasons] == [HandshakeReasonCode.CONFIG_INCOMPATIBLE]
