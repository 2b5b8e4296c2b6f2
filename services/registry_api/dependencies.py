"""registry_api's route dependencies: the If-Match and Idempotency-Key headers, the roles of agency users, and
another Canvass service calling as itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Response

from shared.auth import CurrentPrincipal, Principal, require_roles
from shared.errors import Problem
from shared.headers import IF_MATCH_REQUIRED as IF_MATCH_REQUIRED  # re-exported for the routes
from shared.headers import IfMatch as IfMatch  # re-exported for the routes
from shared.headers import RequiredIfMatch as RequiredIfMatch  # re-exported for the routes
from shared.headers import idempotency_key

IdempotencyKey = idempotency_key(
    "A unique value per intended registration (e.g. a UUID): a retry with the same key and body gets "
    "the first answer again for 24 hours, including the credential, instead of a second registration",
    "3f0e4b1c-8d52-4a51-9c1e-2b7f1f0f7a11",
)

AgencyAdmin = Annotated[Principal, require_roles("agency_admin")]
# Publishing an agency is the one operation a token for an agency Canvass does not know yet may call.
FoundingAdmin = Annotated[Principal, require_roles("agency_admin", registered=False)]
Investigator = Annotated[Principal, require_roles("investigator", "supervisor")]
LiveViewer = Annotated[Principal, require_roles("investigator", "supervisor", "cad")]
Outreach = Annotated[Principal, require_roles("agency_admin", "advocate", "supervisor")]


async def _service(principal: CurrentPrincipal) -> Principal:
    # Another Canvass service acts for no agency, so `require_roles` (which wants an agency claim) does not fit.
    if not principal.has("service"):
        raise Problem(403, "Only another Canvass service (role 'service') may call this operation.")
    return principal


ServiceCaller = Annotated[Principal, Depends(_service)]


NO_STORE = {"Cache-Control": "no-store"}


async def _no_store(response: Response) -> None:
    response.headers.update(NO_STORE)


# Answers that carry personal data or secrets must not be kept by browsers or proxies.
NoStore = Depends(_no_store)
