"""Request and response bodies of the core API (the OpenAPI schemas are generated from these).

Requests are strict (:class:`~exocorp.model.SpecModel`: unknown fields are a 400); responses are
:class:`~exocorp.model.WireModel` (camelCase). Secret inputs are ``SecretStr``: they never print.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import Field, SecretStr, model_validator

from exocorp.model import (
    Channel,
    ComponentStatus,
    Condition,
    ConfigSnapshot,
    DomainStatus,
    Draft,
    ExocorpReleaseSpec,
    LastAction,
    Phase,
    ProviderBinding,
    ReleaseRef,
    ReleaseStatus,
    RevisionRef,
    RevisionSummary,
    RollbackPolicy,
    SpecModel,
    WireModel,
)
from exocorp.model.base import DNS_LABEL_PATTERN, SEMVER_PATTERN, Printable
from exocorp.model.spec import SLUG_MAX_LENGTH, SLUG_MIN_LENGTH, SLUG_PATTERN
from exocorp.store.pages import MAX_PAGE_SIZE

Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                             examples=["ada@example.com"])]
Password = Annotated[SecretStr, Field(min_length=10, max_length=256)]
RecoveryKitText = Annotated[SecretStr, Field(min_length=30, max_length=100)]
Slug = Annotated[str, Field(min_length=SLUG_MIN_LENGTH, max_length=SLUG_MAX_LENGTH,
                            pattern=SLUG_PATTERN, examples=["acme-robotics"])]
DisplayName = Annotated[str, Field(min_length=1, max_length=100), Printable]
Reason = Annotated[str, Field(max_length=1024), Printable]
CredentialName = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN,
                                      examples=["main"])]
Provider = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN,
                                examples=["anthropic"])]
CredentialValue = Annotated[SecretStr, Field(min_length=1, max_length=8192)]


# -- auth ----------------------------------------------------------------------------------------


class SignupRequest(SpecModel):
    """Create a platform user (a billing account with the signup credit comes with it)."""

    email: Email
    password: Password
    """At least 10 characters."""


class PasswordChangeRequest(SpecModel):
    """Change your password: every other session and every agent token of yours ends."""

    current_password: SecretStr | None = Field(default=None, max_length=1024)
    """Required, except from a session opened with the recovery kit (the kit proved who you
    are; the password may be what was lost)."""
    new_password: Password
    """At least 10 characters."""


class LoginRequest(SpecModel):
    """Log in with the password, or with the recovery kit instead (which then rotates)."""

    email: Email
    password: SecretStr | None = Field(default=None, max_length=256)
    recovery_kit: RecoveryKitText | None = None
    """The recovery kit shown at signup (or at the last kit login)."""

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        if (self.password is None) == (self.recovery_kit is None):
            raise ValueError("give exactly one of password or recoveryKit")
        return self


class UserView(WireModel):
    id: str
    email: str
    platform_owner: bool
    created_at: str


RoleName = Literal["owner", "member", "viewer"]
GrantableRole = Literal["member", "viewer"]
"""What an owner may give: ``member`` (read, save the draft, drive the lifecycle, never
destroy) or ``viewer`` (read only). Nobody but the owner manages members or credentials."""


class Membership(WireModel):
    exocorp_id: str
    role: RoleName


class InvitationView(WireModel):
    """An open invitation to an exocorp."""

    id: str
    exocorp_id: str
    display_name: str
    email: str
    role: GrantableRole
    invited_by: str
    """The inviting owner's e-mail address."""
    created_at: str


class InviteRequest(SpecModel):
    """Invite a person by e-mail address (they need not have an account yet)."""

    email: Email
    role: GrantableRole = "member"


class RoleChangeRequest(SpecModel):
    role: GrantableRole


class MemberView(WireModel):
    user_id: str
    email: str
    role: RoleName
    since: str


class MembersResponse(WireModel):
    """The owner first; open invitations are listed for the owner only (others: empty)."""

    members: list[MemberView]
    invitations: list[InvitationView]


class MembershipAnswer(WireModel):
    """An accepted invitation or a changed role."""

    exocorp_id: str
    user_id: str
    role: RoleName


class AccountView(WireModel):
    """The caller's billing account."""

    balance: int
    """Minor units of ``currency`` (cents for USD)."""
    currency: str
    state: Literal["active", "suspended"]


