"""Test support: isolated databases cloned from a migrated template, the services as real HTTP servers, a
local SMTP sink, and development tokens. Used by conftest.py and by the tests directly."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.utils import getaddresses
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

from shared.server import uvicorn_command

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / ".local" / "test-logs"
SERVICES = {
    "registry_api": "services.registry_api.main:app",
    "geo_query": "services.geo_query.main:app",
    "requests_api": "services.requests_api.main:app",
    "community_api": "services.community_api.main:app",
    "live_relay": "services.live_relay.main:app",
}


def with_database(url: str, name: str, *, user: str | None = None, password: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if user is not None:
        host = netloc.rpartition("@")[2]
        netloc = f"{user}:{password}@{host}" if password else f"{user}@{host}"
    return urlunsplit((parts.scheme, netloc, "/" + name, parts.query, parts.fragment))


def migrations_fingerprint() -> str:
    h = hashlib.sha256()
    for p in sorted((ROOT / "migrations").rglob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


def run_sql(url: str, *statements: str) -> None:
    async def _go() -> None:
        conn = await asyncpg.connect(url)
        try:
            for s in statements:
                await conn.execute(s)
        finally:
            await conn.close()

    asyncio.run(_go())


def ensure_template(base_url: str) -> str:
    """A database migrated to head, named after the migrations' fingerprint; built once (under a lock, so
    concurrent runs build it once), then cloned for each run."""
    name = f"canvass_tpl_{migrations_fingerprint()}"

    async def _go() -> None:
        conn = await asyncpg.connect(with_database(base_url, "postgres"))
        try:
            await conn.execute("SELECT pg_advisory_lock(hashtext('canvass-test-template'))")
            if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                return
            build = name + "_build"
            await conn.execute(f'DROP DATABASE IF EXISTS "{build}"')
            await conn.execute(f'CREATE DATABASE "{build}"')
            url = with_database(base_url, build)
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "alembic",
                "-x",
                f"url={url}",
                "upgrade",
                "head",
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError("migrations failed:\n" + out.decode()[-4000:])
            await conn.execute(f'ALTER DATABASE "{build}" RENAME TO "{name}"')
            await _drop_old_templates(conn)
        finally:
            await conn.close()  # releases the advisory lock

    asyncio.run(_go())
    return name


KEPT_TEMPLATES = 6


async def _drop_old_templates(conn: asyncpg.Connection) -> None:
    """Each change to the migrations builds a template of its own; keep the newest few (branches worked on side by
    side each have theirs) and drop the older ones, which would otherwise pile up in a developer's cluster. One still
    being cloned is in use and stays until the next build."""
    old = await conn.fetch(
        "SELECT datname FROM pg_database WHERE datname ~ '^canvass_tpl_[0-9a-f]{12}$' ORDER BY oid DESC OFFSET $1",
        KEPT_TEMPLATES,
    )
    # Builds that died half-way (the lock is held here, so no other build is running).
    old += await conn.fetch(
        "SELECT datname FROM pg_database WHERE datname ~ '^canvass_tpl_[0-9a-f]{12}_build$'"
    )
    for row in old:
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}"')
        except asyncpg.ObjectInUseError:
            continue


def _drop_leftovers(base_url: str) -> None:
    """Drop test databases of earlier runs that died before cleaning up (their process is gone)."""

    async def _go() -> list[str]:
        conn = await asyncpg.connect(with_database(base_url, "postgres"))
        try:
            rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'canvass_test_%'")
        finally:
            await conn.close()
        return [r["datname"] for r in rows]

    for name in asyncio.run(_go()):
        pid = name.split("_")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            drop_database(base_url, name)


def create_test_database(base_url: str) -> str:
    _drop_leftovers(base_url)
    template = ensure_template(base_url)
    name = f"canvass_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    run_sql(with_database(base_url, "postgres"), f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


def drop_database(base_url: str, name: str) -> None:
    try:
        run_sql(with_database(base_url, "postgres"), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except asyncpg.InsufficientPrivilegeError:  # may not end other roles' sessions: drop when they are gone
        run_sql(with_database(base_url, "postgres"), f'DROP DATABASE IF EXISTS "{name}"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_server(name: str, env: dict[str, str], port: int | None = None) -> Server:
    port = port or free_port()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{name}-{os.getpid()}-{port}.log"
    log = log_path.open("wb")
    # Each service's links name the address it is served at, as a deployment's public base URL would.
    env = {"CANVASS_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", **env}
    proc = subprocess.Popen(
        uvicorn_command(SERVICES[name], "127.0.0.1", port, env),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Server(name, port, proc, log_path)
    try:
        wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def wait_ready(server: Server, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {server.log_path.read_text()[-3000:]}")
        try:
            if httpx.get(server.url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready in {timeout}s: {server.log_path.read_text()[-3000:]}")


@dataclass
class Mailbox:
    """What the local SMTP sink received."""

    messages: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, address: str) -> list[Message]:
        """The messages addressed to exactly `address` (any case): not to an address that merely contains it, as
        `9e3b12fc-0@example.org` contains `fc-0@example.org`."""
        want = address.strip().lower()
        with self.lock:
            return [
                m
                for m in self.messages
                if want in {a.lower() for _, a in getaddresses([str(v) for v in m.get_all("To", [])])}
            ]

    def wait_for(
        self, address: str, predicate: Callable[[Message], bool] = lambda m: True, timeout: float = 10.0
    ) -> Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.to(address):
                if predicate(m):
                    return m
            time.sleep(0.05)
        raise AssertionError(f"no matching mail to {address} within {timeout}s")


@contextmanager
def smtp_sink() -> Iterator[tuple[int, Mailbox]]:
    from aiosmtpd.controller import Controller

    box = Mailbox()

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with box.lock:
                box.messages.append(message_from_bytes(envelope.original_content or envelope.content))
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()


class Db:
    """Synchronous access to the test database for assertions about what is really stored."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection = self.loop.run_until_complete(asyncpg.connect(url))

    def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return self.loop.run_until_complete(self.conn.fetch(sql, *args))

    def fetchval(self, sql: str, *args: Any) -> Any:
        return self.loop.run_until_complete(self.conn.fetchval(sql, *args))

    def execute(self, sql: str, *args: Any) -> str:
        return self.loop.run_until_complete(self.conn.execute(sql, *args))

    def close(self) -> None:
        self.loop.run_until_complete(self.conn.close())
        self.loop.close()


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler for the suite's receivers: no access log on stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def http_server(
    handler: type[BaseHTTPRequestHandler], wrap: Callable[[Any], Any] | None = None
) -> Iterator[int]:
    """Serve `handler` on 127.0.0.1 (its socket wrapped by `wrap`, e.g. for TLS) in a thread: the port."""
    server = HTTPServer(("127.0.0.1", 0), handler)
    if wrap is not None:
        server.socket = wrap(server.socket)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def open_owner_text(registration_id: Any, sealed: bytes | None, context: str) -> str | None:
    """A text sealed under a registration's data key, opened with the key from the run's key store (as the
    services open it; shared/keystore.py), or None when there is no text or no key any more."""
    from shared.keystore import KeyStore, kek_ring, open_with

    rid = registration_id if isinstance(registration_id, uuid.UUID) else uuid.UUID(str(registration_id))

    async def _go() -> str | None:
        store = KeyStore(os.environ["CANVASS_KEYSTORE_URL"], kek_ring(), "tests")
        try:
            return open_with(await store.key(rid), sealed, context)
        finally:
            await store.close()

    return asyncio.run(_go())


