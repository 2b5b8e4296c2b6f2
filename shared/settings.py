"""Settings for every service, read from the environment (pydantic-settings).

Outside development and test a placeholder secret or encryption key is refused at start-up, so a deployment
can never run on the keys that ship with the source; a malformed key ring is refused in every environment.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_DATABASE_URL = "postgresql://canvass:canvass@127.0.0.1:54320/canvass"
DEV_PUBLIC_BASE_URL = "http://127.0.0.1:8000"
DEV_SECRET_KEY = "dev-only-secret-key-change-me-000000000000"  # noqa: S105 - the placeholder we refuse
# 32 zero-ish bytes, base64: the development encryption key. Refused outside development.
DEV_ENCRYPTION_KEY = "dev:" + base64.urlsafe_b64encode(b"canvass-development-key-32bytes!").decode()
# The development key store (shared/keystore.py): its own database and role on the local cluster
# (scripts/localdb.sh creates them), and the development key-encryption key. Both refused in production.
LOCAL_KEYSTORE_URL = "postgresql://canvass_keys:canvass_keys@127.0.0.1:54320/canvass_keys"
DEV_KEYSTORE_KEY = "devk:" + base64.urlsafe_b64encode(b"canvass-dev-key-encryption-key!!").decode()

ServiceName = Literal["registry_api", "geo_query", "requests_api", "community_api"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    # Production unless said otherwise: a deployment that forgets CANVASS_ENV refuses the placeholder keys
    # instead of running on them. `make run` and `make test` say development and test.
    env: Literal["development", "test", "production"] = Field(
        "production",
        alias="CANVASS_ENV",
        description="The environment: `development` and `test` accept the placeholder keys and development "
        "tokens; `production` (the default) refuses them.",
    )
    database_url: str = Field(
        LOCAL_DATABASE_URL,
        alias="DATABASE_URL",
        description="The database the services connect to, with a role that may only read and write rows.",
    )
    # The role that owns the schemas and runs migrations; the services connect with DATABASE_URL's role, which
    # may only read and write rows (see migration 0005). Defaults to DATABASE_URL (one role for everything).
    migrations_database_url: str | None = Field(
        None,
        alias="MIGRATIONS_DATABASE_URL",
        description="The role that owns the schemas and runs the migrations; unset: DATABASE_URL.",
    )
    registry_api_database_url: str | None = Field(
        None,
        alias="REGISTRY_API_DATABASE_URL",
        description="registry_api's own database URL; unset: DATABASE_URL.",
    )
    geo_query_database_url: str | None = Field(
        None,
        alias="GEO_QUERY_DATABASE_URL",
        description="geo_query's own database URL (a read-only role, perhaps a replica); unset: "
        "DATABASE_URL.",
    )
    requests_api_database_url: str | None = Field(
        None,
        alias="REQUESTS_API_DATABASE_URL",
        description="requests_api's own database URL; unset: DATABASE_URL.",
    )
    community_api_database_url: str | None = Field(
        None,
        alias="COMMUNITY_API_DATABASE_URL",
        description="community_api's own database URL; unset: DATABASE_URL.",
    )
    # Where audit records are appended (the primary), even when geo_query reads from a replica.
    audit_database_url: str | None = Field(
        None,
        alias="AUDIT_DATABASE_URL",
        description="Where audit records are appended (the primary, even when geo_query reads a replica); "
        "unset: DATABASE_URL.",
    )

    # A geo_query reading a streaming replica answers /readyz with the replica's replay lag, and 503 beyond this,
    # so a load balancer routes searches away from a replica that has fallen behind (services/geo_query/database.py).
    geo_query_max_replica_lag_s: float = Field(
        30.0,
        alias="GEO_QUERY_MAX_REPLICA_LAG_S",
        gt=0,
        description="The most seconds a replica geo_query reads may lag behind the primary before its /readyz "
        "answers 503 (reading the primary: no effect).",
    )
    # Worker processes per service (uvicorn --workers): `make run` and the test suite pass it to uvicorn, and
    # docker-compose as WEB_CONCURRENCY. Each worker is a process of its own with its own pools, so a service opens
    # up to workers x its pools' sizes connections (docs/scaling.md counts them).
    workers: int = Field(
        1,
        alias="CANVASS_WORKERS",
        ge=1,
        le=64,
        description="Worker processes per service (uvicorn); each opens its own pools of CANVASS_POOL_SIZE "
        "connections.",
    )

    statement_timeout_ms: int = Field(
        5000,
        alias="CANVASS_STATEMENT_TIMEOUT_MS",
        ge=100,
        description="The longest one statement of a request may run, in milliseconds.",
    )
    pool_size: int = Field(
        20,
        alias="CANVASS_POOL_SIZE",
        ge=1,
        le=200,
        description="The most connections each service process's pool opens.",
    )
    # Connections each asyncpg pool keeps open however idle the service is (the rest close after 5 idle
    # minutes): a burst after a quiet spell, such as a CAD's first queries after a calm hour, then waits for
    # fewer new connections (each a TCP and authentication exchange plus type introspection, several ms).
    pool_min_size: int = Field(
        4,
        alias="CANVASS_POOL_MIN_SIZE",
        ge=0,
        le=200,
        description="Connections each pool keeps open however idle the service is.",
    )
    max_body_bytes: int = Field(
        1_048_576,
        alias="CANVASS_MAX_BODY_BYTES",
        ge=1024,
        description="The largest request body an operation takes, in bytes (uploads have their own "
        "ceilings).",
    )
    # "transaction": the database URLs name a pooler in transaction mode (PgBouncer), which hands each
    # transaction whichever server connection is free. The services then keep no prepared statement across
    # statements and send only the session settings the pooler carries over (shared/db.py); the pooler's own
    # database entries set the rest (docs/deployment.md, "Through PgBouncer").
    database_pooler: Literal["none", "transaction"] = Field(
        "none",
        alias="CANVASS_DATABASE_POOLER",
        description='"transaction" when the database URLs name a pooler in transaction mode (PgBouncer): no '
        "prepared statement is kept across statements.",
    )

    # Authentication. Agency users' tokens come from their identity provider (RS256/ES256 against public keys
    # or a JWKS URL), issued by `jwt_issuer` or by an issuer of `jwt_issuers` (JSON: issuer -> the agency slugs
    # it may speak for, "*" for any). HS256 with the secret key is Canvass's own: in development and tests any
    # role (`make token`); in production only the `service` role, for one service calling another.
    secret_key: str = Field(
        DEV_SECRET_KEY,
        alias="CANVASS_SECRET_KEY",
        description="Signs Canvass's own HS256 tokens (the `service` role in production; any role in "
        "development).",
    )
    allow_hs256: bool = Field(
        True,
        alias="CANVASS_ALLOW_HS256",
        description="Whether HS256 tokens signed with the secret key are accepted at all.",
    )
    jwt_issuers: dict[str, list[str]] | None = Field(
        None,
        alias="CANVASS_JWT_ISSUERS",
        description='JSON: each accepted token issuer -> the agency slugs it may speak for (`"*"`: any).',
    )
    # Each issuer's own keys: a token is checked against the keys of the issuer it names only.
    # CANVASS_JWKS_URL / CANVASS_JWT_PUBLIC_KEYS stand for at most one issuer: shared by two, a key of one would
    # sign tokens naming the other.
    jwt_issuer_keys: dict[str, str] | None = Field(
        None,
        alias="CANVASS_JWT_ISSUER_KEYS",
        description="JSON: each token issuer -> its own JWKS URL, or its PEM public keys (or a file of them).",
    )
    jwt_max_lifetime_s: int = Field(
        24 * 3600,
        alias="CANVASS_JWT_MAX_LIFETIME_S",
        ge=60,
        description="The longest lifetime a token may have, in seconds. A verified token is remembered by each "
        "process (by its SHA-256, at most 4,096 of them) until its `exp`, never past it.",
    )
    jwt_public_keys: str | None = Field(
        None,
        alias="CANVASS_JWT_PUBLIC_KEYS",
        description="PEM public keys (the text, or a file's path) for the identity provider's RS256/ES256 "
        "tokens.",
    )
    jwks_url: str | None = Field(
        None,
        alias="CANVASS_JWKS_URL",
        description="The identity provider's JWKS URL, for its RS256/ES256 tokens. Read again every 300 s: a key "
        "withdrawn from it stops admitting its tokens, remembered ones included, once the set without it is read "
        "(the same holds for a JWKS URL of CANVASS_JWT_ISSUER_KEYS).",
    )
    jwt_issuer: str = Field(
        "canvass-dev",
        alias="CANVASS_JWT_ISSUER",
        description="The `iss` accepted tokens carry (besides those of CANVASS_JWT_ISSUERS).",
    )
    jwt_audience: str = Field(
        "canvass", alias="CANVASS_JWT_AUDIENCE", description="The `aud` accepted tokens carry."
    )

    # Authenticated encryption of personal data: "kid:base64key[,kid:base64key...]"; the first encrypts.
    encryption_keys: str = Field(
        DEV_ENCRYPTION_KEY,
        alias="CANVASS_ENCRYPTION_KEY",
        description="The key ring sealing personal data: `kid:base64key[,kid:base64key...]`, 32-byte keys; "
        "the first seals.",
    )
    # The key store of the per-registration data keys that seal what owners write (shared/keystore.py): a
    # database apart from DATABASE_URL's, never in its backups; and the key ring ("kid:base64key[,...]", the
    # first wraps) that wraps the data keys it holds. Both required in production.
    keystore_url: str | None = Field(
        None,
        alias="CANVASS_KEYSTORE_URL",
        description="The key store's own database (the per-registration data keys), apart from "
        "DATABASE_URL's; required in production.",
    )
    keystore_keys: str = Field(
        DEV_KEYSTORE_KEY,
        alias="CANVASS_KEYSTORE_KEY",
        description="The key ring wrapping the key store's data keys (`kid:base64key[,...]`; the first "
        "wraps); must differ from CANVASS_ENCRYPTION_KEY.",
    )

    geo_query_url: str = Field(
        "http://127.0.0.1:8002",
        alias="GEO_QUERY_URL",
        description="Where the other services reach geo_query.",
    )
    registry_api_url: str = Field(
        "http://127.0.0.1:8001",
        alias="REGISTRY_API_URL",
        description="Where the other services reach registry_api.",
    )
    live_relay_url: str = Field(
        "http://127.0.0.1:8005",
        alias="LIVE_RELAY_URL",
        description="Where agencies' browsers reach live_relay (registry_api names it in a live window's view).",
    )
    # The bearer token one service presents to another (e.g. requests_api asking registry_api to notify an
    # owner). Unset (the usual case), requests_api mints its own short-lived `service` token from the secret key
    # the services share and renews it before it expires; set, this static token is presented instead (it
    # lives at most CANVASS_JWT_MAX_LIFETIME_S). An identity provider cannot issue it: only Canvass's own
    # services act as `service`.
    service_token: str | None = Field(
        None,
        alias="CANVASS_SERVICE_TOKEN",
        description="A static bearer token one service presents to another; unset: requests_api mints its "
        "own from the secret key.",
    )
    geo_query_timeout_s: float = Field(
        5.0, alias="GEO_QUERY_TIMEOUT_S", gt=0, description="Seconds a call to geo_query may take."
    )
    geo_route_max_length_m: float = Field(
        50_000.0,
        alias="CANVASS_GEO_ROUTE_MAX_LENGTH_M",
        gt=0,
        le=1_000_000,
        description="The longest path a route canvass (`POST /v1/cameras/route`) may follow, in metres.",
    )
    # Where clients reach the services: every absolute link an answer or a mail carries is built on it, never on
    # the request's Host header (which a client chooses). Required in production; development and test use
    # DEV_PUBLIC_BASE_URL unless told otherwise (`make run` and the tests give each service its own address).
    public_base_url: str | None = Field(
        None,
        alias="CANVASS_PUBLIC_BASE_URL",
        description="Where clients reach the services: every absolute link is built on it; required in "
        "production.",
    )

    # Browsers enforce it: an origin not named gets no CORS headers, so its pages cannot read any answer.
    cors_origins: str | None = Field(
        None,
        alias="CANVASS_CORS_ORIGINS",
        description="The browser origins (comma-separated) of front-ends that may call the APIs; unset: none in "
        "production, the local portal's in development and test.",
    )
    portal_port: int = Field(
        8000,
        alias="PORTAL_PORT",
        ge=1,
        le=65535,
        description="The local portal's port: its origins are the ones allowed in development and test "
        "without CANVASS_CORS_ORIGINS.",
    )

    smtp_host: str = Field(
        "127.0.0.1", alias="CANVASS_SMTP_HOST", description="The mail relay's host (with the `smtp` backend)."
    )
    smtp_port: int = Field(2525, alias="CANVASS_SMTP_PORT", description="The mail relay's port.")
    mail_from: str = Field(
        "Canvass <no-reply@canvass.invalid>",
        alias="CANVASS_MAIL_FROM",
        description="The sender of every mail.",
    )
    # "log": no mail server; in development each message is written to `mail_dir` (git-ignored), elsewhere dropped.
    mail_backend: Literal["smtp", "log"] = Field(
        "log",
        alias="CANVASS_MAIL_BACKEND",
        description="`smtp`: send through the relay; `log`: no relay (development writes each message to "
        "CANVASS_MAIL_DIR, elsewhere dropped).",
    )
    mail_dir: str = Field(
        ".local/mail",
        alias="CANVASS_MAIL_DIR",
        description="Where the `log` backend writes messages in development.",
    )

    # How long a create's answer is kept for a retry with the same Idempotency-Key (see shared/idempotency.py).
    idempotency_replay_window_s: int = Field(
        24 * 3600,
        alias="CANVASS_IDEMPOTENCY_REPLAY_WINDOW_S",
        ge=60,
        le=30 * 24 * 3600,
        description="How long a create's answer is kept for a retry with the same Idempotency-Key, in "
        "seconds.",
    )

    evidence_dir: str = Field(
        ".local/evidence", alias="CANVASS_EVIDENCE_DIR", description="Where uploaded evidence is stored."
    )
    log_level: str = Field(
        "INFO", alias="CANVASS_LOG_LEVEL", description="The log level (`DEBUG`, `INFO`, `WARNING`, ...)."
    )

    @model_validator(mode="after")
    def _refuse_malformed_key_rings(self) -> Settings:
        # Checked when settings load, so a service refuses to start on a malformed ring (naming the setting)
        # instead of failing at its first seal. Imported here: shared.crypto reads these settings.
        from shared.crypto import parse_key_ring

        parse_key_ring(self.encryption_keys, "CANVASS_ENCRYPTION_KEY")
        parse_key_ring(self.keystore_keys, "CANVASS_KEYSTORE_KEY")
        return self

    @model_validator(mode="after")
    def _one_issuer_per_key_set(self) -> Settings:
        accepted = set(self.jwt_issuers) if self.jwt_issuers is not None else {self.jwt_issuer}
        own = self.jwt_issuer_keys or {}
        unknown = sorted(set(own) - accepted)
        if unknown:
            raise ValueError(
                f"CANVASS_JWT_ISSUER_KEYS names {unknown[0]!r}, which CANVASS_JWT_ISSUERS does not accept"
            )
        sharing = sorted(accepted - set(own))
        if (self.jwks_url or self.jwt_public_keys) and len(sharing) > 1:
            raise ValueError(
                f"the issuers {', '.join(map(repr, sharing))} would share the keys of CANVASS_JWKS_URL /"
                " CANVASS_JWT_PUBLIC_KEYS, so a key of one would sign tokens naming another: give each its own"
                " keys in CANVASS_JWT_ISSUER_KEYS"
            )
        return self

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.env == "production":
            if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
                raise ValueError(
                    "CANVASS_SECRET_KEY is the development placeholder or too short (< 32 chars)"
                )
            if self.encryption_keys == DEV_ENCRYPTION_KEY:
                raise ValueError("CANVASS_ENCRYPTION_KEY is the development placeholder")
            if not self.public_base_url:
                raise ValueError(
                    "CANVASS_PUBLIC_BASE_URL is required: the URL clients reach the services at, for the links"
                )
            if not self.keystore_url:
                raise ValueError(
                    "CANVASS_KEYSTORE_URL is required: the key store's own database, apart from DATABASE_URL's"
                )
            if self.keystore_keys == DEV_KEYSTORE_KEY:
                raise ValueError("CANVASS_KEYSTORE_KEY is the development placeholder")
            if self.keystore_keys == self.encryption_keys:
                raise ValueError("CANVASS_KEYSTORE_KEY must differ from CANVASS_ENCRYPTION_KEY")
        if self.public_base_url is not None:
            parts = urlsplit(self.public_base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
                raise ValueError(
                    "CANVASS_PUBLIC_BASE_URL must be an absolute http(s) URL without query or fragment"
                )
        return self

    @property
    def keystore(self) -> str:
        """The key store's URL (development and test: the local cluster's `canvass_keys` database)."""
        return self.keystore_url or LOCAL_KEYSTORE_URL

    @property
    def public_base(self) -> str:
        """The base of every absolute link, without a trailing slash."""
        return (self.public_base_url or DEV_PUBLIC_BASE_URL).rstrip("/")

    def database_url_for(self, service: ServiceName) -> str:
        own = {
            "registry_api": self.registry_api_database_url,
            "geo_query": self.geo_query_database_url,
            "requests_api": self.requests_api_database_url,
            "community_api": self.community_api_database_url,
        }[service]
        return own or self.database_url

    @property
    def migrations_url(self) -> str:
        return self.migrations_database_url or self.database_url

    @property
    def audit_url(self) -> str:
        return self.audit_database_url or self.database_url


@lru_cache
def get_settings() -> Settings:
    return Settings()