class AuthResponse(WireModel):
    """The logged-in identity; ``recoveryKit`` is present once, when a kit was issued."""

    user: UserView
    roles: list[str]
    """``user``, plus ``platform_owner`` for the admin role."""
    platform_owner: bool
    recovery_kit: str | None = None
    """Shown only here, only now: store it offline. It replaces the password at login and is
    replaced by a new one each time it is used."""
    session_expires_at: str | None = None
    """When the session ends at the latest (idle expiry comes sooner without use)."""
    password_change_required: bool = False
    """True after a recovery-kit login: this session may only set a new password
    (``POST /api/auth/password``), read ``me`` and log out until it does; anything else is 403
    ``password_change_required``."""


class LimitUsage(WireModel):
    """An account's limits (its own, else the default; a bound absent is unlimited) and what it
    uses of each. CPU, memory and storage are Kubernetes quantities ("2", "500m", "16Gi"):
    what the runtimes of its exocorps request (docs/api.md, "Limits")."""

    max_exocorps: int | None = None
    """Exocorps the account may own; absent: unlimited."""
    exocorps: int
    """Exocorps it owns now (not destroyed)."""
    max_cpu: str | None = None
    """CPU its running exocorps may request; absent: unlimited."""
    cpu: str | None = None
    """CPU they request now."""
    max_memory: str | None = None
    """Memory its running exocorps may request; absent: unlimited."""
    memory: str | None = None
    """Memory they request now."""
    max_storage: str | None = None
    """Storage its exocorps' state volumes may claim; absent: unlimited."""
    storage: str | None = None
    """Storage they claim now (one state volume per provisioned exocorp)."""


class MeResponse(WireModel):
    user: UserView
    roles: list[str]
    platform_owner: bool
    authenticated_via: Literal["cookie", "bearer"]
    principal: Literal["user", "operator_client"]
    """``operator_client`` when an agent's bearer token acts for the user."""
    memberships: list[Membership]
    """Exocorps the user owns or is a member of, with the role in each."""
    invitations: list[InvitationView] = []
    """Open invitations to the user's e-mail address: accept or decline them."""
    account: AccountView | None = None
    limits: LimitUsage | None = None
    password_change_required: bool = False
    """This session was opened with the recovery kit and must set a new password before
    anything else (see ``AuthResponse``)."""


# -- registry: companies -------------------------------------------------------------------------


class CreateCompanyRequest(SpecModel):
    """A new exocorp in phase Draft; its slug (also its id) and two domains are reserved."""

    slug: Slug
    """3 to 40 characters: lowercase letters, digits and dashes. Names the domains; immutable."""
    display_name: DisplayName
    draft: Draft | None = None
    """Optionally, the first draft to save with it."""


class CompanySummary(WireModel):
    id: str
    """The exocorp's id (its slug, and its Kubernetes object name)."""
    slug: str
    display_name: str
    owner: str
    """User id of the owner."""
    role: RoleName
    """The caller's role."""
    phase: Phase
    """Display phase: reflects an accepted action at once, then the operator's progress."""
    ready: bool
    """Ready condition is True for the current generation."""
    rollout_in_progress: bool
    release: ReleaseRef | None = None
    """Desired channel and version (absent while Draft)."""
    paused: bool = False
    pause_reason: str | None = None
    stopped: bool = False
    domains: list[DomainStatus] = []
    current_revision: RevisionRef | None = None
    last_action: LastAction | None = None
    created_at: str | None = None


class ActionAvailability(WireModel):
    """Whether an action would be accepted now, and if not the refusal it would get."""

    allowed: bool
    code: str | None
    """The ``code`` of the 409 (or 403) that asking now would answer; null when allowed."""
    reason: str | None
    """That answer's ``detail``; null when allowed."""


class CompanyActions(WireModel):
    """Every lifecycle action's availability, computed by the lifecycle planners (the rules the
    action endpoints apply), so clients need no copy of them."""

    provision: ActionAvailability
    update: ActionAvailability
    restart: ActionAvailability
    pause: ActionAvailability
    resume: ActionAvailability
    stop: ActionAvailability
    reprovision: ActionAvailability
    rollback: ActionAvailability
    destroy: ActionAvailability


class CompanyState(WireModel):
    """Where an exocorp stands in detail: its applied spec and what the operator reports. Both
    detail views carry it (``CompanyDetail`` for members, ``AdminCompanyDetail`` for the platform
    owner); see ``company_state`` for how it is filled."""

    conditions: list[Condition] = []
    components: list[ComponentStatus] = []
    history: list[RevisionSummary] = []
    """Revisions ("jobs"), newest first."""
    last_successful_revision: RevisionRef | None = None
    release_status: ReleaseStatus | None = None
    config: ConfigSnapshot | None = None
    """The applied configuration (absent while Draft)."""
    provider_bindings: list[ProviderBinding] = []
    rollback_policy: RollbackPolicy = RollbackPolicy.AUTOMATIC
    generation: int | None = None
    observed_generation: int | None = None
    failed_revisions_since_success: int = 0
    rollbacks_since_success: int = 0


