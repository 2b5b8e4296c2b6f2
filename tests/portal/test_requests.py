"""Footage requests as the resident meets them: the list of requests that reached the registration, an accept
followed by an upload whose SHA-256, computed in the browser, is shown beside the service's receipt, and a
decline worded so the resident knows the agency is never told who declined."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import FilePayload, expect

from tests.conftest import Token
from tests.portal.conftest import Owner, Program, Visit, sign_in


def send_request(client: httpx.Client, auth: Token, program: Program, message: str) -> str:
    """An investigator's footage request around the program's centre, taken to `sent` as the agency does."""
    now = datetime.now(UTC)
    investigator = auth("investigator", program.slug, sub="det-1")
    body = {
        "case_number": f"C-{uuid.uuid4().hex[:8]}",
        "category": "burglary",
        "incident": {"type": "Point", "coordinates": [program.lon, program.lat]},
        "radius_m": 200,
        "window": {
            "start": (now - timedelta(hours=6)).isoformat(),
            "end": (now - timedelta(hours=4)).isoformat(),
        },
        "message": message,
    }
    r = client.post("/v1/requests", json=body, headers=investigator)
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    r = client.post(
        f"/v1/requests/{rid}/transitions",
        json={"action": "submit"},
        headers={**investigator, "If-Match": "*"},
    )
    assert r.status_code == 200, r.text
    if r.json()["state"] != "sent":
        r = client.post(
            f"/v1/requests/{rid}/transitions",
            json={"action": "approve"},
            headers={**auth("supervisor", program.slug, sub="sgt-1"), "If-Match": "*"},
        )
        assert r.status_code == 200, r.text
    assert r.json()["state"] == "sent"
    return str(rid)


def test_accept_then_upload_shows_both_hashes_matching(
    visit: Visit,
    owner: Owner,
    program: Program,
    requests_client: httpx.Client,
    auth: Token,
    sql: Callable[..., Any],
) -> None:
    rid = send_request(requests_client, auth, program, "A burglary on this block between 2 and 4 pm.")
    page = visit.page
    sign_in(visit, owner)
    page.get_by_role("link", name="Footage requests").click()
    card = page.locator("section.portal-card", has_text="A burglary on this block between 2 and 4 pm.")
    expect(card.get_by_role("heading", level=2)).to_have_text(f"Burglary — Police Department {program.slug}")
    expect(card.get_by_text("The agency is never told who declined.")).to_be_visible()
    # The time asked for says its day once when both ends fall on it (the browser keeps this machine's time zone).
    [start, end] = sql(
        "SELECT window_start, window_end FROM requests.requests WHERE id = $1", uuid.UUID(rid)
    )[0]
    days = {start.astimezone().date(), end.astimezone().date()}
    asked_for = (
        card.locator("dt", has_text="Time asked for").locator("xpath=following-sibling::dd[1]").inner_text()
    )
    assert asked_for.count(str(start.astimezone().year)) == len(days), asked_for
    visit.check("requests-list")
    card.get_by_role("button", name="Share footage").click()
    card = page.locator("section.portal-card", has_text="A burglary on this block")
    expect(card.get_by_text("You agreed to share")).to_be_visible()
    footage = os.urandom(3 * 1024 * 1024 + 17)
    expected = hashlib.sha256(footage).hexdigest()
    upload: FilePayload = {"name": "front-door.mp4", "mimeType": "video/mp4", "buffer": footage}
    card.get_by_label("Video file").set_input_files(files=[upload])
    visit.check("requests-upload-chosen")
    card.get_by_role("button", name="Upload").click()
    expect(card.get_by_text("Received intact: the fingerprints match")).to_be_visible()
    expect(card.locator("progress")).to_have_attribute("value", "100")
    expect(card.locator("[data-hash=computed]")).to_have_text(expected)
    expect(card.locator("[data-hash=received]")).to_have_text(expected)
    visit.check("requests-uploaded")
    rows = sql("SELECT sha256, size_bytes FROM requests.evidence WHERE request_id = $1", rid)
    assert [(r["sha256"], r["size_bytes"]) for r in rows] == [(expected, len(footage))]
    targets = sql(
        "SELECT state FROM requests.targets WHERE request_id = $1 AND registration_id = $2", rid, owner.id
    )
    assert [t["state"] for t in targets] == ["uploaded"]


def test_decline_is_silent_and_the_page_says_so(
    visit: Visit,
    owner: Owner,
    program: Program,
    requests_client: httpx.Client,
    auth: Token,
    sql: Callable[..., Any],
) -> None:
    rid = send_request(requests_client, auth, program, "A car was broken into overnight.")
    page = visit.page
    sign_in(visit, owner)
    page.get_by_role("link", name="Footage requests").click()
    card = page.locator("section.portal-card", has_text="A car was broken into overnight.")
    expect(card.get_by_text("The agency is never told who declined.")).to_be_visible()
    card.get_by_role("button", name="Decline").click()
    card = page.locator("section.portal-card", has_text="A car was broken into overnight.")
    expect(card.get_by_text("You declined")).to_be_visible()
    expect(card.get_by_role("button", name="Upload")).to_have_count(0)
    visit.check("requests-declined")
    targets = sql(
        "SELECT state FROM requests.targets WHERE request_id = $1 AND registration_id = $2", rid, owner.id
    )
    assert [t["state"] for t in targets] == ["declined"]
    # The agency's view of its request names no one who declined.
    seen = requests_client.get(f"/v1/requests/{rid}", headers=auth("investigator", program.slug, sub="det-1"))
    assert owner.id not in seen.text and owner.email not in seen.text
