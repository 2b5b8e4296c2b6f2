"""Fixtures for the portal's tests: the portal served on the port the services accept (CORS), a real Chromium
(Debian's, driven by Playwright: no browser is downloaded), axe-core run on every page and state visited, and a
screenshot of each at 360 and 1280 px in .local/screenshots."""

from __future__ import annotations

import functools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Route, sync_playwright

from scripts import oidc_dev
from tests.conftest import OIDC_PORT, PORTAL_PORT, Suite, Token
from tests.portal.oidc import OIDC_ACCESS_TTL_S, next_staff_agency, register_agencies, write_accounts
from tests.support import LOG_DIR, ROOT, Db, QuietHandler, free_port, http_server

WEB = ROOT / "web"
DIST = WEB / "dist"
SCREENSHOTS = ROOT / ".local" / "screenshots"
CHROMIUM = os.environ.get("CANVASS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTHS = (360, 1280)
# The live relay's port, named to the page from the start (LIVE_RELAY_URL); started by the tests that need it.
RELAY_PORT = free_port()


def _newest_source() -> float:
    sources = [WEB / "index.html", WEB / "package-lock.json", *ROOT.glob("openapi/*.json")]
    sources += [p for p in (WEB / "src").rglob("*") if p.is_file() and not p.name.endswith(".d.ts")]
    return max(p.stat().st_mtime for p in sources)


def ensure_built() -> None:
    """Builds the portal when web/dist is missing or older than its sources (`make test` builds it first)."""
    index = DIST / "index.html"
    if index.is_file() and index.stat().st_mtime >= _newest_source():
        return
    env = dict(os.environ, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1")
    if not (WEB / "node_modules" / ".package-lock.json").is_file():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=WEB, env=env, check=True)
    subprocess.run(["npm", "run", "build"], cwd=WEB, env=env, check=True, stdout=subprocess.DEVNULL)


class Geocoder:
    """A stand-in for the deployment's geocoder (Nominatim's search API): the addresses a test teaches it."""

    def __init__(self) -> None:
        self.places: dict[str, list[dict[str, str]]] = {}
        self.url = ""


@pytest.fixture(scope="session")
def geocoder() -> Iterator[Geocoder]:
    g = Geocoder()

    class Search(QuietHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query).get("q", [""])[0]
            body = json.dumps(g.places.get(query, [])).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with http_server(Search) as port:
        g.url = f"http://127.0.0.1:{port}/search"
        yield g


@pytest.fixture(scope="session")
def oidc_provider(suite: Suite, registry: httpx.Client, auth: Token) -> Iterator[str]:
    """The development OpenID provider (tools/oidc-dev) on OIDC_PORT, which the services trust and the portal
    offers, with short-lived access tokens (their silent renewal happens within a test), and its accounts'
    agencies registered (tests/portal/oidc.py). Its issuer URL."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with (LOG_DIR / f"oidc-{os.getpid()}.log").open("wb") as log:
        proc = oidc_dev.start(
            OIDC_PORT,
            [f"http://127.0.0.1:{PORTAL_PORT}"],
            audience=suite.env.get("CANVASS_JWT_AUDIENCE"),
            access_ttl_s=OIDC_ACCESS_TTL_S,
            accounts_file=write_accounts(LOG_DIR / f"oidc-accounts-{os.getpid()}.json"),
            log=log,
        )
        try:
            register_agencies(registry, auth)
            yield oidc_dev.issuer(OIDC_PORT)
        finally:
            proc.terminate()
            proc.wait(10)


@contextmanager
def portal_server(env: dict[str, str], port: int) -> Iterator[str]:
    """A portal's server on `port` with `env` (the services' URLs among it), its URL, until the block ends."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = (LOG_DIR / f"portal-{os.getpid()}-{port}.log").open("wb")
    cmd = [sys.executable, "-m", "uvicorn", "services.portal.main:app", "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "the portal's server exited"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the portal's server did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def portal_env(suite: Suite, **urls: str) -> dict[str, str]:
    """A portal's environment: the suite's services, unless `urls` names others."""
    return dict(
        suite.env,
        **{
            "REGISTRY_API_URL": suite.registry.url,
            "GEO_QUERY_URL": suite.geo.url,
            "REQUESTS_API_URL": suite.requests.url,
            "COMMUNITY_API_URL": suite.community.url if suite.community else "",
            "LIVE_RELAY_URL": f"http://127.0.0.1:{RELAY_PORT}",
            **urls,
        },
    )


@pytest.fixture(scope="session")
def portal(suite: Suite, geocoder: Geocoder, oidc_provider: str) -> Iterator[str]:
    """The portal's server on PORTAL_PORT (the origin the services were started to accept), its URL."""
    ensure_built()
    with portal_server(portal_env(suite, CANVASS_GEOCODER_URL=geocoder.url), PORTAL_PORT) as url:
        yield url


@pytest.fixture(scope="package")
def playwright_session(portal: str, db: Db) -> Iterator[Playwright]:
    """Playwright's sync API keeps an event loop running on the test thread: every session fixture that runs
    one of its own (the database's, the services') is set up before it and torn down after it, and it ends with
    the browser tests (package scope), so the tests after them may run event loops of their own again."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    b = playwright_session.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


@dataclass
class Visit:
    """A browser tab on the portal, with what every test checks of it: axe on each page and state, no
    Content-Security-Policy violation or script error, and screenshots."""

    page: Page
    base: str
    test_name: str
    errors: list[str] = field(default_factory=list)
    checked: int = 0

    def open(self, path: str = "/") -> None:
        self.page.goto(self.base + path)
        # An agency page loaded anew passes by the agency's provider first (a silent sign-in) and its callback
        # page (marked data-signing-in): the heading waited for is the page's own.
        self.page.locator("main:not([data-signing-in]) h1").first.wait_for()

    def check(self, state: str) -> None:
        """axe-core on the page as it is now (0 serious or critical violations), and its screenshots."""
        self.page.wait_for_load_state("networkidle")
        results = self.page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
            ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))"
        )
        bad = [v for v in results if v["impact"] in ("serious", "critical")]
        assert not bad, f"axe on {state}: {bad}"
        self.checked += 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        size = self.page.viewport_size or {"width": 1280, "height": 900}
        slug = re.sub(r"[^a-z0-9]+", "-", f"{self.test_name}-{self.checked:02d}-{state}".lower()).strip("-")
        for width in WIDTHS:
            self.page.set_viewport_size({"width": width, "height": 900})
            self.page.screenshot(path=str(SCREENSHOTS / f"{slug}-{width}.png"), full_page=True)
        self.page.set_viewport_size(size)


@functools.cache
def axe_source() -> str:
    """axe-core's script, from the portal's npm packages (installed by the time the portal is built)."""
    return (WEB / "node_modules" / "axe-core" / "axe.min.js").read_text()


@pytest.fixture
def visit(browser: Browser, portal: str, request: pytest.FixtureRequest) -> Iterator[Visit]:
    locale = getattr(request, "param", "en-US")
    context = browser.new_context(
        viewport={"width": 1280, "height": 900},
        locale=locale,
        permissions=["clipboard-read", "clipboard-write"],
    )
    # axe is injected by the browser itself before the page's scripts (the page's policy allows no inline
    # script, and the test must not loosen it).
    context.add_init_script(script=axe_source())
    page = context.new_page()
    page.set_default_timeout(15_000)
    v = Visit(page, portal, request.node.name)

    def on_console(msg: ConsoleMessage) -> None:
        # An answer with an error status is logged by the browser itself; the tests assert what the page shows
        # of it. Anything else (a script error, a Content-Security-Policy violation) fails the test.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            v.errors.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: v.errors.append(f"page error: {exc}"))
    yield v
    context.close()
    assert not v.errors, f"errors in the browser: {v.errors}"
    assert v.checked, "the test ran axe on no page"


def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Runs a database check off the test's thread (Playwright's sync API keeps an event loop there)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


@pytest.fixture
def sql(db: Db) -> Callable[..., Any]:
    """`sql(query, *args)`: the rows the database really holds."""
    return lambda query, *args: in_thread(db.fetch, query, *args)


@dataclass
class Program:
    slug: str
    name: str
    west: float
    south: float

    @property
    def lat(self) -> float:
        return round(self.south + 0.05, 6)

    @property
    def lon(self) -> float:
        return round(self.west + 0.05, 6)


@pytest.fixture
def program(registry: httpx.Client, auth: Token) -> Program:
    """An agency's program with its own square of map (0.1 degree), somewhere in the United States."""
    return publish_program(registry, auth, "p-" + uuid.uuid4().hex[:10])


@pytest.fixture
def staff_program(registry: httpx.Client, auth: Token) -> Program:
    """A program as `program`, of an agency whose staff sign in through the identity provider
    (tests/portal/agency.py's sign_in_agency)."""
    return publish_program(registry, auth, next_staff_agency())


def publish_program(registry: httpx.Client, auth: Token, slug: str) -> Program:
    west, south = round(random.uniform(-120, -75), 4), round(random.uniform(28, 47), 4)
    ring = [[west, south], [west + 0.1, south], [west + 0.1, south + 0.1], [west, south + 0.1], [west, south]]
    name = f"Police Department {slug}"
    r = registry.post(
        "/v1/agencies",
        json={"slug": slug, "name": name, "jurisdiction": {"type": "Polygon", "coordinates": [ring]}},
        headers=auth("agency_admin", slug),
    )
    assert r.status_code == 201, r.text
    return Program(slug, name, west, south)


@pytest.fixture
def browser_geolocation(
    browser: Browser, portal: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Visit]]:
    """A tab whose browser reports the given position to the page (with the permission granted)."""
    contexts = []

    def _open(lat: float, lon: float) -> Visit:
        context = browser.new_context(
            viewport={"width": 1280, "height": 900},
            geolocation={"latitude": lat, "longitude": lon},
            permissions=["geolocation"],
        )
        context.add_init_script(script=axe_source())
        contexts.append(context)
        return Visit(context.new_page(), portal, request.node.name)

    yield _open
    for c in contexts:
        c.close()


