"""Session fixtures: an isolated database per run, the three services on real HTTP, an SMTP sink, tokens."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from scripts import oidc_dev
from shared.auth import mint_token
from shared.settings import LOCAL_DATABASE_URL, get_settings
from tests.community.sms_receiver import SmsReceiver
from tests.portal.oidc import PROVIDER_AGENCIES
from tests.support import (
    LOG_DIR,
    ROOT,
    Db,
    Mailbox,
    PgBouncer,
    Server,
    create_test_database,
    drop_database,
    free_port,
    pgbouncer,
    pooler_entries,
    run_sql,
    smtp_sink,
    start_server,
    with_database,
)

# Settings default to production; everything the tests build in-process (tokens, Settings()) is the test kind.
os.environ["CANVASS_ENV"] = "test"
# The owner's URL creates the run's database from the migrated template; the services connect with the runtime
# role of DATABASE_URL when MIGRATIONS_DATABASE_URL names a separate owner (as `make test` does).
BASE_URL = os.environ.get("MIGRATIONS_DATABASE_URL") or os.environ.get("DATABASE_URL") or LOCAL_DATABASE_URL
APP_URL = os.environ["DATABASE_URL"] if os.environ.get("MIGRATIONS_DATABASE_URL") else BASE_URL

# The port the portal's browser tests (tests/portal) serve it on, chosen up front: the services accept its
# origin (CORS) from the moment they start.
PORTAL_PORT = free_port()
# The development OpenID provider's port (tests/portal starts it there): the services trust its keys, beside the
# development tokens, and the portal offers it, from the moment they start.
OIDC_PORT = free_port()


@pytest.fixture(scope="session")
def database_name() -> Iterator[str]:
    name = create_test_database(BASE_URL)
    yield name
    drop_database(BASE_URL, name)


@pytest.fixture(scope="session")
def keystore_url(database_name: str) -> Iterator[str]:
    """The run's key store (shared/keystore.py): a database of its own beside the run's database, as in a
    deployment; the services create its table on first use."""
    name = database_name + "_keys"
    run_sql(with_database(BASE_URL, "postgres"), f'CREATE DATABASE "{name}"')
    url = with_database(BASE_URL, name)
    os.environ["CANVASS_KEYSTORE_URL"] = url  # what the tests build in-process reads the same store
    get_settings.cache_clear()
    yield url
    drop_database(BASE_URL, name)


@pytest.fixture(scope="session")
def database_url(database_name: str) -> str:
    return with_database(BASE_URL, database_name)


@pytest.fixture(scope="session")
def app_database_url(database_name: str) -> str:
    """The services' runtime role on the run's database (rows only: no ownership, no DDL outside staging)."""
    return with_database(APP_URL, database_name)


@pytest.fixture(scope="session")
def geo_database_url(database_name: str) -> str:
    """geo_query's read-only login: the local cluster's canvass_geo role, or GEO_QUERY_DATABASE_URL's role."""
    reader = os.environ.get("GEO_QUERY_DATABASE_URL")
    if reader:
        return with_database(reader, database_name)
    if "DATABASE_URL" in os.environ:
        return with_database(APP_URL, database_name)
    return with_database(BASE_URL, database_name, user="canvass_geo", password="canvass_geo")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--through-pgbouncer",
        action="store_true",
        help="the services and the worker reach the run's databases through a PgBouncer in transaction mode",
    )


@pytest.fixture(scope="session")
def pooler(
    request: pytest.FixtureRequest, app_database_url: str, geo_database_url: str, keystore_url: str
) -> Iterator[PgBouncer | None]:
    """With --through-pgbouncer: a PgBouncer in transaction mode (10 server connections per entry) in front of the
    run's databases, which the services use instead of the cluster."""
    if not request.config.getoption("--through-pgbouncer"):
        yield None
        return
    entries, users = pooler_entries(
        app_database_url, geo_database_url, keystore_url, get_settings().statement_timeout_ms
    )
    with pgbouncer(app_database_url, entries, users, pool_size=10) as bouncer:
        yield bouncer


@pytest.fixture(scope="session")
def mail() -> Iterator[tuple[int, Mailbox]]:
    with smtp_sink() as sink:
        yield sink


@pytest.fixture(scope="session")
def mailbox(mail: tuple[int, Mailbox]) -> Mailbox:
    return mail[1]


