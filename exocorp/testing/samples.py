"""Sample releases and drafts: the seeded release of `exocorp dev` and the tests' fixtures."""

from __future__ import annotations

from typing import Any

from exocorp import names


def release(version: str, channels: tuple[str, ...] = ("stable",), *,
            behaviour: str | None = None, min_update_from: str | None = None,
            required_providers: tuple[str, ...] = ("anthropic",)) -> dict[str, Any]:
    """An ExocorpRelease with a portal, an app endpoint and an agent pool. ``behaviour`` asks
    the kwok test cluster to make the agent pods crash-loop or fail."""
    agent_labels = {names.SIM_BEHAVIOR_LABEL: behaviour} if behaviour else {}
    spec: dict[str, Any] = {
        "version": version,
        "channels": list(channels),
        "requiredProviders": list(required_providers),
        "optionalProviders": ["openai"],
        "components": [
            {"name": "portal", "image": f"registry.exocorp.dev/portal:{version}",
             "replicas": 1, "portal": True,
             "ports": [{"name": "http", "port": 8080}],
             "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
             "livenessProbe": {"httpGet": {"path": "/livez", "port": 8080}}},
            {"name": "app", "image": f"registry.exocorp.dev/app:{version}",
             "replicas": 1, "app": True, "ports": [{"name": "http", "port": 8000}],
             "readinessProbe": {"tcpSocket": {"port": 8000}}},
            {"name": "agents", "image": f"registry.exocorp.dev/agents:{version}",
             "replicas": 2, "agent": True, "podLabels": agent_labels},
        ],
    }
    if min_update_from:
        spec["minUpdateFrom"] = min_update_from
    slug = version.replace(".", "-").replace("+", "-")
    return {"apiVersion": names.API_VERSION, "kind": names.RELEASE_KIND,
            "metadata": {"name": f"release-{slug}"}, "spec": spec}


def draft(version: str | None = None, channel: str = "stable") -> dict[str, Any]:
    """A saved draft (the wire shape of exocorp.model.Draft)."""
    out: dict[str, Any] = {
        "channel": channel,
        "config": {
            "agents": [{"name": "ceo", "role": "Chief executive", "provider": "anthropic",
                        "model": "claude-sonnet"},
                       {"name": "dev", "role": "Engineer", "provider": "anthropic",
                        "model": "claude-sonnet"}],
            "teams": [{"name": "leadership", "agents": ["ceo"]},
                      {"name": "engineering", "agents": ["dev"]}],
            "componentSizes": {"agents": "medium"},
        },
    }
    if version:
        out["version"] = version
    return out


def exocorp(name: str, owner: str, display_name: str | None = None) -> dict[str, Any]:
    """A Draft Exocorp as the gateway creates it."""
    return {"apiVersion": names.API_VERSION, "kind": names.EXOCORP_KIND,
            "metadata": {"name": name},
            "spec": {"owner": owner, "displayName": display_name or name.title(), "slug": name}}


def provider_secret(name: str, namespace: str, account: str, provider: str,
                    value: str) -> dict[str, Any]:
    import base64

    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {names.LABEL_ACCOUNT: account, names.LABEL_PROVIDER: provider,
                                    names.LABEL_CREDENTIAL: "true"}},
            "data": {names.SECRET_VALUE_KEY: base64.b64encode(value.encode()).decode()}}
