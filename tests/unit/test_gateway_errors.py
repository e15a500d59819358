"""Every error is application/problem+json with the right status and a code; nothing else
leaks: no stack trace, no input value, no secret."""

from __future__ import annotations

import logging

import pytest
from pydantic import BaseModel, Field, ValidationError

from exocorp.api_gateway.errors import PROBLEM_CONTENT_TYPE, as_problem
from exocorp.k8s import ApiError
from exocorp.lifecycle import ActionRefusedError, ErrorCode, FieldError
from exocorp.store.errors import (
    AccountDisabled,
    Conflict,
    InvalidCredentials,
    NotFound,
    StaleVersion,
)
from tests.plugins import gateway as support
from tests.plugins.gateway import Gateway

pytestmark = pytest.mark.unit


async def _problem(response: object) -> dict:
    assert response.headers["Content-Type"].startswith(PROBLEM_CONTENT_TYPE)  # type: ignore[attr-defined]
    body: dict = await response.json(content_type=None)  # type: ignore[attr-defined]
    assert body["status"] == response.status  # type: ignore[attr-defined]
    assert body["requestId"] == response.headers["X-Request-Id"]  # type: ignore[attr-defined]
    return body


async def test_unknown_route_is_a_problem_404(gateway: Gateway) -> None:
    response = await gateway.client.get("/api/registry/nothing-here")
    assert response.status == 404
    body = await _problem(response)
    assert (body["code"], body["instance"]) == ("not_found", "/api/registry/nothing-here")


async def test_wrong_method_is_a_problem_405_naming_the_allowed_ones(gateway: Gateway) -> None:
    response = await gateway.client.put("/api/auth/login", json={})
    assert response.status == 405
    body = await _problem(response)
    assert body["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


async def test_declared_oversized_body_is_413_before_anything_runs(gateway: Gateway) -> None:
    big = {"email": "a@example.com", "password": "x" * 10_000}
    response = await gateway.client.post("/api/auth/signup", json=big)
    assert response.status == 413
    assert (await _problem(response))["code"] == "payload_too_large"
    login = await gateway.client.post("/api/auth/login", json={
        "email": "a@example.com", "password": "x" * 10})
    assert login.status == 401  # no user was created


async def test_chunked_oversized_body_is_413(gateway: Gateway) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"email": "a@example.com", "password": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    response = await gateway.client.post("/api/auth/signup", data=chunks(),
                                         headers={"Content-Type": "application/json"})
    assert response.status == 413
    assert (await _problem(response))["code"] == "payload_too_large"


async def test_non_json_body_is_415(gateway: Gateway) -> None:
    response = await gateway.client.post("/api/auth/signup", data="email=a@example.com",
                                         headers={"Content-Type": "text/plain"})
    assert response.status == 415
    assert (await _problem(response))["code"] == "unsupported_media_type"


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"NaN", b"[" * 3000])
async def test_malformed_json_is_400(gateway: Gateway, raw: bytes) -> None:
    response = await gateway.client.post("/api/auth/signup", data=raw,
                                         headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert (await _problem(response))["code"] == "invalid_json"


async def test_field_errors_name_fields_and_never_echo_values(
        make_gateway: support.GatewayFactory) -> None:
    gateway = await make_gateway(max_body_bytes=65536)
    await gateway.signup("ada@example.com")
    marker = "sk-secret-marker-" + "z" * 8200
    response = await gateway.client.post("/api/registry/provider-secrets", json={
        "provider": "Not A Label", "name": "main", "value": marker, "extra": 1})
    assert response.status == 400
    text = await response.text()
    assert "sk-secret-marker" not in text
    body = await _problem(response)
    assert {e["field"] for e in body["errors"]} == {"provider", "value", "extra"}


async def test_unexpected_error_is_500_with_a_logged_trace_id_and_no_internals(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    await gateway.signup("ada@example.com")
    gateway.kube.fail_next["create"] = ApiError(500, "InternalError", "etcd timed out: boom")
    with caplog.at_level(logging.ERROR):
        response = await gateway.client.post("/api/registry/companies",
                                             json={"slug": "acme", "displayName": "Acme"})
    assert response.status == 500
    body = await _problem(response)
    assert body["code"] == "internal"
    assert body["traceId"] == body["requestId"]
    text = await response.text()
    assert "Traceback" not in text
    assert "etcd" not in text
    assert "boom" not in text
    assert any(body["traceId"] in record.getMessage() for record in caplog.records)


def test_lifecycle_and_store_errors_map_to_their_statuses() -> None:
    refused = as_problem(ActionRefusedError(ErrorCode.IN_PROGRESS, "rolling out",
                                        [FieldError("x", "y")]))
    assert refused is not None
    assert (refused.status, refused.code, refused.errors) == (409, "in_progress",
                                                               (FieldError("x", "y"),))
    stale = as_problem(StaleVersion("old", current_version=4))
    assert stale is not None
    assert (stale.status, stale.code, stale.extra) == (409, "stale_version",
                                                       {"currentVersion": 4})
    taken = as_problem(Conflict("slug taken", field="slug"))
    assert taken is not None
    assert (taken.status, [e.field for e in taken.errors]) == (409, ["slug"])
    for error, status in ((NotFound("x"), 404), (InvalidCredentials("x"), 401),
                          (AccountDisabled("x"), 403)):
        problem = as_problem(error)
        assert problem is not None
        assert problem.status == status
    assert as_problem(RuntimeError("boom")) is None


def test_validation_errors_are_400_without_inputs() -> None:
    class Body(BaseModel):
        token: str = Field(max_length=3)

    with pytest.raises(ValidationError) as caught:
        Body.model_validate({"token": "secret-value"})
    problem = as_problem(caught.value)
    assert problem is not None
    assert problem.status == 400
    assert "secret-value" not in repr([(e.field, e.message) for e in problem.errors])
