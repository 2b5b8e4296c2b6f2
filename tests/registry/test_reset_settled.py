"""`reset_settled` (tests/registry/conftest.py), which the credential-reset tests use instead of sleeping, waits
for the session doing its own reset's work: not for another session waiting on a table of the same name, such as
one of another test run's database (every run's database is a clone of one template, so their tables share
OIDs, and pg_locks lists every database's locks)."""

from __future__ import annotations

import threading

import httpx

from tests.conftest import BASE_URL
from tests.registry.conftest import fresh_email, reset_settled
from tests.support import Db, create_test_database, drop_database, eventually, with_database


def test_reset_settled_is_not_satisfied_by_another_databases_session_waiting_on_registrations(
    registry: httpx.Client, db: Db
) -> None:
    other = create_test_database(BASE_URL)
    url = with_database(BASE_URL, other)
    holder, waiter = Db(url), Db(url)
    waiting = threading.Thread(
        target=waiter.execute, args=("BEGIN; LOCK TABLE registry.registrations IN ROW SHARE MODE; COMMIT",)
    )
    try:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE registry.registrations IN EXCLUSIVE MODE")
        waiting.start()
        # The other database's session waits for the table of the same OID as this database's registrations.
        oid = db.fetchval("SELECT CAST('registry.registrations' AS regclass)::oid")
        assert holder.fetchval("SELECT CAST('registry.registrations' AS regclass)::oid") == oid
        assert eventually(
            lambda: db.fetchval(
                "SELECT count(*) FROM pg_locks WHERE relation = $1 AND mode = 'RowShareLock' AND NOT granted",
                oid,
            )
        )
        r = reset_settled(registry, db, fresh_email())
        assert r.status_code == 202
        assert waiting.is_alive()  # still waiting: it was never this reset's
    finally:
        holder.close()
        waiting.join(30)
        waiter.close()
        drop_database(BASE_URL, other)
