"""A user's journey over the gateway's HTTP API, for the tiers that run a whole platform (the
image's containers, ``exocorp dev``): every call checks its status and keeps the response body,
so a test can assert that no secret came back in any of them. No tests here."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

PASSWORD = "correct horse battery"


@dataclass
class RecordingApi:
    """The API as one logged-in browser session calls it."""

    http: aiohttp.ClientSession
    bodies: list[str] = field(default_factory=list)

    async def call(self, method: str, path: str, expect: int, **kwargs: Any) -> Any:
        """The JSON answer ({} when empty) of a call that must answer ``expect``."""
        async with self.http.request(method, path, **kwargs) as response:
            text = await response.text()
            self.bodies.append(text)
            assert response.status == expect, f"{method} {path}: {response.status} {text}"
            return json.loads(text) if text else {}

    async def status(self, path: str) -> int:
        async with self.http.get(path) as response:
            return response.status


@dataclass(frozen=True)
class FirstCompany:
    slug: str
    signup: dict[str, Any]
    """The signup's answer."""
    created: dict[str, Any]
    """The company as created (before provisioning)."""


async def sign_up_and_provision(api: RecordingApi, prefix: str, display_name: str,
                                credential: str) -> FirstCompany:
    """A new user signs up, creates a company, saves a one-agent draft, adds the Anthropic
    credential ``credential`` and asks to provision it (accepted)."""
    signup = await api.call("POST", "/api/auth/signup", 201, json={
        "email": f"founder-{uuid.uuid4().hex[:6]}@example.com", "password": PASSWORD})
    slug = f"{prefix}-{uuid.uuid4().hex[:6]}"
    created = await api.call("POST", "/api/registry/companies", 201,
                             json={"slug": slug, "displayName": display_name})
    await api.call("POST", f"/api/registry/companies/{slug}/draft", 201, json={"draft": {
        "channel": "stable", "version": "1.0.0",
        "config": {"agents": [{"name": "ceo", "role": "CEO", "provider": "anthropic",
                               "model": "claude"}]}}})
    await api.call("POST", "/api/registry/provider-secrets", 201,
                   json={"provider": "anthropic", "name": "main", "value": credential})
    await api.call("POST", f"/api/registry/companies/{slug}/provision", 202)
    return FirstCompany(slug, signup, created)
