"""The OpenAPI 3.1 document, generated from the route tables and their pydantic models, and a
readable HTML page of it (self-contained: no script, no CDN).

Served at ``/api/openapi.json`` and ``/api/docs``; committed at ``docs/openapi.json`` (a test
keeps the two equal). Regenerate the committed copy with::

    python -m exocorp.api_gateway.openapi --write docs/openapi.json
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from exocorp import __version__
from exocorp.api_gateway.keys import OPENAPI_CACHE
from exocorp.api_gateway.routing import ROUTE_TABLES, Auth, RouteInfo, RouteTable, idempotent
from exocorp.api_gateway.schemas import ProblemDetails

__all__ = ["REGENERATE_COMMAND", "build_document", "docs_html", "document_json", "main"]

REGENERATE_COMMAND = "python -m exocorp.api_gateway.openapi --write docs/openapi.json"
_REF = "#/components/schemas/{model}"
_PROJECT_URL = "https://github.com/exocorp/exocorp"
_Refs = Mapping[Any, dict[str, Any]]
_PATH_PARAM = re.compile(r"\{([^}/:]+)(?::[^}]*)?\}")

_DESCRIPTION = """\
The Exocorp platform's REST API: your exocorps (registry), rollups (dashboard), accounts (auth)
and, for platform owners, the fleet (admin).

**Authentication.** Log in with `POST /api/auth/login`: the answer sets an HttpOnly session
cookie (`__Host-exocorp_session`; `exocorp_session` in development over plain HTTP). Scripts may
send the session token, or an operator client's token, as `Authorization: Bearer <token>`.
Cookie-authenticated writes must come from the site itself (`Sec-Fetch-Site` / `Origin` are
checked); bearer requests are not subject to that check.

**Query parameters.** Every route refuses a query parameter it does not list (400
`invalid_request` naming it), so a typo never silently means the default.

**Errors** are `application/problem+json` with a machine-readable `code`: 400 validation (with
`errors[]` naming each field), 401 unauthenticated, 403 wrong role, 404 unknown (or not yours),
409 state conflict, 413 body too large, 415 not JSON, 429 rate limited (with `Retry-After`),
500 internal (with a `traceId`). Bad input never changes anything.