def seal_owner_text(registration_id: uuid.UUID, column: str, value: str) -> bytes:
    """A registration's text sealed as registry_api seals it: under the registration's data key, created in the
    run's key store if it has none (for tests that write rows directly)."""
    from shared.keystore import KeyStore, kek_ring

    async def _go() -> bytes:
        store = KeyStore(os.environ["CANVASS_KEYSTORE_URL"], kek_ring(), "tests")
        try:
            key = (await store.ensure([registration_id]))[registration_id]
        finally:
            await store.close()
        sealed = key.seal(value, f"registration:{registration_id}:{column}")
        assert sealed is not None
        return sealed

    return asyncio.run(_go())


def eventually(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll until `check()` is truthy (the worker runs on its own clock); its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


PGBOUNCER = "/usr/sbin/pgbouncer"  # Debian's pgbouncer (make test installs it: scripts/ensure_debian.sh)
PGBOUNCER_ADMIN = ("pgbouncer_admin", "pgbouncer_admin")


@dataclass
class PgBouncer:
    """A PgBouncer of the test's own, in transaction mode, on a free port in front of the shared cluster: its
    configuration is a folder of its own (the cluster's is never touched)."""

    port: int
    process: subprocess.Popen[bytes]
    folder: Path
    log_path: Path

    def url(self, url: str, alias: str) -> str:
        """`url`'s role and password, through this pooler, to its database entry `alias`."""
        parts = urlsplit(with_database(url, alias))
        credentials = parts.netloc.rpartition("@")[0]
        return urlunsplit((parts.scheme, f"{credentials}@127.0.0.1:{self.port}", parts.path, "", ""))

    def show(self, what: str) -> list[dict[str, str]]:
        """`SHOW <what>` on PgBouncer's admin console (simple query protocol only: psql, not asyncpg)."""
        user, password = PGBOUNCER_ADMIN
        command = ["psql", "-X", "--csv", "-h", "127.0.0.1", "-p", str(self.port), "-U", user, "pgbouncer"]
        out = subprocess.run(
            [*command, "-c", f"SHOW {what}"],
            env={**os.environ, "PGPASSWORD": password},
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        return list(csv.DictReader(out.splitlines()))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@contextmanager
def pgbouncer(
    upstream: str,
    databases: dict[str, dict[str, str]],
    users: dict[str, str],
    *,
    pool_size: int,
    max_client_conn: int = 200,
) -> Iterator[PgBouncer]:
    """Start Debian's PgBouncer in transaction mode in front of `upstream`'s server: `databases` maps each entry's
    name to its settings (`dbname`, `connect_query`, ...), `users` each role to its password; at most `pool_size`
    server connections per database entry. Stopped (and its folder removed) on leaving."""
    parts = urlsplit(upstream)
    folder = Path(tempfile.mkdtemp(prefix="canvass-pgbouncer-"))
    # Run as root, PgBouncer drops to `nobody`, which must read its files.
    folder.chmod(0o755)
    port = free_port()
    entries = "\n".join(
        f"{name} = host={parts.hostname} port={parts.port or 5432} "
        + " ".join(f"{k}={v}" if " " not in v else f"{k}='{v}'" for k, v in entry.items())
        for name, entry in databases.items()
    )
    userlist = {**users, PGBOUNCER_ADMIN[0]: PGBOUNCER_ADMIN[1]}
    (folder / "userlist.txt").write_text("".join(f'"{u}" "{p}"\n' for u, p in userlist.items()))
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"pgbouncer-{os.getpid()}-{port}.log"
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
{entries}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {folder / "userlist.txt"}
admin_users = {PGBOUNCER_ADMIN[0]}
pool_mode = transaction
default_pool_size = {pool_size}
max_db_connections = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = {max_client_conn}
; registry_api's import pool asks for no statement timeout at start-up; it sets it per transaction (shared/db.py).
ignore_startup_parameters = statement_timeout
logfile =
"""
    )
    for f in folder.iterdir():
        f.chmod(0o644)
    log = log_path.open("wb")
    as_nobody = ["-u", "nobody"] if os.geteuid() == 0 else []
    proc = subprocess.Popen(
        [PGBOUNCER, *as_nobody, str(folder / "pgbouncer.ini")], stdout=log, stderr=subprocess.STDOUT
    )
    bouncer = PgBouncer(port, proc, folder, log_path)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {log_path.read_text()[-2000:]}")
            try:
                bouncer.show("VERSION")
                break
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(folder, ignore_errors=True)


def pooler_entries(
    app_url: str, geo_url: str, keystore: str, statement_timeout_ms: int
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """PgBouncer's database entries for the run's databases, with the session settings the services send at
    start-up when they connect directly (shared/db.py), and the roles' passwords."""
    timeout = f"SET statement_timeout = {statement_timeout_ms}"
    entries = {
        urlsplit(app_url).path[1:]: {"dbname": urlsplit(app_url).path[1:], "connect_query": timeout},
        "geo": {
            "dbname": urlsplit(geo_url).path[1:],
            "connect_query": f"{timeout}; SET default_transaction_read_only = on",
        },
        urlsplit(keystore).path[1:]: {"dbname": urlsplit(keystore).path[1:], "connect_query": timeout},
    }
    users = {str(urlsplit(u).username): str(urlsplit(u).password) for u in (app_url, geo_url, keystore)}
    return entries, users


def jwk(key: Any, kid: str) -> dict[str, Any]:
    """An RSA key's public half as a JWK of a JWKS, named `kid`."""
    import jwt

    out: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    out.update(kid=kid, use="sig", alg="RS256")
    return out


@dataclass
class JwksIssuer:
    """An identity provider's JWKS served over real HTTP (`keys` can be changed: a rotation), and its tokens."""

    url: str
    keys: list[dict[str, Any]] = field(default_factory=list)
    iss: str = "canvass-dev"
    reads: int = 0

    def token(
        self, key: Any, kid: str, sub: str, ttl_s: int = 3600, agency: str = "mke", role: str = "investigator"
    ) -> str:
        import jwt

        now = int(time.time())
        claims = {
            "sub": sub,
            "role": role,
            "agency": agency,
            "iss": self.iss,
            "aud": "canvass",
            "iat": now,
            "exp": now + ttl_s,
        }
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

    def reread(self) -> None:
        """What this process's JWKS client does when its key set's lifespan ends."""
        from shared import auth

        auth.jwks_client(self.url).get_jwk_set(refresh=True)


@contextmanager
def jwks_issuer(keys: list[dict[str, Any]], iss: str = "canvass-dev") -> Iterator[JwksIssuer]:
    port = free_port()
    state = JwksIssuer(f"http://127.0.0.1:{port}/.well-known/jwks.json", keys, iss)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.reads += 1
            body = json.dumps({"keys": state.keys}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
