"""Deletion leaves nothing of an import behind: a credential awaiting delivery goes with its registration or after
a bounded wait, even when its report is never downloaded."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from tests.conftest import Token
from tests.imports.conftest import NO_EMAIL, Importer, collection, feature_at, report
from tests.registry.conftest import NewAgency

PENDING = "SELECT external_id FROM registry.import_credentials WHERE job_id = $1 ORDER BY external_id"


def pending(db: Any, job: dict[str, Any]) -> list[str]:
    return [r["external_id"] for r in db.fetch(PENDING, uuid.UUID(job["id"]))]


def eventually_pending(db: Any, job: dict[str, Any], expected: list[str], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while pending(db, job) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pending(db, job) == expected


def test_undelivered_credentials_go_with_their_registration_and_after_a_week(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, db: Any, auth: Token
) -> None:
    a, other = new_agency(), new_agency()
    features = [
        feature_at(a.inside(), "gone", **NO_EMAIL),
        feature_at(a.inside(0.001, 0), "kept", **NO_EMAIL),
    ]
    job = run_import(a, collection(features), credentials="report")
    assert job["status"] == "succeeded" and pending(db, job) == ["gone", "kept"], job
    # The owner deletes the registration (as DELETE /v1/registrations/{id} does); the report is not downloaded.
    gone = db.fetchval(
        "SELECT id FROM registry.registrations WHERE agency_id = $1 AND external_id = 'gone'", uuid.UUID(a.id)
    )
    assert db.execute("DELETE FROM registry.registrations WHERE id = $1", gone) == "DELETE 1"

    # Whatever import ends next purges the deleted registration's credential, and only that one.
    assert run_import(other, collection([feature_at(other.inside(), "x-1")]))["status"] == "succeeded"
    eventually_pending(db, job, ["kept"])

    # A credential nobody came for within 7 days of its job's end is deleted too.
    db.execute(
        "UPDATE registry.import_jobs SET finished_at = now() - interval '7 days 1 minute' WHERE id = $1",
        uuid.UUID(job["id"]),
    )
    assert run_import(other, collection([feature_at(other.inside(), "x-2")]))["status"] == "succeeded"
    eventually_pending(db, job, [])
    assert report(registry, auth, a, job)["credentials"] == []
    kept = "SELECT count(*) FROM registry.registrations WHERE agency_id = $1 AND external_id = 'kept'"
    assert db.fetchval(kept, uuid.UUID(a.id)) == 1  # the registration itself stays


def test_a_report_download_purges_the_credentials_of_deleted_registrations(
    registry: httpx.Client, new_agency: NewAgency, run_import: Importer, db: Any, auth: Token
) -> None:
    a, other = new_agency(), new_agency()
    job = run_import(a, collection([feature_at(a.inside(), "gone", **NO_EMAIL)]), credentials="report")
    other_job = run_import(other, collection([feature_at(other.inside(), "y-1")]), dry_run=True)
    assert pending(db, job) == ["gone"]
    rid = db.fetchval(
        "SELECT registration_id FROM registry.import_credentials WHERE job_id = $1", uuid.UUID(job["id"])
    )
    db.execute("DELETE FROM registry.registrations WHERE id = $1", rid)
    report(registry, auth, other, other_job)  # any agency's download
    assert pending(db, job) == []
