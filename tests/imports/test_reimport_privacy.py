"""A re-import updates what the integrator keeps and never what the owner controls: live sharing (each camera's
live mode and endpoint), the agencies the owner shares with, the registration's status and credential, and the
cameras there are (an import adds cameras, never removes one). An import never turns live sharing on."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import httpx

from services.registry_api.sealing import camera_context
from shared.crypto import keyring
from tests.conftest import Token
from tests.imports.conftest import NO_EMAIL, Importer, collection, feature, report
from tests.registry.conftest import NewAgency

INTEGRATOR_ENDPOINT = "rtsps://integrator.example.net/feed"
OWNER_ENDPOINT = "rtsps://owner.example.net:322/front"


def registration(at: list[float], directions: list[int], **props: Any) -> dict[str, Any]:
    cams = [
        {"direction_deg": d, "live_mode": "emergency", "live_endpoint": INTEGRATOR_ENDPOINT}
        for d in directions
    ]
    return feature(at[0], at[1], "shop-1", owner_kind="business", cameras=cams, **{**NO_EMAIL, **props})


def cameras(db: Any, rid: str) -> list[Any]:
    return db.fetch(
        "SELECT id, direction_deg, live_mode, live_endpoint_enc, shares_history, visible_to FROM registry.cameras"
        " WHERE registration_id = $1 ORDER BY created_at, id",
        uuid.UUID(rid),
    )


def test_an_import_never_turns_live_sharing_on(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, db: Any, auth: Token
) -> None:
    a = new_agency()
    job = run_import(a, collection([registration(a.inside(), [10, 20])]), credentials="report")
    assert job["status"] == "succeeded" and job["counts"]["created"] == 1, job
    rid = report(registry, auth, a, job)["credentials"][0]["registration_id"]
    cams = cameras(db, rid)
    assert [c["direction_deg"] for c in cams] == [10, 20]
    assert all(c["live_mode"] == "never" and c["live_endpoint_enc"] is None for c in cams)


def test_a_reimport_keeps_the_owners_live_mode_endpoint_shares_and_status(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, db: Any, auth: Token
) -> None:
    a, b = new_agency(), new_agency()
    at = a.inside()
    job = run_import(a, collection([registration(at, [10, 20], business_name="Shop")]), credentials="report")
    cred = report(registry, auth, a, job)["credentials"][0]
    rid = cred["registration_id"]
    owner = {"Authorization": f"Bearer {cred['credential']}"}
    first, second = (c["id"] for c in cameras(db, rid))

    # The owner turns live sharing on for the first camera, keeps the second's footage private, shares with
    # another agency, and pauses.
    def patch(path: str, body: dict[str, Any]) -> None:
        etag = registry.get(f"/v1/registrations/{rid}", headers=owner).headers["etag"]
        r = registry.patch(path, json=body, headers={**owner, "If-Match": etag})
        assert r.status_code == 200, r.text

    patch(
        f"/v1/registrations/{rid}/cameras/{first}", {"live_mode": "on_alert", "live_endpoint": OWNER_ENDPOINT}
    )
    patch(f"/v1/registrations/{rid}/cameras/{second}", {"shares_history": False})
    patch(f"/v1/registrations/{rid}", {"share_with": [b.slug]})

    # The nightly sync: new physical details, another business name, cameras claiming other live modes, no
    # further shares, and a third camera.
    again = registration(at, [30, 40, 50], business_name="Shop Two", share_with=[])
    again["properties"]["cameras"][0]["live_mode"] = "never"
    job2 = run_import(a, collection([again]), credentials="report")
    assert job2["status"] == "succeeded" and job2["counts"]["updated"] == 1, job2

    after = cameras(db, rid)
    assert [c["id"] for c in after[:2]] == [first, second]  # matched by position, not replaced
    assert [c["direction_deg"] for c in after] == [30, 40, 50]  # what the integrator keeps is updated
    assert after[0]["live_mode"] == "on_alert"
    assert keyring().open(after[0]["live_endpoint_enc"], camera_context(first)) == OWNER_ENDPOINT
    assert after[1]["shares_history"] is False
    assert after[1]["live_mode"] == after[2]["live_mode"] == "never"
    assert after[1]["live_endpoint_enc"] is None and after[2]["live_endpoint_enc"] is None
    shares = sorted(
        r["agency_id"]
        for r in db.fetch(
            "SELECT agency_id FROM registry.registration_shares WHERE registration_id = $1", uuid.UUID(rid)
        )
    )
    assert shares == sorted([uuid.UUID(a.id), uuid.UUID(b.id)])
    assert all(c["visible_to"] == shares for c in after)  # the new camera too

    r = registry.get(f"/v1/registrations/{rid}", headers=owner)  # the credential still works
    assert r.status_code == 200
    props = r.json()["properties"]
    assert props["business_name"] == "Shop Two" and props["status"] == "active"
    assert sorted(props["shared_with"]) == sorted([a.slug, b.slug])

    # Paused by the owner: a re-import leaves it paused and its cameras hidden, and keeps the third camera.
    patch(f"/v1/registrations/{rid}", {"status": "paused"})
    job3 = run_import(a, collection([registration(at, [60, 70])]))
    assert job3["status"] == "succeeded" and job3["counts"]["updated"] == 1, job3
    final = cameras(db, rid)
    assert [c["id"] for c in final] == [c["id"] for c in after]
    assert [c["direction_deg"] for c in final] == [60, 70, 50]
    assert final[0]["live_mode"] == "on_alert" and all(c["visible_to"] == [] for c in final)
    assert db.fetchval("SELECT status FROM registry.registrations WHERE id = $1", uuid.UUID(rid)) == "paused"


def _imported_with_owner_cameras(
    registry: httpx.Client,
    a: Any,
    at: list[float],
    run_import: Importer,
    auth: Token,
    added: list[dict[str, Any]],
) -> tuple[str, dict[str, str]]:
    """A registration imported at `at` with one camera, to which its owner then added `added`: its id, the
    owner's credential header."""
    job = run_import(a, collection([registration(at, [10])]))
    cred = report(registry, auth, a, job)["credentials"][0]
    rid = cred["registration_id"]
    owner = {"Authorization": f"Bearer {cred['credential']}"}
    for camera in added:
        r = registry.post(f"/v1/registrations/{rid}/cameras", json=camera, headers=owner)
        assert r.status_code == 201, r.text
    return rid, owner


