"""The operations of the three published contracts (openapi/*.json), for tests that must meet every operation,
present and future, without a list written by hand: each with its method, path, parameters and body media types,
and a way to fill its path with ids (real ones from the scene, or made up)."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from shared.auth import ROLES
from tests.contract.conftest import Scene
from tests.support import ROOT

SERVICES = ("registry_api", "geo_query", "requests_api", "community_api")
METHODS = ("get", "put", "post", "patch", "delete")
AGENCY_ROLES = [r for r in ROLES if r != "service"]


@dataclass(frozen=True)
class Operation:
    service: str
    method: str
    path: str
    spec: dict[str, Any] = field(compare=False, hash=False)

    @property
    def key(self) -> str:
        return f"{self.service} {self.method.upper()} {self.path}"

    @property
    def secured(self) -> bool:
        return bool(self.spec.get("security"))

    @property
    def parameters(self) -> list[dict[str, Any]]:
        return list(self.spec.get("parameters") or [])

    def query(self) -> list[dict[str, Any]]:
        return [p for p in self.parameters if p.get("in") == "query"]

    @property
    def body_types(self) -> list[str]:
        return list(((self.spec.get("requestBody") or {}).get("content") or {}).keys())

    def fill(self, ids: dict[str, str] | None = None) -> str:
        """The path with each `{name}` replaced by `ids[name]`, or a made-up value of its kind."""
        given = ids or {}

        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name in given:
                return given[name]
            if name == "slug":
                return "no-such-agency"
            if name == "collection_id":
                return "cameras"
            if name == "token":  # an unsubscribe link's: of the right form, issued by no one
                return f"{uuid.uuid4().hex}.{uuid.uuid4().hex}"
            return str(uuid.uuid4())

        return re.sub(r"\{([^}]+)\}", one, self.path)


def contract(service: str) -> dict[str, Any]:
    return json.loads((ROOT / "openapi" / f"{service}.json").read_text())  # type: ignore[no-any-return]


def operations() -> list[Operation]:
    out = []
    for service in SERVICES:
        for path, item in contract(service)["paths"].items():
            for method in METHODS:
                if method in item:
                    out.append(Operation(service, method, path, item[method]))
    return out


def credentials(scene: Scene, op: Operation) -> dict[str, str]:
    """A credential the operation takes: owner A's on the owners' own paths, else every agency role of X."""
    owners = op.path.startswith("/v1/owner/") or (
        op.path.startswith("/v1/registrations/{registration_id}") and op.method != "get"
    )
    if owners:
        return scene.world.a.headers
    return scene.auth("investigator", scene.world.x, roles=AGENCY_ROLES)


def real_ids(scene: Scene) -> dict[str, str]:
    """A real object of the scene for every kind of path id."""
    return {
        "slug": scene.world.x,
        "registration_id": scene.world.a.registration_id,
        "camera_id": scene.world.a.camera_ids[0],
        "request_id": scene.request_id,
        "evidence_id": scene.evidence_id,
        "window_id": scene.window_id,
        "agent_id": scene.agent_id,
        "job_id": scene.import_id,
        "feature_id": scene.world.a.camera_ids[0],
    }