# The summary is the second base so that its fields come first (pydantic orders fields by the
# reversed MRO).
class CompanyDetail(CompanyState, CompanySummary):
    actions: CompanyActions | None = None
    """What the caller may do now (``GET`` and the event stream; absent in action answers)."""


class CompanyList(WireModel):
    companies: list[CompanySummary]
    total: int | None = None
    """How many exocorps match the filters, on every page together."""
    next_cursor: str | None = None
    """Pass back as ``cursor`` for the next page; absent on the last one."""


class DeletedEvent(WireModel):
    """The ``data`` of an event stream's ``deleted`` event."""

    id: str
    """The exocorp that is gone."""


class MyCompaniesQuery(SpecModel):
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] | None = None
    """Page size (1-500); without it every matching exocorp comes in one answer."""
    cursor: Annotated[str, Field(min_length=1, max_length=400)] | None = None
    """The previous page's ``nextCursor``."""
    q: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    """Only exocorps whose slug or display name contains this (case-insensitive)."""
    phase: Phase | None = None
    """Only exocorps in this phase."""


# -- registry: drafts ----------------------------------------------------------------------------


class SaveDraftRequest(SpecModel):
    draft: Draft
    base_version: Annotated[int, Field(ge=1)] | None = None
    """The version the edit started from; a save based on an older one is a 409 carrying
    ``currentVersion``. Absent: overwrite whatever is saved."""


class DraftView(WireModel):
    exocorp_id: str
    version: int
    """Increases with every save."""
    updated_at: str
    draft: Draft


# -- registry: actions ---------------------------------------------------------------------------


class ActionBody(SpecModel):
    """Optional body of provision, restart, stop, resume and reprovision."""

    reason: Reason | None = None
    """Why; kept in the audit trail and on the revision."""


class PauseBody(SpecModel):
    reason: Annotated[str, Field(min_length=1, max_length=1024), Printable]
    """Required: shown to members and kept in the audit trail."""


class UpdateBody(SpecModel):
    reason: Reason | None = None
    version: Annotated[str, Field(max_length=128, pattern=SEMVER_PATTERN)] | None = None
    """Release to move to (default: the newest on the channel)."""
    channel: Channel | None = None
    """Switch to this channel (default: the current one)."""


class RollbackBody(SpecModel):
    reason: Reason | None = None
    revision: Annotated[str, Field(min_length=1, max_length=253)] | Annotated[
        int, Field(ge=1)] | None = None
    """Revision name or number to go back to (default: the previous successful one)."""


class DestroyBody(SpecModel):
    confirm: Annotated[str, Field(min_length=1, max_length=64)]
    """The exocorp's slug typed back: destroy is irreversible."""
    reason: Reason | None = None


class DestroyQuery(SpecModel):
    """For HTTP clients that cannot send a body with DELETE: the same fields as the body (a
    field in the body wins)."""

    confirm: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    """The exocorp's slug typed back."""
    reason: Annotated[Reason, Field(max_length=500)] | None = None
    """Shorter than in the body: percent-encoded, it must fit the 8 KiB request line."""


class ActionAccepted(WireModel):
    """The action became desired state; the operator now does the work (watch ``phase``)."""

    action: str
    exocorp_id: str
    phase: Phase
    """The phase right after the action was accepted."""
    details: dict[str, str] = {}
    """fromVersion, toVersion, targetRevision where they apply."""
    company: CompanyDetail


# -- registry: bindings, handshake, releases -----------------------------------------------------


class BindingView(WireModel):
    provider: str
    required: bool
    status: Literal["bound", "missing", "unbound"]
    """``bound``: a credential serves it; ``missing``: a required provider has none (provision
    is refused); ``unbound``: an optional provider without a credential (fine: it is unused)."""
    secret_id: str | None = None
    """The credential serving the provider (a provider-secret id)."""
    secret_name: str | None = None
    fingerprint: str | None = None
    chosen: bool = False
    """Named by hand in the draft or spec rather than picked automatically."""


class BindingsResponse(WireModel):
    exocorp_id: str
    source: Literal["draft", "spec"]
    """What the needs were computed from: the saved draft (what the next provision or
    reprovision applies) or, without one, the applied spec."""
    release_version: str | None = None
    """The release the needs come from (absent when no release resolves)."""
    bindings: list[BindingView]
    applied: list[ProviderBinding] = []
    """The bindings in the running spec."""
    problems: list[str] = []
    """Why needs could not be resolved fully (e.g. no release on the draft's channel)."""


