"""OpenAPI links: from an operation that creates something to the operations that then read, change or delete
it, with the id taken from the creating answer, so that a client (and a stateful contract test) can follow the
lifecycle from the answer. Declared in a route's `responses={201: {"links": ...}}`; each names its target by
operationId (a test checks that every one exists)."""

from __future__ import annotations

from typing import Any

# The id of the created object, in the answer's body (a GeoJSON Feature's `id`, or a JSON object's `id`).
CREATED_ID = "$response.body#/id"


def link(operation_id: str, description: str, **parameters: str) -> dict[str, Any]:
    """A link to `operation_id`; `parameters` maps its parameter names to runtime expressions or constants."""
    return {"operationId": operation_id, "description": description, "parameters": parameters}
