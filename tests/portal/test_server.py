"""The portal's server and the services' CORS: what a browser is allowed to load and to call, over real HTTP."""

from __future__ import annotations

import io
import re
import tarfile
import tomllib
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from services.portal.main import EDGE, content_security_policy, create_app, edge_package, portal_config
from tests.conftest import PORTAL_PORT, Suite
from tests.portal.conftest import Geocoder

PORTAL_ORIGIN = f"http://127.0.0.1:{PORTAL_PORT}"
# What the portal sends: each method, and the headers of its calls.
PORTAL_HEADERS = "authorization, if-match, idempotency-key, content-type"


def test_config_json_gives_the_services_urls_and_the_development_sign_in_only_outside_production(
    portal: str, suite: Suite
) -> None:
    r = httpx.get(f"{portal}/config.json")
    assert r.status_code == 200
    config = r.json()
    assert config["registry_api_url"] == suite.registry.url
    assert config["geo_query_url"] == suite.geo.url
    assert config["requests_api_url"] == suite.requests.url
    assert config["languages"] == ["en", "es"]
    assert config["tile_url"] is None
    assert config["dev_sign_in"] is True  # the suite runs as "test", where development tokens are accepted
    assert portal_config({"CANVASS_ENV": "development"})["dev_sign_in"] is True
    assert portal_config({"CANVASS_ENV": "production"})["dev_sign_in"] is False
    assert portal_config({})["dev_sign_in"] is False


def test_the_development_sign_in_is_absent_in_production(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<div id="app"></div>')
    production = TestClient(create_app(tmp_path, env={"CANVASS_ENV": "production"}))
    assert production.post("/dev/token", json={"role": "advocate", "agency": "demo"}).status_code == 405
    development = TestClient(create_app(tmp_path, env={"CANVASS_ENV": "development"}))
    r = development.post("/dev/token", json={"role": "advocate", "agency": "demo"})
    assert r.status_code == 200 and r.json()["token"].count(".") == 2
    assert development.post("/dev/token", json={"role": "service", "agency": "demo"}).status_code == 422


def test_every_answer_carries_a_strict_content_security_policy(
    portal: str, suite: Suite, geocoder: Geocoder, oidc_provider: str
) -> None:
    for path in ("/", "/registrations/x/edit", "/config.json", "/favicon.svg", "/nope.js"):
        r = httpx.get(portal + path)
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
        assert "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp
        connect = next(d for d in csp.split("; ") if d.startswith("connect-src"))
        geocoder_origin = geocoder.url.removesuffix("/search")
        apis = {
            suite.registry.url,
            suite.geo.url,
            suite.requests.url,
            suite.community.url if suite.community else "",
            httpx.get(portal + "/config.json").json()["live_relay_url"],
        }
        # The agencies' identity providers too: the page fetches their discovery and token endpoints.
        assert set(connect.split()[1:]) == {"'self'", geocoder_origin, *apis, oidc_provider}
        # Media only from the live player's MediaSource (its blob: URL), nothing fetched as media directly.
        assert next(d for d in csp.split("; ") if d.startswith("media-src")) == "media-src blob:"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-content-type-options"] == "nosniff"


def test_only_the_configured_tile_and_geocoder_hosts_join_the_policy() -> None:
    config = portal_config(
        {
            "CANVASS_TILE_URL": "https://tiles.example.net/{z}/{x}/{y}.png",
            "CANVASS_GEOCODER_URL": "https://geo.example.net/search",
            "REGISTRY_API_URL": "https://api.example.net/registry",
        }
    )
    csp = content_security_policy(config)
    assert "img-src 'self' https://tiles.example.net;" in csp
    assert "https://geo.example.net" in csp and "https://api.example.net" in csp
    assert "/search" not in csp and "/registry" not in csp


def test_pages_are_the_single_page_and_a_missing_file_is_404(portal: str) -> None:
    page = httpx.get(f"{portal}/registrations/6f1c2d0e-9b8a-4c7d-8e9f-0a1b2c3d4e5f")
    assert page.status_code == 200 and '<div id="app">' in page.text
    # The built page has no inline script: every script is a file of the portal.
    assert "<script>" not in page.text and 'type="module" crossorigin src="/assets/' in page.text
    assert httpx.get(f"{portal}/assets/nothing-here.js").status_code == 404
    assert httpx.get(f"{portal}/../pyproject.toml").status_code in (200, 404)
    assert "[project]" not in httpx.get(f"{portal}/..%2Fpyproject.toml").text


@pytest.mark.parametrize("service", ["registry", "geo", "requests"])
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_preflights_from_the_portal_are_allowed(suite: Suite, service: str, method: str) -> None:
    base = getattr(suite, service).url
    r = httpx.options(
        f"{base}/v1/anything",
        headers={
            "Origin": PORTAL_ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": PORTAL_HEADERS,
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == PORTAL_ORIGIN
    assert method in r.headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "if-match", "idempotency-key", "content-type"} <= allowed


@pytest.mark.parametrize("service", ["registry", "geo", "requests"])
def test_an_origin_not_configured_gets_no_cors_headers(suite: Suite, service: str) -> None:
    base = getattr(suite, service).url
    stranger = "http://127.0.0.1:1"
    pre = httpx.options(
        f"{base}/v1/anything",
        headers={
            "Origin": stranger,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": PORTAL_HEADERS,
        },
    )
    assert "access-control-allow-origin" not in pre.headers
    r = httpx.get(f"{base}/healthz", headers={"Origin": stranger})
    assert r.status_code == 200
    assert not [h for h in r.headers if h.lower().startswith("access-control-")]


def test_the_portal_can_read_the_version_to_send_back_as_if_match(suite: Suite) -> None:
    r = httpx.get(f"{suite.registry.url}/healthz", headers={"Origin": PORTAL_ORIGIN})
    assert r.headers["access-control-allow-origin"] == PORTAL_ORIGIN
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"etag", "location"} <= exposed


def test_the_first_page_loads_at_most_250_kb_of_script_and_style_gzipped(portal: str) -> None:
    """Everything the resident's first page loads to run (USWDS's styles and the map library included), as the
    portal sends it over the wire to a browser that takes gzip."""
    page = httpx.get(f"{portal}/").text
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+\.(?:js|css))"', page)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    total = 0
    with httpx.Client(headers={"Accept-Encoding": "gzip"}) as client:
        for asset in assets:
            r = client.get(portal + asset)
            assert r.status_code == 200 and r.headers.get("content-encoding") == "gzip", (asset, r.headers)
            total += r.num_bytes_downloaded
    print(
        f"first page: {len(assets)} files, {total / 1024:.1f} KiB of JavaScript and CSS transferred gzipped"
    )
    assert total <= 250 * 1024


