"""ExocorpRelease: an immutable published release, and lookups over a catalog of them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from exocorp.model.base import (
    DNS_SUBDOMAIN_PATTERN,
    PORT_NAME_PATTERN,
    DnsLabel,
    ProviderName,
    Quantity,
    SemVer,
    ShortText,
    SpecModel,
    WireModel,
)
from exocorp.model.semver import Version
from exocorp.names import GROUP

MAX_COMPONENTS = 20
MAX_PORTS = 10
MAX_PROVIDERS = 20


def _cel(rule: str, message: str) -> dict[str, Any]:
    """A Kubernetes CEL validation rule, attached to the generated CRD schema."""
    return {"x-kubernetes-validations": [{"rule": rule, "message": message}]}


def _immutable(what: str) -> dict[str, Any]:
    return _cel("self == oldSelf", f"{what} cannot change: publish a new release instead")


# Kubernetes label syntax: a name part, and values of the same shape (or empty).
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_DNS_SUBDOMAIN = re.compile(DNS_SUBDOMAIN_PATTERN)
LabelValue = Annotated[
    str, Field(max_length=63, pattern=r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
]
# Label prefixes the operator sets itself; a release must not override them on its pods.
RESERVED_LABEL_PREFIXES = frozenset({GROUP})
_RESERVED_SUFFIXES = ("kubernetes.io", "k8s.io")


class Channel(StrEnum):
    """A release channel, from the most to the least conservative."""

    STABLE = "stable"
    BETA = "beta"
    CANARY = "canary"


class Protocol(StrEnum):
    """A port's transport protocol."""

    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class Port(SpecModel):
    """A named port a component listens on."""

    name: Annotated[str, Field(min_length=1, max_length=15, pattern=PORT_NAME_PATTERN)]
    """Port name (IANA service name: lowercase, at most 15 characters)."""
    port: Annotated[int, Field(ge=1, le=65535)]
    """Port number the container listens on."""
    protocol: Protocol = Protocol.TCP
    """Transport protocol."""


class ResourceList(SpecModel):
    """CPU and memory quantities."""

    cpu: Quantity | None = None
    """CPU, e.g. "250m" or "1"."""
    memory: Quantity | None = None
    """Memory, e.g. "256Mi"."""


class Resources(SpecModel):
    """Compute resources of one container, as in a Kubernetes container spec."""

    requests: ResourceList | None = None
    """What the scheduler reserves."""
    limits: ResourceList | None = None
    """The most the container may use."""


class HttpGetAction(SpecModel):
    """Probe by an HTTP GET; any 2xx or 3xx answer is a success."""

    path: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^/")]
    """Request path, starting with "/"."""
    port: Annotated[int, Field(ge=1, le=65535)]
    """Port number to call."""


class TcpSocketAction(SpecModel):
    """Probe by opening a TCP connection."""

    port: Annotated[int, Field(ge=1, le=65535)]
    """Port number to connect to."""


class Probe(SpecModel):
    """A readiness or liveness check: exactly one of httpGet or tcpSocket."""

    model_config = ConfigDict(
        json_schema_extra=_cel(
            "has(self.httpGet) != has(self.tcpSocket)",
            "a probe needs exactly one of httpGet or tcpSocket",
        )
    )

    http_get: HttpGetAction | None = None
    """Check with an HTTP GET."""
    tcp_socket: TcpSocketAction | None = None
    """Check by opening a TCP connection."""
    initial_delay_seconds: Annotated[int, Field(ge=0, le=3600)] = 0
    """Seconds after container start before the first check."""
    period_seconds: Annotated[int, Field(ge=1, le=3600)] = 10
    """Seconds between checks."""
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 1
    """Seconds before a check counts as failed."""
    failure_threshold: Annotated[int, Field(ge=1, le=100)] = 3
    """Consecutive failures that make the probe fail."""

    @model_validator(mode="after")
    def _exactly_one_handler(self) -> Self:
        if (self.http_get is None) == (self.tcp_socket is None):
            raise ValueError("a probe needs exactly one of httpGet or tcpSocket")
        return self


class Component(SpecModel):
    """One workload of a release (one Deployment per exocorp)."""

    name: DnsLabel
    """Component name, unique in the release; names the workload."""
    image: Annotated[str, Field(min_length=1, max_length=512)]
    """Container image reference, preferably pinned by digest."""
    replicas: Annotated[int, Field(ge=0, le=100)] = 1
    """Replicas while the exocorp runs."""
    ports: Annotated[
        list[Port],
        Field(
            max_length=MAX_PORTS,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        ),
    ] = []
    """Ports the component listens on."""
    resources: Resources | None = None
    """Compute requests and limits; the exocorp's componentSizes may scale them."""
    readiness_probe: Probe | None = None
    """When the component is ready to serve; a revision succeeds when every component is."""
    liveness_probe: Probe | None = None
    """When the container must be restarted."""
    agent: bool = False
    """An agent workload: pause scales it to zero while the rest keeps running."""
    portal: bool = False
    """Serves the exocorp's portal domain (at most one component)."""
    app: bool = False
    """Serves the exocorp's application endpoint domain (at most one component)."""
    pod_labels: Annotated[dict[str, LabelValue], Field(max_length=16)] = {}
    """Extra labels on the component's pods (platform label prefixes are reserved)."""

    @field_validator("pod_labels")
    @classmethod
    def _label_keys(cls, labels: dict[str, str]) -> dict[str, str]:
        for key in labels:
            prefix, _, name = key.rpartition("/")
            if not _LABEL_NAME.fullmatch(name) or (prefix and not _DNS_SUBDOMAIN.fullmatch(prefix)):
                raise ValueError(f"{key!r} is not a valid label key")
            if prefix in RESERVED_LABEL_PREFIXES or prefix.endswith(_RESERVED_SUFFIXES):
                raise ValueError(f"label prefix {prefix!r} is reserved for the platform")
        return labels

    @model_validator(mode="after")
    def _routed_component_has_port(self) -> Self:
        if (self.portal or self.app) and not self.ports:
            raise ValueError(f"component {self.name!r} serves a domain and needs a port")
        return self