class ManifestQuery(SpecModel):
    format: Literal["json", "yaml"] | None = None
    """``yaml``: a multi-document YAML stream of the objects (as ``Accept: application/yaml``
    asks); default JSON."""


class ManifestView(WireModel):
    """The Kubernetes objects the operator applies for an exocorp, credential values redacted."""

    exocorp_id: str
    source: Literal["draft", "spec"]
    """What the objects were rendered from: the saved draft (before the first provision, or
    when it was saved after the last lifecycle action: what reprovision would apply), else the
    applied spec."""
    release_version: str
    """The release the objects run."""
    objects: list[dict[str, Any]]
    """Namespace, service account, quota, limit range, network policies, credential Secret (key
    names only: values read ``<redacted>``), effective-manifest ConfigMap, state volume claim,
    Services, Deployments and Ingress, in the order the operator applies them."""
    notes: list[str]
    """What the preview cannot know for certain (settings that follow the operator's
    configuration, a revision name not given yet)."""


class HandshakeQuery(SpecModel):
    channel: Channel | None = None
    version: Annotated[str, Field(max_length=128, pattern=SEMVER_PATTERN)] | None = None


class ChannelQuery(SpecModel):
    channel: Channel = Channel.STABLE


class ReleaseView(WireModel):
    name: str
    """ExocorpRelease object name."""
    published_at: str | None = None
    status: Literal["published", "withdrawn"]
    spec: ExocorpReleaseSpec


class CurrentRelease(WireModel):
    channel: Channel
    release: ReleaseView


class ReleaseCatalog(WireModel):
    releases: list[ReleaseView]
    """Newest version first; withdrawn releases included (status ``withdrawn``)."""
    newest: dict[str, str] = {}
    """Channel -> newest published (not withdrawn) version on it."""


# -- provider secrets ----------------------------------------------------------------------------


class ProviderSecretRequest(SpecModel):
    """Store a credential; posting an existing name again rotates its value."""

    provider: Provider
    name: CredentialName
    """Unique per account; re-posting the same name rotates the value."""
    value: CredentialValue
    """The credential (API key). Write-only: never shown again, anywhere."""


class ProviderSecretView(WireModel):
    id: str
    """Use as ``providerBindings[].secretName`` in a draft to choose it by hand."""
    provider: str
    name: str
    fingerprint: str | None = None
    """First 12 hex digits of the value's SHA-256: tells two values apart, reveals nothing."""
    created_at: str | None = None
    rotated_at: str | None = None
    bound_exocorps: list[str] = []
    """Exocorps whose applied spec binds this credential."""


class ProviderSecretSaved(ProviderSecretView):
    rotated: bool
    """True when an existing credential's value was replaced."""


class ProviderSecretList(WireModel):
    secrets: list[ProviderSecretView]


# -- dashboard -----------------------------------------------------------------------------------


class MissingProvider(WireModel):
    exocorp_id: str
    provider: str


class ProviderCoverage(WireModel):
    configured: int
    """Required provider needs (over all exocorps) that a credential serves."""
    required: int
    """Required provider needs over all exocorps."""
    missing: list[MissingProvider] = []
    providers_with_credentials: list[str] = []
    """Providers the caller's account has at least one credential for."""


class DashboardSummary(WireModel):
    total: int
    by_phase: dict[str, int]
    """Every phase, zeros included."""
    provider_coverage: ProviderCoverage
    balance: AccountView | None = None


# -- health --------------------------------------------------------------------------------------


class HealthStatus(WireModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}


# -- errors --------------------------------------------------------------------------------------


class ProblemFieldError(WireModel):
    field: str
    """Dotted path of the field in wire (camelCase) names; ``(body)`` for the whole body."""
    message: str


class ProblemDetails(WireModel):
    """Every error answer (``application/problem+json``, RFC 9457)."""

    type: str = "about:blank"
    title: str
    """The HTTP status phrase."""
    status: int
    detail: str
    """What went wrong and, where it helps, what to do next."""
    code: str
    """Machine-readable cause, e.g. ``invalid_request``, ``invalid_phase``, ``in_progress``,
    ``reason_required``, ``stale_version``, ``slug_taken``, ``credential_in_use``."""
    instance: str | None = None
    """The request path."""
    request_id: str | None = None
    """Also in the X-Request-Id response header."""
    errors: list[ProblemFieldError] = []
    """The invalid fields of a 400."""
    trace_id: str | None = None
    """5xx only: quote it when reporting the problem; the gateway's log has the details."""
    current_version: int | None = None
    """``stale_version`` only: the draft version now saved."""
