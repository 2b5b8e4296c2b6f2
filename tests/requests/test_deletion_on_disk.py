"""An owner's deletion reaches the database's own files as far as Canvass promises (docs/decisions/0001-deletion-
on-disk.md): after the owner deletes, no row of any table holds what they wrote, the planner's statistics never
held it (ANALYZE does not sample owner-written text), and the sealed fields (contact name, email, address; and the
owner's free texts: business name, hours, notes, answer note, evidence description and file name) were never
written in plain text anywhere under the cluster's data directory, write-ahead log included."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.requests.conftest import Flow, NewOwner, eventually
from tests.support import ROOT, Db

LOCAL_PORT = os.environ.get("CANVASS_PG_PORT", "54320")
TABLE_SCHEMAS = ("registry", "requests", "audit")


def _local_superuser(sql: str) -> str:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "localdb.sh"), "psql", "-At", "-c", sql],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def _on_local_cluster() -> bool:
    """The run's database is this checkout's own cluster (`make test` without DATABASE_URL), whose files the
    test may read; not a database elsewhere, nor another checkout's cluster."""
    url = os.environ.get("MIGRATIONS_DATABASE_URL") or os.environ.get("DATABASE_URL") or ""
    if url and f"127.0.0.1:{LOCAL_PORT}/" not in url:
        return False
    status = subprocess.run(
        ["bash", str(ROOT / "scripts" / "localdb.sh"), "status"], capture_output=True, check=False
    )
    return status.returncode == 0


def _rows_holding(db: Db, marker: str) -> list[str]:
    tables = db.fetch(
        "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY($1::text[])", list(TABLE_SCHEMAS)
    )
    found = []
    for t in tables:
        name = f'"{t["schemaname"]}"."{t["tablename"]}"'
        # The name comes from the catalog, quoted; the marker is a bound parameter.
        sql = f"SELECT count(*) FROM {name} AS t WHERE t::text LIKE '%' || $1 || '%'"  # noqa: S608
        if db.fetchval(sql, marker):
            found.append(name)
    return found


def _statistics_holding(db: Db, marker: str) -> list[str]:
    rows = db.fetch(
        """SELECT schemaname || '.' || tablename || '.' || attname AS col FROM pg_stats
           WHERE schemaname = ANY($1::text[])
             AND (coalesce(most_common_vals::text, '') || coalesce(histogram_bounds::text, '')
                  || coalesce(most_common_elems::text, '')) LIKE '%' || $2 || '%'""",
        list(TABLE_SCHEMAS),
        marker,
    )
    return [r["col"] for r in rows]


