"""The agency workspace's figures (`make bench ONLY=portal`, and every full run): the investigator's first map of
10,000 cameras shared with the agency — bytes fetched, requests made, and the time until every camera is drawn
(the page's own `ws-cameras-drawn` mark, from navigation start) in headless Chromium — and the same for the
nearest-K answer after a click on the map (from the click's search to the ranked list and wedges drawn). The
cameras are imported through registry_api's bulk import, as an integrator would, into a fresh migrated
database (dropped after); each run is a new browser context with its HTTP cache disabled."""

from __future__ import annotations

import asyncio
import shutil
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import orjson

from bench.servers import free_port, uvicorn
from bench.settings import ROOT, Bench, say

DB_NAME = "canvass_bench_workspace"
AGENCY = "bench-workspace-pd"
CENTRE = (-87.9065, 43.0389)
CAMERAS = 10_000
RUNS = 3
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
class Load:
    ms: float
    requests: int
    kib: float  # response bodies as transferred, plus headers
    api_requests: int
    api_kib: float


@dataclass
class WorkspaceResult:
    first_map: list[Load] = field(default_factory=list)
    nearest: list[Load] = field(default_factory=list)
    note: str = ""


def _median(loads: list[Load], attr: str) -> float:
    return statistics.median(getattr(x, attr) for x in loads)


def table(result: WorkspaceResult | None) -> list[str]:
    out = [
        "| workspace (10,000 cameras) | time until drawn (median) | requests | KiB fetched | of which the API | note |",
        "|---|--:|--:|--:|--:|---|",
    ]
    if result is None or not result.first_map:
        note = result.note if result else "not measured in this run"
        return [*out, f"| — | — | — | — | — | {note} |"]
    for name, loads, note in (
        ("first map (cold)", result.first_map, "page, scripts, config, agency, OGC item pages"),
        ("nearest 10 after a click", result.nearest, "search to list and wedges drawn"),
    ):
        if not loads:
            continue
        out.append(
            f"| {name} | {_median(loads, 'ms'):.0f} ms | {_median(loads, 'requests'):.0f} |"
            f" {_median(loads, 'kib'):.1f} | {_median(loads, 'api_requests'):.0f} requests,"
            f" {_median(loads, 'api_kib'):.1f} KiB | {note}; {len(loads)} runs |"
        )
    return out


