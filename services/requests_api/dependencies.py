"""requests_api's route dependencies: agency users, owners (their credential checked by registry_api), the
caller's own bearer token (forwarded to geo_query and registry_api), If-Match and Idempotency-Key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.requests_api.registry_client import verify_owner
from shared.auth import OwnerCredential, Principal, owner_credential, require_roles
from shared.headers import IF_MATCH_REQUIRED as IF_MATCH_REQUIRED  # re-exported for the routes
from shared.headers import IfMatch as IfMatch  # re-exported for the routes
from shared.headers import RequiredIfMatch as RequiredIfMatch  # re-exported for the routes
from shared.headers import idempotency_key

AgencyUser = Annotated[Principal, require_roles("investigator", "supervisor")]
Supervisor = Annotated[Principal, require_roles("supervisor")]
AgencyAdmin = Annotated[Principal, require_roles("agency_admin")]


async def _authorization(request: Request) -> str:
    return request.headers.get("authorization", "")


Authorization = Annotated[str, Depends(_authorization)]


async def _verified_owner(
    request: Request,
    cred: Annotated[OwnerCredential, Depends(owner_credential)],
    authorization: Authorization,
) -> OwnerCredential:
    client = request.client.host if request.client else None
    await verify_owner(cred, authorization.partition(" ")[2].strip(), client_address=client)
    return cred


Owner = Annotated[OwnerCredential, Depends(_verified_owner)]

IdempotencyKey = idempotency_key(
    "A unique value per intended request (e.g. a UUID): a retry by you with the same key and body, within "
    "the replay window (24 hours by default), answers as the first attempt did; another body is a 422",
    "9b1f2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d",
)
