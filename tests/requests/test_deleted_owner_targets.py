"""An owner who deletes their registration leaves no trace of their cameras in the footage requests that asked them:
the requests worker, reading registry_api's feed of deletions, erases from each of their targets which cameras
were asked, how far each stood from the incident, when each recorder overwrites and along a route when the path
passed them, and from their uploads which camera recorded them; the messages written to them are emptied, and a
create's answer replayed for its Idempotency-Key shows their targets as the request now does. The
request reads the same otherwise: its state, every count (cameras included), which owners it lists, and the
footage with its chain of custody. Whether a deleted owner had declined, ignored or answered stays as silent as
before: their target keeps its state, and nothing shown tells a deleted owner's target from another's."""

from __future__ import annotations

import importlib.util
import uuid
from types import ModuleType
from typing import Any

import httpx

from tests.requests.conftest import OFFSET, Flow, NewOwner, Owner, eventually, request_body
from tests.support import ROOT, Db


def _delete_all(registry: httpx.Client, db: Db, owners: list[Owner]) -> None:
    """Each owner deletes their registration; back once the worker beside the services has read every deletion."""
    for owner in owners:
        r = registry.delete(f"/v1/registrations/{owner.registration_id}", headers=owner.headers)
        assert r.status_code == 204, r.text
    last = max(
        int(db.fetchval("SELECT seq FROM registry.deletions WHERE registration_id = $1", o.registration_id))
        for o in owners
    )
    assert eventually(
        lambda: (
            (db.fetchval("SELECT position FROM requests.feeds WHERE name = 'registry.deletions'") or 0)
            >= last
        ),
        timeout=30,
    ), "the worker read the deletions"
    # A message to them still pending then is tried once more, and emptied as it proves undeliverable.
    assert eventually(
        lambda: (
            not db.fetchval(
                "SELECT count(*) FROM requests.outbox WHERE registration_id = ANY($1::uuid[]) AND status = 'pending'",
                [o.registration_id for o in owners],
            )
        ),
        timeout=30,
    ), "the messages to them are settled"


def _answer(flow: Flow, rid: str, owner: Owner, answer: str) -> None:
    r = flow.client.post(f"/v1/owner/requests/{rid}/answer", json={"answer": answer}, headers=owner.headers)
    assert r.status_code == 200, r.text


def _agency_reads(flow: Flow, rid: str, evidence_id: str) -> dict[str, dict[str, Any]]:
    """Everything the agency can read of the request, route by route."""
    reads = {
        "request": f"/v1/requests/{rid}",
        "list": "/v1/requests",
        "events": f"/v1/requests/{rid}/events",
        "evidence": f"/v1/requests/{rid}/evidence",
        "item": f"/v1/evidence/{evidence_id}",
        "custody": f"/v1/evidence/{evidence_id}/custody",
    }
    out = {}
    for name, path in reads.items():
        r = flow.client.get(path, headers=flow.inv())
        assert r.status_code == 200, (path, r.text)
        out[name] = r.json()
    return out


def _rows_naming(db: Db, needle: str) -> list[str]:
    """Every table row, in every schema but the audit trail's, whose text holds `needle`: `schema.table` each."""
    tables = db.fetch(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition"
        " AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'audit', 'tiger', 'topology')"
        " AND n.nspname NOT LIKE 'pg_%'"
    )
    return [
        f"{t['nspname']}.{t['relname']}"
        for t in tables
        if db.fetchval(
            f'SELECT count(*) FROM "{t["nspname"]}"."{t["relname"]}" x WHERE x::text LIKE $1',  # noqa: S608 - names from the catalogue
            f"%{needle}%",
        )
    ]