def test_a_reimport_never_removes_a_camera_the_owner_added(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, db: Any, auth: Token
) -> None:
    a = new_agency()
    at = a.inside()
    rid, owner = _imported_with_owner_cameras(
        registry, a, at, run_import, auth, [{"label": "garage"}, {"label": "back door"}]
    )
    before = cameras(db, rid)
    assert len(before) == 3

    # The nightly sync still lists the one camera it knows of: it is updated, the owner's two stay.
    job2 = run_import(a, collection([registration(at, [90])]))
    assert job2["status"] == "succeeded" and job2["counts"]["updated"] == 1, job2
    after = db.fetch(
        "SELECT id, direction_deg, label FROM registry.cameras WHERE registration_id = $1 ORDER BY created_at, id",
        uuid.UUID(rid),
    )
    assert [c["id"] for c in after] == [c["id"] for c in before]
    assert [(c["direction_deg"], c["label"]) for c in after] == [
        (90, None),
        (None, "garage"),
        (None, "back door"),
    ]
    r = registry.get(f"/v1/registrations/{rid}", headers=owner)
    assert r.status_code == 200 and len(r.json()["properties"]["cameras"]) == 3


def test_a_reimport_listing_more_cameras_adds_them_and_leaves_the_owners_alone(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, db: Any, auth: Token
) -> None:
    a = new_agency()
    at = a.inside()
    rid, _ = _imported_with_owner_cameras(
        registry, a, at, run_import, auth, [{"label": "garage", "direction_deg": 200}]
    )

    # The integrator's next file knows of two cameras: its first is updated, its second is new; the camera the
    # owner added is not the integrator's second camera and keeps its own description.
    job2 = run_import(a, collection([registration(at, [20, 30])]))
    assert job2["status"] == "succeeded", job2
    rows = db.fetch(
        "SELECT direction_deg, label, import_position FROM registry.cameras WHERE registration_id = $1"
        " ORDER BY created_at, id",
        uuid.UUID(rid),
    )
    assert [(c["direction_deg"], c["label"], c["import_position"]) for c in rows] == [
        (20, None, 0),
        (200, "garage", None),
        (30, None, 1),
    ]
    # And again: nothing is duplicated, the owner's camera still untouched.
    job3 = run_import(a, collection([registration(at, [40, 50])]))
    assert job3["status"] == "succeeded", job3
    rows = db.fetch(
        "SELECT direction_deg, label FROM registry.cameras WHERE registration_id = $1 ORDER BY created_at, id",
        uuid.UUID(rid),
    )
    assert [(c["direction_deg"], c["label"]) for c in rows] == [(40, None), (200, "garage"), (50, None)]


def _delete(registry: httpx.Client, rid: str, owner: dict[str, str]) -> None:
    r = registry.delete(f"/v1/registrations/{rid}", headers=owner)
    assert r.status_code == 204, r.text


