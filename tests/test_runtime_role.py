"""The services connect as a runtime role (`canvass_app`) that reads and writes rows and appends to the audit
trail, but owns nothing: it cannot change, delete or truncate the trail, switch a trigger off, or change the
schema. (The owner could switch the append-only triggers off; the services never run as the owner.)"""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
import pytest

from tests.support import Db, run_sql, with_database

PROBE = "canvass_app_probe"


@pytest.fixture(scope="module")
def app(database_url: str) -> Iterator[Db]:
    """A login in canvass_app on the run's database (the same grants `make run` gives canvass_svc)."""
    run_sql(
        database_url,
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PROBE}') THEN
                CREATE ROLE {PROBE} LOGIN PASSWORD '{PROBE}' IN ROLE canvass_app;
            END IF;
        END $$""",
    )
    d = Db(with_database(database_url, database_url.rsplit("/", 1)[1], user=PROBE, password=PROBE))
    yield d
    d.close()


def test_the_runtime_role_appends_to_the_audit_trail_and_reads_it(app: Db) -> None:
    rid = app.fetchval(
        "SELECT audit.append_event('test', 'probe', 'investigator', NULL, 'probe', NULL, NULL, NULL, NULL, '{}')"
    )
    assert app.fetchval("SELECT count(*) FROM audit.events WHERE id = $1", rid) == 1
    ids = app.fetch(
        "SELECT audit.append_events('{test,test}', '{probe,probe}', '{investigator,investigator}', '{NULL,NULL}',"
        " '{probe,probe}', '{NULL,NULL}', '{NULL,NULL}', '{NULL,NULL}', '{NULL,NULL}', '{NULL,NULL}')"
    )
    assert (
        app.fetchval("SELECT count(*) FROM audit.events WHERE id = ANY($1::uuid[])", [r[0] for r in ids]) == 2
    )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit.events SET actor = 'someone-else'",
        "DELETE FROM audit.events",
        "TRUNCATE audit.events",
        "UPDATE audit.chain_head SET seq = 0",
        "INSERT INTO audit.events (service, actor, actor_role, action, prev_hash, hash) VALUES ('x','x','x','x','','')",
        "ALTER TABLE audit.events DISABLE TRIGGER events_append_only",
        "ALTER TABLE requests.events DISABLE TRIGGER events_append_only",
        "TRUNCATE requests.custody",
        "DROP TABLE registry.cameras",
        "CREATE TABLE registry.scratch (x int)",
    ],
)
def test_the_runtime_role_cannot_tamper_with_the_trail_or_the_schema(app: Db, statement: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        app.execute(statement)


def test_the_runtime_role_reads_and_writes_rows(app: Db) -> None:
    assert app.fetchval("SELECT count(*) >= 0 FROM registry.cameras")
    assert app.fetchval("SELECT count(*) >= 0 FROM requests.requests")
