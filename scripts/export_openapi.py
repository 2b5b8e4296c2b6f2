"""Write each service's OpenAPI document to openapi/<service>.json (the committed, published contracts)."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Rendering a contract needs no keys: never refuse to for want of production secrets.
os.environ.setdefault("CANVASS_ENV", "development")

SERVICES = ("registry_api", "geo_query", "requests_api", "community_api", "live_relay")


def render(service: str) -> str:
    app = importlib.import_module(f"services.{service}.main").app
    return json.dumps(app.openapi(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def main() -> None:
    out = ROOT / "openapi"
    out.mkdir(exist_ok=True)
    for service in SERVICES:
        (out / f"{service}.json").write_text(render(service))
        print(f"openapi/{service}.json")


if __name__ == "__main__":
    main()
