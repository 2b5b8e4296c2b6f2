"""The public transparency report: per agency and month, requests sent, owners contacted, owners who provided
footage and the median time to answer; anyone may read it; it carries no case number and no owner."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from tests.requests.conftest import OFFSET, Flow, NewOwner
from tests.support import Db


def test_the_transparency_report_counts_without_personal_data(
    flow: Flow, new_owner: NewOwner, db: Db
) -> None:
    a = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    b = new_owner(flow.agency, flow.agency.near(dy=OFFSET))
    first = flow.sent()
    second = flow.sent()
    flow.create()  # a draft is not counted: it was never sent
    c = flow.client
    assert (
        c.post(
            f"/v1/owner/requests/{first['id']}/answer", json={"answer": "accept"}, headers=a.headers
        ).status_code
        == 200
    )
    up = c.post(
        f"/v1/owner/evidence/{first['id']}",
        files={"file": ("a.mp4", b"a" * 10, "video/mp4")},
        headers=a.headers,
    )
    assert up.status_code == 201
    assert (
        c.post(
            f"/v1/owner/requests/{first['id']}/answer", json={"answer": "decline"}, headers=b.headers
        ).status_code
        == 200
    )
    # Answers 2 and 4 hours after notification: the median is 3 hours.
    db.execute(
        "UPDATE requests.targets SET notified_at = answered_at - CASE WHEN registration_id = $2 THEN interval '2 hours'"
        " ELSE interval '4 hours' END WHERE request_id = $1",
        first["id"],
        a.registration_id,
    )
    r = httpx.get(str(c.base_url) + f"/v1/transparency?agency={flow.agency.slug}")  # no token
    assert r.status_code == 200, r.text
    report = r.json()
    assert [x["agency"] for x in report["agencies"]] == [flow.agency.slug]
    (month,) = report["agencies"][0]["months"]
    assert month == {
        "month": datetime.now(UTC).strftime("%Y-%m"),
        "requests_sent": 2,
        "owners_contacted": 4,
        "owners_fulfilled": 1,
        "median_hours_to_answer": 3.0,
    }
    for secret in (
        first["case_number"],
        second["case_number"],
        a.registration_id,
        b.registration_id,
        a.email,
    ):
        assert secret not in r.text
    assert httpx.get(str(c.base_url) + "/v1/transparency?agency=NOT_A_SLUG").status_code == 422
