"""The coverage counts under concurrent writes (migration 0032): a camera written while its agency's jurisdiction
changes is counted, in whichever order the two reach the agency, and a jurisdiction's recount racing a camera
transaction of several statements (as the bulk import's merge is) neither deadlocks nor miscounts, nor, made
through registry_api, answers 503. Each race is driven by the test: one transaction is held open on its own
connection until the other is seen waiting for it (or has finished without waiting); then the counts must be
exactly a fresh count of the committed cameras."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import Token
from tests.geo_query.conftest import AgencyFixture, insert_agency, insert_registration
from tests.geo_query.test_coverage import box
from tests.support import Db, eventually

# The counts kept, and the counts made afresh from the cameras as they are committed (the rule: `registry.sees`).
KEPT = (
    "SELECT size_m, i, j, cameras FROM registry.coverage_counts WHERE agency_id = $1 AND cameras <> 0"
    " ORDER BY 1, 2, 3"
)
FRESH = """
    SELECT cell.size_m, cell.i, cell.j, count(*)::integer FROM registry.cameras c
      JOIN registry.agencies a ON a.id = $1 AND registry.sees(a.id, a.jurisdiction, c.visible_to, c.geom)
     CROSS JOIN LATERAL registry.coverage_cells(c.geom) cell
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
INSERT_CAMERA = (
    "INSERT INTO registry.cameras (id, registration_id, geom, owner_kind, visible_to)"
    " VALUES ($1, $2, ST_SetSRID(ST_MakePoint($3, $4), 4326), 'residential', $5)"
)
SET_JURISDICTION = "UPDATE registry.agencies SET jurisdiction = ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON($2), 4326)) WHERE id = $1"


def _counts(db: Db, sql: str, agency: AgencyFixture) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in db.fetch(sql, agency.id)]


def _camera(db: Db, agency: AgencyFixture, lon: float, lat: float) -> tuple[Any, ...]:
    """The arguments of INSERT_CAMERA for a new camera of a new registration, shared with the agency."""
    rid, _ = insert_registration(db, agency, lon, lat)
    return (uuid.uuid4(), rid, lon, lat, [agency.id])


def _blocked_by(db: Db, holder: Db) -> Callable[[], bool]:
    pid = holder.fetchval("SELECT pg_backend_pid()")
    return lambda: bool(
        db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", pid)
    )


class Racer:
    """A statement run on its own connection in a thread, which may wait for the test's open transaction."""

    def __init__(self, url: str, sql: str, *args: Any) -> None:
        self.conn = Db(url)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(sql, args))

    def _run(self, sql: str, args: tuple[Any, ...]) -> None:
        try:
            self.conn.execute(sql, *args)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def start_against(self, db: Db, holder: Db) -> None:
        """Start, and return once it waits for `holder` or has finished (it need not wait for it at all)."""
        self.thread.start()
        blocked = _blocked_by(db, holder)
        assert eventually(lambda: blocked() or not self.thread.is_alive(), timeout=30)

    def finish(self) -> None:
        self.thread.join(60)
        assert not self.thread.is_alive(), "the statement never finished"
        self.conn.close()
        assert self.error is None, repr(self.error)


def test_a_camera_written_while_its_agencys_jurisdiction_changes_is_counted_after_the_change(
    db: Db, database_url: str, slug: str
) -> None:
    """The jurisdiction changes first (its recount cannot see the camera, not yet written); the camera's count,
    made against the jurisdiction it reads, waits for the change to commit and counts against the new one."""
    a = insert_agency(db, slug, box(-90.0, 45.0, -89.9, 45.1))
    camera = _camera(db, a, -89.85, 45.05)  # outside the old jurisdiction, inside the new one
    change = Db(database_url)
    try:
        change.execute("BEGIN")
        change.execute(
            SET_JURISDICTION,
            a.id,
            '{"type": "Polygon", "coordinates": '
            "[[[-90, 45], [-89.8, 45], [-89.8, 45.1], [-90, 45.1], [-90, 45]]]}",
        )
        write = Racer(database_url, INSERT_CAMERA, *camera)
        write.start_against(db, change)
        change.execute("COMMIT")
        write.finish()
    finally:
        change.close()
    kept = _counts(db, KEPT, a)
    assert kept == _counts(db, FRESH, a)
    assert len(kept) == 3 and all(n == 1 for *_, n in kept)  # the camera, in its cell at each size


