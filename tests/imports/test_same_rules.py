"""One definition of a valid registration: a single registration (`POST /v1/registrations`) and a bulk import
refuse the same corpus of bad features for the same reasons — the import whether the feature says its members
as a registration's body does (nested: the models decide) or flat (the import's fast path looks first)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import httpx

from tests.conftest import Token
from tests.imports.conftest import Importer, collection, report
from tests.registry.conftest import NewAgency, point

LONG = "x" * 5000
# Each case: what a registration's body holds besides its agency, location and a valid contact email. Every one
# breaks one limit or value rule of validation.py / schemas.py, most just past the bound the fast path checks.
CORPUS: dict[str, dict[str, Any]] = {
    "business-name-long": {"business_name": LONG[:201]},
    "business-name-nul": {"business_name": "Corner\x00Shop"},
    "address-long": {"address": LONG[:301]},
    "notes-long": {"notes_for_investigators": LONG[:2001]},
    "owner-kind": {"owner_kind": "castle"},
    "share-with-many": {"share_with": [f"agency-{i}" for i in range(21)]},
    "contact-name-long": {"contact": {"name": LONG[:201]}},
    "contact-hours-long": {"contact": {"hours": LONG[:201]}},
    "contact-email": {"contact": {"email": "dana@@example.org"}},
    "contact-email-long": {"contact": {"email": "d" * 250 + "@example.org"}},
    "contact-phone": {"contact": {"email": None, "phone": "12"}},
    "contact-none": {"contact": {"email": None, "name": "Dana"}},
    "contact-method": {"contact": {"preferred_method": "pigeon"}},
    "terms-version-empty": {"terms": {"version": ""}},
    "terms-version-long": {"terms": {"version": LONG[:41]}},
    "terms-naive-time": {"terms": {"version": "2026-01", "accepted_at": "2026-01-05T14:00:00"}},
    "label-long": {"cameras": [{"label": LONG[:101]}]},
    "schedule-long": {"cameras": [{"schedule": LONG[:201]}]},
    "direction-high": {"cameras": [{"direction_deg": 360}]},
    "direction-low": {"cameras": [{"direction_deg": -1}]},
    "direction-text": {"cameras": [{"direction_deg": "90"}]},
    "fov-zero": {"cameras": [{"fov_deg": 0}]},
    "fov-high": {"cameras": [{"fov_deg": 361}]},
    "retention-high": {"cameras": [{"retention_days": 3651}]},
    "range-zero": {"cameras": [{"range_m": 0}]},
    "range-high": {"cameras": [{"range_m": 1000.5}]},
    "covers-many": {"cameras": [{"covers": ["street"] * 13}]},
    "cover-empty": {"cameras": [{"covers": [""]}]},
    "cover-long": {"cameras": [{"covers": [LONG[:61]]}]},
    "placement": {"cameras": [{"placement": "roof"}]},
    "recording": {"cameras": [{"recording": "always"}]},
    "shares-history-number": {"cameras": [{"shares_history": 1}]},
    "live-mode": {"cameras": [{"live_mode": "always"}]},
    "live-endpoint": {"cameras": [{"live_endpoint": "ftp://cam.example.net/1"}]},
    "cameras-none": {"cameras": []},
    "cameras-many": {"cameras": [{}] * 51},
}
FLAT_CONTACT = {
    "name": "contact_name",
    "email": "contact_email",
    "phone": "contact_phone",
    "hours": "contact_hours",
    "preferred_method": "contact_preferred_method",
}


def body_of(case: dict[str, Any], slug: str, position: list[float]) -> dict[str, Any]:
    """A single registration's body: valid but for the case."""
    contact = {"email": "dana@example.org", **case.get("contact", {})}
    body = {"agency": slug, "location": point(position), **case, "contact": contact}
    body["contact"] = {k: v for k, v in contact.items() if v is not None}
    return body


def nested(body: dict[str, Any], external_id: str) -> dict[str, Any]:
    """The body as an imported feature says it: the members as they are, the location as the geometry."""
    props = {k: v for k, v in body.items() if k not in ("agency", "location")}
    return {
        "type": "Feature",
        "geometry": body["location"],
        "properties": {"external_id": external_id, **props},
    }


def flat(body: dict[str, Any], external_id: str) -> dict[str, Any] | None:
    """The body as flat properties (contact, terms and one camera's members), or None when it cannot be."""
    cameras = body.get("cameras")
    if cameras is not None and len(cameras) != 1:
        return None
    props: dict[str, Any] = {"external_id": external_id}
    for k, v in body.items():
        if k == "contact":
            props.update({FLAT_CONTACT[m]: x for m, x in v.items()})
        elif k == "terms":
            props.update({f"terms_{m}": x for m, x in v.items()})
        elif k == "cameras":
            props.update(v[0])
        elif k not in ("agency", "location"):
            props[k] = v
    return {"type": "Feature", "geometry": body["location"], "properties": props}


def test_a_single_registration_and_an_import_refuse_the_same_bad_features_for_the_same_reasons(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, auth: Token
) -> None:
    a = new_agency()
    position = a.inside()
    single: dict[str, list[str]] = {}
    features = []
    for name, case in CORPUS.items():
        body = body_of(case, a.slug, position)
        r = registry.post("/v1/registrations", json=body)
        assert r.status_code == 422, (name, r.text)
        single[name] = sorted(e["reason"] for e in r.json()["errors"])
        features.append(nested(body, f"{name}.nested"))
        as_flat = flat(body, f"{name}.flat")
        if as_flat is not None:
            features.append(as_flat)

    job = run_import(a, collection(features), mode="valid", dry_run=True)
    assert job["status"] == "succeeded", job
    assert job["counts"]["rejected"] == len(features) and job["counts"]["valid"] == 0, job
    imported: dict[str, list[str]] = defaultdict(list)
    for rejection in report(registry, auth, a, job)["rejected"]:
        imported[rejection["external_id"]].append(rejection["reason"])

    for name, reasons in single.items():
        assert reasons, name  # each case is refused for a reason a person can read
        assert sorted(imported[f"{name}.nested"]) == reasons, name
        if f"{name}.flat" in {f["properties"]["external_id"] for f in features}:
            assert sorted(imported[f"{name}.flat"]) == reasons, name
    assert sum(1 for f in features if f["properties"]["external_id"].endswith(".flat")) >= 30
