"""What one bench run is: its size (full or QUICK), the bounds of every load, where it writes, which databases.

Everything generated lives under `.local/bench/` (git-ignored); the only file written into the repository is the
results file, `docs/bench-results.md`. The databases are dedicated to the bench and named after the size, so a
QUICK run and a full run keep their own data and both are reused on the next run.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".local" / "bench"
LOGS = WORK / "logs"
RESULTS_FILE = ROOT / "docs" / "bench-results.md"
LOCAL_URL = "postgresql://canvass:canvass@127.0.0.1:54320/canvass"
LOCAL_READ_USER = ("canvass_geo", "canvass_geo")

SEED = 20261121


def with_database(url: str, name: str, *, user: str | None = None, password: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if user is not None:
        host = netloc.rpartition("@")[2]
        netloc = f"{user}:{password}@{host}" if password else f"{user}@{host}"
    return urlunsplit((parts.scheme, netloc, "/" + name, parts.query, parts.fragment))


def asyncpg_url(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def loopback_only(url: str) -> None:
    """Every load of the bench targets this machine: refuse a database anywhere else."""
    host = urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
        sys.exit(
            f"bench: the database must be on 127.0.0.1 (the bench only loads this machine), not {host!r}"
        )


@dataclass
class Bench:
    quick: bool
    owner_url: str  # the role that owns the schema (runs migrations, loads data)
    read_url: str  # geo_query's read-only role
    app_url: str = (
        ""  # the services' runtime role (rows and audit append only); the owner's when not separate
    )
    started: float = field(default_factory=time.monotonic)
    only: str | None = None  # "queries" or "imports": a partial run (the results file is not written)
    shapes: set[str] | None = None  # the query shapes to measure (all when None): a partial run
    workers: int = 1  # geo_query's uvicorn workers
    log_level: str = "WARNING"  # geo_query's log level (INFO: the access log too)
    # The bench databases' base name (CANVASS_BENCH_DB): another checkout sharing the cluster picks its own so
    # neither drops and reloads the other's data set; never one of the tests' names (canvass_tpl_…, canvass_test_…).
    db_base: str = "canvass_bench"
    db_override: str | None = None  # the cost curve's database of the scale being measured
    scale: int | None = None  # `make bench SCALE=N`: the cost curve alone, at 1 and N million cameras

    # ------------------------------------------------------------------------------------------------ size

    @property
    def cameras_per_layout(self) -> int:
        return 100_000 if self.quick else 1_000_000

    @property
    def queries_per_shape(self) -> int:
        """Distinct requests per query shape and layout; every driver rotates through the same ones."""
        return 50 if self.quick else 200

    @property
    def cell_seconds(self) -> float:
        """The time bound of one measured cell (a shape at a client count against one server)."""
        return 1.0 if self.quick else 7.0

    @property
    def cell_requests(self) -> int:
        """The request bound of one cell (whichever of time and count comes first ends it)."""
        return 4_000 if self.quick else 40_000

    @property
    def warmup_seconds(self) -> float:
        return 0.3 if self.quick else 1.0

    @property
    def import_sizes(self) -> tuple[int, int]:
        return (10_000, 100_000) if self.quick else (100_000, 1_000_000)

    @property
    def clients(self) -> tuple[int, int]:
        return (1, 16)

    # ----------------------------------------------------------------------------------------- databases

    @property
    def db_name(self) -> str:
        if self.db_override:
            return self.db_override
        return f"{self.db_base}_quick" if self.quick else self.db_base

    @property
    def import_db_name(self) -> str:
        return f"{self.db_base}_import"

    def scale_db_name(self, millions: int) -> str:
        """The cost curve's database of `millions` million cameras (QUICK: a tenth of them)."""
        return f"{self.db_base}_scale{millions}" + ("_quick" if self.quick else "")

    def owner(self, name: str | None = None) -> str:
        return with_database(self.owner_url, name or self.db_name)

    def app(self, name: str | None = None) -> str:
        """The URL the services connect with, as they run under `make run` and in compose."""
        return with_database(self.app_url or self.owner_url, name or self.db_name)

    def reader(self, name: str | None = None) -> str:
        return with_database(self.read_url, name or self.db_name)

    @property
    def admin_url(self) -> str:
        return with_database(self.owner_url, "postgres")

    # --------------------------------------------------------------------------------------------- files

    @property
    def data_dir(self) -> Path:
        return WORK / ("quick" if self.quick else "full")

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def from_environment(quick: bool) -> Bench:
    # MIGRATIONS_DATABASE_URL names the owner when the services run as a separate runtime role (DATABASE_URL).
    migrations = os.environ.get("MIGRATIONS_DATABASE_URL")
    owner = asyncpg_url(migrations or os.environ.get("DATABASE_URL") or LOCAL_URL)
    loopback_only(owner)
    app = asyncpg_url(os.environ["DATABASE_URL"]) if migrations and os.environ.get("DATABASE_URL") else owner
    loopback_only(app)
    reader = os.environ.get("GEO_QUERY_DATABASE_URL")
    if reader:
        reader = asyncpg_url(reader)
        loopback_only(reader)
    elif "DATABASE_URL" not in os.environ:
        reader = with_database(owner, "canvass", user=LOCAL_READ_USER[0], password=LOCAL_READ_USER[1])
    else:
        reader = owner
    for d in (WORK, LOGS):
        d.mkdir(parents=True, exist_ok=True)
    base = os.environ.get("CANVASS_BENCH_DB") or "canvass_bench"
    if not re.fullmatch(r"canvass_bench[a-z0-9_]{0,30}", base):
        sys.exit(
            f"bench: CANVASS_BENCH_DB must start with canvass_bench (lower case, digits, _), not {base!r}"
        )
    return Bench(quick=quick, owner_url=owner, read_url=reader, app_url=app, db_base=base)


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)
