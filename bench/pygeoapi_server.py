"""pygeoapi (PyPI, the second peer: an OGC API – Features server, Starlette under uvicorn here) serving the same
`registry.cameras` table through its PostgreSQL provider, one uvicorn worker, its defaults otherwise. Like tipg
it has no authentication, no agency scoping and no audit. Installed with the bench's dependency group
(`uv sync --group bench`); when it is not installed the bench says so and measures the rest."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from bench.servers import Server, uvicorn
from bench.settings import ROOT, WORK

COLLECTION = "cameras"
PROPERTIES = [
    "registration_id",
    "label",
    "owner_kind",
    "placement",
    "direction_deg",
    "fov_deg",
    "range_m",
    "covers",
    "retention_days",
    "recording",
    "shares_history",
    "live_mode",
]


def installed() -> bool:
    return (ROOT / ".venv" / "bin" / "pygeoapi").exists()


def _config(database_url: str) -> str:
    u = urlsplit(database_url)
    props = "\n".join(f"              - {p}" for p in PROPERTIES)
    return f"""server:
  bind: {{host: 127.0.0.1, port: 5000}}
  url: http://127.0.0.1:5000
  mimetype: application/json; charset=UTF-8
  encoding: utf-8
  languages: [en-US]
  limits: {{default_items: 100, max_items: 10000}}
  map: {{url: "https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png", attribution: OpenStreetMap}}
logging:
  level: ERROR
metadata:
  identification:
    title: bench
    description: bench
    keywords: [bench]
    keywords_type: theme
    terms_of_service: https://example.org
    url: https://example.org
  license: {{name: CC-BY 4.0, url: https://creativecommons.org/licenses/by/4.0/}}
  provider: {{name: bench, url: https://example.org}}
  contact: {{name: bench, position: bench, address: x, city: x, stateorprovince: x, postalcode: x, country: x,
    phone: x, fax: x, email: bench@example.org, url: https://example.org, hours: x, instructions: x, role: pointOfContact}}
resources:
  {COLLECTION}:
    type: collection
    title: cameras
    description: cameras
    keywords: [cameras]
    extents:
      spatial: {{bbox: [-180, -90, 180, 90], crs: http://www.opengis.net/def/crs/OGC/1.3/CRS84}}
    providers:
      - type: feature
        name: PostgreSQL
        data:
          host: {u.hostname}
          port: {u.port or 5432}
          dbname: {u.path.lstrip("/")}
          user: {u.username}
          password: {u.password}
          search_path: [registry, public]
        id_field: id
        table: cameras
        geom_field: geom
        properties:
{props}
"""


@contextmanager
def pygeoapi(database_url: str) -> Iterator[Server]:
    work = WORK / "pygeoapi"
    work.mkdir(parents=True, exist_ok=True)
    config, openapi = work / "config.yml", work / "openapi.yml"
    config.write_text(_config(database_url))
    env = {"PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    subprocess.run(  # noqa: S603 - fixed argv: the bench's own pygeoapi
        [str(ROOT / ".venv/bin/pygeoapi"), "openapi", "generate", str(config), "--output-file", str(openapi)],
        check=True,
        capture_output=True,
        env={**env, "PATH": str(Path(ROOT / ".venv/bin"))},
    )
    with uvicorn(
        "pygeoapi", ROOT / ".venv/bin/python", "pygeoapi.starlette_app:APP", env, "/conformance", cwd=work
    ) as server:
        yield server
