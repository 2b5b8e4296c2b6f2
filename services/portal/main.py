"""The portal's server: the built files of `web/` (web/dist), the runtime `/config.json` the page reads first
(the services' URLs, the tile and geocoder URLs, the languages, each agency's identity provider, where to download
the edge agent), the edge agent's source package (`/downloads/canvass-edge-<version>.tar.gz`, packed from `edge/`
when the server starts, so an owner installs the agent of this deployment with one command), and the security
headers every answer carries.

It imports no other service: the portal talks to the services only through their public HTTP contracts, from
the browser. Every path that is not a file is the single page (its router draws the page for the path).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field, HttpUrl, TypeAdapter
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import mint_token

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIST = ROOT / "web" / "dist"
EDGE = ROOT / "edge"
LANGUAGES = ["en", "es"]
TERMS_VERSION = "2026-01"
# The roles the development sign-in offers: the public half needs the advocate; the others are for trying the
# services' agency side by hand.
DEV_ROLES = ("advocate", "investigator", "supervisor", "agency_admin", "auditor")


_SLUG = r"^[a-z0-9][a-z0-9-]{1,62}$"


class DevSignIn(BaseModel):
    role: str = Field(pattern="^(" + "|".join(DEV_ROLES) + ")$")
    agency: str = Field(pattern=_SLUG)


class AgencyProvider(BaseModel):
    """An agency's own OpenID provider: the portal signs its staff in there (authorization code flow + PKCE)."""

    issuer: HttpUrl
    client_id: str = Field(min_length=1, max_length=200)
    scope: str = Field("openid", pattern=r"^[\x21-\x7e]+( [\x21-\x7e]+)*$")


_PROVIDERS = TypeAdapter(dict[str, AgencyProvider])


def agency_providers(raw: str | None) -> dict[str, dict[str, str]]:
    """CANVASS_AGENCY_OIDC: JSON mapping each agency's slug to {issuer, client_id[, scope]}. A malformed
    setting stops the portal at start (a sign-in page offering a broken provider helps no one)."""
    if not raw:
        return {}
    providers = _PROVIDERS.validate_python(json.loads(raw))
    for slug in providers:
        if not re.fullmatch(_SLUG, slug):
            raise ValueError(f"CANVASS_AGENCY_OIDC: {slug!r} is not an agency slug")
    return {
        slug: {"issuer": str(p.issuer).rstrip("/"), "client_id": p.client_id, "scope": p.scope}
        for slug, p in sorted(providers.items())
    }


def _origin(url: str | None) -> str | None:
    """The scheme://host[:port] of a URL (a tile template's placeholders are in its path or its subdomain)."""
    if not url:
        return None
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    netloc = parts.netloc.replace("{s}", "*")
    return f"{parts.scheme}://{netloc}"