def test_a_deleted_owners_targets_keep_no_camera_or_distance_and_the_request_reads_the_same(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, db: Db
) -> None:
    staying = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    unanswered = new_owner(flow.agency, flow.agency.near(dy=OFFSET), cameras=2)
    declined = new_owner(flow.agency, flow.agency.near(dx=-OFFSET))
    uploaded = new_owner(flow.agency, flow.agency.near(dy=-OFFSET))
    leaving = [unanswered, declined, uploaded]
    rid = flow.sent()["id"]
    _answer(flow, rid, staying, "accept")
    _answer(flow, rid, declined, "decline")
    _answer(flow, rid, uploaded, "accept")
    up = flow.client.post(
        f"/v1/owner/evidence/{rid}",
        files={"file": ("clip.mp4", b"v" * 512, "video/mp4")},
        data={"camera_id": uploaded.camera_ids[0]},
        headers=uploaded.headers,
    )
    assert up.status_code == 201, up.text
    evidence = up.json()
    before = _agency_reads(flow, rid, evidence["id"])
    shown = {t["registration_id"]: t for t in before["request"]["targets"]}
    assert set(shown) == {staying.registration_id, uploaded.registration_id}
    assert shown[uploaded.registration_id]["cameras"][0]["camera_id"] == uploaded.camera_ids[0]
    assert shown[uploaded.registration_id]["distance_m"] is not None
    assert before["item"]["camera_id"] == uploaded.camera_ids[0]
    assert before["request"]["summary"]["cameras"] == 5

    _delete_all(registry, db, leaving)

    after = _agency_reads(flow, rid, evidence["id"])
    req_b, req_a = before["request"], after["request"]
    # The request reads the same: its state, every count, the owners it lists, their states and times.
    assert req_a["summary"] == req_b["summary"]
    assert req_a["state"] == req_b["state"] == "sent" and req_a["version"] == req_b["version"]
    assert [t["id"] for t in req_a["targets"]] == [t["id"] for t in req_b["targets"]]
    erased_fields = ("cameras", "distance_m", "footage_until", "window")
    for b, a in zip(req_b["targets"], req_a["targets"], strict=True):
        if b["registration_id"] == staying.registration_id:
            assert a == b
        else:
            assert {k: v for k, v in a.items() if k not in erased_fields} == {
                k: v for k, v in b.items() if k not in erased_fields
            }
            assert a["cameras"] == [] and a["distance_m"] is None and a["footage_until"] is None
    assert after["list"] == before["list"] and after["events"] == before["events"]
    # The footage is the agency's evidence, unchanged, its chain of custody whole; which camera recorded it goes
    # with what the owner said of it.
    item_b, item_a = before["item"], after["item"]
    assert item_a["camera_id"] is None and item_a["sha256"] == item_b["sha256"] == evidence["sha256"]
    assert {k: v for k, v in item_a.items() if k not in ("camera_id", "filename", "description")} == {
        k: v for k, v in item_b.items() if k not in ("camera_id", "filename", "description")
    }
    assert after["custody"]["chain_intact"] is True
    assert after["custody"]["records"][: len(before["custody"]["records"])] == before["custody"]["records"]
    content = flow.client.get(f"/v1/evidence/{evidence['id']}/content", headers=flow.inv())
    assert content.status_code == 200 and content.content == b"v" * 512

    # No route the agency called, and no row of any table outside the audit trail, names their cameras.
    texts = str(after)
    for owner in leaving:
        for cam in owner.camera_ids:
            assert cam not in texts
            assert _rows_naming(db, cam) == [], cam
    for cam in staying.camera_ids:
        assert cam in texts, "the owner who stays is still listed with their camera"
    stored = db.fetch(
        "SELECT cameras, distance_m, footage_until, window_start, cameras_erased FROM requests.targets"
        " WHERE request_id = $1 AND registration_id = ANY($2::uuid[])",
        rid,
        [o.registration_id for o in leaving],
    )
    assert len(stored) == 3
    assert all(
        r["cameras"] == "[]"
        and r["distance_m"] is None
        and r["footage_until"] is None
        and r["window_start"] is None
        for r in stored
    )
    assert sorted(r["cameras_erased"] for r in stored) == [1, 1, 2]


def test_a_draft_whose_owner_deleted_lists_them_without_cameras_and_drops_them_when_sent(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, db: Db
) -> None:
    new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    leaving = new_owner(flow.agency, flow.agency.near(dy=OFFSET))
    rid = flow.create()["id"]
    drafted = flow.read(rid)
    assert drafted["summary"]["targets"] == 2 and drafted["summary"]["cameras"] == 2

    _delete_all(registry, db, [leaving])

    draft = flow.read(rid)
    assert draft["summary"] == drafted["summary"], "counted as drafted until it is sent"
    gone = next(t for t in draft["targets"] if t["registration_id"] == leaving.registration_id)
    assert gone["cameras"] == [] and gone["distance_m"] is None and gone["footage_until"] is None
    assert leaving.camera_ids[0] not in str(draft)
    assert flow.act(rid, "submit").status_code == 200
    sent = flow.act(rid, "approve")
    assert sent.status_code == 200, sent.text
    summary = sent.json()["summary"]
    assert summary["targets"] == 1 and summary["cameras"] == 1 and summary["dropped"] == 1
    assert summary["notified"] == 1


