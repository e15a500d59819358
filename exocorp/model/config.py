"""The exocorp configuration: agents, teams, sizes. Drafts hold one; revisions freeze one."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, model_validator

from exocorp.model.base import (
    DNS_SUBDOMAIN_PATTERN,
    DnsLabel,
    Printable,
    ProviderName,
    SemVer,
    SpecModel,
)
from exocorp.model.release import MAX_COMPONENTS, MAX_PROVIDERS, Channel, ExocorpReleaseSpec

MAX_AGENTS = 100
MAX_TEAMS = 50

_Text = Annotated[str, Field(min_length=1, max_length=200), Printable]


class ComponentSize(StrEnum):
    """A t-shirt size the operator turns into resource requests and quota."""

    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class AgentConfig(SpecModel):
    """One AI agent of the company."""

    name: DnsLabel
    """Agent name, unique in the exocorp."""
    role: _Text
    """What the agent does, e.g. "ceo" or "engineer"."""
    provider: ProviderName
    """Model provider the agent calls, e.g. "anthropic"."""
    model: _Text
    """Model id at that provider."""


class TeamConfig(SpecModel):
    """A named group of agents."""

    name: DnsLabel
    """Team name, unique in the exocorp."""
    agents: Annotated[
        list[DnsLabel],
        Field(max_length=MAX_AGENTS, json_schema_extra={"x-kubernetes-list-type": "set"}),
    ] = []
    """Names of the agents in the team."""


class ConfigSnapshot(SpecModel):
    """The applied configuration of an exocorp: frozen into every revision."""

    agents: Annotated[list[AgentConfig], Field(max_length=MAX_AGENTS)] = []
    """The agents."""
    teams: Annotated[list[TeamConfig], Field(max_length=MAX_TEAMS)] = []
    """Teams of agents."""
    component_sizes: Annotated[dict[DnsLabel, ComponentSize], Field(max_length=MAX_COMPONENTS)] = {}
    """Size per release component name; components not named run at the release's resources."""
    required_providers: Annotated[
        list[ProviderName],
        Field(max_length=MAX_PROVIDERS, json_schema_extra={"x-kubernetes-list-type": "set"}),
    ] = []
    """Providers this configuration needs beyond those its agents name."""

    @model_validator(mode="after")
    def _references_resolve(self) -> Self:
        agent_names = [agent.name for agent in self.agents]
        if len(set(agent_names)) != len(agent_names):
            raise ValueError("agent names must be unique")
        team_names = [team.name for team in self.teams]
        if len(set(team_names)) != len(team_names):
            raise ValueError("team names must be unique")
        for team in self.teams:
            unknown = sorted(set(team.agents) - set(agent_names))
            if unknown:
                raise ValueError(f"team {team.name!r} names unknown agents: {', '.join(unknown)}")
        return self

    def providers_needed(self) -> list[str]:
        """Every provider this configuration calls: the listed ones plus each agent's, sorted."""
        return sorted({*self.required_providers, *(agent.provider for agent in self.agents)})

    def problems_with(self, release: ExocorpReleaseSpec) -> list[str]:
        """Why this configuration cannot run on `release` (empty when it can)."""
        known = {component.name for component in release.components}
        return [
            f"componentSizes names {name!r}, which release {release.version} does not have"
            for name in sorted(set(self.component_sizes) - known)
        ]


class ProviderBinding(SpecModel):
    """Which account credential (a Secret in the platform namespace) serves a provider."""

    provider: ProviderName
    """Model provider, e.g. "openai"."""
    secret_name: Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
    """Name of the account's credential Secret for that provider."""


BINDINGS_FIELD = Field(
    max_length=MAX_PROVIDERS,
    json_schema_extra={
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["provider"],
    },
)
"""One binding per provider (the API server enforces it through the list-map key)."""


class Draft(SpecModel):
    """A saved, not yet applied configuration: what provision and reprovision start from."""

    channel: Channel = Channel.STABLE
    """Release channel to install from."""
    version: SemVer | None = None
    """Exact release version; absent means the newest release on the channel."""
    config: ConfigSnapshot = Field(default_factory=ConfigSnapshot)
    """The configuration to apply."""
    provider_bindings: Annotated[list[ProviderBinding], BINDINGS_FIELD] = []
    """Credentials chosen by hand; any other needed provider binds the account's credential."""

    @model_validator(mode="after")
    def _one_binding_per_provider(self) -> Self:
        providers = [binding.provider for binding in self.provider_bindings]
        if len(set(providers)) != len(providers):
            raise ValueError("at most one binding per provider")
        return self
