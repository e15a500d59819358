"""The update handshake (SPEC section 4): may an exocorp move to a newer release? Update is refused
exactly when this does not answer `update_available`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from exocorp.lifecycle.bindings import describe_missing, missing_needs, resolve_bindings
from exocorp.lifecycle.context import BillingStanding
from exocorp.model.config import ConfigSnapshot
from exocorp.model.handshake import (
    HandshakeReason,
    HandshakeReasonCode,
    HandshakeStatus,
    UpdateHandshake,
)
from exocorp.model.objects import Exocorp
from exocorp.model.phase import rollout_in_progress
from exocorp.model.release import (
    Channel,
    ExocorpReleaseSpec,
    find_release,
    newest_release,
)
from exocorp.model.semver import Version

# --- update handshake ---------------------------------------------------------------------------


def evaluate_handshake(
    exocorp: Exocorp,
    releases: Sequence[ExocorpReleaseSpec],
    *,
    provider_secrets: Mapping[str, Sequence[str]],
    billing: BillingStanding,
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
    missing = missing_needs(
        resolve_bindings(candidate, effective, spec.provider_bindings, provider_secrets)
    )
    if missing:
        reasons.append(
            (
                HandshakeReasonCode.PROVIDER_MISSING,
                "no credential for required provider(s) "
                + ", ".join(describe_missing(need) for need in missing),
            )
        )
    if rollout_in_progress(exocorp):
        reasons.append((HandshakeReasonCode.IN_PROGRESS, "a revision is rolling out"))
    if not billing.active:
        reasons.append((HandshakeReasonCode.BILLING_INACTIVE, "the billing account is inactive"))
    if reasons:
        return answer(HandshakeStatus.BLOCKED, candidate, *reasons)
    return answer(HandshakeStatus.UPDATE_AVAILABLE, candidate)
