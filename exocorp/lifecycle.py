"""The lifecycle API: the one place that turns an action (SPEC section 3) into a spec change.

Everything here is pure. A caller (the gateway, the billing job, a test) looks up what an action
needs, puts it in an `ActionContext`, and gets back an `ActionPlan` (a JSON merge patch for the
spec, or a delete) or a `LifecycleError` carrying the HTTP status to answer with:

    exocorp = Exocorp.model_validate(obj)
    request = parse_action_request(body)               # 400 on malformed input
    plan = plan_action(exocorp, request, context)      # 400 / 409 on refused actions
    patch(obj, plan.patch)  # carries metadata.resourceVersion: of two racing writers one wins

Checks run in a fixed order: the request itself (400), the phase (409), a rollout in progress
(409), then what the action needs (409). The operator does the actual work, level-based.

The update handshake (SPEC section 4) lives here too, because update is refused exactly when the
handshake does not answer `update_available`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from exocorp.model.actions import Action, ActionRequest
from exocorp.model.base import format_timestamp
from exocorp.model.config import ConfigSnapshot, Draft, ProviderBinding
from exocorp.model.handshake import (
    HandshakeReason,
    HandshakeReasonCode,
    HandshakeStatus,
    UpdateHandshake,
)
from exocorp.model.merge_patch import merge_patch_diff
from exocorp.model.objects import Exocorp
from exocorp.model.phase import phase_of, rollout_in_progress
from exocorp.model.release import (
    Channel,
    ExocorpReleaseSpec,
    ReleaseRef,
    find_release,
    newest_release,
)
from exocorp.model.revision import RevisionContent
from exocorp.model.semver import Version
from exocorp.model.spec import ExocorpSpec, LastAction
from exocorp.model.status import ExocorpStatus, Phase, RevisionOutcome, RevisionSummary

__all__ = [
    "ALLOWED_PHASES",
    "ActionContext",
    "ActionPlan",
    "AuditSummary",
    "ErrorCode",
    "FieldError",
    "LifecycleError",
    "ProviderNeed",
    "action_availability",
    "evaluate_handshake",
    "parse_action_request",
    "plan_action",
    "resolve_bindings",
    "rollback_target",
    "rollout_in_progress",
]

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

# Request fields that only some actions take; sending one to another action is a 400.
_ACTION_FIELDS: Mapping[str, frozenset[Action]] = {
    "version": frozenset({Action.UPDATE}),
    "channel": frozenset({Action.UPDATE}),
    "revision": frozenset({Action.ROLLBACK}),
    "confirm": frozenset({Action.DESTROY}),
}


class ErrorCode(StrEnum):
    """Machine-readable codes of refused actions."""

    INVALID_REQUEST = "invalid_request"
    NOT_FOUND = "not_found"
    CONCURRENT_CHANGE = "concurrent_change"
    REASON_REQUIRED = "reason_required"
    CONFIRMATION_MISMATCH = "confirmation_mismatch"
    INVALID_PHASE = "invalid_phase"
    IN_PROGRESS = "in_progress"
    DRAFT_MISSING = "draft_missing"
    DRAFT_INVALID = "draft_invalid"
    RELEASE_NOT_FOUND = "release_not_found"
    RELEASE_WITHDRAWN = "release_withdrawn"
    PROVIDER_MISSING = "provider_missing"
    BILLING_INACTIVE = "billing_inactive"
    NO_PRICE_BOOK = "no_price_book"
    UPDATE_NOT_AVAILABLE = "update_not_available"
    NO_SUCCESSFUL_REVISION = "no_successful_revision"
    REVISION_NOT_FOUND = "revision_not_found"
    REVISION_NOT_SUCCESSFUL = "revision_not_successful"


@dataclass(frozen=True)
class FieldError:
    """One invalid field of a request or draft."""

    field: str
    """Dotted path of the field, in wire (camelCase) names."""
    message: str
    """What is wrong with it."""


class LifecycleError(Exception):
    """An action refused: `status` is the HTTP status to answer with (400 or 409)."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        detail: str,
        field_errors: Sequence[FieldError] = (),
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.field_errors = tuple(field_errors)

    def __repr__(self) -> str:
        return f"LifecycleError({self.status}, {self.code.value!r}, {self.detail!r})"