def _import(registry: str) -> None:
    """10,000 owners on a grid about 100 m apart around the centre, imported as the agency's integrator."""
    from shared.auth import mint_token

    west, south = CENTRE[0] - 0.05, CENTRE[1] - 0.05
    features = [
        {
            "type": "Feature",
            "geometry": {
                "type": "Point",
                "coordinates": [
                    round(west + 0.0005 + (i % 100) * 0.00099, 6),
                    round(south + 0.0005 + (i // 100) * 0.00099, 6),
                ],
            },
            "properties": {
                "external_id": f"bench-{i}",
                "contact_phone": "(414) 555-0123",
                "owner_kind": "business" if i % 3 == 0 else "residential",
                "direction_deg": (i * 37) % 360,
                "fov_deg": 90,
                "range_m": 40,
            },
        }
        for i in range(CAMERAS)
    ]
    headers = {"Authorization": f"Bearer {mint_token('integrator', AGENCY, sub='bench-integrator')}"}
    with httpx.Client(base_url=registry, timeout=120) as c:
        r = c.post(
            "/v1/imports",
            content=orjson.dumps({"type": "FeatureCollection", "features": features}),
            headers={**headers, "Content-Type": "application/geo+json"},
        )
        r.raise_for_status()
        job = r.json()
        deadline = time.monotonic() + 600
        while job["status"] not in ("succeeded", "failed"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the import did not finish: {job}")
            time.sleep(0.2)
            job = c.get(f"/v1/imports/{job['id']}", headers=headers).json()
    if job["status"] != "succeeded":
        raise RuntimeError(f"the import failed: {job}")


class _Traffic:
    """Every answer the page received while recording: how many, and their bytes (body as sent, and headers)."""

    def __init__(self, api_origins: tuple[str, ...]) -> None:
        self.api_origins = api_origins
        self.recording = False
        self.requests = 0
        self.bytes = 0
        self.api_requests = 0
        self.api_bytes = 0

    def finished(self, request: Any) -> None:
        if not self.recording:
            return
        sizes = request.sizes()
        n = sizes["responseBodySize"] + sizes["responseHeadersSize"]
        self.requests += 1
        self.bytes += n
        if request.url.startswith(self.api_origins) and request.method != "OPTIONS":
            self.api_requests += 1
            self.api_bytes += n

    def reset(self) -> None:
        self.requests = self.bytes = self.api_requests = self.api_bytes = 0
        self.recording = True


def _browse(base: str, apis: tuple[str, ...], result: WorkspaceResult) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for _ in range(RUNS):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.set_default_timeout(120_000)
                page.goto(f"{base}/staff")
                page.get_by_label("Role").select_option("investigator")
                page.get_by_label("Agency").select_option(AGENCY)
                page.get_by_role("button", name="Sign in").click()
                page.get_by_text("Signed in as").wait_for()
                # A cold first map: the sign-in stays in this tab (sessionStorage), the HTTP cache is not used.
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
                traffic = _Traffic(apis)
                page.on("requestfinished", traffic.finished)
                traffic.reset()
                page.goto(f"{base}/agency")
                # Drawn, or the page says it could not load them (then the figure is not measured, and why).
                page.locator(
                    "#ws-map[data-complete=true], .ws-status:has-text('could not'), .ws-status:has-text('not allowed')"
                ).first.wait_for()
                if page.locator("#ws-map").get_attribute("data-complete") != "true":
                    raise RuntimeError(f"the map did not load: {page.locator('.ws-status').text_content()}")
                drawn = page.evaluate("performance.getEntriesByName('ws-cameras-drawn')[0].startTime")
                loaded = int(page.locator("#ws-map").get_attribute("data-loaded") or 0)
                if loaded != CAMERAS:
                    raise RuntimeError(f"the map drew {loaded} cameras, not {CAMERAS}")
                page.wait_for_load_state("networkidle")
                result.first_map.append(
                    Load(
                        drawn,
                        traffic.requests,
                        traffic.bytes / 1024,
                        traffic.api_requests,
                        traffic.api_bytes / 1024,
                    )
                )
                # The nearest 10 after a click near the map's centre.
                traffic.reset()
                box = page.locator("#ws-map").bounding_box()
                assert box is not None
                page.mouse.click(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.45)
                page.get_by_role("heading", name="10 cameras, nearest first").wait_for()
                page.wait_for_load_state("networkidle")
                took = page.evaluate("performance.getEntriesByName('ws-search').at(-1).duration")
                result.nearest.append(
                    Load(
                        took,
                        traffic.requests,
                        traffic.bytes / 1024,
                        traffic.api_requests,
                        traffic.api_bytes / 1024,
                    )
                )
                context.close()
        finally:
            browser.close()


async def run(bench: Bench) -> WorkspaceResult:
    from bench.data import create_migrated

    result = WorkspaceResult()
    if not (ROOT / "web" / "dist" / "index.html").is_file():
        result.note = "not measured (the portal is not built: make portal)"
        return result
    await create_migrated(bench, DB_NAME)
    conn = await asyncpg.connect(bench.owner(DB_NAME))
    try:
        await conn.execute(
            "INSERT INTO registry.agencies (slug, name, jurisdiction, requires_approval) VALUES ($1,"
            " 'Bench Workspace Police Department',"
            " ST_Multi(ST_Expand(ST_SetSRID(ST_MakePoint($2, $3), 4326), 0.06)), true)",
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
            "CANVASS_CORS_ORIGINS": "*",
        }
        python = ROOT / ".venv/bin/python"
        geo_port = free_port()
        with (
            uvicorn("registry_api-ws", python, "services.registry_api.main:app", env, "/readyz") as registry,
            # The OGC items' `next` links carry the service's public address: its own, here.
            uvicorn(
                "geo_query-ws",
                python,
                "services.geo_query.main:app",
                {**env, "CANVASS_PUBLIC_BASE_URL": f"http://127.0.0.1:{geo_port}"},
                "/readyz",
                port=geo_port,
            ) as geo,
            uvicorn("requests_api-ws", python, "services.requests_api.main:app", env, "/readyz") as requests,
        ):
            await asyncio.to_thread(_import, registry.url)
            urls = {
                "REGISTRY_API_URL": registry.url,
                "GEO_QUERY_URL": geo.url,
                "REQUESTS_API_URL": requests.url,
            }
            with uvicorn(
                "portal-ws", python, "services.portal.main:app", {**env, **urls}, "/healthz"
            ) as portal:
                apis = (registry.url, geo.url, requests.url)
                await asyncio.to_thread(_browse, portal.url, apis, result)
        say(
            f"workspace: first map of {CAMERAS:,} cameras drawn after {_median(result.first_map, 'ms'):.0f} ms"
            f" ({_median(result.first_map, 'requests'):.0f} requests, {_median(result.first_map, 'kib'):.0f} KiB);"
            f" nearest 10 after a click {_median(result.nearest, 'ms'):.0f} ms"
        )
    except Exception as exc:  # a figure not measured is reported, the rest of the run goes on
        result.note = f"not measured ({type(exc).__name__}: {exc})"
        say(f"workspace: {result.note}")
    finally:
        admin = await asyncpg.connect(bench.admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        finally:
            await admin.close()
    return result
