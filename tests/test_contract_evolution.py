"""Contract evolution: a breaking change to a released contract is flagged unless the API's major version
changes. The released contracts live in openapi/released/ (`make openapi-release` after a deliberate release)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from scripts.contract_diff import breaking_changes, major
from scripts.export_openapi import SERVICES, render
from tests.support import ROOT

BASE: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1.0.0"},
    "paths": {
        "/v1/cameras/near": {
            "get": {
                "parameters": [
                    {"in": "query", "name": "lon", "required": True, "schema": {"type": "number"}},
                    {"in": "query", "name": "limit", "required": False, "schema": {"type": "integer"}},
                ],
                "responses": {
                    "200": {
                        "content": {
                            "application/geo+json": {"schema": {"$ref": "#/components/schemas/Collection"}}
                        }
                    }
                },
            },
            "post": {
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Body"}}}
                },
                "responses": {"201": {"content": {"application/json": {"schema": {"type": "object"}}}}},
            },
        }
    },
    "components": {
        "schemas": {
            "Collection": {
                "type": "object",
                "properties": {"type": {"type": "string"}, "numberReturned": {"type": "integer"}},
            },
            "Body": {
                "type": "object",
                "required": ["case_number"],
                "properties": {
                    "case_number": {"type": "string"},
                    "kind": {"type": "string", "enum": ["a", "b"]},
                    "radius": {"type": "number"},
                },
            },
        }
    },
}


def changed(edit: Any) -> list[str]:
    new = copy.deepcopy(BASE)
    edit(new)
    return breaking_changes(BASE, new)


def test_identical_and_additive_changes_are_not_breaking() -> None:
    assert breaking_changes(BASE, BASE) == []

    def add(d: dict[str, Any]) -> None:
        d["paths"]["/v1/new"] = {"get": {"responses": {}}}
        d["components"]["schemas"]["Collection"]["properties"]["links"] = {"type": "array"}
        d["paths"]["/v1/cameras/near"]["get"]["parameters"].append(
            {"in": "query", "name": "f", "required": False, "schema": {"type": "string"}}
        )

    assert changed(add) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["paths"].pop("/v1/cameras/near"), "path removed"),
        (lambda d: d["paths"]["/v1/cameras/near"].pop("post"), "operation removed"),
        (lambda d: d["paths"]["/v1/cameras/near"]["get"]["parameters"].pop(1), "parameter limit removed"),
        (
            lambda d: d["components"]["schemas"]["Collection"]["properties"].pop("numberReturned"),
            "response field removed",
        ),
        (
            lambda d: d["components"]["schemas"]["Collection"]["properties"].__setitem__(
                "numberMatched", d["components"]["schemas"]["Collection"]["properties"].pop("numberReturned")
            ),
            "numberReturned: response field removed",
        ),
        (
            lambda d: d["components"]["schemas"]["Body"]["properties"]["radius"].__setitem__(
                "type", "integer"
            ),
            "accepted type narrowed",
        ),
        (
            lambda d: d["components"]["schemas"]["Body"]["properties"]["kind"].__setitem__("enum", ["a"]),
            "accepted values removed",
        ),
        (lambda d: d["components"]["schemas"]["Body"]["required"].append("radius"), "newly required"),
        (
            lambda d: d["paths"]["/v1/cameras/near"]["get"]["parameters"][1].__setitem__("required", True),
            "parameter limit is newly required",
        ),
    ],
    ids=[
        "path-removed",
        "operation-removed",
        "parameter-removed",
        "field-removed",
        "field-renamed",
        "type-narrowed",
        "enum-narrowed",
        "field-newly-required",
        "parameter-newly-required",
    ],
)
def test_breaking_changes_are_flagged(edit: Any, expected: str) -> None:
    found = changed(edit)
    assert any(expected in c for c in found), found


def _newly_null(d: dict[str, Any], *, only_with: str | None, new_param: str | None) -> None:
    props = d["components"]["schemas"]["Collection"]["properties"]
    props["numberReturned"] = {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    if only_with:
        props["numberReturned"]["x-null-only-with"] = only_with
    if new_param:
        d["paths"]["/v1/cameras/near"]["get"]["parameters"].append(
            {"in": "query", "name": new_param, "required": False, "schema": {"type": "boolean"}}
        )


def test_a_member_null_only_with_a_new_optional_parameter_is_not_breaking() -> None:
    """No client of the released contract sends the new parameter, so none of them ever reads the null."""
    assert changed(lambda d: _newly_null(d, only_with="skipCount", new_param="skipCount")) == []


@pytest.mark.parametrize(
    ("only_with", "new_param"),
    [(None, "skipCount"), ("skipCount", None), ("limit", None)],
    ids=["no-extension", "parameter-absent", "parameter-already-released"],
)
def test_a_member_newly_null_otherwise_is_breaking(only_with: str | None, new_param: str | None) -> None:
    found = changed(lambda d: _newly_null(d, only_with=only_with, new_param=new_param))
    assert any("numberReturned: returned type changed" in c for c in found), found


@pytest.mark.parametrize("service", SERVICES)
def test_current_contract_does_not_break_the_released_one(service: str) -> None:
    released_path = ROOT / "openapi" / "released" / f"{service}.json"
    released = json.loads(released_path.read_text())
    current = json.loads(render(service))
    changes = breaking_changes(released, current)
    assert not changes or major(released) != major(current), (
        "breaking changes to the released contract without a new major version:\n" + "\n".join(changes)
    )
