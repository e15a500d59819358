"""Provider bindings: which credential Secret serves each provider an exocorp's release and
configuration call for (shared by the planners and the update handshake)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from exocorp.lifecycle.context import ActionContext
from exocorp.lifecycle.errors import ErrorCode, conflict
from exocorp.model.config import ConfigSnapshot, ProviderBinding
from exocorp.model.release import (
    ExocorpReleaseSpec,
)

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


def missing_needs(needs: Sequence[ProviderNeed]) -> list[ProviderNeed]:
    return [need for need in needs if need.required and need.secret_name is None]


def bindings_or_conflict(
    release: ExocorpReleaseSpec,
    config: ConfigSnapshot,
    chosen: Sequence[ProviderBinding],
    context: ActionContext,
) -> list[ProviderBinding]:
    needs = resolve_bindings(release, config, chosen, context.provider_secrets)
    missing = missing_needs(needs)
    if missing:
        raise conflict(
            ErrorCode.PROVIDER_MISSING,
            "no credential bound for required provider(s) "
            + ", ".join(describe_missing(need) for need in missing)
            + "; add one under provider secrets",
        )
    return [
        ProviderBinding(provider=need.provider, secret_name=need.secret_name)
        for need in needs
        if need.secret_name is not None
    ]


def describe_missing(need: ProviderNeed) -> str:
    return f"{need.provider} (the chosen secret does not exist)" if need.chosen else need.provider