def test_a_jurisdiction_changed_while_a_camera_is_being_written_counts_the_camera_once_it_commits(
    db: Db, database_url: str, slug: str
) -> None:
    """The camera is written first, uncounted (outside the old jurisdiction); the recount of the new
    jurisdiction waits for the camera's transaction to commit and then counts it."""
    a = insert_agency(db, slug, box(-90.0, 46.0, -89.9, 46.1))
    camera = _camera(db, a, -89.85, 46.05)
    write = Db(database_url)
    try:
        write.execute("BEGIN")
        write.execute(INSERT_CAMERA, *camera)
        change = Racer(
            database_url,
            SET_JURISDICTION,
            a.id,
            '{"type": "Polygon", "coordinates": [[[-90, 46], [-89.8, 46], [-89.8, 46.1], [-90, 46.1], [-90, 46]]]}',
        )
        change.start_against(db, write)
        write.execute("COMMIT")
        change.finish()
    finally:
        write.close()
    kept = _counts(db, KEPT, a)
    assert kept == _counts(db, FRESH, a)
    assert len(kept) == 3 and all(n == 1 for *_, n in kept)


def test_a_recount_racing_a_camera_transaction_of_several_statements_neither_deadlocks_nor_miscounts(
    db: Db, database_url: str, slug: str
) -> None:
    """A camera transaction (as an import's merge: a statement per chunk) has counted a camera in the east cells
    when the jurisdiction changes; the recount goes through the agency's counts (the west cells first: they were
    made first, and lie first in key order) and, unguarded, held the west cells and waited for the east ones
    while the camera transaction's next statement waited for the west ones: a deadlock, one of them undone."""
    a = insert_agency(db, slug, box(-91.0, 47.0, -90.0, 47.2))
    west, east = (-90.9, 47.1), (-90.1, 47.1)  # 60 km apart: no cell in common at any size
    for lon, lat in (west, east):  # the agency's counts, west first
        db.execute(INSERT_CAMERA, *_camera(db, a, lon, lat))
    later = [_camera(db, a, *east), _camera(db, a, *west)]
    merge = Db(database_url)
    try:
        merge.execute("BEGIN")
        merge.execute(INSERT_CAMERA, *later[0])  # holds the east cells' counts
        change = Racer(
            database_url,
            SET_JURISDICTION,
            a.id,
            '{"type": "Polygon", "coordinates": [[[-91, 47], [-89.9, 47], [-89.9, 47.2], [-91, 47.2], [-91, 47]]]}',
        )
        change.start_against(db, merge)
        merge.execute(INSERT_CAMERA, *later[1])  # the west cells' counts
        merge.execute("COMMIT")
        change.finish()
    finally:
        merge.close()
    kept = _counts(db, KEPT, a)
    assert kept == _counts(db, FRESH, a)
    assert sorted(n for *_, n in kept) == [2] * 6


def test_a_jurisdiction_changed_over_http_while_a_camera_transaction_runs_is_200_and_counts_exactly(
    registry: httpx.Client, auth: Token, db: Db, database_url: str, slug: str
) -> None:
    """The agency admin's PATCH (registry_api) racing a camera transaction of several statements, as an import's
    merge: the transaction has counted a camera in existing cells when the PATCH comes; its next statement adds a
    camera in cells the agency had none in (new count rows, which reference the agency's row). Unguarded, the
    recount waited for the first cells while the next statement waited for the agency's row the PATCH held: a
    deadlock, one side undone (the PATCH a 503). Now the PATCH waits for the transaction and then counts it."""
    headers = auth("agency_admin", slug)
    r = registry.post(
        "/v1/agencies",
        json={"slug": slug, "name": "Coverage race PD", "jurisdiction": box(-93.0, 47.0, -92.0, 47.2)},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    a = AgencyFixture(uuid.UUID(r.json()["id"]), slug, None)
    west, east, north = (-92.9, 47.1), (-92.1, 47.1), (-92.5, 47.19)  # no cell in common at any size
    for lon, lat in (west, east):
        db.execute(INSERT_CAMERA, *_camera(db, a, lon, lat))
    later = [_camera(db, a, *east), _camera(db, a, *north)]
    merge = Db(database_url)
    answers: list[httpx.Response] = []
    patch = threading.Thread(
        target=lambda: answers.append(
            registry.patch(
                f"/v1/agencies/{slug}",
                json={"jurisdiction": box(-93.0, 47.0, -91.9, 47.2)},
                headers={**headers, "If-Match": '"1"'},
            )
        )
    )
    try:
        merge.execute("BEGIN")
        merge.execute(INSERT_CAMERA, *later[0])  # the east cells' counts, which exist
        patch.start()
        blocked = _blocked_by(db, merge)
        assert eventually(lambda: blocked() or not patch.is_alive(), timeout=30)
        merge.execute(INSERT_CAMERA, *later[1])  # new count rows
        merge.execute("COMMIT")
        patch.join(60)
    finally:
        merge.close()
    assert answers and answers[0].status_code == 200, answers and answers[0].text
    kept = _counts(db, KEPT, a)
    assert kept == _counts(db, FRESH, a)
    assert sorted(n for *_, n in kept) == [1] * 6 + [2] * 3
