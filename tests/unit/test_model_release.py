"""ExocorpRelease validation and catalog lookups."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from exocorp.model import Channel, ExocorpReleaseSpec, find_release, newest_release
from exocorp.model.quantity import parse_quantity

pytestmark = pytest.mark.unit


def release(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "version": "1.4.0",
        "channels": ["stable"],
        "components": [
            {
                "name": "portal",
                "image": "img/portal:1.4.0",
                "portal": True,
                "ports": [{"name": "http", "port": 8080}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
            },
            {"name": "ceo", "image": "img/agent:1.4.0", "agent": True},
        ],
    }
    return body | overrides


def errors_of(body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        ExocorpReleaseSpec.model_validate(body)
    return str(caught.value)


def test_a_valid_release_round_trips_in_camel_case() -> None:
    spec = ExocorpReleaseSpec.model_validate(release(minUpdateFrom="1.2.0"))
    wire = spec.to_wire()
    assert wire["minUpdateFrom"] == "1.2.0"
    assert wire["components"][0]["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert wire["components"][0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert ExocorpReleaseSpec.model_validate(wire) == spec
    # Python names work too.
    assert ExocorpReleaseSpec(**spec.model_dump()) == spec


@pytest.mark.parametrize("version", ["1.4", "v1.4.0", "1.4.0.1", "latest", "", "1.04.0"])
def test_version_must_be_semver(version: str) -> None:
    assert "version" in errors_of(release(version=version))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"channels": []}, "channels"),
        ({"channels": ["nightly"]}, "channels"),
        ({"channels": ["stable", "stable"]}, "channels must be unique"),
        ({"components": []}, "components"),
        ({"blocked": True}, "blockedReason"),
        ({"blocked": True, "blockedReason": "  "}, "blockedReason"),
        ({"minUpdateFrom": "2.0.0"}, "minUpdateFrom cannot be newer"),
        ({"minUpdateFrom": "two"}, "minUpdateFrom"),
        ({"requiredProviders": ["Anthropic"]}, "requiredProviders"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_release_level_errors(overrides: dict[str, Any], message: str) -> None:
    assert message in errors_of(release(**overrides))


@pytest.mark.parametrize(
    ("component", "message"),
    [
        ({"name": "Portal", "image": "i"}, "name"),
        ({"name": "-x", "image": "i"}, "name"),
        ({"name": "x" * 64, "image": "i"}, "name"),
        ({"name": "x", "image": ""}, "image"),
        ({"name": "x", "image": "i", "replicas": -1}, "replicas"),
        ({"name": "x", "image": "i", "ports": [{"name": "http", "port": 0}]}, "port"),
        (
            {"name": "x", "image": "i", "ports": [{"name": "http", "port": 80, "protocol": "tcp"}]},
            "protocol",
        ),
        ({"name": "x", "image": "i", "resources": {"requests": {"cpu": "lots"}}}, "cpu"),
        ({"name": "x", "image": "i", "readinessProbe": {}}, "exactly one of httpGet or tcpSocket"),
        (
            {
                "name": "x",
                "image": "i",
                "livenessProbe": {"httpGet": {"path": "/", "port": 1}, "tcpSocket": {"port": 1}},
            },
            "exactly one",
        ),
        (
            {
                "name": "x",
                "image": "i",
                "readinessProbe": {"httpGet": {"path": "healthz", "port": 1}},
            },
            "path",
        ),
        ({"name": "x", "image": "i", "app": True}, "needs a port"),
    ],
)
def test_component_errors(component: dict[str, Any], message: str) -> None:
    assert message in errors_of(release(components=[component]))


def test_component_names_are_unique_and_one_portal_at_most() -> None:
    twice = {"name": "a", "image": "i"}
    assert "unique" in errors_of(release(components=[twice, twice]))
    portal = {"name": "a", "image": "i", "portal": True, "ports": [{"name": "h", "port": 1}]}
    assert "portal" in errors_of(release(components=[portal, portal | {"name": "b"}]))


def test_quantities_accept_kubernetes_forms() -> None:
    component = {
        "name": "x",
        "image": "i",
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"cpu": "1.5", "memory": "1G"},
        },
    }
    resources = ExocorpReleaseSpec.model_validate(release(components=[component])) \
        .components[0].resources
    assert resources.to_wire() == component["resources"]  # kept as written
    assert [parse_quantity(q) for q in (resources.requests.cpu, resources.requests.memory,
                                        resources.limits.cpu, resources.limits.memory)] == \
        [Decimal("0.25"), 512 * 2**20, Decimal("1.5"), 10**9]


def test_catalog_lookups() -> None:
    def spec(version: str, channels: list[str], blocked: bool = False) -> ExocorpReleaseSpec:
        extra = {"blocked": True, "blockedReason": "cve"} if blocked else {}
        return ExocorpReleaseSpec.model_validate(
            release(version=version, channels=channels, **extra)
        )

    catalog = [
        spec("1.0.0", ["stable", "beta"]),
        spec("1.1.0", ["stable"], blocked=True),
        spec("1.2.0-rc.1", ["beta"]),
        spec("1.2.0", ["canary"]),
    ]
    assert newest_release(catalog, Channel.STABLE) == catalog[0]
    assert newest_release(catalog, Channel.STABLE, include_blocked=True) == catalog[1]
    assert newest_release(catalog, Channel.BETA) == catalog[2]
    assert newest_release([], Channel.CANARY) is None
    assert find_release(catalog, "1.1.0") == catalog[1]
    assert find_release(catalog, "1.1") is None


def test_pod_labels_may_select_a_simulated_behaviour() -> None:
    component = {"name": "x", "image": "i", "podLabels": {"sim.exocorp.io/behavior": "crashloop"}}
    spec = ExocorpReleaseSpec.model_validate(release(components=[component]))
    assert spec.components[0].pod_labels == {"sim.exocorp.io/behavior": "crashloop"}


@pytest.mark.parametrize(
    "labels",
    [
        {"exocorp.io/exocorp": "other"},
        {"app.kubernetes.io/name": "x"},
        {"node.k8s.io/x": "y"},
        {"bad key": "v"},
        {"-x": "v"},
        {"UPPER.example.com/x": "v"},
        {"k": "bad value"},
        {"k": "v" * 64},
    ],
)
def test_pod_labels_cannot_override_platform_labels_or_break_syntax(
    labels: dict[str, str],
) -> None:
    assert "podLabels" in errors_of(
        release(components=[{"name": "x", "image": "i", "podLabels": labels}])
    )
