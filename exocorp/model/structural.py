"""Turn a pydantic JSON Schema into a Kubernetes *structural* OpenAPI v3 schema.

The API server accepts only structural schemas for CRDs: every node has a type, no `$ref`, no
`anyOf` of differing types, no `additionalProperties` beside `properties`. Pydantic emits JSON
Schema 2020-12, so this module inlines definitions, folds `anyOf [X, null]` into
`nullable: true`, and drops what Kubernetes does not know (titles, examples, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Keys Kubernetes does not accept or that add nothing to a CRD.
_DROPPED = frozenset({"title", "examples", "$schema", "uniqueItems"})

# Output key order: what a reader wants first, extensions last. Keys not listed follow, sorted.
_KEY_ORDER = (
    "description",
    "type",
    "format",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "default",
    "nullable",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
)

_RULE_ORDER = ("rule", "message", "messageExpression", "reason", "fieldPath")


class UnsupportedSchemaError(ValueError):
    """The model uses a construct with no structural equivalent (e.g. a union of objects)."""


def to_structural(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The structural equivalent of a pydantic `model_json_schema()` result."""
    definitions: Mapping[str, Any] = schema.get("$defs", {})
    return _convert(schema, definitions, path="")


def _resolve(node: Mapping[str, Any], definitions: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Inline `$ref` and single-element `allOf`; keys next to them override the definition."""
    merged = {key: value for key, value in node.items() if key not in ("$ref", "allOf", "$defs")}
    if "allOf" in node:
        if len(node["allOf"]) != 1:
            raise UnsupportedSchemaError(f"{path or '/'}: allOf with several schemas")
        merged = {**_resolve(node["allOf"][0], definitions, path), **merged}
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        merged = {**_resolve(definitions[name], definitions, path), **merged}
    return merged


def _convert(node: Mapping[str, Any], definitions: Mapping[str, Any], path: str) -> dict[str, Any]:
    resolved = _resolve(node, definitions, path)
    if "anyOf" in resolved:
        resolved = _fold_nullable(resolved, definitions, path)
    if "patternProperties" in resolved or "propertyNames" in resolved:
        resolved = _fold_key_constraints(resolved, path)
    out: dict[str, Any] = {}
    for key, value in resolved.items():
        if key in _DROPPED or (key == "additionalProperties" and value is False):
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "properties":
            out[key] = {
                name: _convert(child, definitions, f"{path}.{name}")
                for name, child in value.items()
            }
        elif key == "items":
            out[key] = _convert(value, definitions, f"{path}[]")
        elif key == "additionalProperties" and isinstance(value, Mapping):
            out[key] = _convert(value, definitions, f"{path}{{}}")
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            # JSON Schema's numeric bound is OpenAPI v3.0's boolean beside minimum/maximum.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        else:
            out[key] = value
    if "type" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        raise UnsupportedSchemaError(f"{path or '/'}: no type")
    if out.get("default", 0) is None:
        del out["default"]  # "absent" is already what an unset optional field means
    return _ordered(out)


def _fold_nullable(
    node: Mapping[str, Any], definitions: Mapping[str, Any], path: str
) -> dict[str, Any]:
    """`anyOf [X, null]` becomes X with `nullable: true`; any other anyOf is unsupported."""
    options = node["anyOf"]
    concrete = [option for option in options if option.get("type") != "null"]
    if len(concrete) != 1:
        raise UnsupportedSchemaError(f"{path or '/'}: anyOf of {len(concrete)} non-null schemas")
    rest = {key: value for key, value in node.items() if key != "anyOf"}
    folded = {**_resolve(concrete[0], definitions, path), **rest}
    if len(concrete) < len(options):
        folded["nullable"] = True
    return folded


def _fold_key_constraints(node: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Map key constraints are dropped: the value schema becomes `additionalProperties`.

    Kubernetes has neither patternProperties nor propertyNames; a CEL rule over the keys could
    replace them, but its estimated cost over unbounded keys exceeds the API server's budget. The
    models still check keys on every write the platform makes.
    """
    folded = {k: v for k, v in node.items() if k not in ("patternProperties", "propertyNames")}
    patterns: Mapping[str, Any] = node.get("patternProperties", {})
    if len(patterns) > 1 or (patterns and "additionalProperties" in node):
        raise UnsupportedSchemaError(f"{path or '/'}: several property patterns")
    for value_schema in patterns.values():
        folded["additionalProperties"] = value_schema
    return folded


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    known = [key for key in _KEY_ORDER if key in node]
    unknown = sorted(key for key in node if key not in _KEY_ORDER)
    ordered = {key: node[key] for key in (*known, *unknown)}
    if "x-kubernetes-validations" in ordered:
        ordered["x-kubernetes-validations"] = [
            {key: rule[key] for key in _RULE_ORDER if key in rule}
            | {key: value for key, value in sorted(rule.items()) if key not in _RULE_ORDER}
            for rule in ordered["x-kubernetes-validations"]
        ]
    return ordered