def _files_holding(roots: list[Path], needles: list[bytes]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file():
                continue
            try:
                data = path.read_bytes()
            except OSError:  # a file removed while the walk ran (a recycled WAL segment, a temp file)
                continue
            for n in needles:
                if n in data:
                    found.setdefault(n.decode(), []).append(str(path.relative_to(root.parent)))
    return found


@pytest.mark.skipif(not _on_local_cluster(), reason="reads the data directory of the project-local cluster")
def test_a_deleted_owner_leaves_no_marker_in_rows_or_statistics_and_sealed_fields_never_reach_the_disk(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, db: Db
) -> None:
    tag = uuid.uuid4().hex[:10]
    mark = {
        k: f"zq{k}{tag}"
        for k in (
            *("name", "email", "address", "business", "hours", "notes", "label", "schedule"),
            *("answer", "description", "filename"),
        )
    }
    owner = new_owner(
        flow.agency,
        flow.agency.centre,
        contact={"name": mark["name"], "email": f"{mark['email']}@example.org", "hours": mark["hours"]},
        address=f"12 {mark['address']} Street",
        owner_kind="business",
        business_name=mark["business"],
        notes_for_investigators=mark["notes"],
        cameras=1,
    )
    cam = owner.camera_ids[0]
    etag = registry.get(f"/v1/registrations/{owner.registration_id}", headers=owner.headers).headers["ETag"]
    r = registry.patch(
        f"/v1/registrations/{owner.registration_id}/cameras/{cam}",
        json={"label": mark["label"], "schedule": mark["schedule"]},
        headers={**owner.headers, "If-Match": etag},
    )
    assert r.status_code == 200, r.text

    rid = flow.sent()["id"]
    answered = flow.client.post(
        f"/v1/owner/requests/{rid}/answer",
        json={"answer": "accept", "note": mark["answer"]},
        headers=owner.headers,
    )
    assert answered.status_code == 200, answered.text
    up = flow.client.post(
        f"/v1/owner/evidence/{rid}",
        files={"file": (f"{mark['filename']}.mp4", b"v" * 512, "video/mp4")},
        data={"description": mark["description"]},
        headers=owner.headers,
    )
    assert up.status_code == 201, up.text

    # Whatever autovacuum's ANALYZE took before the deletion: the statistics never sample owner-written text.
    db.execute("ANALYZE registry.registrations, registry.cameras, requests.events, requests.evidence")
    for k, m in mark.items():
        assert not _statistics_holding(db, m), f"the planner's statistics hold the owner's {k}"

    assert (
        registry.delete(f"/v1/registrations/{owner.registration_id}", headers=owner.headers).status_code
        == 204
    )
    assert eventually(lambda: not _rows_holding(db, mark["answer"]), timeout=30), "the answer note stayed"

    db.execute("ANALYZE")
    _local_superuser("CHECKPOINT")
    for k, m in mark.items():
        assert not _rows_holding(db, m), f"a row still holds the owner's {k}"
        assert not _statistics_holding(db, m), f"the planner's statistics hold the owner's {k}"

    # The sealed fields were encrypted before they were written: no copy in any file, write-ahead log included.
    # The owner's free texts among them are sealed under the registration's data key, which the deletion
    # destroyed: no copy of this database can open them any more (tests/requests/test_crypto_shredding.py).
    data_dir = Path(_local_superuser("SHOW data_directory"))
    oid = db.fetchval("SELECT oid FROM pg_database WHERE datname = current_database()")
    roots = [data_dir / "base" / str(oid), data_dir / "global", data_dir / "pg_wal"]
    sealed = [
        mark[k].encode()
        for k in (
            "name",
            "email",
            "address",
            "business",
            "hours",
            "notes",
            "answer",
            "description",
            "filename",
        )
    ]
    assert _files_holding(roots, sealed) == {}


def test_the_planners_statistics_never_hold_what_an_owner_wrote_about_a_camera(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, db: Db
) -> None:
    """Labels, schedules and what a camera covers stay plain in the table (searches read them) but ANALYZE takes
    no sample of them: the services' role, which may read `pg_stats`, never finds an owner's words there."""
    tag = uuid.uuid4().hex[:10]
    mark = {k: f"zq{k}{tag}" for k in ("label", "schedule", "covers")}
    owner = new_owner(flow.agency, flow.agency.centre, cameras=3)
    for cam in owner.camera_ids:  # the same words on several cameras: a most common value, were it sampled
        etag = registry.get(f"/v1/registrations/{owner.registration_id}", headers=owner.headers).headers[
            "ETag"
        ]
        r = registry.patch(
            f"/v1/registrations/{owner.registration_id}/cameras/{cam}",
            json={"label": mark["label"], "schedule": mark["schedule"], "covers": [mark["covers"], "street"]},
            headers={**owner.headers, "If-Match": etag},
        )
        assert r.status_code == 200, r.text
    db.execute("ANALYZE registry.cameras")
    assert db.fetchval(
        "SELECT count(*) FROM pg_stats WHERE schemaname = 'registry' AND tablename = 'cameras'"
    )
    for k, m in mark.items():
        assert not _statistics_holding(db, m), f"the planner's statistics hold the owner's camera {k}"