class PortalSettings(BaseSettings):
    """The portal's settings, in the project's settings style (pydantic-settings, as shared/settings.py), read
    when it starts: a malformed value stops it there, naming the variable. docs/settings.md lists them."""

    model_config = SettingsConfigDict(
        extra="ignore", populate_by_name=True, env_ignore_empty=True, frozen=True
    )

    env: Literal["development", "test", "production"] = Field(
        "production",
        alias="CANVASS_ENV",
        description="`development` and `test` offer the development sign-in; `production` (the default) not.",
    )
    dist: str | None = Field(
        None, alias="CANVASS_PORTAL_DIST", description="The built page's directory; unset: web/dist."
    )
    registry_api_url: str | None = Field(
        None,
        alias="REGISTRY_API_URL",
        description="Where the page reaches registry_api; unset: 127.0.0.1 on REGISTRY_API_PORT.",
    )
    registry_api_port: int = Field(
        8001,
        alias="REGISTRY_API_PORT",
        ge=1,
        le=65535,
        description="registry_api's port on 127.0.0.1, when REGISTRY_API_URL is unset.",
    )
    geo_query_url: str | None = Field(
        None,
        alias="GEO_QUERY_URL",
        description="Where the page reaches geo_query; unset: 127.0.0.1 on GEO_QUERY_PORT.",
    )
    geo_query_port: int = Field(
        8002,
        alias="GEO_QUERY_PORT",
        ge=1,
        le=65535,
        description="geo_query's port on 127.0.0.1, when GEO_QUERY_URL is unset.",
    )
    requests_api_url: str | None = Field(
        None,
        alias="REQUESTS_API_URL",
        description="Where the page reaches requests_api; unset: 127.0.0.1 on REQUESTS_API_PORT.",
    )
    requests_api_port: int = Field(
        8003,
        alias="REQUESTS_API_PORT",
        ge=1,
        le=65535,
        description="requests_api's port on 127.0.0.1, when REQUESTS_API_URL is unset.",
    )
    community_api_url: str | None = Field(
        None,
        alias="COMMUNITY_API_URL",
        description="Where the page reaches community_api; unset: 127.0.0.1 on COMMUNITY_API_PORT.",
    )
    community_api_port: int = Field(
        8004,
        alias="COMMUNITY_API_PORT",
        ge=1,
        le=65535,
        description="community_api's port on 127.0.0.1, when COMMUNITY_API_URL is unset.",
    )
    live_relay_url: str | None = Field(
        None,
        alias="LIVE_RELAY_URL",
        description="Where the page reaches live_relay (the live video); unset: 127.0.0.1 on LIVE_RELAY_PORT.",
    )
    live_relay_port: int = Field(
        8005,
        alias="LIVE_RELAY_PORT",
        ge=1,
        le=65535,
        description="live_relay's port on 127.0.0.1, when LIVE_RELAY_URL is unset.",
    )
    tile_url: str | None = Field(
        None,
        alias="CANVASS_TILE_URL",
        description="The map's tile URL template; unset: the areas and pins on a plain background.",
    )
    tile_attribution: str | None = Field(
        None, alias="CANVASS_TILE_ATTRIBUTION", description="The tiles' attribution, shown on the map."
    )
    geocoder_url: str | None = Field(
        None,
        alias="CANVASS_GEOCODER_URL",
        description="A geocoder (Nominatim's search API) for typed addresses; unset: none.",
    )
    terms_version: str = Field(
        TERMS_VERSION,
        alias="CANVASS_TERMS_VERSION",
        description="The version of the terms an owner accepts when registering.",
    )
    agency_oidc: str | None = Field(
        None,
        alias="CANVASS_AGENCY_OIDC",
        description="JSON: each agency's slug -> its identity provider `{issuer, client_id[, scope]}`, for its "
        "staff's sign-in.",
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource, *_: Any, **__: Any
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Read from the mapping portal_settings() is given (the environment, or a test's own), nothing else.
        return (init_settings,)


def portal_settings(env: Mapping[str, str]) -> PortalSettings:
    """The settings from `env` alone (an empty variable means its default, as when read from the environment)."""
    return PortalSettings.model_validate({k: v for k, v in env.items() if v != ""})


def portal_config(env: Mapping[str, str]) -> dict[str, Any]:
    """What the page needs to know at run time, from the environment (one build serves any deployment)."""
    settings = portal_settings(env)

    def service_url(url: str | None, port: int) -> str:
        return (url or f"http://127.0.0.1:{port}").rstrip("/")

    return {
        "registry_api_url": service_url(settings.registry_api_url, settings.registry_api_port),
        "geo_query_url": service_url(settings.geo_query_url, settings.geo_query_port),
        "requests_api_url": service_url(settings.requests_api_url, settings.requests_api_port),
        "community_api_url": service_url(settings.community_api_url, settings.community_api_port),
        "live_relay_url": service_url(settings.live_relay_url, settings.live_relay_port),
        "tile_url": settings.tile_url,
        "tile_attribution": settings.tile_attribution,
        "geocoder_url": settings.geocoder_url,
        "languages": LANGUAGES,
        "terms_version": settings.terms_version,
        # The development sign-in (the project's development tokens) exists only where those tokens are accepted
        # (development and test), never in production.
        "dev_sign_in": settings.env in ("development", "test"),
        # Each agency's own identity provider, for its staff's sign-in (the issuer and the portal's client id).
        "agency_sign_in": agency_providers(settings.agency_oidc),
    }


def content_security_policy(config: Mapping[str, Any]) -> str:
    """Only the portal itself, the services and the agencies' identity providers (connect-src), and the
    configured tile and geocoder hosts: no inline script or style element, no third-party origin, no framing."""
    apis = [
        config["registry_api_url"],
        config["geo_query_url"],
        config["requests_api_url"],
        config["community_api_url"],
        config["live_relay_url"],
    ]
    # The agencies' identity providers: discovery, token (renewal) and revocation are fetched by the page.
    apis += [p["issuer"] for p in config["agency_sign_in"].values()]
    connect = ["'self'", *sorted({o for o in map(_origin, [*apis, config["geocoder_url"]]) if o})]
    images = ["'self'", *[o for o in [_origin(config["tile_url"])] if o]]
    directives = {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": images,
        "font-src": ["'self'"],
        "connect-src": connect,
        # The live player: a MediaSource's object URL (its bytes are fetched from the relay, under connect-src).
        "media-src": ["blob:"],
        "manifest-src": ["'self'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


class SecurityHeaders:
    """Adds the portal's security headers to every answer, files and errors alike."""

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"referrer-policy", b"no-referrer"),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"geolocation=(self), camera=(), microphone=(), payment=()"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def _send(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *[(k, v) for k, v in self.headers if k not in names],
                ]
            await send(message)

        await self.app(scope, receive, _send)


# The package's files: its metadata, its README and its module's sources (nothing built, no caches).
_EDGE_FILES = ("pyproject.toml", "README.md", "canvass_edge/*.py")
# Every member of the archive gets this time: the same sources make the same bytes (2026-01-01T00:00:00Z).
_EDGE_MTIME = 1767225600


def edge_package(edge: Path = EDGE) -> tuple[str, bytes] | None:
    """The edge agent as a source archive pip and pipx install (`canvass-edge-<version>/` with its pyproject.toml,
    built by setuptools on the owner's computer): its file name and bytes, the same for the same sources; None
    where this server has no `edge/` folder."""
    meta = edge / "pyproject.toml"
    if not meta.is_file():
        return None
    version = tomllib.loads(meta.read_text())["project"]["version"]
    top = f"canvass-edge-{version}"
    files = sorted({p for pattern in _EDGE_FILES for p in edge.glob(pattern) if p.is_file()})
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            data = path.read_bytes()
            info = tarfile.TarInfo(f"{top}/{path.relative_to(edge).as_posix()}")
            info.size, info.mtime, info.mode = len(data), _EDGE_MTIME, 0o644
            tar.addfile(info, io.BytesIO(data))
    return f"{top}.tar.gz", gzip.compress(raw.getvalue(), mtime=_EDGE_MTIME)


def _entity_tags(value: str) -> set[str]:
    """The entity tags of an If-None-Match header, weak ones compared as strong (If-None-Match uses the weak
    comparison, RFC 9110 13.1.2), `*` kept as it is."""
    return {t.strip().removeprefix("W/") for t in value.split(",") if t.strip()}


def not_found() -> Response:
    return JSONResponse(
        {"title": "Not Found", "status": 404}, status_code=404, media_type="application/problem+json"
    )


# Every file and page is answered to HEAD as to GET (a download manager, `curl -I` or a link checker asks so).
READ = ["GET", "HEAD"]


def create_app(dist: Path | None = None, env: Mapping[str, str] | None = None) -> FastAPI:
    env = os.environ if env is None else env
    dist = (dist or Path(portal_settings(env).dist or DEFAULT_DIST)).resolve()
    config = portal_config(env)
    agent = edge_package()
    config["edge_package"] = f"/downloads/{agent[0]}" if agent else None
    app = FastAPI(title="Canvass portal", docs_url=None, redoc_url=None, openapi_url=None)

    if agent:
        name, archive = agent
        # The same sources make the same bytes: their digest names this version of the archive, so a client that
        # has it (a proxy, pip's cache, a second download) is told 304 instead of sent it again.
        etag = f'"{hashlib.sha256(archive).hexdigest()[:32]}"'

        @app.api_route(f"/downloads/{name}", methods=READ, include_in_schema=False)
        async def edge_download(request: Request) -> Response:
            """The edge agent's source package, which the owner's live-sharing page tells them to install."""
            headers = {
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-cache",
                "ETag": etag,
            }
            tags = _entity_tags(request.headers.get("if-none-match", ""))
            if etag in tags or "*" in tags:
                return Response(status_code=304, headers=headers)
            return Response(archive, media_type="application/gzip", headers=headers)

    @app.api_route("/config.json", methods=READ, include_in_schema=False)
    async def config_json() -> Response:
        return JSONResponse(config, headers={"Cache-Control": "no-cache"})

    if config["dev_sign_in"]:

        @app.post("/dev/token", include_in_schema=False)
        async def dev_token(body: DevSignIn) -> Response:
            """A development token for a role of an agency (what `make token` prints); absent in production."""
            token = mint_token(body.role, body.agency, sub=f"dev-{body.role}")
            return JSONResponse(
                {"token": token, "role": body.role, "agency": body.agency},
                headers={"Cache-Control": "no-store"},
            )

    @app.api_route("/healthz", methods=READ, include_in_schema=False)
    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    @app.api_route("/{path:path}", methods=READ, include_in_schema=False)
    async def files(path: str, request: Request) -> Response:
        index = dist / "index.html"
        if not index.is_file():
            return JSONResponse(
                {"title": "The portal is not built", "detail": "Run `make portal` (npm ci + vite build)."},
                status_code=503,
                media_type="application/problem+json",
            )
        try:
            target = (dist / path).resolve()
            found = bool(path) and target.is_file() and target.is_relative_to(dist)
        except (ValueError, OSError):  # a NUL in the path, a name longer than the file system takes: no file
            return not_found()
        if found:
            # Built assets carry their content's hash in their name: they never change under that name.
            cache = "public, max-age=31536000, immutable" if path.startswith("assets/") else "no-cache"
            return FileResponse(target, headers={"Cache-Control": cache})
        if "." in path.rsplit("/", 1)[-1] or path.split("/", 1)[0] == "downloads":
            # A file that is not there; and nothing under /downloads is a page (only the package, above, is served).
            return not_found()
        # A page of the portal: the single page, whose router draws it.
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.add_middleware(SecurityHeaders, csp=content_security_policy(config))
    # Residents come on phones: scripts, styles and pages go compressed to any browser that says it takes gzip.
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    return app


app = create_app()
