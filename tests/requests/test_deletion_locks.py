"""An owner's deletion meets the other writers of what it removes without failing: it appends its audit record
last, as every audited write does, so the audit chain's head is the last lock it takes. A writer that holds
something the deletion removes and then appends its own record (a notification being marked sent, for the
requests worker, holds the row of its id; a change of the agency's jurisdiction holds the agency's coverage lock,
under which the owner's cameras are counted out) is waited for, and the deletion succeeds, where, holding the
chain's head first, it deadlocked with that writer and was answered 503. And a deletion waiting for the key store
(to destroy the registration's data key) no longer holds the chain's head, so no other audited write waits with
it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

from shared.auth import mint_token
from tests.requests.conftest import Flow, NewOwner, Owner, eventually
from tests.support import Db

# Takes, in the writer's open transaction, a lock the owner's deletion needs; the action it then audits.
Holder = Callable[[httpx.Client, Owner, str, Db], str]
# Another backend waits for a lock this connection's transaction holds.
BLOCKED_BY_ME = "SELECT count(*) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"


def _deleting(registry: httpx.Client, owner: Owner) -> tuple[threading.Thread, dict[str, httpx.Response]]:
    """The owner's deletion, sent from a thread (it is to wait for a lock the test holds)."""
    got: dict[str, httpx.Response] = {}

    def delete() -> None:
        got["r"] = registry.delete(f"/v1/registrations/{owner.registration_id}", headers=owner.headers)

    thread = threading.Thread(target=delete, daemon=True)
    thread.start()
    return thread, got


def _mark_a_notification_sent(registry: httpx.Client, owner: Owner, agency: str, writer: Db) -> str:
    """What registry_api's notify_owner does after the mail left, in its second transaction: it marks the
    notification's id sent, holding that row (which the deletion removes with the registration)."""
    note = {
        "notification_id": str(uuid.uuid4()),
        "kind": "request",
        "subject": "Footage request",
        "body": "Hi",
    }
    service = {"Authorization": "Bearer " + mint_token("service", None, sub="requests_api")}
    sent = registry.post(
        f"/v1/registrations/{owner.registration_id}/notifications", json=note, headers=service
    )
    assert sent.status_code == 202, sent.text
    writer.execute("BEGIN")
    marked = writer.execute(
        "UPDATE registry.idempotency_keys SET status = 202 WHERE key = $1 AND principal = 'notification'",
        note["notification_id"],
    )
    assert marked == "UPDATE 1"
    return "notify"


def _change_the_jurisdiction(registry: httpx.Client, owner: Owner, agency: str, writer: Db) -> str:
    """What a change of the agency's jurisdiction does before it audits: it holds the agency's coverage lock
    (migration 0032), which the deletion's camera trigger takes as it counts the owner's cameras out."""
    writer.execute("BEGIN")
    writer.execute(
        "SELECT pg_advisory_xact_lock(registry.coverage_key(id)) FROM registry.agencies WHERE slug = $1",
        agency,
    )
    return "agency.update"


@pytest.mark.parametrize("holds", [_mark_a_notification_sent, _change_the_jurisdiction])
def test_a_deletion_waits_for_a_writer_holding_what_it_removes_and_succeeds(
    holds: Holder, flow: Flow, new_owner: NewOwner, registry: httpx.Client, database_url: str, db: Db
) -> None:
    """The writer holds a lock the deletion needs, then appends its audit record: the chain's head is free."""
    owner = new_owner(flow.agency, flow.agency.centre)
    writer = Db(database_url)
    try:
        action = holds(registry, owner, flow.agency.slug, writer)
        thread, got = _deleting(registry, owner)
        assert eventually(lambda: writer.fetchval(BLOCKED_BY_ME) >= 1, timeout=15), (
            "the deletion never waited"
        )
        writer.fetchval(
            "SELECT audit.append_event('registry_api', 'writer', 'service', NULL, $1, NULL, NULL, NULL, NULL,"
            " '{}')",
            action,
        )
        writer.execute("COMMIT")
    finally:
        writer.close()
    thread.join(30)
    assert not thread.is_alive()
    assert got["r"].status_code == 204, got["r"].text
    assert (
        db.fetchval("SELECT count(*) FROM registry.registrations WHERE id = $1", owner.registration_id) == 0
    )
    assert (
        db.fetchval(
            "SELECT count(*) FROM audit.events WHERE action = 'registration.delete' AND subject_id = $1",
            owner.registration_id,
        )
        == 1
    )


def test_a_deletion_waiting_for_the_key_store_holds_no_other_audited_write_back(
    flow: Flow, new_owner: NewOwner, registry: httpx.Client, database_url: str, keystore_url: str, db: Db
) -> None:
    owner = new_owner(flow.agency, flow.agency.centre, notes_for_investigators="The side gate's camera.")
    rid = uuid.UUID(owner.registration_id)
    keys = Db(keystore_url)
    probe = Db(database_url)
    thread: threading.Thread | None = None
    got: dict[str, Any] = {}
    try:
        # The key store is slow to destroy the registration's data key: its row is held.
        keys.execute("BEGIN")
        assert keys.fetchval("SELECT count(*) FROM data_keys WHERE registration_id = $1", rid) == 1
        keys.execute("SELECT 1 FROM data_keys WHERE registration_id = $1 FOR UPDATE", rid)
        thread, got = _deleting(registry, owner)
        assert eventually(lambda: keys.fetchval(BLOCKED_BY_ME) >= 1, timeout=15), "the deletion never waited"
        # Meanwhile the chain's head is free: every other audited write can append its record now.
        probe.execute("BEGIN")
        try:
            probe.execute("SELECT 1 FROM audit.chain_head FOR UPDATE NOWAIT")
        except asyncpg.LockNotAvailableError:
            pytest.fail("a deletion waiting for the key store holds the audit chain's head")
        finally:
            probe.execute("ROLLBACK")
        keys.execute("ROLLBACK")
    finally:
        keys.close()
        probe.close()
    assert thread is not None
    thread.join(30)
    assert not thread.is_alive()
    assert got["r"].status_code == 204, got["r"].text
    keys_now = Db(keystore_url)
    try:
        assert keys_now.fetchval("SELECT count(*) FROM data_keys WHERE registration_id = $1", rid) == 0
    finally:
        keys_now.close()
    assert (
        db.fetchval(
            "SELECT count(*) FROM audit.events WHERE action = 'registration.delete' AND subject_id = $1",
            owner.registration_id,
        )
        == 1
    )
