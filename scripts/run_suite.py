"""Start the web portal, the services (and the requests worker, when it exists) on 127.0.0.1, print the
portal's URL first, then where the services' docs are and how to get a token, and stop them all cleanly on
Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SERVICES = (
    ("registry_api", "services.registry_api.main:app", "REGISTRY_API_PORT", 8001),
    ("geo_query", "services.geo_query.main:app", "GEO_QUERY_PORT", 8002),
    ("requests_api", "services.requests_api.main:app", "REQUESTS_API_PORT", 8003),
    ("community_api", "services.community_api.main:app", "COMMUNITY_API_PORT", 8004),
    ("live_relay", "services.live_relay.main:app", "LIVE_RELAY_PORT", 8005),
)
# The relay keeps its agents and viewings in memory: one process (decision 0011).
ONE_PROCESS = {"live_relay"}
# The web portal (built into web/dist by `make portal`): what a resident opens in a browser.
PORTAL = ("portal", "services.portal.main:app", "PORTAL_PORT", 8000)


def suite_env(environ: dict[str, str]) -> tuple[dict[str, str], dict[str, int]]:
    """The environment the services run with and the port of each: every service finds the others on the ports
    the *_PORT variables chose (unless their URLs are given)."""
    env = dict(environ)
    ports = {name: int(env.get(var, default)) for name, _, var, default in SERVICES}
    env.setdefault("GEO_QUERY_URL", f"http://127.0.0.1:{ports['geo_query']}")
    env.setdefault("REGISTRY_API_URL", f"http://127.0.0.1:{ports['registry_api']}")
    env.setdefault("LIVE_RELAY_URL", f"http://127.0.0.1:{ports['live_relay']}")
    if "DATABASE_URL" not in environ:
        env.setdefault(
            "GEO_QUERY_DATABASE_URL", "postgresql://canvass_geo:canvass_geo@127.0.0.1:54320/canvass"
        )
    return env, ports


def start_dev_provider(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    """In development only, and unless agencies' providers are configured: the development OpenID provider
    (tools/oidc-dev), which the services trust and the portal offers for the demo agency's staff (env updated)."""
    configured = ("CANVASS_AGENCY_OIDC", "CANVASS_JWKS_URL", "CANVASS_JWT_ISSUERS")
    if env.get("CANVASS_ENV") != "development" or any(env.get(k) for k in configured):
        return []
    from scripts import oidc_dev

    port = int(env.get("OIDC_DEV_PORT", 8010))
    portal_port = int(env.get(PORTAL[2], PORTAL[3]))
    portals = [f"http://127.0.0.1:{portal_port}", f"http://localhost:{portal_port}"]
    proc = oidc_dev.start(port, portals)
    env.update(oidc_dev.services_env(port) | oidc_dev.portal_env(port))
    print(f"Development OpenID provider: {oidc_dev.issuer(port)}  (password of every demo account:", end=" ")
    print(f"{oidc_dev.PASSWORD}; demo.investigator, demo.supervisor, demo.admin, demo.auditor)", flush=True)
    return [proc]


def main() -> int:
    sys.path.insert(0, str(ROOT))  # run as a script: the project's packages are beside this folder
    from shared.server import (
        uvicorn_command,
    )  # the server protocol with Canvass's request-line and header limits, and CANVASS_WORKERS workers

    env, ports = suite_env(dict(os.environ))
    procs: list[subprocess.Popen[bytes]] = []
    procs += start_dev_provider(env)
    for name, target, _, _ in SERVICES:
        cmd = uvicorn_command(
            target, "127.0.0.1", ports[name], env | ({"CANVASS_WORKERS": "1"} if name in ONE_PROCESS else {})
        )
        # Each service's links name its own address unless a public base URL is given for all.
        own = {"CANVASS_PUBLIC_BASE_URL": f"http://127.0.0.1:{ports[name]}", **env}
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=own))
    portal_port = int(env.get(PORTAL[2], PORTAL[3]))
    print(f"Canvass portal: http://127.0.0.1:{portal_port}  (starting)", flush=True)
    procs.append(
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", PORTAL[1], "--host", "127.0.0.1", "--port", str(portal_port)],
            cwd=ROOT,
            env=env,
        )
    )
    if (ROOT / "services" / "requests_api" / "worker.py").exists():
        procs.append(
            subprocess.Popen([sys.executable, "-m", "services.requests_api.worker"], cwd=ROOT, env=env)
        )

    stopping = False

    def _stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    time.sleep(1.5)
    print(f"\nCanvass portal:  http://127.0.0.1:{portal_port}", flush=True)
    print("\nCanvass is running:", flush=True)
    for name, _, _, _ in SERVICES:
        print(f"  {name:<13} http://127.0.0.1:{ports[name]}/docs   (contract: /openapi.json)")
    print("\nA development token:  make token ROLE=investigator AGENCY=demo")
    print("  roles: investigator, supervisor, advocate, agency_admin, integrator, cad, auditor")
    print("Ctrl-C stops the services; `make stop` stops the local database.\n", flush=True)
    while not stopping:
        if any(p.poll() is not None for p in procs):
            print("a service exited; stopping the others", file=sys.stderr)
            break
        time.sleep(0.3)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
