"""community_api's rows of the authorization matrix (tests/contract/test_authorization_matrix.py), kept apart so
the services' tables stay easy to read and to merge.

The tipster's and the subscriber's credentials (the tip code, the manage token) are of no caller kind of the
matrix: their operations are checked here without them (no bearer token of any kind stands in: 401), and with
them in tests/community. The SMS provider's webhook takes only the provider's signature (403 without it)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.contract import test_authorization_matrix as m
from tests.contract.conftest import polygon

SERVICE = "community_api"


def _form(**fields: str) -> dict[str, Any]:
    return {name: (None, value) for name, value in fields.items()}


def _tip(ctx: m.Ctx) -> dict[str, str]:
    """A tip to X with a photo: its id, its code and its media's id."""
    import io

    from PIL import Image

    photo = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(photo, "JPEG")
    r = ctx.scene.community_client.post(
        "/v1/tips",
        files={
            **_form(agency=ctx.x, text="A tip for the matrix."),
            "media": ("p.jpg", photo.getvalue(), "image/jpeg"),
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return {"id": body["id"], "code": body["code"], "media": body["media"][0]["id"]}


def _shared_tip(ctx: m.Ctx) -> dict[str, str]:
    return ctx.probe("community tip", lambda: _tip(ctx))  # type: ignore[no-any-return]


def _alert_body(ctx: m.Ctx) -> dict[str, Any]:
    lon, lat = ctx.scene.a_lonlat
    return {
        "title": "Road closed",
        "message": "Main Street is closed for a parade.",
        "category": "traffic",
        "area": polygon(lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001),
        "expires_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
    }


def _alert(ctx: m.Ctx) -> str:
    def make() -> str:
        r = ctx.scene.community_client.post(
            f"/v1/agencies/{ctx.x}/alerts", json=_alert_body(ctx), headers=ctx.scene.agent("supervisor")
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    return ctx.probe("community alert", make)  # type: ignore[no-any-return]


def _subscription(ctx: m.Ctx) -> dict[str, Any]:
    lon, lat = ctx.scene.a_lonlat
    return {
        "agency": ctx.x,
        "channel": "email",
        "contact": f"resident-{uuid.uuid4().hex[:8]}@example.org",
        "pin": {"type": "Point", "coordinates": [lon, lat]},
        "radius_m": 200,
        "categories": ["traffic"],
    }


def entries() -> dict[str, m.Op]:
    tips = "/v1/agencies/{x}/tips"
    no_credential: dict[str, m.Outcome] = dict.fromkeys(m.CALLERS, 401)
    unsigned: dict[str, m.Outcome] = dict.fromkeys(m.CALLERS, 403)

    def tip_path(c: m.Ctx, suffix: str = "") -> str:
        return tips.format(x=c.x) + f"/{_shared_tip(c)['id']}{suffix}"

    def fresh_tip_path(c: m.Ctx, ok: bool, suffix: str) -> str:
        tip = _tip(c) if ok else _shared_tip(c)
        return tips.format(x=c.x) + f"/{tip['id']}{suffix}"

    return {
        "POST /v1/tips": m.Op(
            SERVICE,
            m.public(),
            lambda c, ok, who: m.Req("POST", "/v1/tips", files=_form(agency=c.x, text="Seen it.")),
        ),
        "GET /v1/tips/mine": m.Op(SERVICE, no_credential, lambda c, ok, who: m.Req("GET", "/v1/tips/mine")),
        "POST /v1/tips/mine/messages": m.Op(
            SERVICE,
            no_credential,
            lambda c, ok, who: m.Req("POST", "/v1/tips/mine/messages", files=_form(text="More.")),
        ),
        "GET /v1/agencies/{slug}/tips": m.Op(
            SERVICE, m.agency(*m.AGENCY_USER), lambda c, ok, who: m.Req("GET", tips.format(x=c.x))
        ),
        "GET /v1/agencies/{slug}/tips/{tip_id}": m.Op(
            SERVICE, m.agency(*m.AGENCY_USER), lambda c, ok, who: m.Req("GET", tip_path(c))
        ),
        "GET /v1/agencies/{slug}/tips/{tip_id}/media/{media_id}": m.Op(
            SERVICE,
            m.agency(*m.AGENCY_USER),
            lambda c, ok, who: m.Req("GET", tip_path(c, f"/media/{_shared_tip(c)['media']}")),
        ),
        "POST /v1/agencies/{slug}/tips/{tip_id}/transitions": m.Op(
            SERVICE,
            m.agency(*m.AGENCY_USER),
            lambda c, ok, who: m.Req(
                "POST", fresh_tip_path(c, ok, "/transitions"), json={"action": "review"}
            ),
        ),
        "POST /v1/agencies/{slug}/tips/{tip_id}/replies": m.Op(
            SERVICE,
            m.agency(*m.AGENCY_USER),
            lambda c, ok, who: m.Req("POST", tip_path(c, "/replies"), json={"message": "Thank you."}),
        ),
        "PUT /v1/agencies/{slug}/tips/{tip_id}/legal-hold": m.Op(
            SERVICE,
            m.agency("supervisor"),
            lambda c, ok, who: m.Req("PUT", tip_path(c, "/legal-hold"), json={"hold": False}),
        ),
        "GET /v1/agencies/{slug}/community-policy": m.Op(
            SERVICE, m.public(), lambda c, ok, who: m.Req("GET", f"/v1/agencies/{c.x}/community-policy")
        ),
        "PUT /v1/agencies/{slug}/community-policy": m.Op(
            SERVICE,
            m.agency("agency_admin"),
            lambda c, ok, who: m.Req(
                "PUT",
                f"/v1/agencies/{c.x}/community-policy",
                json={
                    "tip_media_max_bytes": 26_214_400,
                    "tip_media_types": ["image/jpeg", "image/png", "video/mp4"],
                    "tip_max_files": 5,
                    "tip_retention_days": 365,
                    "alert_max_radius_m": 2000,
                },
            ),
        ),
        "POST /v1/subscriptions": m.Op(
            SERVICE, m.public(), lambda c, ok, who: m.Req("POST", "/v1/subscriptions", json=_subscription(c))
        ),
        "POST /v1/subscriptions/{subscription_id}/confirm": m.Op(
            SERVICE,
            m.public(),
            # A made-up subscription: whoever calls, the answer is the same 404 (no credential decides it).
            lambda c, ok, who: m.Req(
                "POST", f"/v1/subscriptions/{uuid.uuid4()}/confirm", json={"code": "123456"}
            ),
            ok=frozenset({404}),
        ),
        "GET /v1/subscriptions/mine": m.Op(
            SERVICE, no_credential, lambda c, ok, who: m.Req("GET", "/v1/subscriptions/mine")
        ),
        "PATCH /v1/subscriptions/mine": m.Op(
            SERVICE,
            no_credential,
            lambda c, ok, who: m.Req("PATCH", "/v1/subscriptions/mine", json={"language": "es"}),
        ),
        "DELETE /v1/subscriptions/mine": m.Op(
            SERVICE, no_credential, lambda c, ok, who: m.Req("DELETE", "/v1/subscriptions/mine")
        ),
        "POST /v1/subscriptions/unsubscribe": m.Op(
            SERVICE,
            m.public(),
            # A token of the right form for a subscription that does not exist: ending nothing is a success.
            lambda c, ok, who: m.Req(
                "POST", "/v1/subscriptions/unsubscribe", json={"token": _unsubscribe_token()}
            ),
        ),
        "POST /v1/subscriptions/unsubscribe/one-click/{token}": m.Op(
            SERVICE,
            m.public(),
            # A token of the right form for a subscription that does not exist: ending nothing is a success.
            lambda c, ok, who: m.Req(
                "POST", f"/v1/subscriptions/unsubscribe/one-click/{_unsubscribe_token()}"
            ),
            ok=frozenset({204}),
        ),
        "GET /v1/subscriptions/channels": m.Op(
            SERVICE, m.public(), lambda c, ok, who: m.Req("GET", "/v1/subscriptions/channels")
        ),
        "POST /v1/sms/inbound": m.Op(
            SERVICE,
            unsigned,
            lambda c, ok, who: m.Req(
                "POST",
                "/v1/sms/inbound",
                content=b"From=%2B14145550123&Body=STOP",
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": "bm90IHNpZ25lZA==",
                },
            ),
        ),
        "POST /v1/agencies/{slug}/alerts": m.Op(
            SERVICE,
            m.agency("supervisor"),
            lambda c, ok, who: m.Req("POST", f"/v1/agencies/{c.x}/alerts", json=_alert_body(c)),
        ),
        "GET /v1/agencies/{slug}/alerts": m.Op(
            SERVICE, m.agency(*m.AGENCY_USER), lambda c, ok, who: m.Req("GET", f"/v1/agencies/{c.x}/alerts")
        ),
        "GET /v1/agencies/{slug}/alerts/{alert_id}": m.Op(
            SERVICE,
            m.agency(*m.AGENCY_USER),
            lambda c, ok, who: m.Req("GET", f"/v1/agencies/{c.x}/alerts/{_alert(c)}"),
        ),
        "GET /v1/alerts/{alert_id}": m.Op(
            SERVICE, m.public(), lambda c, ok, who: m.Req("GET", f"/v1/alerts/{_alert(c)}")
        ),
    }


def _unsubscribe_token() -> str:
    from services.community_api.alerts import unsubscribe_token

    return unsubscribe_token(uuid.uuid4())
