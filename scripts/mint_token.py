"""Print a development bearer token (HS256, signed with CANVASS_SECRET_KEY) for a role and an agency.

make token ROLE=investigator AGENCY=demo
.venv/bin/python scripts/mint_token.py --role supervisor --agency demo --sub alice --hours 2
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# Development tokens, by definition: signed with the development settings unless told otherwise.
os.environ.setdefault("CANVASS_ENV", "development")

from shared.auth import ROLES, mint_token


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--agency", required=True, help="the agency slug, e.g. demo")
    p.add_argument("--sub", help="the subject (user or client id); default dev-<role>")
    p.add_argument("--hours", type=float, default=8.0)
    a = p.parse_args()
    print(mint_token(a.role, a.agency, sub=a.sub, ttl_s=int(a.hours * 3600)))


if __name__ == "__main__":
    main()
