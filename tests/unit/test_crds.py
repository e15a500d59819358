"""The generated CRDs: committed copies up to date, schemas structural, examples valid."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from exocorp.model import Exocorp, ExocorpRelease
from exocorp.model.crd import (
    REGENERATE_COMMAND,
    crd_documents,
    crd_files,
    render_crds,
    write_crds,
)
from exocorp.model.structural import UnsupportedSchemaError, to_structural

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "manifests" / "crds"
DOCS = ROOT / "docs" / "resources.md"


def test_committed_crds_match_the_models() -> None:
    expected = crd_files()
    committed = {path.name: path.read_text(encoding="utf-8") for path in CRD_DIR.glob("*.yaml")}
    assert committed == expected, (
        f"manifests/crds/ is out of date with exocorp/model; run `{REGENERATE_COMMAND}`"
    )


def test_write_crds_writes_one_file_per_crd(tmp_path: Path) -> None:
    written = write_crds(tmp_path / "new")
    assert sorted(path.name for path in written) == [
        "exocorp.io_exocorpreleases.yaml",
        "exocorp.io_exocorps.yaml",
    ]
    for path in written:
        assert path.read_text(encoding="utf-8") == crd_files()[path.name]


def test_render_is_a_stable_multi_document_stream() -> None:
    assert render_crds() == render_crds()
    assert list(yaml.safe_load_all(render_crds())) == crd_documents()


def by_kind() -> dict[str, dict[str, Any]]:
    return {doc["spec"]["names"]["kind"]: doc for doc in crd_documents()}


def version_of(kind: str) -> dict[str, Any]:
    versions = by_kind()[kind]["spec"]["versions"]
    assert len(versions) == 1
    version: dict[str, Any] = versions[0]
    return version


def schema_of(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = version_of(kind)["schema"]["openAPIV3Schema"]
    return schema


def test_names_scope_and_subresources() -> None:
    crds = by_kind()
    exocorp, release = crds["Exocorp"], crds["ExocorpRelease"]
    assert exocorp["metadata"]["name"] == "exocorps.exocorp.io"
    assert release["metadata"]["name"] == "exocorpreleases.exocorp.io"
    for crd in (exocorp, release):
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert crd["spec"]["scope"] == "Cluster"
        assert crd["spec"]["group"] == "exocorp.io"
        assert crd["spec"]["names"]["categories"] == ["exocorp-all"]
        versions = crd["spec"]["versions"]
        assert [(v["name"], v["served"], v["storage"]) for v in versions] == [
            ("v1alpha1", True, True)
        ]
    assert exocorp["spec"]["names"]["shortNames"] == ["exo"]
    assert release["spec"]["names"]["shortNames"] == ["exorel"]
    assert version_of("Exocorp")["subresources"] == {"status": {}}
    assert version_of("ExocorpRelease")["subresources"] == {"status": {}}  # the channels line


def columns(kind: str, wide: bool = False) -> list[tuple[str, str]]:
    return [
        (column["name"], column["jsonPath"])
        for column in version_of(kind)["additionalPrinterColumns"]
        if wide or not column.get("priority")
    ]


def test_printer_columns() -> None:
    assert columns("Exocorp") == [
        ("Phase", ".status.phase"),
        ("Version", ".status.release.version"),
        ("Ready", '.status.conditions[?(@.type=="Ready")].status'),
        ("Age", ".metadata.creationTimestamp"),
    ]
    assert columns("ExocorpRelease") == [
        ("Version", ".spec.version"),
        ("Channels", ".status.channels"),
        ("Blocked", ".spec.blocked"),
        ("Age", ".metadata.creationTimestamp"),
    ]
    # Every column path exists in the schema (a typo shows an empty column, silently).
    for kind in ("Exocorp", "ExocorpRelease"):
        for _name, path in columns(kind, wide=True):
            if path.startswith(".metadata"):
                continue
            node = schema_of(kind)
            for part in re.sub(r"\[.*?\]", "", path).strip(".").split("."):
                node = node.get("items", node)["properties"][part]


# --- structural schema rules (what the API server enforces on CRDs) --------------------------


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", ["Exocorp", "ExocorpRelease"])
def test_schemas_are_structural(kind: str) -> None:
    forbidden = {
        "$ref",
        "$defs",
        "anyOf",
        "allOf",
        "oneOf",
        "not",
        "title",
        "uniqueItems",
        "patternProperties",
        "propertyNames",
        "const",
        "examples",
    }
    for path, node in walk(schema_of(kind)):
        where = f"{kind}{path}"
        assert not forbidden & node.keys(), where
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), where
        assert not ("properties" in node and "additionalProperties" in node), where
        assert node.get("default", "") is not None, where
        if node.get("type") == "object" and path != ".metadata":
            assert "properties" in node or "additionalProperties" in node, where
        for required in node.get("required", []):
            assert required in node["properties"], where
        if node.get("x-kubernetes-list-type") == "map":
            item = node["items"]
            for key in node["x-kubernetes-list-map-keys"]:
                assert key in item.get("required", []) or "default" in item["properties"][key]
        if node.get("x-kubernetes-list-type") == "set":
            assert node["items"]["type"] in ("string", "integer"), where
        for rule in node.get("x-kubernetes-validations", []):
            assert list(rule) == ["rule", "message"], where


def test_the_status_schema_keeps_every_field() -> None:
    # No preserve-unknown-fields anywhere: every status field the operator writes is declared.
    for path, node in walk(schema_of("Exocorp")):
        assert "x-kubernetes-preserve-unknown-fields" not in node, path


def test_validation_survives_the_conversion() -> None:
    spec = schema_of("Exocorp")["properties"]["spec"]["properties"]
    assert spec["slug"]["pattern"] == "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
    assert (spec["slug"]["minLength"], spec["slug"]["maxLength"]) == (3, 40)
    assert spec["rollbackPolicy"] == {
        "description": "What to do when a revision fails.",
        "type": "string",
        "enum": ["Automatic", "Manual"],
        "default": "Automatic",
    }
    assert spec["progressDeadlineSeconds"]["default"] == 600
    assert spec["release"]["nullable"] is True
    assert spec["release"]["properties"]["version"]["pattern"].startswith("^(0|[1-9][0-9]*)")
    assert spec["config"]["properties"]["componentSizes"]["additionalProperties"]["enum"] == [
        "small",
        "medium",
        "large",
    ]
    status = schema_of("Exocorp")["properties"]["status"]["properties"]
    assert status["runningSeconds"]["additionalProperties"] == {"type": "integer", "minimum": 0}
    condition = status["conditions"]["items"]
    assert condition["required"] == ["type", "status", "reason", "lastTransitionTime"]
    assert condition["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert status["phase"]["enum"] == [
        "Draft",
        "Provisioning",
        "Starting",
        "Running",
        "Paused",
        "Stopped",
        "Failed",
        "Destroying",
    ]
    release = schema_of("ExocorpRelease")["properties"]["spec"]
    assert release["required"] == ["version", "channels", "components"]
    component = release["properties"]["components"]["items"]["properties"]
    assert component["replicas"]["minimum"] == 0


@pytest.mark.parametrize(
    "schema",
    [
        {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        {"allOf": [{"type": "string"}, {"minLength": 1}]},
        {"description": "no type"},
        {
            "type": "object",
            "patternProperties": {"^a$": {"type": "string"}, "^b$": {"type": "string"}},
        },
    ],
)
def test_unsupported_constructs_are_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedSchemaError):
        to_structural(schema)


def test_conversion_details() -> None:
    assert to_structural(
        {
            "type": "object",
            "title": "T",
            "additionalProperties": False,
            "properties": {
                "a": {"anyOf": [{"$ref": "#/$defs/E"}, {"type": "null"}], "default": None},
                "b": {"$ref": "#/$defs/E", "description": "field wins"},
                "c": {"type": "string", "const": "x"},
                "d": {"type": "integer", "exclusiveMinimum": 0},
            },
            "$defs": {"E": {"type": "string", "enum": ["p", "q"], "description": "enum doc"}},
        }
    ) == {
        "type": "object",
        "properties": {
            "a": {
                "description": "enum doc",
                "type": "string",
                "enum": ["p", "q"],
                "nullable": True,
            },
            "b": {"description": "field wins", "type": "string", "enum": ["p", "q"]},
            "c": {"type": "string", "enum": ["x"]},
            "d": {"type": "integer", "minimum": 0, "exclusiveMinimum": True},
        },
    }


# --- the documented examples validate against the CRDs and the models -------------------------


def documented_objects() -> list[dict[str, Any]]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    return [doc for block in blocks for doc in yaml.safe_load_all(block) if doc]


def test_docs_show_both_kinds() -> None:
    assert sorted(doc["kind"] for doc in documented_objects()) == ["Exocorp", "ExocorpRelease"]


@pytest.mark.parametrize("document", documented_objects(), ids=lambda doc: doc["kind"])
def test_documented_examples_are_valid(document: dict[str, Any]) -> None:
    # OpenAPI v3.0 schemas are JSON Schema draft 4 plus extensions a validator ignores.
    validator = jsonschema_rs.Draft4Validator(schema_of(document["kind"]))
    errors = [str(error) for error in validator.iter_errors(document)]
    assert not errors, errors
    model = Exocorp if document["kind"] == "Exocorp" else ExocorpRelease
    model.model_validate(document)


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("ExocorpRelease", {"version": "1.4"}),
        ("ExocorpRelease", {"channels": ["nightly"]}),
        ("ExocorpRelease", {"components": []}),
        ("Exocorp", {"slug": "A_B"}),
        ("Exocorp", {"rollbackPolicy": "Sometimes"}),
        ("Exocorp", {"revisionHistoryLimit": 0}),
    ],
)
def test_the_crd_schema_rejects_what_the_models_reject(kind: str, change: dict[str, Any]) -> None:
    document = next(doc for doc in documented_objects() if doc["kind"] == kind)
    document = document | {"spec": document["spec"] | change}
    assert not jsonschema_rs.Draft4Validator(schema_of(kind)).is_valid(document)
    model = Exocorp if kind == "Exocorp" else ExocorpRelease
    with pytest.raises(ValueError, match="validation error"):
        model.model_validate(document)
