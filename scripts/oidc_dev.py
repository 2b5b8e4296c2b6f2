"""The development OpenID provider (tools/oidc-dev, npm's oidc-provider run by Node) for `make run` and the tests:
starting it on loopback, and the settings that make the services trust it and the portal offer it.

Its demo accounts (tools/oidc-dev/accounts.json) belong to the agencies `demo` and `northfield`; the services
trust its JWKS for those agencies only (CANVASS_JWKS_URL + CANVASS_JWT_ISSUERS), beside the development HS256
tokens, and the portal's agency sign-in (CANVASS_AGENCY_OIDC) offers it for both.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parent.parent
DIR = ROOT / "tools" / "oidc-dev"
ACCOUNTS = json.loads((DIR / "accounts.json").read_text())
AGENCIES = sorted({a["agency"] for a in ACCOUNTS["accounts"]})
PASSWORD: str = ACCOUNTS["password"]
CLIENT_ID = "canvass-portal"


def issuer(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def services_env(port: int, agencies: list[str] = AGENCIES) -> dict[str, str]:
    """The services trust the provider's keys for its agencies (and still the development HS256 tokens)."""
    return {
        "CANVASS_JWKS_URL": f"{issuer(port)}/jwks",
        "CANVASS_JWT_ISSUERS": json.dumps({issuer(port): agencies}),
    }


def portal_env(port: int, agencies: list[str] = AGENCIES) -> dict[str, str]:
    """The portal offers the provider as the identity provider of each of its agencies."""
    providers = {slug: {"issuer": issuer(port), "client_id": CLIENT_ID} for slug in agencies}
    return {"CANVASS_AGENCY_OIDC": json.dumps(providers)}


def ensure_installed() -> None:
    """npm ci from tools/oidc-dev/package-lock.json when its packages are missing or older than the lock."""
    marker = DIR / "node_modules" / ".package-lock.json"
    lock = DIR / "package-lock.json"
    if marker.is_file() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=DIR, check=True, stdout=subprocess.DEVNULL)


def start(
    port: int,
    portal_urls: list[str],
    *,
    audience: str | None = None,
    access_ttl_s: int = 900,
    accounts_file: Path | None = None,
    log: IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """Starts the provider (with the accounts of `accounts_file`, a file like accounts.json, or the demo
    accounts) and waits until it answers its discovery document."""
    ensure_installed()
    env = dict(
        os.environ,
        OIDC_DEV_PORT=str(port),
        OIDC_DEV_PORTAL_URLS=",".join(portal_urls),
        OIDC_DEV_AUDIENCE=audience or os.environ.get("CANVASS_JWT_AUDIENCE") or "canvass",
        OIDC_DEV_ACCESS_TTL=str(access_ttl_s),
        OIDC_DEV_CLIENT_ID=CLIENT_ID,
    )
    if accounts_file is not None:
        env["OIDC_DEV_ACCOUNTS"] = str(accounts_file)
    proc = subprocess.Popen(
        ["node", "server.mjs"], cwd=DIR, env=env, stdout=log, stderr=subprocess.STDOUT if log else None
    )
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError("the development OpenID provider exited")
        try:
            if httpx.get(f"{issuer(port)}/.well-known/openid-configuration", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.terminate()
            raise RuntimeError("the development OpenID provider did not start")
        time.sleep(0.1)