_ProviderList = Annotated[
    list[ProviderName],
    Field(max_length=MAX_PROVIDERS, json_schema_extra={"x-kubernetes-list-type": "set"}),
]


class ExocorpReleaseSpec(SpecModel):
    """A published release: what every exocorp on it runs. Only channels and blocked may change."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.minUpdateFrom) == has(oldSelf.minUpdateFrom)",
                    "message": "minUpdateFrom cannot change: publish a new release instead",
                },
                {
                    "rule": "!(has(self.blocked) && self.blocked)"
                    " || (has(self.blockedReason) && self.blockedReason != '')",
                    "message": "a blocked release needs a blockedReason",
                },
            ]
        }
    )

    version: Annotated[SemVer, Field(json_schema_extra=_immutable("version"))]
    """Semantic version of the release, e.g. 1.4.0."""
    channels: Annotated[
        list[Channel],
        Field(min_length=1, max_length=3, json_schema_extra={"x-kubernetes-list-type": "set"}),
    ]
    """Channels the release is published on (stable, beta, canary)."""
    components: Annotated[
        list[Component],
        Field(
            min_length=1,
            max_length=MAX_COMPONENTS,
            json_schema_extra={
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "x-kubernetes-validations": [
                    *_immutable("components")["x-kubernetes-validations"],
                    {
                        "rule": "self.filter(c, has(c.portal) && c.portal).size() <= 1",
                        "message": "at most one component may be the portal",
                    },
                    {
                        "rule": "self.filter(c, has(c.app) && c.app).size() <= 1",
                        "message": "at most one component may be the app endpoint",
                    },
                ],
            },
        ),
    ]
    """The workloads of the release."""
    required_providers: Annotated[
        _ProviderList, Field(json_schema_extra=_immutable("requiredProviders"))
    ] = []
    """Model providers an exocorp must have a credential bound for."""
    optional_providers: Annotated[
        _ProviderList, Field(json_schema_extra=_immutable("optionalProviders"))
    ] = []
    """Model providers bound when the owner has a credential, not required."""
    min_update_from: Annotated[
        SemVer | None, Field(json_schema_extra=_immutable("minUpdateFrom"))
    ] = None
    """The oldest installed version that may update to this one directly."""
    blocked: bool = False
    """Withdrawn: not offered for install or update, and exocorps on it are asked to move."""
    blocked_reason: ShortText | None = None
    """Why the release was withdrawn."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [component.name for component in self.components]
        if len(set(names)) != len(names):
            raise ValueError("component names must be unique")
        for flag in ("portal", "app"):
            if sum(1 for component in self.components if getattr(component, flag)) > 1:
                raise ValueError(f"at most one component may be the {flag}")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError("channels must be unique")
        if self.blocked and not (self.blocked_reason or "").strip():
            raise ValueError("a blocked release needs a blockedReason")
        if self.min_update_from is not None and Version.parse(self.min_update_from) > Version.parse(
            self.version
        ):
            raise ValueError("minUpdateFrom cannot be newer than the release itself")
        return self

    @property
    def semver(self) -> Version:
        """The parsed version."""
        return Version.parse(self.version)

    def component(self, name: str) -> Component | None:
        """The component called `name`, if any."""
        return next((c for c in self.components if c.name == name), None)


def find_release(releases: Iterable[ExocorpReleaseSpec], version: str) -> ExocorpReleaseSpec | None:
    """The release with exactly this version string, blocked or not."""
    return next((release for release in releases if release.version == version), None)


def newest_release(
    releases: Iterable[ExocorpReleaseSpec], channel: Channel, *, include_blocked: bool = False
) -> ExocorpReleaseSpec | None:
    """The highest version on `channel` (withdrawn releases skipped unless asked for)."""
    candidates = [
        release
        for release in releases
        if channel in release.channels and (include_blocked or not release.blocked)
    ]
    return max(candidates, key=lambda release: release.semver, default=None)


class ExocorpReleaseStatus(WireModel):
    """What the operator observed of a release: written only by the operator."""

    channels: Annotated[str, Field(max_length=64)] = ""
    """The spec's channels as one comma-separated line, for kubectl's CHANNELS column (a
    printer column shows only the first element of a list)."""
    observed_generation: Annotated[int, Field(ge=0)] = 0
    """The spec generation the status was written for."""


def release_status(spec: ExocorpReleaseSpec, generation: int) -> ExocorpReleaseStatus:
    """The status an operator writes for a release at ``generation``."""
    return ExocorpReleaseStatus(channels=",".join(spec.channels), observed_generation=generation)


class ReleaseRef(SpecModel):
    """Which release an exocorp runs: a channel it follows and the exact version applied."""

    channel: Channel = Channel.STABLE
    """The channel updates are offered from."""
    version: SemVer
    """The exact release version."""