**Lifecycle actions** become desired state at once (202 Accepted); the operator does the work.
Follow `phase` on `GET /api/registry/companies/{id}`. Of two conflicting concurrent actions
exactly one is accepted; the other gets 409.
"""

_AUTH_TEXT = {
    Auth.PUBLIC: "Public.",
    Auth.USER: "Any logged-in user.",
    Auth.MEMBER: "Owner, member or viewer of the exocorp (others: 404; writes: viewers 403).",
    Auth.OWNER: "Owner of the exocorp (members: 403, others: 404).",
    Auth.PLATFORM_OWNER: "Platform owner (others: 403).",
    Auth.DRAFT_TOKEN: "An operator client's draft access token.",
}


def _models(tables: Sequence[RouteTable]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    seen: dict[tuple[type[BaseModel], str], None] = {(ProblemDetails, "serialization"): None}
    for table in tables:
        for info in table.routes:
            for model, mode in ((info.body, "validation"), (info.query, "validation"),
                                (info.response, "serialization"),
                                *((model, "serialization") for _, model in info.events)):
                if model is not None:
                    seen[(model, mode)] = None
    return [(model, mode) for model, mode in seen]  # type: ignore[misc]


IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "Makes a retry safe (Stripe semantics): the first answer to a key is stored for 24 h "
        "and replayed, with `Idempotent-Replayed: true`, to the same request with the same key; "
        "the same key with another request is 422 `idempotency_key_reused`; while the first "
        "request still runs, 409 `idempotency_in_progress` with `Retry-After`. 5xx answers are "
        "not stored. Secrets shown once are not replayed (`Idempotent-Secrets-Withheld`). "
        "Scoped to the calling user. See docs/api.md#idempotency."),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255,
               "pattern": "^[!-~]([ -~]*[!-~])?$"},
}


def _parameters(info: RouteInfo, components: dict[str, Any],
                refs: _Refs) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(info.path)]
    if info.query is not None:
        ref = refs[(info.query, "validation")]["$ref"].rsplit("/", 1)[-1]
        schema = components.get(ref, {})
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            prop = dict(prop)
            description = prop.pop("description", None)
            param = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if description:
                param["description"] = description
            params.append(param)
    if idempotent(info):
        params.append(IDEMPOTENCY_PARAMETER)
    return params


def _operation(info: RouteInfo, components: dict[str, Any],
               refs: _Refs) -> dict[str, Any]:
    description = info.description
    operation: dict[str, Any] = {
        "operationId": info.operation_id,
        "summary": info.summary,
        "description": f"{description}\n\n*Access:* {_AUTH_TEXT[info.auth]}".strip(),
        "tags": [info.tag],
        "x-exocorp-auth": info.auth.value,
    }
    if info.auth is Auth.PUBLIC:
        operation["security"] = []
    elif info.auth is Auth.DRAFT_TOKEN:
        operation["security"] = [{"bearerAuth": []}]
    else:
        operation["security"] = [{"sessionCookie": []}, {"bearerAuth": []}]
    parameters = _parameters(info, components, refs)
    if parameters:
        operation["parameters"] = parameters
    if info.body is not None:
        operation["requestBody"] = {
            "required": info.body_required,
            "content": {"application/json": {"schema": refs[(info.body, "validation")]}},
        }
    responses: dict[str, Any] = {}
    success: dict[str, Any] = {"description": HTTPStatus(info.status).phrase}
    if info.response is not None:
        success["content"] = {"application/json": {
            "schema": refs[(info.response, "serialization")]},
            **{other: {"schema": {"type": "string"}} for other in info.other_content_types}}
    elif info.events:
        # Each event (OpenAPI 3.1: the schema of a text/event-stream describes one event), its
        # data JSON of the named model.
        success["content"] = {info.content_type: {"schema": {"oneOf": [
            {"type": "object", "required": ["event", "data"], "properties": {
                "event": {"const": name},
                "data": {"type": "string", "contentMediaType": "application/json",
                         "contentSchema": refs[(model, "serialization")]}}}
            for name, model in info.events]}}}
    elif info.status != 204:
        # Without a model: a JSON answer is some object (e.g. this document), anything else a
        # text (Markdown, HTML, the Prometheus exposition format).
        schema = {"type": "object"} if info.content_type == "application/json" \
            else {"type": "string"}
        success["content"] = {info.content_type: {"schema": schema}}
    responses[str(info.status)] = success
    for status in info.other_successes:
        responses[str(status)] = {**success, "description": HTTPStatus(status).phrase}
    problem = {"application/problem+json": {"schema": refs[(ProblemDetails, "serialization")]}}
    for status in info.error_statuses:
        responses[str(status)] = {"description": HTTPStatus(status).phrase, "content": problem}
    operation["responses"] = responses
    return operation


def build_document(tables: Sequence[RouteTable]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of these route tables (deterministic: same input, same bytes)."""
    models = _models(tables)
    refs, definitions = models_json_schema(models, ref_template=_REF)
    components: dict[str, Any] = definitions.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for table in tables:
        for info in table.routes:
            paths.setdefault(info.path, {})[info.method.lower()] = _operation(
                info, components, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Exocorp platform API", "version": __version__,
                 "description": _DESCRIPTION,
                 "contact": {"name": "Exocorp maintainers", "url": _PROJECT_URL + "/issues"},
                 "license": {"name": "Apache 2.0", "identifier": "Apache-2.0"}},
        # Relative: the API is served by whichever gateway answered for this document.
        "servers": [{"url": "/", "description": "the gateway serving this document"}],
        "tags": [{"name": table.tag, "description": table.description} for table in tables],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(_used(components, paths).items())),
            "securitySchemes": {
                "sessionCookie": {"type": "apiKey", "in": "cookie",
                                  "name": "__Host-exocorp_session",
                                  "description": "Set by login and signup (HttpOnly, "
                                                 "SameSite=Lax, Secure)."},
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "A session token, or an operator client's "
                                              "trusted-client bearer token."},
            },
        },
    }


def _used(components: dict[str, Any], paths: dict[str, Any]) -> dict[str, Any]:
    """The schemas the paths refer to, directly or through other schemas: pydantic also emits
    definitions no operation uses (e.g. a model only nested in an unused variant)."""
    prefix = _REF.format(model="")
    found: set[str] = set()
    todo = [paths]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix):
                name = ref.removeprefix(prefix)
                if name not in found and name in components:
                    found.add(name)
                    todo.append(components[name])
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return {name: schema for name, schema in components.items() if name in found}


def document_json(tables: Sequence[RouteTable]) -> str:
    return json.dumps(build_document(tables), indent=2, ensure_ascii=False) + "\n"


# -- the HTML page -------------------------------------------------------------------------------