def test_an_owner_who_deleted_an_imported_registration_is_not_registered_again(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, db: Any, auth: Token
) -> None:
    a, b = new_agency(), new_agency()
    shop, home = a.inside(), a.inside(0.01, 0.01)
    listed = [registration(shop, [10]), {**feature(home[0], home[1], "home-1", **NO_EMAIL)}]
    job = run_import(a, collection(listed), credentials="report")
    assert job["status"] == "succeeded" and job["counts"]["created"] == 2, job
    creds = {c["external_id"]: c for c in report(registry, auth, a, job)["credentials"]}
    rid = creds["shop-1"]["registration_id"]
    _delete(registry, rid, {"Authorization": f"Bearer {creds['shop-1']['credential']}"})

    # What is kept of it names neither the registration's external id nor anything of its owner.
    tombstones = db.fetch("SELECT agency_id, external_id_index FROM registry.import_tombstones")
    mine = [t for t in tombstones if str(t["agency_id"]) == a.id]
    assert len(mine) == 1
    kept = bytes(mine[0]["external_id_index"])
    # Keyed by the deployment's key: not a plain hash anyone could recompute from a guessed id.
    assert kept == keyring().exact_index("shop-1", f"import-tombstone:{a.id}")
    assert kept != hashlib.sha256(b"shop-1").digest() and b"shop-1" not in kept

    # The nightly sync lists the shop again. All-or-nothing (the default): nothing is written, and why is said.
    job2 = run_import(a, collection(listed))
    assert job2["status"] == "failed" and job2["counts"]["rejected"] == 1, job2
    rejected = report(registry, auth, a, job2)["rejected"]
    assert [(r["external_id"], r["pointer"]) for r in rejected] == [("shop-1", "/properties/external_id")]
    assert "deleted it" in rejected[0]["reason"] and "remove it from your list" in rejected[0]["reason"]

    # Accept-the-valid: the others are updated, the owner who deleted is not registered again.
    job3 = run_import(a, collection(listed), mode="valid")
    assert job3["status"] == "succeeded", job3
    assert (
        job3["counts"]["updated"] == 1 and job3["counts"]["created"] == 0 and job3["counts"]["rejected"] == 1
    )
    ids = db.fetch("SELECT external_id FROM registry.registrations WHERE agency_id = $1", uuid.UUID(a.id))
    assert [r["external_id"] for r in ids] == ["home-1"]

    # Listed twice in one upload: both rows are refused (the second is a duplicate too), neither registers.
    twice = run_import(a, collection([*listed, registration(shop, [20])]), mode="valid")
    assert twice["status"] == "succeeded" and twice["counts"]["created"] == 0, twice
    reasons = [(r["index"], r["reason"]) for r in report(registry, auth, a, twice)["rejected"]]
    assert {i for i, why in reasons if "deleted it" in why} == {0, 2}, reasons
    ids = db.fetch("SELECT external_id FROM registry.registrations WHERE agency_id = $1", uuid.UUID(a.id))
    assert [r["external_id"] for r in ids] == ["home-1"]

    # Only that agency's list and that exact id: another agency may import its own 'shop-1', and 'Shop-1' is
    # another id.
    other = run_import(b, collection([registration(b.inside(), [10])]))
    assert other["status"] == "succeeded" and other["counts"]["created"] == 1, other
    cased = run_import(a, collection([feature(shop[0], shop[1], "Shop-1", **NO_EMAIL)]))
    assert cased["status"] == "succeeded" and cased["counts"]["created"] == 1, cased


def test_a_reimport_does_not_add_back_a_camera_the_owner_removed(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, db: Any, auth: Token
) -> None:
    a = new_agency()
    at = a.inside()
    job = run_import(a, collection([registration(at, [10, 20, 30])]), credentials="report")
    cred = report(registry, auth, a, job)["credentials"][0]
    rid = cred["registration_id"]
    owner = {"Authorization": f"Bearer {cred['credential']}"}
    first, second, third = (c["id"] for c in cameras(db, rid))
    etag = registry.get(f"/v1/registrations/{rid}", headers=owner).headers["etag"]
    r = registry.delete(f"/v1/registrations/{rid}/cameras/{second}", headers={**owner, "If-Match": etag})
    assert r.status_code == 200, r.text

    # The integrator's list still has three cameras (and then a fourth): the first and third are updated, the
    # second stays removed, the fourth is new.
    for directions, expected in (([11, 21, 31], [11, 31]), ([12, 22, 32, 42], [12, 32, 42])):
        job2 = run_import(a, collection([registration(at, directions)]))
        assert job2["status"] == "succeeded" and job2["counts"]["updated"] == 1, job2
        after = cameras(db, rid)
        assert [c["direction_deg"] for c in after] == expected
        assert [c["id"] for c in after[:2]] == [first, third]
    positions = db.fetchval(
        "SELECT removed_import_positions FROM registry.registrations WHERE id = $1", uuid.UUID(rid)
    )
    assert positions == [1]