def test_the_edge_agent_is_served_as_a_source_package_of_the_edge_folder(portal: str, tmp_path: Path) -> None:
    """What the owner's live-sharing page tells them to install: `edge/`'s package files under one versioned
    folder, which pip and pipx build and install; the same bytes for the same sources."""
    version = tomllib.loads((EDGE / "pyproject.toml").read_text())["project"]["version"]
    path = httpx.get(f"{portal}/config.json").json()["edge_package"]
    assert path == f"/downloads/canvass-edge-{version}.tar.gz"
    r = httpx.get(portal + path, headers={"Accept-Encoding": "identity"})  # as pip asks for it
    assert r.status_code == 200 and r.headers["content-type"] == "application/gzip"
    assert "content-encoding" not in r.headers
    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    sources = [EDGE / "pyproject.toml", EDGE / "README.md", *sorted((EDGE / "canvass_edge").glob("*.py"))]
    top = f"canvass-edge-{version}"
    assert members == {f"{top}/{p.relative_to(EDGE).as_posix()}": p.read_bytes() for p in sources}
    assert f"{top}/canvass_edge/cli.py" in members and not any("__pycache__" in m for m in members)
    assert edge_package() == edge_package()  # the same sources, the same bytes
    # A server without the agent's folder offers no download, and the page says to install from the source.
    assert edge_package(tmp_path) is None


def test_a_path_no_file_can_have_is_a_404_problem_not_a_500(tmp_path: Path) -> None:
    """A NUL in the path, or a name longer than the file system takes, names no file of the portal."""
    (tmp_path / "index.html").write_text('<div id="app"></div>')
    portal = TestClient(
        create_app(tmp_path, env={"CANVASS_ENV": "development"}), raise_server_exceptions=False
    )
    for path in ("/%00", "/assets/app%00.js", "/downloads/canvass-edge.tar.gz%00", "/" + "a" * 5000):
        r = portal.get(path)
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", (
            path[:40],
            r.text,
        )
        assert r.headers["x-content-type-options"] == "nosniff"


def test_head_is_answered_as_get_for_the_edge_package_the_pages_and_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text('<div id="app"></div>')
    portal = TestClient(create_app(tmp_path, env={"CANVASS_ENV": "development"}))
    download = portal.get("/config.json").json()["edge_package"]
    for path in (download, "/", "/live", "/config.json", "/healthz"):
        got, head = portal.get(path), portal.head(path)
        assert head.status_code == got.status_code == 200, (path, head.status_code)
        assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"], path
    assert portal.head(download).headers["content-length"] == str(len(portal.get(download).content))


def test_the_edge_package_is_revalidated_by_its_etag_and_nothing_else_under_downloads_is_a_page(
    tmp_path: Path,
) -> None:
    """A second download of the same archive (pip's cache, a proxy) is a 304 by its entity tag; another version's
    tag gets the archive; and no other path under /downloads is answered with the portal's page."""
    (tmp_path / "index.html").write_text('<div id="app"></div>')
    portal = TestClient(create_app(tmp_path, env={"CANVASS_ENV": "development"}))
    download = portal.get("/config.json").json()["edge_package"]
    first = portal.get(download)
    etag = first.headers["etag"]
    assert first.status_code == 200 and etag.startswith('"') and first.headers["cache-control"] == "no-cache"
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = portal.get(download, headers={"If-None-Match": header})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag, header
    changed = portal.get(download, headers={"If-None-Match": '"an-older-version"'})
    assert changed.status_code == 200 and changed.content == first.content
    for path in (
        "/downloads",
        "/downloads/",
        f"{download}/",
        "/downloads/canvass-edge-0.1.0.tar.gz",
        "/downloads/x",
    ):
        r = portal.get(path)
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json", (
            path,
            r.text[:60],
        )
