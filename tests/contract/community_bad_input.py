"""community_api's part of the bad-input corpus (tests/contract/test_bad_input.py): its JSON write and query
endpoints, and the tip form's multipart cases. Every case must be a 4xx problem that changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.contract.conftest import Scene, polygon
from tests.contract.test_bad_input import Case, Endpoint


def _tip_id(s: Scene) -> str:
    r = s.community_client.post(
        "/v1/tips", files={"agency": (None, s.world.x), "text": (None, "For the corpus.")}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def community_endpoints(s: Scene) -> list[Endpoint]:
    w = s.world
    lon, lat = s.a_lonlat
    tip = _tip_id(s)
    subscription = {
        "agency": w.x,
        "channel": "email",
        "contact": "resident@example.org",
        "pin": {"type": "Point", "coordinates": [lon, lat]},
        "radius_m": 300,
        "categories": ["crime"],
        "language": "en",
    }
    drawn = {k: v for k, v in subscription.items() if k not in ("pin", "radius_m")}
    drawn["area"] = polygon(lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001)
    alert = {
        "title": "Road closed",
        "message": "Main Street is closed.",
        "category": "traffic",
        "area": polygon(lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001),
        "expires_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
    }
    policy = {
        "tip_media_max_bytes": 1_048_576,
        "tip_media_types": ["image/jpeg"],
        "tip_max_files": 2,
        "tip_retention_days": 30,
        "alert_max_radius_m": 1000,
    }
    inv, sup, admin = s.agent("investigator"), s.agent("supervisor"), s.agent("agency_admin")
    tips = f"/v1/agencies/{w.x}/tips"
    return [
        Endpoint(
            "community POST /v1/subscriptions",
            "community_api",
            "POST",
            "/v1/subscriptions",
            {},
            body=subscription,
            points=["/pin"],
            strings=["/agency", "/channel", "/contact", "/categories/0", "/language"],
            numbers=["/radius_m"],
            required=["/agency", "/channel", "/contact", "/categories", "/pin"],
            heavy=True,
        ),
        Endpoint(
            "community POST /v1/subscriptions (area)",
            "community_api",
            "POST",
            "/v1/subscriptions",
            {},
            body=drawn,
            areas=["/area"],
            required=["/area"],
        ),
        Endpoint(
            "community POST /v1/subscriptions/{id}/confirm",
            "community_api",
            "POST",
            f"/v1/subscriptions/{uuid.uuid4()}/confirm",
            {},
            body={"code": "123456"},
            strings=["/code"],
            required=["/code"],
        ),
        Endpoint(
            "community PATCH /v1/subscriptions/mine",
            "community_api",
            "PATCH",
            "/v1/subscriptions/mine",
            {"X-Subscription-Token": "cvs_not-a-token"},
            body={"language": "es", "categories": ["crime"]},
            strings=["/language", "/categories/0"],
        ),
        Endpoint(
            "community POST /v1/subscriptions/unsubscribe",
            "community_api",
            "POST",
            "/v1/subscriptions/unsubscribe",
            {},
            body={"token": "0" * 32 + "." + "0" * 32},
            strings=["/token"],
            required=["/token"],
        ),
        Endpoint(
            "community POST /v1/agencies/{slug}/alerts",
            "community_api",
            "POST",
            f"/v1/agencies/{w.x}/alerts",
            sup,
            body=alert,
            areas=["/area"],
            strings=["/category"],
            texts=["/title", "/message"],
            instants=["/expires_at"],
            required=["/title", "/message", "/category", "/area", "/expires_at"],
        ),
        Endpoint(
            "community PUT /v1/agencies/{slug}/community-policy",
            "community_api",
            "PUT",
            f"/v1/agencies/{w.x}/community-policy",
            admin,
            body=policy,
            strings=["/tip_media_types/0"],
            numbers=["/tip_media_max_bytes", "/tip_max_files", "/tip_retention_days", "/alert_max_radius_m"],
            required=["/tip_media_max_bytes", "/tip_media_types", "/tip_max_files"],
        ),
        Endpoint(
            "community POST /v1/agencies/{slug}/tips/{id}/transitions",
            "community_api",
            "POST",
            f"{tips}/{tip}/transitions",
            inv,
            body={"action": "review"},
            strings=["/action"],
            required=["/action"],
        ),
        Endpoint(
            "community POST /v1/agencies/{slug}/tips/{id}/replies",
            "community_api",
            "POST",
            f"{tips}/{tip}/replies",
            inv,
            body={"message": "Thank you."},
            texts=["/message"],
            required=["/message"],
        ),
        Endpoint(
            "community PUT /v1/agencies/{slug}/tips/{id}/legal-hold",
            "community_api",
            "PUT",
            f"{tips}/{tip}/legal-hold",
            sup,
            body={"hold": True},
            strings=["/hold"],
            required=["/hold"],
        ),
        Endpoint(
            "community GET /v1/agencies/{slug}/tips",
            "community_api",
            "GET",
            tips,
            inv,
            query={"limit": 5},
            query_numbers=["limit"],
            query_strings=["state", "cursor"],
            cursor_instant=True,
            unknown_query_refused=True,
        ),
    ]


def _part(name: str, value: bytes, filename: str | None = None, content_type: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--b\r\nContent-Disposition: {disposition}\r\n" + (
        f"Content-Type: {content_type}\r\n" if content_type else ""
    )
    return head.encode() + b"\r\n" + value + b"\r\n"


def tip_form_cases(s: Scene) -> list[Case]:
    ep = Endpoint("community POST /v1/tips", "community_api", "POST", "/v1/tips", {})
    agency = _part("agency", s.world.x.encode())
    text = _part("text", b"Seen it.")
    end = b"--b--\r\n"
    multipart = "multipart/form-data; boundary=b"

    def form(*parts: bytes) -> dict[str, Any]:
        return {"content": b"".join(parts) + end, "content_type": multipart}

    return [
        ep.case(
            "JSON for multipart", content=b'{"agency": "x", "text": "y"}', content_type="application/json"
        ),
        ep.case(
            "urlencoded for multipart",
            content=b"agency=x&text=y",
            content_type="application/x-www-form-urlencoded",
        ),
        ep.case("no content type", content=b"agency=x", content_type=None),
        ep.case("multipart without a boundary", content=agency + text, content_type="multipart/form-data"),
        ep.case("garbage multipart", content=b"\xff\xfe--b--", content_type=multipart),
        ep.case("cut short", content=agency + text[:10], content_type=multipart),
        ep.case("no text", **form(agency)),
        ep.case("blank text", **form(agency, _part("text", b"   "))),
        ep.case("text with a NUL", **form(agency, _part("text", b"a\x00b"))),
        ep.case("text of invalid UTF-8", **form(agency, _part("text", b"\xff\xfe\xc0\xaf"))),
        ep.case("text of 10,001 characters", **form(agency, _part("text", b"x" * 10_001))),
        ep.case("text twice", **form(agency, text, text)),
        ep.case("agency an injection", **form(_part("agency", b"'; DROP TABLE community.tips; --"), text)),
        ep.case("unknown field", **form(agency, text, _part("is_admin", b"true"))),
        ep.case("lon without lat", **form(agency, text, _part("lon", b"-87.9"))),
        ep.case("lon NaN", **form(agency, text, _part("lon", b"NaN"), _part("lat", b"43"))),
        ep.case("lat 1e999", **form(agency, text, _part("lon", b"-87.9"), _part("lat", b"1e999"))),
        ep.case("lat 95", **form(agency, text, _part("lon", b"-87.9"), _part("lat", b"95"))),
        ep.case("occurred_at a date", **form(agency, text, _part("occurred_at", b"2026-11-20"))),
        ep.case(
            "occurred_at at the calendar's edge",
            **form(agency, text, _part("occurred_at", b"0001-01-01T00:00:00+14:00")),
        ),
        ep.case("media a text field", **form(agency, text, _part("media", b"not a file"))),
        ep.case(
            "media of an uncleanable type",
            **form(agency, text, _part("media", b"MZ\x90\x00", "a.exe", "application/x-msdownload")),
        ),
        ep.case(
            "media a fake JPEG",
            **form(agency, text, _part("media", b"<script>alert(1)</script>", "a.jpg", "image/jpeg")),
        ),
        ep.case(
            "media a fake MP4",
            **form(agency, text, _part("media", b"\x00\x00\x00\x18ftypmp42", "a.mp4", "video/mp4")),
        ),
        ep.case("media empty", **form(agency, text, _part("media", b"", "a.png", "image/png"))),
        ep.case(
            "media 11 files",
            **form(agency, text, *[_part("media", b"x", f"{i}.png", "image/png") for i in range(11)]),
        ),
    ]