@pytest.fixture(scope="session")
def service_env(
    app_database_url: str,
    geo_database_url: str,
    keystore_url: str,
    mail: tuple[int, Mailbox],
    pooler: PgBouncer | None,
    tmp_path_factory,
) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    env.update(
        CANVASS_ENV="test",
        CANVASS_KEYSTORE_URL=keystore_url,
        DATABASE_URL=app_database_url,
        GEO_QUERY_DATABASE_URL=geo_database_url,
        CANVASS_SMTP_PORT=str(mail[0]),
        CANVASS_MAIL_BACKEND="smtp",
        CANVASS_EVIDENCE_DIR=str(tmp_path_factory.mktemp("evidence")),
        CANVASS_LOG_LEVEL="WARNING",
        # Every test calls from 127.0.0.1: the guess limits are tested with their own registry_api instance.
        CANVASS_GUESS_LIMIT_PER_CLIENT="1000000",
    )
    if pooler is not None:
        env.update(
            CANVASS_DATABASE_POOLER="transaction",
            DATABASE_URL=pooler.url(app_database_url, urlsplit(app_database_url).path[1:]),
            GEO_QUERY_DATABASE_URL=pooler.url(geo_database_url, "geo"),
            CANVASS_KEYSTORE_URL=pooler.url(keystore_url, urlsplit(keystore_url).path[1:]),
        )
    env["CANVASS_CORS_ORIGINS"] = f"http://127.0.0.1:{PORTAL_PORT}"  # the portal's origin (tests/portal)
    # The provider's accounts in the tests: the demo agencies' and those of tests/portal/oidc.py's STAFF_AGENCIES.
    agencies = PROVIDER_AGENCIES
    env.update(oidc_dev.services_env(OIDC_PORT, agencies) | oidc_dev.portal_env(OIDC_PORT, agencies))
    return env


@dataclass
class Suite:
    registry: Server
    geo: Server
    requests: Server
    env: dict[str, str]
    community: Server | None = None
    sms: SmsReceiver | None = None


@pytest.fixture(scope="session")
def suite(service_env: dict[str, str]) -> Iterator[Suite]:
    """The three services, each on a free port, knowing each other's URLs; and the requests worker when the
    requests service has one."""
    ports = {name: free_port() for name in ("registry_api", "geo_query", "requests_api")}
    env = dict(
        service_env,
        REGISTRY_API_URL=f"http://127.0.0.1:{ports['registry_api']}",
        GEO_QUERY_URL=f"http://127.0.0.1:{ports['geo_query']}",
    )
    started: list[Server] = []
    worker: subprocess.Popen[bytes] | None = None
    sms: SmsReceiver | None = None
    try:
        for name in ("registry_api", "geo_query", "requests_api"):
            started.append(start_server(name, env, port=ports[name]))
        if (ROOT / "services" / "requests_api" / "worker.py").exists():
            log = (LOG_DIR / f"worker-{os.getpid()}.log").open("wb")
            worker = subprocess.Popen(
                [sys.executable, "-m", "services.requests_api.worker"],
                cwd=ROOT,
                env=dict(env, CANVASS_WORKER_POLL_S="0.2"),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        sms = SmsReceiver()
        community = start_server("community_api", community_env(env, sms))
        started.append(community)
        yield Suite(started[0], started[1], started[2], env, community=community, sms=sms)
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(10)
        for s in started:
            s.stop()
        if sms is not None:
            sms.stop()


def community_env(env: dict[str, str], sms: SmsReceiver) -> dict[str, str]:
    """community_api's environment in the suite: every test tips from 127.0.0.1 (the rate limit is tested with an
    instance of its own), its background loops run often enough to be waited for, and its SMS go to the local
    provider."""
    return dict(
        env,
        **sms.env(),
        CANVASS_COMMUNITY_OUTBOX_BACKOFF_S="0.2",
        CANVASS_TIP_RATE_LIMIT="1000000",
        CANVASS_COMMUNITY_HOUSEKEEPING_S="0.2",
        CANVASS_COMMUNITY_OUTBOX_POLL_S="0.1",
    )


@pytest.fixture(scope="session")
def community(suite: Suite) -> Iterator[httpx.Client]:
    assert suite.community is not None
    with httpx.Client(base_url=suite.community.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
def registry(suite: Suite) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=suite.registry.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def geo(suite: Suite) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=suite.geo.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def requests_client(suite: Suite) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=suite.requests.url, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def db(database_url: str, keystore_url: str) -> Iterator[Db]:
    """The run's database; and its key store is set up, for the tests that read or seal owners' texts."""
    d = Db(database_url)
    yield d
    d.close()


Token = Callable[..., dict[str, str]]


@pytest.fixture(scope="session")
def auth() -> Token:
    """`auth(role, agency)` gives the Authorization header of a development token."""

    def _auth(role: str, agency: str | None, sub: str | None = None, **extra: object) -> dict[str, str]:
        return {"Authorization": "Bearer " + mint_token(role, agency, sub=sub, extra=dict(extra))}

    return _auth


@pytest.fixture
def slug() -> str:
    """A fresh agency slug, so tests sharing the run's database never see each other's agencies."""
    return "t-" + uuid.uuid4().hex[:10]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures the contract and fault tests print (cases per operation, matrix size, corpus size, writes
    across a restart) are part of the suite's output, not only when run with -s."""
    reports = [
        r for r in terminalreporter.stats.get("passed", []) if r.when == "call" and r.capstdout.strip()
    ]
    if not reports:
        return
    terminalreporter.section("figures")
    for r in reports:
        terminalreporter.write_line(f"{r.nodeid}:")
        for line in r.capstdout.strip().splitlines():
            terminalreporter.write_line(f"  {line}")