_CSS = """
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:70rem;padding:1rem 2rem;
color:#1d2433}
h1{margin-bottom:0}h2{border-bottom:2px solid #dde;padding-bottom:.2rem;margin-top:2.5rem}
.op{border:1px solid #dde;border-radius:6px;margin:1rem 0;padding:.6rem 1rem}
.m{display:inline-block;min-width:4.2rem;font-weight:700;font-family:monospace}
.GET{color:#1565c0}.POST{color:#2e7d32}.DELETE{color:#c62828}.PUT{color:#ef6c00}
code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f6f7f9;padding:.6rem;overflow:auto;border-radius:4px}
table{border-collapse:collapse}td,th{border:1px solid #dde;padding:.2rem .5rem;text-align:left}
.auth{color:#555;font-size:13px}nav a{margin-right:1rem}
"""


def _md(text: str) -> str:
    """The tiny Markdown subset the descriptions use: paragraphs, `code`, **bold**, *italic*."""
    out = []
    for paragraph in text.strip().split("\n\n"):
        escaped = html.escape(paragraph.replace("\n", " "))
        escaped = re.sub(r"``?([^`]+)``?", r"<code>\1</code>", escaped)
        escaped = re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", escaped)
        escaped = re.sub(r"\*([^*]+)\*", r"<i>\1</i>", escaped)
        out.append(f"<p>{escaped}</p>")
    return "".join(out)


def _schema_link(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        return f'<a href="#schema-{html.escape(name)}"><code>{html.escape(name)}</code></a>'
    return f"<code>{html.escape(json.dumps(schema))}</code>"


def docs_html(document: dict[str, Any]) -> str:
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8>"
             f"<title>{html.escape(document['info']['title'])}</title><style>{_CSS}</style>"
             f"</head><body><h1>{html.escape(document['info']['title'])}</h1>"
             f"<p>Version {html.escape(document['info']['version'])} · "
             f"<a href=\"/api/openapi.json\">openapi.json</a></p>",
             _md(document["info"]["description"]), "<nav>"]
    parts += [f'<a href="#tag-{html.escape(t["name"])}">{html.escape(t["name"])}</a>'
              for t in document["tags"]]
    parts.append('<a href="#schemas">schemas</a></nav>')
    for tag in document["tags"]:
        parts.append(f'<h2 id="tag-{html.escape(tag["name"])}">{html.escape(tag["name"])}</h2>'
                     f"{_md(tag['description'])}")
        for path, operations in document["paths"].items():
            for method, op in operations.items():
                if tag["name"] not in op["tags"]:
                    continue
                parts.append(f'<div class=op id="op-{html.escape(op["operationId"])}">'
                             f'<span class="m {method.upper()}">{method.upper()}</span> '
                             f"<code>{html.escape(path)}</code> — "
                             f"<b>{html.escape(op['summary'])}</b>{_md(op['description'])}")
                if op.get("parameters"):
                    parts.append("<table><tr><th>parameter</th><th>in</th><th>required</th>"
                                 "<th>schema</th></tr>")
                    for p in op["parameters"]:
                        parts.append(f"<tr><td><code>{html.escape(p['name'])}</code></td>"
                                     f"<td>{p['in']}</td><td>{'yes' if p['required'] else 'no'}"
                                     f"</td><td>{_schema_link(p['schema'])}</td></tr>")
                    parts.append("</table>")
                body = op.get("requestBody")
                if body:
                    schema = body["content"]["application/json"]["schema"]
                    parts.append(f"<p>Body ({'required' if body['required'] else 'optional'}):"
                                 f" {_schema_link(schema)}</p>")
                parts.append("<p>Responses: ")
                answers = []
                for status, response in op["responses"].items():
                    link = ""
                    for media in response.get("content", {}).values():
                        schema = media.get("schema", {})
                        link = f" {_schema_link(schema)}" if "$ref" in schema else ""
                    answers.append(f"<code>{status}</code> {html.escape(response['description'])}"
                                   f"{link}")
                parts.append("; ".join(answers) + "</p></div>")
    parts.append('<h2 id="schemas">Schemas</h2>')
    for name, schema in document["components"]["schemas"].items():
        parts.append(f'<h3 id="schema-{html.escape(name)}">{html.escape(name)}</h3>'
                     f"<pre>{html.escape(json.dumps(schema, indent=2))}</pre>")
    parts.append("</body></html>")
    return "".join(parts)


# -- serving -------------------------------------------------------------------------------------

def _rendered(app: web.Application) -> dict[str, str]:
    """Built once per app, on first use (the routes are frozen by then)."""
    rendered = app[OPENAPI_CACHE]
    if not rendered:
        tables: list[RouteTable] = app[ROUTE_TABLES]
        document = build_document(tables)
        rendered["json"] = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        rendered["html"] = docs_html(document)
    return rendered


def app_document_json(app: web.Application) -> str:
    return _rendered(app)["json"]


def app_docs_html(app: web.Application) -> str:
    return _rendered(app)["html"]
