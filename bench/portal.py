"""The portal's figures (`make bench ONLY=portal`, and every full run): what the resident's first page
transfers (JavaScript + CSS, gzipped; target <= 250 KB with the map library), its time to interactive in headless
Chromium on this machine, and the wall time of a registration as a scripted user completes it — through the
portal, on the real services and a fresh migrated database (dropped after)."""

from __future__ import annotations

import asyncio
import gzip
import re
import shutil
import statistics
import time
from dataclasses import dataclass, field

import asyncpg
import httpx

from bench.servers import uvicorn
from bench.settings import ROOT, Bench, say

DB_NAME = "canvass_bench_portal"
AGENCY = "bench-portal-pd"
CENTRE = (-87.9065, 43.0389)
RUNS = 5
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class PortalResult:
    first_page_kib: float | None = None
    files: int = 0
    interactive_ms: list[float] = field(default_factory=list)
    registration_s: list[float] = field(default_factory=list)
    note: str = ""


def table(result: PortalResult | None) -> list[str]:
    out = [
        "| first page JS+CSS (gzip) | time to interactive (median) | scripted registration (median) | note |"
    ]
    out.append("|--:|--:|--:|---|")
    if result is None or result.first_page_kib is None:
        return [*out, f"| — | — | — | {result.note if result else 'not measured in this run'} |"]
    tti = f"{statistics.median(result.interactive_ms):.0f} ms" if result.interactive_ms else "—"
    reg = f"{statistics.median(result.registration_s):.2f} s" if result.registration_s else "—"
    note = result.note or f"{result.files} files, target <= 250 KB; {RUNS} runs each"
    return [*out, f"| {result.first_page_kib:.1f} KiB | {tti} | {reg} | {note} |"]


def _first_page_kib(base: str) -> tuple[float, int]:
    page = httpx.get(f"{base}/").text
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+\.(?:js|css))"', page)
    return sum(len(gzip.compress(httpx.get(base + a).content, 9)) for a in assets) / 1024, len(assets)


def _browse(base: str, result: PortalResult) -> None:
    """Headless Chromium (Debian's): the first page's time to interactive, then a scripted registration."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    lat, lon = CENTRE[1], CENTRE[0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for i in range(RUNS):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                started = time.monotonic()
                page.goto(f"{base}/")
                page.locator(".leaflet-container").wait_for()
                page.get_by_role("button", name="Show this place").wait_for()
                result.interactive_ms.append(page.evaluate("performance.now()"))
                t0 = time.monotonic()
                page.get_by_role("link", name="Register my cameras").click()
                page.get_by_label("Latitude").fill(str(lat))
                page.get_by_label("Longitude").fill(str(lon))
                page.get_by_label("Your name").fill(f"Bench Resident {i}")
                page.get_by_label("Email or phone number").fill(f"bench-{i}-{int(started)}@example.org")
                page.get_by_text("I agree that").click()
                page.get_by_role("button", name="Register", exact=True).click()
                page.get_by_role("heading", name="You are registered").wait_for()
                result.registration_s.append(time.monotonic() - t0)
                context.close()
        finally:
            browser.close()


async def run(bench: Bench) -> PortalResult:
    from bench.data import create_migrated

    result = PortalResult()
    if not (ROOT / "web" / "dist" / "index.html").is_file():
        result.note = "not measured (the portal is not built: make portal)"
        return result
    await create_migrated(bench, DB_NAME)
    conn = await asyncpg.connect(bench.owner(DB_NAME))
    try:
        await conn.execute(
            "INSERT INTO registry.agencies (slug, name, jurisdiction, requires_approval) VALUES ($1,"
            " 'Bench Portal Police Department', ST_Multi(ST_Expand(ST_SetSRID(ST_MakePoint($2, $3), 4326), 0.1)),"
            " true)",
            AGENCY,
            CENTRE[0],
            CENTRE[1],
        )
    finally:
        await conn.close()
    try:
        env = {
            "CANVASS_ENV": "development",
            "DATABASE_URL": bench.app(DB_NAME),
            "GEO_QUERY_DATABASE_URL": bench.reader(DB_NAME),
            "CANVASS_LOG_LEVEL": "WARNING",
            "CANVASS_MAIL_BACKEND": "log",
            # The portal's port is chosen when it starts, after the services: they accept any origin here.
            "CANVASS_CORS_ORIGINS": "*",
        }
        python = ROOT / ".venv/bin/python"
        with (
            uvicorn(
                "registry_api-portal", python, "services.registry_api.main:app", env, "/readyz"
            ) as registry,
            uvicorn("geo_query-portal", python, "services.geo_query.main:app", env, "/readyz") as geo,
            uvicorn(
                "requests_api-portal", python, "services.requests_api.main:app", env, "/readyz"
            ) as requests,
        ):
            urls = {
                "REGISTRY_API_URL": registry.url,
                "GEO_QUERY_URL": geo.url,
                "REQUESTS_API_URL": requests.url,
            }
            with uvicorn("portal", python, "services.portal.main:app", {**env, **urls}, "/healthz") as portal:
                result.first_page_kib, result.files = _first_page_kib(portal.url)
                # Playwright's sync API runs its own event loop: off this one's thread.
                await asyncio.to_thread(_browse, portal.url, result)
        say(
            f"portal: first page {result.first_page_kib:.1f} KiB gzipped, interactive after"
            f" {statistics.median(result.interactive_ms):.0f} ms, registration {statistics.median(result.registration_s):.2f} s"
        )
    except Exception as exc:  # a figure not measured is reported, the rest of the run goes on
        result.note = f"not measured ({type(exc).__name__}: {exc})"
        say(f"portal: {result.note}")
    finally:
        admin = await asyncpg.connect(bench.admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        finally:
            await admin.close()
    return result