@dataclass
class Owner:
    id: str
    credential: str
    email: str


@pytest.fixture
def owner(registry: httpx.Client, program: Program) -> Owner:
    """A registration in the program, made through the contract (as another front-end or an import would)."""
    email = f"owner-{uuid.uuid4().hex[:12]}@example.org"
    r = registry.post(
        "/v1/registrations",
        json={
            "agency": program.slug,
            "location": {"type": "Point", "coordinates": [program.lon, program.lat]},
            "contact": {"name": "Sam Okafor", "email": email},
            "cameras": [{"retention_days": 30}],
        },
    )
    assert r.status_code == 201, r.text
    return Owner(r.json()["id"], r.json()["credential"], email)


def sign_in(visit: Visit, owner: Owner) -> None:
    """Signs in on the portal's page with the credential, as the resident does."""
    page = visit.page
    visit.open("/sign-in")
    page.get_by_label("Your credential").fill(owner.credential)
    page.get_by_role("button", name="Continue").click()
    # Exactly: the sign-in page's own heading, "Manage your registration", holds these words too, and a test that
    # went on from there would leave before the credential was kept.
    page.get_by_role("heading", level=1, name="Your registration", exact=True).wait_for()


def lose_registration_answers(page: Page) -> list[str]:
    """Until `page.unroute("**/v1/registrations")`, each registration the page sends reaches the service, which
    registers it, but its answer is lost on the way back (the connection is reset). Returns the list that gathers
    the Idempotency-Key of each registration whose answer was lost."""
    lost: list[str] = []

    def lose_answer(route: Route) -> None:
        if route.request.method == "POST":
            lost.append(route.request.headers["idempotency-key"])
            route.fetch()  # the service registers...
            route.abort("connectionreset")  # ...and the browser never hears of it
        else:
            route.continue_()

    page.route("**/v1/registrations", lose_answer)
    return lost
