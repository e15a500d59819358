"""The lifecycle API: the one place that turns an action (SPEC section 3) into a spec change.

Everything here is pure. A caller (the gateway, the billing job, a test) looks up what an action
needs, puts it in an `ActionContext`, and gets back an `ActionPlan` (a JSON merge patch for the
spec, or a delete) or a `LifecycleError` carrying the HTTP status to answer with:

    exocorp = Exocorp.model_validate(obj)
    request = parse_action_request(body)               # 400 on malformed input
    plan = plan_action(exocorp, request, context)      # 400 / 409 on refused actions
    patch(obj, plan.patch)  # carries metadata.resourceVersion: of two racing writers one wins

Checks run in a fixed order: the request itself (400), the phase (409), a rollout in progress
(409), then what the action needs (409), then whether the owner's allowance covers what the
exocorp would ask for afterwards (409 ``limit_exceeded``, 402 ``insufficient_credit``; see
``allowance``). The operator does the actual work, level-based.

The rule of which revision a rollback restores (`rollback_target`) is here too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from exocorp.lifecycle.allowance import check_allowance
from exocorp.lifecycle.bindings import bindings_or_conflict
from exocorp.lifecycle.context import ActionContext, ActionPlan, AuditSummary
from exocorp.lifecycle.errors import (
    ErrorCode,
    FieldError,
    LifecycleError,
    bad_request,
    conflict,
    field_errors_of,
)
from exocorp.lifecycle.handshake import evaluate_handshake
from exocorp.model.actions import Action, ActionRequest
from exocorp.model.base import WireModel, format_timestamp
from exocorp.model.config import Draft
from exocorp.model.handshake import (
    HandshakeStatus,
)
from exocorp.model.merge_patch import merge_patch_diff
from exocorp.model.objects import Exocorp
from exocorp.model.phase import phase_of, rollout_in_progress
from exocorp.model.release import (
    ExocorpReleaseSpec,
    ReleaseRef,
    find_release,
    newest_release,
)
from exocorp.model.revision import RevisionContent
from exocorp.model.spec import ExocorpSpec, LastAction
from exocorp.model.status import ExocorpStatus, Phase, RevisionOutcome, RevisionSummary

_RUNNING_OR_RESTING = frozenset({Phase.RUNNING, Phase.PAUSED, Phase.STOPPED, Phase.FAILED})

ALLOWED_PHASES: Mapping[Action, frozenset[Phase]] = {
    Action.PROVISION: frozenset({Phase.DRAFT, Phase.STOPPED}),
    Action.UPDATE: _RUNNING_OR_RESTING,
    Action.RESTART: _RUNNING_OR_RESTING,
    Action.STOP: frozenset(Phase) - {Phase.DRAFT, Phase.STOPPED, Phase.DESTROYING},
    Action.PAUSE: frozenset({Phase.RUNNING}),
    Action.RESUME: frozenset({Phase.PAUSED}),
    Action.REPROVISION: _RUNNING_OR_RESTING,
    Action.ROLLBACK: _RUNNING_OR_RESTING,
    Action.DESTROY: frozenset(Phase) - {Phase.DESTROYING},
}
"""The phases each action is allowed from (the SPEC section 3 table); otherwise 409."""

# Actions refused while a revision is in progress (stop and destroy cancel it instead).
_REFUSED_IN_PROGRESS = frozenset(
    {Action.UPDATE, Action.RESTART, Action.REPROVISION, Action.ROLLBACK}
)

_CANCEL_ROLLOUT = frozenset({Action.STOP, Action.DESTROY})

# Request fields that only some actions take; sending one to another action is a 400.
_ACTION_FIELDS: Mapping[str, frozenset[Action]] = {
    "version": frozenset({Action.UPDATE}),
    "channel": frozenset({Action.UPDATE}),
    "revision": frozenset({Action.ROLLBACK}),
    "confirm": frozenset({Action.DESTROY}),
}


def parse_action_request(body: Any) -> ActionRequest:
    """Validate a request body; malformed input is a 400 naming each bad field."""
    try:
        return ActionRequest.model_validate(body)
    except ValidationError as error:
        raise bad_request(
            ErrorCode.INVALID_REQUEST, "the action request is invalid", field_errors_of(error)
        ) from None


def plan_action(exocorp: Exocorp, request: ActionRequest, context: ActionContext) -> ActionPlan:
    """Turn `request` into a spec change, or raise LifecycleError (400 or 409)."""
    _check_request(exocorp, request)
    phase = phase_of(exocorp)
    allowed = ALLOWED_PHASES[request.action]
    # One code for "wait for the rollout": also when the rollout's phase (Provisioning,
    # Starting) is what refuses the action. Stop and destroy cancel a rollout instead.
    if (request.action in _REFUSED_IN_PROGRESS or phase not in allowed) and (
        request.action not in _CANCEL_ROLLOUT and rollout_in_progress(exocorp)
    ):
        raise conflict(
            ErrorCode.IN_PROGRESS,
            f"a revision of {exocorp.metadata.name!r} is rolling out (it is {phase.value}); "
            f"wait for it to finish before {request.action.value} "
            "(or stop the exocorp to cancel it)",
        )
    if phase not in allowed:
        raise conflict(
            ErrorCode.INVALID_PHASE,
            f"cannot {request.action.value} exocorp {exocorp.metadata.name!r}: it is {phase.value}"
            f"; {request.action.value} is allowed from "
            + ", ".join(sorted(p.value for p in allowed)),
        )
    changes, details = _PLANNERS[request.action](exocorp, request, context, phase)
    reason = request.reason.strip() if request.reason and request.reason.strip() else None
    last_action = LastAction(
        action=request.action,
        requested_by=context.actor,
        reason=reason,
        at=format_timestamp(context.now),
        target_revision=details.get("targetRevision"),
    )
    new_spec = ExocorpSpec.model_validate(
        {**dict(exocorp.spec), **changes, "last_action": last_action}
    )
    check_allowance(exocorp, new_spec, context)
    return ActionPlan(
        action=request.action,
        spec_patch=merge_patch_diff(exocorp.spec.to_wire(), new_spec.to_wire()),
        new_spec=new_spec,
        delete=request.action is Action.DESTROY,
        resource_version=exocorp.metadata.resource_version,
        audit=AuditSummary(
            action=request.action,
            actor=context.actor,
            exocorp=exocorp.metadata.name,
            reason=reason,
            phase=phase,
            details=details,
        ),
    )


def action_availability(
    exocorp: Exocorp, context: ActionContext
) -> dict[Action, LifecycleError | None]:
    """Each action's fate if asked now: None when it would be accepted, else the refusal it
    would get. Found by planning each one (never a second copy of the rules) with a request that
    passes the request checks (a pause reason, destroy's typed slug), which are the caller's."""
    out: dict[Action, LifecycleError | None] = {}
    for action in Action:
        probe = ActionRequest(
            action=action,
            reason="availability check" if action is Action.PAUSE else None,
            confirm=exocorp.spec.slug if action is Action.DESTROY else None,
        )
        try:
            plan_action(exocorp, probe, context)
        except LifecycleError as refusal:
            out[action] = refusal
        else:
            out[action] = None
    return out


def _check_request(exocorp: Exocorp, request: ActionRequest) -> None:
    """The 400s: fields for another action, pause without reason, destroy unconfirmed."""
    stray = [
        FieldError(name, f"only {', '.join(sorted(a.value for a in actions))} takes {name}")
        for name, actions in _ACTION_FIELDS.items()
        if getattr(request, name) is not None and request.action not in actions
    ]
    if stray:
        raise bad_request(
            ErrorCode.INVALID_REQUEST,
            f"fields not accepted by {request.action.value}: {', '.join(e.field for e in stray)}",
            stray,
        )
    if request.action is Action.PAUSE and not (request.reason or "").strip():
        raise bad_request(
            ErrorCode.REASON_REQUIRED,
            "pause needs a reason (it is shown to members and kept in the audit trail)",
            [FieldError("reason", "required for pause")],
        )
    if request.action is Action.DESTROY and request.confirm != exocorp.spec.slug:
        raise bad_request(
            ErrorCode.CONFIRMATION_MISMATCH,
            "destroy is irreversible: type the exocorp's slug in `confirm` to confirm it",
            [FieldError("confirm", "must equal the exocorp's slug")],
        )


# --- what each action changes -----------------------------------------------------------------

# A planner returns spec field updates (Python names) and audit details (wire names).
_Changes = tuple[dict[str, Any], dict[str, str]]
_Planner = Callable[[Exocorp, ActionRequest, ActionContext, Phase], _Changes]


def _plan_provision(
    exocorp: Exocorp, request: ActionRequest, context: ActionContext, phase: Phase
) -> _Changes:
    if phase is Phase.STOPPED:
        # Start again on the current revision: only the run state (and fresh bindings) change.
        spec = exocorp.spec
        assert spec.release is not None  # provisioned
        assert spec.config is not None
        release = find_release(context.releases, spec.release.version)
        if release is None:
            raise conflict(
                ErrorCode.RELEASE_NOT_FOUND,
                f"release {spec.release.version} is no longer published; reprovision or update",
            )
        bindings = bindings_or_conflict(release, spec.config, spec.provider_bindings, context)
        _require_billing(context)
        return {"stopped": False, "provider_bindings": bindings, **_UNPAUSED}, {}
    draft, release = draft_and_release(context.draft, context.releases)
    bindings = bindings_or_conflict(release, draft.config, draft.provider_bindings, context)
    _require_billing(context)
    return (
        {
            "provisioned": True,
            "release": ReleaseRef(channel=draft.channel, version=release.version),
            "config": draft.config,
            "provider_bindings": bindings,
        },
        {"toVersion": release.version},
    )


def _plan_update(
    exocorp: Exocorp, request: ActionRequest, context: ActionContext, phase: Phase
) -> _Changes:
    spec = exocorp.spec
    assert spec.release is not None  # provisioned
    assert spec.config is not None
    if request.version is not None and find_release(context.releases, request.version) is None:
        raise conflict(ErrorCode.RELEASE_NOT_FOUND, f"release {request.version} is not published")
    base = _last_successful_content(exocorp, context)
    config = base.config if base is not None else spec.config
    channel = request.channel or spec.release.channel
    handshake = evaluate_handshake(
        exocorp,
        context.releases,
        provider_secrets=context.provider_secrets,
        billing=context.billing,
        channel=channel,
        version=request.version,
        config=config,
    )
    if handshake.status is not HandshakeStatus.UPDATE_AVAILABLE:
        why = "; ".join(reason.message for reason in handshake.reasons)
        raise conflict(
            ErrorCode.UPDATE_NOT_AVAILABLE,
            f"no update to apply: the handshake answers {handshake.status.value}"
            + (f" ({why})" if why else ""),
        )
    assert handshake.available_version is not None
    target = find_release(context.releases, handshake.available_version)
    assert target is not None
    return (
        {
            "release": ReleaseRef(channel=channel, version=target.version),
            "config": config,
            "provider_bindings": bindings_or_conflict(
                target, config, spec.provider_bindings, context
            ),
        },
        {"fromVersion": spec.release.version, "toVersion": target.version},
    )


def _plan_restart(
    exocorp: Exocorp, request: ActionRequest, context: ActionContext, phase: Phase
) -> _Changes:
    content = _last_successful_content(exocorp, context)
    if content is None:
        raise conflict(
            ErrorCode.NO_SUCCESSFUL_REVISION,
            f"{exocorp.metadata.name!r} has no successful revision to restart from; "
            "update, reprovision or fix the draft",
        )
    started: Mapping[str, Any] = {}
    if phase is Phase.STOPPED:
        _require_billing(context)  # restart brings a stopped exocorp back up
        started = _UNPAUSED
    last = exocorp.status.last_successful_revision
    assert last is not None
    return (
        {
            **_content_changes(content),
            "restart_at": format_timestamp(context.now),
            "stopped": False,
            **started,
        },
        {"targetRevision": last.name, "toVersion": content.release.version},
    )


# Starting a stopped exocorp (provision, restart) runs it: a pause set before the stop ends with
# it. A billing pause ends too, but only once the account is active again (_require_billing).
_UNPAUSED: Mapping[str, Any] = {"paused": False, "pause_reason": None}


def _plan_stop(
    exocorp: Exocorp, request: ActionRequest, context: ActionContext, phase: Phase
) -> _Changes:
    return {"stopped": True}, {}


def _plan_pause(
    exocorp: Exocorp, request: ActionRequest, context: ActionContext, phase: Phase
) -> _Changes:
    assert request.reason is not None  # checked in _check_request
    return {"paused": True, "pause_reason": request.reason.strip()}, {}


def _plan_resume(
    exocorp: Exocorp, request: ActionRequest, context: ActionContext, phase: Phase
) -> _Changes:
    # Not in the SPEC 3 table, but SPEC 6 pauses exocorps whose credit ran out: resuming one
    # must not bypass that, just as provisioning may not.
    _require_billing(context)
    return dict(_UNPAUSED), {}


def _plan_reprovision(
    exocorp: Exocorp, request: ActionRequest, context: ActionContext, phase: Phase
) -> _Changes:
    draft, release = draft_and_release(context.draft, context.releases)
    bindings = bindings_or_conflict(release, draft.config, draft.provider_bindings, context)
    current = exocorp.spec.release
    return (
        {
            "release": ReleaseRef(channel=draft.channel, version=release.version),
            "config": draft.config,
            "provider_bindings": bindings,
            "rebuild_nonce": exocorp.spec.rebuild_nonce + 1,
        },
        {"fromVersion": current.version if current else "", "toVersion": release.version},
    )


def _plan_rollback(
    exocorp: Exocorp, request: ActionRequest, context: ActionContext, phase: Phase
) -> _Changes:
    target = rollback_target(exocorp.status, request.revision)
    content = context.revisions.get(target.name)
    if content is None:
        raise conflict(
            ErrorCode.REVISION_NOT_FOUND, f"the content of revision {target.name} is gone"
        )
    current = exocorp.spec.release
    return (
        _content_changes(content),
        {
            "targetRevision": target.name,
            "fromVersion": current.version if current else "",
            "toVersion": content.release.version,
        },
    )


def _plan_destroy(
    exocorp: Exocorp, request: ActionRequest, context: ActionContext, phase: Phase
) -> _Changes:
    return {}, {}


_PLANNERS: Mapping[Action, _Planner] = {
    Action.PROVISION: _plan_provision,
    Action.UPDATE: _plan_update,
    Action.RESTART: _plan_restart,
    Action.STOP: _plan_stop,
    Action.PAUSE: _plan_pause,
    Action.RESUME: _plan_resume,
    Action.REPROVISION: _plan_reprovision,
    Action.ROLLBACK: _plan_rollback,
    Action.DESTROY: _plan_destroy,
}


# --- shared checks ------------------------------------------------------------------------------


def _content_changes(content: RevisionContent) -> dict[str, Any]:
    """The spec fields a revision's content sets: what restart re-applies and a rollback
    restores (the operator's automatic rollback too, through `rollback_spec`)."""
    return {
        "release": content.release,
        "config": content.config,
        "rebuild_nonce": content.rebuild_nonce,
    }


def rollback_spec(content: RevisionContent) -> dict[str, Any]:
    """The spec fields a rollback to `content` writes, in wire form (a merge patch of the spec):
    the same rule as the rollback planner, for the operator's automatic rollback."""
    spec = ExocorpSpec.model_fields
    return {
        spec[name].alias or name: value.to_wire() if isinstance(value, WireModel) else value
        for name, value in _content_changes(content).items()
    }


def _require_billing(context: ActionContext) -> None:
    if not context.billing.active:
        raise conflict(
            ErrorCode.BILLING_INACTIVE,
            "the owner's billing account is inactive (no credit left); top it up first",
        )
    if not context.billing.has_price_book:
        raise conflict(
            ErrorCode.NO_PRICE_BOOK,
            "no price book applies to the owner's account; a platform owner must assign one",
        )


def draft_and_release(
    saved: Draft | Mapping[str, Any] | None, releases: Sequence[ExocorpReleaseSpec]
) -> tuple[Draft, ExocorpReleaseSpec]:
    """The saved draft, validated, and the release it resolves to (409s otherwise): what
    provision and reprovision apply, and what the manifest preview renders."""
    if saved is None:
        raise conflict(ErrorCode.DRAFT_MISSING, "no draft saved; save a draft first")
    try:
        draft = Draft.model_validate(saved)
    except ValidationError as error:
        raise conflict(
            ErrorCode.DRAFT_INVALID,
            "the saved draft is invalid; fix and save it again",
            field_errors_of(error),
        ) from None
    if draft.version is None:
        release = newest_release(releases, draft.channel)
        if release is None:
            raise conflict(
                ErrorCode.RELEASE_NOT_FOUND, f"no release is published on {draft.channel.value}"
            )
    else:
        found = find_release(releases, draft.version)
        if found is None:
            raise conflict(
                ErrorCode.RELEASE_NOT_FOUND, f"release {draft.version} is not published"
            )
        if found.blocked:
            raise conflict(
                ErrorCode.RELEASE_WITHDRAWN,
                f"release {found.version} was withdrawn ({found.blocked_reason}); "
                "choose another version in the draft",
            )
        if draft.channel not in found.channels:
            raise conflict(
                ErrorCode.RELEASE_NOT_FOUND,
                f"release {found.version} is not published on {draft.channel.value}",
            )
        release = found
    problems = draft.config.problems_with(release)
    if problems:
        raise conflict(
            ErrorCode.DRAFT_INVALID,
            "the saved draft does not fit its release: " + "; ".join(problems),
            [FieldError("config.componentSizes", problem) for problem in problems],
        )
    return draft, release


def _last_successful_content(exocorp: Exocorp, context: ActionContext) -> RevisionContent | None:
    last = exocorp.status.last_successful_revision
    if last is None:
        return None
    content = context.revisions.get(last.name)
    if content is None:
        raise conflict(
            ErrorCode.REVISION_NOT_FOUND, f"the content of revision {last.name} could not be read"
        )
    return content


# --- rollback target ----------------------------------------------------------------------------


def rollback_target(status: ExocorpStatus, selector: str | int | None) -> RevisionSummary:
    """The history entry a rollback copies: the named one (by name or number), which must have
    succeeded, or by default the newest successful one other than the current revision."""
    if selector is None:
        current = status.current_revision.name if status.current_revision else None
        candidates = [
            entry
            for entry in status.history
            if entry.outcome is RevisionOutcome.SUCCEEDED and entry.name != current
        ]
        if not candidates:
            raise conflict(
                ErrorCode.NO_SUCCESSFUL_REVISION, "there is no earlier successful revision"
            )
        return max(candidates, key=lambda entry: entry.number)
    if isinstance(selector, str) and selector.isdigit():
        selector = int(selector)
    matches = [
        entry
        for entry in status.history
        if (entry.number == selector if isinstance(selector, int) else entry.name == selector)
    ]
    if not matches:
        raise conflict(ErrorCode.REVISION_NOT_FOUND, f"no revision {selector} in the history")
    target = max(matches, key=lambda entry: entry.number)
    if target.outcome is not RevisionOutcome.SUCCEEDED:
        raise conflict(
            ErrorCode.REVISION_NOT_SUCCESSFUL,
            f"revision {target.number} ({target.name}) is {target.outcome.value}; "
            "only a successful revision can be rolled back to",
        )
    return target