def _conflict(code: ErrorCode, detail: str, errors: Sequence[FieldError] = ()) -> LifecycleError:
    return LifecycleError(409, code, detail, errors)


def _bad_request(code: ErrorCode, detail: str, errors: Sequence[FieldError] = ()) -> LifecycleError:
    return LifecycleError(400, code, detail, errors)


def _field_errors(error: ValidationError) -> list[FieldError]:
    """Pydantic errors as dotted wire paths; errors about the whole body are on "(body)"."""
    return [
        FieldError(
            field=".".join(str(part) for part in item["loc"]) or "(body)",
            message=item["msg"],
        )
        for item in error.errors(include_url=False)
    ]


@dataclass(frozen=True, kw_only=True)
class ActionContext:
    """What the caller looked up for the action. Fields an action does not need may stay empty."""

    actor: str
    """Who asks: a user or account id, or a system actor (see exocorp.model.actions)."""
    now: datetime
    """The time the action is accepted (timezone-aware)."""
    releases: Sequence[ExocorpReleaseSpec] = ()
    """The release catalog (every published ExocorpRelease, withdrawn ones included)."""
    draft: Draft | Mapping[str, Any] | None = None
    """The exocorp's saved draft, as stored (validated here); provision and reprovision."""
    revisions: Mapping[str, RevisionContent] = field(default_factory=dict)
    """Revision name -> content; must hold the last successful revision (update, restart) and
    the rollback target (see `rollback_target`)."""
    billing_active: bool = False
    """The owner's billing account is active (has credit)."""
    has_price_book: bool = False
    """A price book applies to the owner's account."""
    provider_secrets: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Provider -> names of the owner's credential Secrets for it."""


@dataclass(frozen=True)
class AuditSummary:
    """What the audit trail records for an accepted action (the caller adds the outcome)."""

    action: Action
    actor: str
    exocorp: str
    reason: str | None
    phase: Phase
    """The phase the action was accepted in."""
    details: Mapping[str, str] = field(default_factory=dict)
    """fromVersion / toVersion / targetRevision, where they apply."""


@dataclass(frozen=True)
class ActionPlan:
    """The accepted action as a change of desired state."""

    action: Action
    spec_patch: dict[str, Any]
    """JSON merge patch (RFC 7386) of the spec, in wire names."""
    new_spec: ExocorpSpec
    """The spec after the patch (what the watch cache will show)."""
    delete: bool
    """destroy: delete the Exocorp (after applying the patch, which names the requester)."""
    resource_version: str | None
    """The resourceVersion the plan was made from."""
    audit: AuditSummary

    @property
    def patch(self) -> dict[str, Any]:
        """The merge patch of the whole object; with resourceVersion, a concurrent change makes
        the API server answer 409, so of two conflicting actions exactly one wins."""
        patch: dict[str, Any] = {"spec": self.spec_patch}
        if self.resource_version is not None:
            patch["metadata"] = {"resourceVersion": self.resource_version}
        return patch


def parse_action_request(body: Any) -> ActionRequest:
    """Validate a request body; malformed input is a 400 naming each bad field."""
    try:
        return ActionRequest.model_validate(body)
    except ValidationError as error:
        raise _bad_request(
            ErrorCode.INVALID_REQUEST, "the action request is invalid", _field_errors(error)
        ) from None