def test_a_replayed_create_shows_a_deleted_owners_target_as_the_request_does(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, db: Db
) -> None:
    staying = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    leaving = new_owner(flow.agency, flow.agency.near(dy=OFFSET))
    body = request_body(flow.agency)
    headers = {**flow.inv(), "Idempotency-Key": f"create-{uuid.uuid4()}"}
    first = flow.client.post("/v1/requests", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert leaving.camera_ids[0] in first.text

    _delete_all(registry, db, [leaving])

    replay = flow.client.post("/v1/requests", json=body, headers=headers)
    assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true", replay.text
    assert replay.json()["id"] == first.json()["id"], "still the same request: no duplicate"
    assert leaving.camera_ids[0] not in replay.text
    assert staying.camera_ids[0] in replay.text
    now = flow.read(first.json()["id"])
    assert replay.json()["targets"] == now["targets"]
    assert replay.json()["summary"] == first.json()["summary"] == now["summary"]


def test_the_planner_keeps_no_statistics_of_which_cameras_targets_asked_or_how_far(db: Db) -> None:
    db.execute("ANALYZE requests.targets")
    kept = db.fetch(
        "SELECT attname FROM pg_stats WHERE schemaname = 'requests' AND tablename = 'targets'"
        " AND attname IN ('cameras', 'distance_m')"
    )
    assert kept == []
    targets = db.fetch(
        "SELECT attname, attstattarget FROM pg_attribute"
        " WHERE attrelid = 'requests.targets'::regclass AND attname IN ('cameras', 'distance_m')"
    )
    assert {r["attname"]: r["attstattarget"] for r in targets} == {"cameras": 0, "distance_m": 0}


def _migration(name: str) -> ModuleType:
    path = ROOT / "migrations" / "versions" / name
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_owner_deleted_before_targets_were_erased_is_forgotten_once_upgraded(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, db: Db
) -> None:
    """An owner whose deletion the worker read before it erased targets (before 0036): the upgrade has the worker
    read the feed again, and their target forgets its cameras as a target of an owner deleting today does."""
    leaving = new_owner(flow.agency, flow.agency.near(dy=OFFSET), cameras=2)
    rid = flow.sent()["id"]
    (kept,) = db.fetch(
        "SELECT cameras::text AS cameras, distance_m, footage_until, window_start, window_end FROM requests.targets"
        " WHERE request_id = $1 AND registration_id = $2",
        rid,
        leaving.registration_id,
    )
    assert all(cam in kept["cameras"] for cam in leaving.camera_ids)
    _delete_all(registry, db, [leaving])
    # The target as the worker of before 0036 left it, its deletion read all the same.
    db.execute(
        "UPDATE requests.targets SET cameras = $3::jsonb, distance_m = $4, footage_until = $5, window_start = $6,"
        " window_end = $7, cameras_erased = 0 WHERE request_id = $1 AND registration_id = $2",
        rid,
        leaving.registration_id,
        kept["cameras"],
        kept["distance_m"],
        kept["footage_until"],
        kept["window_start"],
        kept["window_end"],
    )

    db.execute(_migration("20261206_0037_deleted_owners_read_again.py").READ_AGAIN_SQL)

    def erased() -> bool:
        (row,) = db.fetch(
            "SELECT cameras::text AS cameras, distance_m, cameras_erased FROM requests.targets"
            " WHERE request_id = $1 AND registration_id = $2",
            rid,
            leaving.registration_id,
        )
        return row["cameras"] == "[]" and row["distance_m"] is None and row["cameras_erased"] == 2

    assert eventually(erased, timeout=30), "the worker read the deletion again and erased the target"
    shown = flow.read(rid)
    assert not any(cam in str(shown) for cam in leaving.camera_ids)
