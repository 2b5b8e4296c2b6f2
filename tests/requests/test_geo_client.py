"""requests_api asks geo_query over HTTP through its published contract: the operations, parameters and response
fields the client uses exist in `openapi/geo_query.json`; and an outage or a silent geo_query gives the caller a
prompt 503/504 problem, never a hang."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.requests_api import geo_client
from tests.conftest import Suite, Token
from tests.requests.conftest import Flow, NewAgency, NewOwner, request_body
from tests.support import ROOT, Db, Server, free_port, start_server


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def test_the_geo_client_uses_only_what_geo_query_publishes() -> None:
    doc = json.loads((ROOT / "openapi" / "geo_query.json").read_text())
    schemas = doc["components"]["schemas"]
    for op in geo_client.OPERATIONS:
        assert op.path in doc["paths"], op.path
        assert op.method in doc["paths"][op.path], f"{op.method.upper()} {op.path}"
        spec = doc["paths"][op.path][op.method]
        names = {p["name"] for p in spec.get("parameters", [])}
        missing = set(op.params) - names
        assert not missing, f"{op.path} has no parameter(s) {missing}"
        ok = spec["responses"]["200"]["content"]
        schema = _resolve(doc, next(iter(ok.values()))["schema"])
        assert schema == schemas[op.response_schema]
    collection = schemas["CameraCollection"]["properties"]
    assert set(geo_client.COLLECTION_FIELDS) <= set(collection)
    feature = _resolve(doc, collection["features"]["items"])
    props = _resolve(doc, feature["properties"]["properties"])["properties"]
    assert set(geo_client.FEATURE_PROPERTIES) <= set(props)
    assert "id" in feature["properties"] and "geometry" in feature["properties"]
    body = _resolve(
        doc,
        doc["paths"][geo_client.AREA.path]["post"]["requestBody"]["content"]["application/json"]["schema"],
    )
    assert set(geo_client.AREA_BODY_FIELDS) <= set(body["properties"])


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                held.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield sock.getsockname()[1]
    stop.set()
    t.join()
    for c in held:
        c.close()
    sock.close()


def _requests_api_with_geo_at(suite: Suite, url: str) -> Server:
    return start_server("requests_api", dict(suite.env, GEO_QUERY_URL=url, GEO_QUERY_TIMEOUT_S="1"))


@pytest.mark.parametrize("outage", ["down", "silent"])
def test_a_geo_query_outage_is_a_prompt_problem_not_a_hang(
    outage: str, suite: Suite, silent_port: int, new_agency: NewAgency, auth: Token
) -> None:
    url = f"http://127.0.0.1:{free_port()}" if outage == "down" else f"http://127.0.0.1:{silent_port}"
    server = _requests_api_with_geo_at(suite, url)
    try:
        agency = new_agency()
        started = time.monotonic()
        r = httpx.post(
            server.url + "/v1/requests",
            json=request_body(agency),
            headers=auth("investigator", agency.slug),
            timeout=30,
        )
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert r.status_code == (503 if outage == "down" else 504), r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "geo_query" in r.json()["detail"]
    assert elapsed < 5, elapsed


def test_finding_targets_discloses_no_owner_contact(flow: Flow, new_owner: NewOwner, db: Db) -> None:
    """Owners are told through registry_api, so the geo search behind a request reads no contact details:
    its audit record shows the case number and no disclosed contact."""
    new_owner(flow.agency, flow.agency.near())
    req = flow.create(radius_m=250)
    assert req["targets"], "the search found the owner"
    rows = db.fetch(
        "SELECT details FROM audit.events WHERE service = 'geo_query' AND case_number = $1",
        req["case_number"],
    )
    assert rows, "the search behind the request was not audited"
    for row in rows:
        assert json.loads(row["details"]).get("contacts_disclosed", []) == []
