"""Every example in the published contracts is valid against the schema it illustrates — response and request
bodies, parameters, and the examples of the component schemas — so a client or a generated mock built from the
examples is built from true answers; and the contracts say what the code does about security, If-Match and the
shapes of geometries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest

from scripts.export_openapi import SERVICES
from tests.support import ROOT

METHODS = {"get", "post", "put", "patch", "delete", "head"}


def _doc(service: str) -> dict[str, Any]:
    return json.loads((ROOT / "openapi" / f"{service}.json").read_text())  # type: ignore[no-any-return]


def _examples(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, schema, example) for every example the document gives."""
    for name, schema in doc["components"]["schemas"].items():
        for i, example in enumerate(schema.get("examples") or []):
            yield (
                f"components.schemas.{name}.examples[{i}]",
                {"$ref": f"#/components/schemas/{name}"},
                example,
            )
        for prop, sub in (schema.get("properties") or {}).items():
            for i, example in enumerate(sub.get("examples") or []):
                yield f"components.schemas.{name}.{prop}.examples[{i}]", sub, example
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            where = f"{method.upper()} {path}"
            for param in op.get("parameters") or []:
                values = (
                    list((param.get("examples") or {}).values())
                    if isinstance(param.get("examples"), dict)
                    else []
                )
                for i, value in enumerate(values):
                    yield (
                        f"{where} parameter {param['name']}[{i}]",
                        param.get("schema", {}),
                        value.get("value"),
                    )
                if "example" in param:
                    yield f"{where} parameter {param['name']}", param.get("schema", {}), param["example"]
            bodies = [("request", op.get("requestBody") or {})]
            bodies += [(f"response {status}", r) for status, r in op.get("responses", {}).items()]
            for label, body in bodies:
                for media, content in (body.get("content") or {}).items():
                    schema = content.get("schema")
                    if schema is None:
                        continue
                    if "example" in content:
                        yield f"{where} {label} {media}", schema, content["example"]
                    for key, ex in (content.get("examples") or {}).items():
                        if "value" in ex:
                            yield f"{where} {label} {media} examples.{key}", schema, ex["value"]


@pytest.mark.parametrize("service", SERVICES)
def test_every_example_validates_against_its_schema(service: str) -> None:
    doc = _doc(service)
    failures = []
    count = 0
    for where, schema, example in _examples(doc):
        if isinstance(example, str) and schema.get("type") not in (None, "string"):
            continue  # a text body (CSV, GeoJSON text sequences) illustrated as text
        count += 1
        validator = jsonschema_rs.Draft202012Validator({**schema, "components": doc["components"]})
        errors = [f"{e.instance_path}: {e.message}"[:200] for e in validator.iter_errors(example)]
        if errors:
            failures.append(f"{where}: {errors[:3]}")
    assert count > 20
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_declares_its_security(service: str) -> None:
    """Explicit `security` on every operation: public ones say `[]` (or an optional bearer, `[{}, ...]`), so a
    generated client never demands a token the operation does not need."""
    doc = _doc(service)
    missing = [
        f"{method.upper()} {path}"
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS and "security" not in op
    ]
    assert not missing, missing


PUBLIC_WITH_OPTIONAL_TOKEN = {
    ("registry_api", "post", "/v1/registrations"),
    ("registry_api", "get", "/v1/agencies"),
    ("registry_api", "get", "/v1/agencies/{slug}"),
}


def test_operations_that_work_without_a_token_make_it_optional() -> None:
    for service, method, path in PUBLIC_WITH_OPTIONAL_TOKEN:
        security = _doc(service)["paths"][path][method]["security"]
        assert {} in security and any(s for s in security), (service, method, path, security)


def test_geometries_are_typed_in_every_contract() -> None:
    """No geometry is a free object: each names its GeoJSON type and the shape of its coordinates."""
    for service in SERVICES:
        schemas = _doc(service)["components"]["schemas"]
        for name, schema in schemas.items():
            for prop, sub in (schema.get("properties") or {}).items():
                if prop in ("geometry", "area", "incident", "jurisdiction", "location", "point"):
                    text = json.dumps(sub)
                    assert '"additionalProperties": true' not in text, (service, name, prop)
                    assert "$ref" in text or "coordinates" in text, (service, name, prop)
        for name in ("Polygon", "MultiPolygon"):
            if name in schemas:
                coords = schemas[name]["properties"]["coordinates"]
                ring = coords["items"] if name == "Polygon" else coords["items"]["items"]
                assert coords["minItems"] == 1 and ring["minItems"] == 4, (service, name)
                assert ring["items"]["minItems"] == 2 and ring["items"]["maxItems"] == 3, (service, name)