def plan_action(exocorp: Exocorp, request: ActionRequest, context: ActionContext) -> ActionPlan:
    """Turn `request` into a spec change, or raise LifecycleError (400 or 409)."""
    _check_request(exocorp, request)
    phase = phase_of(exocorp)
    allowed = ALLOWED_PHASES[request.action]
    if phase not in allowed:
        raise _conflict(
            ErrorCode.INVALID_PHASE,
            f"cannot {request.action.value} exocorp {exocorp.metadata.name!r}: it is {phase.value}"
            f"; {request.action.value} is allowed from "
            + ", ".join(sorted(p.value for p in allowed)),
        )
    if request.action in _REFUSED_IN_PROGRESS and rollout_in_progress(exocorp):
        raise _conflict(
            ErrorCode.IN_PROGRESS,
            f"a revision of {exocorp.metadata.name!r} is rolling out; wait for it to finish "
            "(or stop the exocorp to cancel it)",
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
        raise _bad_request(
            ErrorCode.INVALID_REQUEST,
            f"fields not accepted by {request.action.value}: {', '.join(e.field for e in stray)}",
            stray,
        )
    if request.action is Action.PAUSE and not (request.reason or "").strip():
        raise _bad_request(
            ErrorCode.REASON_REQUIRED,
            "pause needs a reason (it is shown to members and kept in the audit trail)",
            [FieldError("reason", "required for pause")],
        )
    if request.action is Action.DESTROY and request.confirm != exocorp.spec.slug:
        raise _bad_request(
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
            raise _conflict(
                ErrorCode.RELEASE_NOT_FOUND,
                f"release {spec.release.version} is no longer published; reprovision or update",
            )
        bindings = _bindings_or_conflict(release, spec.config, spec.provider_bindings, context)
        _require_billing(context)
        return {"stopped": False, "provider_bindings": bindings}, {}
    draft, release = _draft_and_release(context)
    bindings = _bindings_or_conflict(release, draft.config, draft.provider_bindings, context)
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
        raise _conflict(ErrorCode.RELEASE_NOT_FOUND, f"release {request.version} is not published")
    base = _last_successful_content(exocorp, context)
    config = base.config if base is not None else spec.config
    channel = request.channel or spec.release.channel
    handshake = evaluate_handshake(
        exocorp,
        context.releases,
        provider_secrets=context.provider_secrets,
        billing_active=context.billing_active,
        channel=channel,
        version=request.version,
        config=config,
    )
    if handshake.status is not HandshakeStatus.UPDATE_AVAILABLE:
        why = "; ".join(reason.message for reason in handshake.reasons)
        raise _conflict(
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
            "provider_bindings": _bindings_or_conflict(
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
        raise _conflict(
            ErrorCode.NO_SUCCESSFUL_REVISION,
            f"{exocorp.metadata.name!r} has no successful revision to restart from; "
            "update, reprovision or fix the draft",
        )
    if phase is Phase.STOPPED:
        _require_billing(context)  # restart brings a stopped exocorp back up
    last = exocorp.status.last_successful_revision
    assert last is not None
    return (
        {
            **_content_changes(content),
            "restart_at": format_timestamp(context.now),
            "stopped": False,
        },
        {"targetRevision": last.name, "toVersion": content.release.version},
    )


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
    return {"paused": False, "pause_reason": None}, {}


def _plan_reprovision(
    exocorp: Exocorp, request: ActionRequest, context: ActionContext, phase: Phase
) -> _Changes:
    draft, release = _draft_and_release(context)
    bindings = _bindings_or_conflict(release, draft.config, draft.provider_bindings, context)
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
        raise _conflict(
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
    return {
        "release": content.release,
        "config": content.config,
        "rebuild_nonce": content.rebuild_nonce,
    }


def _require_billing(context: ActionContext) -> None:
    if not context.billing_active:
        raise _conflict(
            ErrorCode.BILLING_INACTIVE,
            "the owner's billing account is inactive (no credit left); top it up first",
        )
    if not context.has_price_book:
        raise _conflict(
            ErrorCode.NO_PRICE_BOOK,
            "no price book applies to the owner's account; a platform owner must assign one",
        )


def _draft_and_release(context: ActionContext) -> tuple[Draft, ExocorpReleaseSpec]:
    """The saved draft, validated, and the release it resolves to (409s otherwise)."""
    if context.draft is None:
        raise _conflict(ErrorCode.DRAFT_MISSING, "no draft saved; save a draft first")
    try:
        draft = Draft.model_validate(context.draft)
    except ValidationError as error:
        raise _conflict(
            ErrorCode.DRAFT_INVALID,
            "the saved draft is invalid; fix and save it again",
            _field_errors(error),
        ) from None
    if draft.version is None:
        release = newest_release(context.releases, draft.channel)
        if release is None:
            raise _conflict(
                ErrorCode.RELEASE_NOT_FOUND, f"no release is published on {draft.channel.value}"
            )
    else:
        found = find_release(context.releases, draft.version)
        if found is None:
            raise _conflict(
                ErrorCode.RELEASE_NOT_FOUND, f"release {draft.version} is not published"
            )
        if found.blocked:
            raise _conflict(
                ErrorCode.RELEASE_WITHDRAWN,
                f"release {found.version} was withdrawn ({found.blocked_reason}); "
                "choose another version in the draft",
            )
        if draft.channel not in found.channels:
            raise _conflict(
                ErrorCode.RELEASE_NOT_FOUND,
                f"release {found.version} is not published on {draft.channel.value}",
            )
        release = found
    problems = draft.config.problems_with(release)
    if problems:
        raise _conflict(
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
        raise _conflict(
            ErrorCode.REVISION_NOT_FOUND, f"the content of revision {last.name} could not be read"
        )
    return content


# --- provider bindings --------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderNeed:
    """One provider an exocorp's release and configuration call for, and what serves it."""

    provider: str
    required: bool
    secret_name: str | None
    """The bound credential Secret, or None (missing)."""
    chosen: bool = False
    """The secret was named by hand (in the draft or spec), not picked automatically."""


def resolve_bindings(
    release: ExocorpReleaseSpec,
    config: ConfigSnapshot,
    chosen: Sequence[ProviderBinding],
    available: Mapping[str, Sequence[str]],
) -> list[ProviderNeed]:
    """Every provider needed, sorted: required ones (release and configuration), then optional.

    A secret chosen by hand binds when it exists; any other needed provider binds the account's
    credential for it (the first by name when there are several). A chosen secret that does not
    exist leaves the provider unbound rather than silently using another one.
    """
    required = sorted({*release.required_providers, *config.providers_needed()})
    optional = sorted(set(release.optional_providers) - set(required))
    by_hand = {binding.provider: binding.secret_name for binding in chosen}
    needs = []
    for provider in required + optional:
        secrets = sorted(available.get(provider, ()))
        if provider in by_hand:
            name = by_hand[provider]
            needs.append(
                ProviderNeed(
                    provider, provider in required, name if name in secrets else None, True
                )
            )
        else:
            needs.append(
                ProviderNeed(provider, provider in required, secrets[0] if secrets else None)
            )
    return needs


def _missing(needs: Sequence[ProviderNeed]) -> list[ProviderNeed]:
    return [need for need in needs if need.required and need.secret_name is None]


def _bindings_or_conflict(
    release: ExocorpReleaseSpec,
    config: ConfigSnapshot,
    chosen: Sequence[ProviderBinding],
    context: ActionContext,
) -> list[ProviderBinding]:
    needs = resolve_bindings(release, config, chosen, context.provider_secrets)
    missing = _missing(needs)
    if missing:
        raise _conflict(
            ErrorCode.PROVIDER_MISSING,
            "no credential bound for required provider(s) "
            + ", ".join(_describe_missing(need) for need in missing)
            + "; add one under provider secrets",
        )
    return [
        ProviderBinding(provider=need.provider, secret_name=need.secret_name)
        for need in needs
        if need.secret_name is not None
    ]


def _describe_missing(need: ProviderNeed) -> str:
    return f"{need.provider} (the chosen secret does not exist)" if need.chosen else need.provider


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
            raise _conflict(
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
        raise _conflict(ErrorCode.REVISION_NOT_FOUND, f"no revision {selector} in the history")
    target = max(matches, key=lambda entry: entry.number)
    if target.outcome is not RevisionOutcome.SUCCEEDED:
        raise _conflict(
            ErrorCode.REVISION_NOT_SUCCESSFUL,
            f"revision {target.number} ({target.name}) is {target.outcome.value}; "
            "only a successful revision can be rolled back to",
        )
    return target


# --- update handshake ---------------------------------------------------------------------------


def evaluate_handshake(
    exocorp: Exocorp,
    releases: Sequence[ExocorpReleaseSpec],
    *,
    provider_secrets: Mapping[str, Sequence[str]],
    billing_active: bool,
    channel: Channel | None = None,
    version: str | None = None,
    config: ConfigSnapshot | None = None,
) -> UpdateHandshake:
    """May this exocorp move to a newer release (SPEC section 4)?

    `channel` defaults to the exocorp's, `version` to the newest release offered on it, and
    `config` (the configuration the update would carry) to the spec's. Answers:
    install_required when nothing is installed or the installed release is withdrawn or gone;
    up_to_date when no newer release is offered; otherwise update_available, or blocked with
    every reason (version constraint, withdrawn target, configuration or provider gaps, a rollout
    in progress, inactive billing).
    """
    spec = exocorp.spec
    channel = channel or (spec.release.channel if spec.release else Channel.STABLE)
    newest = newest_release(releases, channel)

    def answer(
        status: HandshakeStatus,
        available: ExocorpReleaseSpec | None,
        *reasons: tuple[HandshakeReasonCode, str],
    ) -> UpdateHandshake:
        return UpdateHandshake(
            status=status,
            channel=channel,
            installed_version=spec.release.version if spec.provisioned and spec.release else None,
            available_version=available.version if available else None,
            reasons=[HandshakeReason(code=code, message=message) for code, message in reasons],
        )

    if not spec.provisioned or spec.release is None:
        return answer(
            HandshakeStatus.INSTALL_REQUIRED,
            newest,
            (HandshakeReasonCode.NOT_INSTALLED, "nothing is installed yet; provision first"),
        )
    installed_version = spec.release.version
    installed = find_release(releases, installed_version)
    if installed is None:
        return answer(
            HandshakeStatus.INSTALL_REQUIRED,
            newest,
            (
                HandshakeReasonCode.INSTALLED_UNKNOWN,
                f"installed release {installed_version} is no longer published",
            ),
        )
    if installed.blocked:
        return answer(
            HandshakeStatus.INSTALL_REQUIRED,
            newest,
            (
                HandshakeReasonCode.INSTALLED_WITHDRAWN,
                f"installed release {installed_version} was withdrawn: {installed.blocked_reason}",
            ),
        )
    current = Version.parse(installed_version)

    reasons: list[tuple[HandshakeReasonCode, str]] = []
    if version is not None:
        candidate = find_release(releases, version)
        if candidate is None:
            return answer(
                HandshakeStatus.BLOCKED,
                None,
                (HandshakeReasonCode.RELEASE_NOT_FOUND, f"release {version} is not published"),
            )
        if candidate.semver == current:
            return answer(HandshakeStatus.UP_TO_DATE, None)
        if candidate.semver < current:
            return answer(
                HandshakeStatus.BLOCKED,
                candidate,
                (
                    HandshakeReasonCode.DOWNGRADE,
                    f"{version} is older than {installed_version}; use rollback instead",
                ),
            )
        if channel not in candidate.channels:
            reasons.append(
                (HandshakeReasonCode.NOT_ON_CHANNEL, f"{version} is not on {channel.value}")
            )
        if candidate.blocked:
            reasons.append(
                (
                    HandshakeReasonCode.RELEASE_WITHDRAWN,
                    f"{version} was withdrawn: {candidate.blocked_reason}",
                )
            )
    else:
        if newest is None or newest.semver <= current:
            return answer(HandshakeStatus.UP_TO_DATE, None)
        candidate = newest

    if candidate.min_update_from is not None and current < Version.parse(candidate.min_update_from):
        reasons.append(
            (
                HandshakeReasonCode.VERSION_CONSTRAINT,
                f"{candidate.version} updates only from {candidate.min_update_from} or later",
            )
        )
    effective = config or spec.config or ConfigSnapshot()
    for problem in effective.problems_with(candidate):
        reasons.append((HandshakeReasonCode.CONFIG_INCOMPATIBLE, problem))
    missing = _missing(
        resolve_bindings(candidate, effective, spec.provider_bindings, provider_secrets)
    )
    if missing:
        reasons.append(
            (
                HandshakeReasonCode.PROVIDER_MISSING,
                "no credential for required provider(s) "
                + ", ".join(_describe_missing(need) for need in missing),
            )
        )
    if rollout_in_progress(exocorp):
        reasons.append((HandshakeReasonCode.IN_PROGRESS, "a revision is rolling out"))
    if not billing_active:
        reasons.append((HandshakeReasonCode.BILLING_INACTIVE, "the billing account is inactive"))
    if reasons:
        return answer(HandshakeStatus.BLOCKED, candidate, *reasons)
    return answer(HandshakeStatus.UPDATE_AVAILABLE, candidate)
