"""What requests_api asks registry_api over HTTP: an agency's request policy, whether an owner's management
credential is valid, and (the worker) delivering a notification to an owner, whose email only the registry
knows, and reading the feed of deleted registrations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

import httpx

from services.requests_api.config import config
from services.requests_api.upstream import (
    bad_gateway,
    client,
    problem_detail,
    service_token,
    timeout,
    unreachable,
)
from shared.auth import OwnerCredential
from shared.errors import Problem
from shared.settings import get_settings

SERVICE = "registry_api"
# How the owner's address reaches registry_api's guess limits (services/registry_api/abuse.py).
CLIENT_ADDRESS_HEADER = "X-Canvass-Client-Address"
SERVICE_AUTHORIZATION_HEADER = "X-Canvass-Service-Authorization"


@dataclass(frozen=True)
class AgencyPolicy:
    slug: str
    name: str
    max_request_area_m2: float
    max_request_window_hours: float
    default_request_expiry_days: int
    requires_approval: bool
    evidence_retention_days: int


def _url(path: str) -> str:
    return get_settings().registry_api_url.rstrip("/") + path


async def agency_policy(slug: str, authorization: str) -> AgencyPolicy:
    """The agency's policy, read with the caller's own token (registry_api shows it to the agency's users)."""
    try:
        r = await client().get(
            _url(f"/v1/agencies/{slug}"), headers={"Authorization": authorization}, timeout=timeout()
        )
    except httpx.HTTPError as exc:
        raise unreachable(SERVICE, exc) from exc
    if r.status_code == 404:
        raise Problem(403, f"The token's agency '{slug}' is not registered with Canvass.")
    if r.status_code in (401, 403):
        raise Problem(r.status_code, f"{SERVICE} refused the token: {problem_detail(r)}")
    if r.status_code != 200:
        raise bad_gateway(SERVICE, r)
    try:
        props = r.json()["properties"]
        policy = props["policy"]
        return AgencyPolicy(
            slug=props["slug"],
            name=props["name"],
            max_request_area_m2=float(policy["max_request_area_m2"]),
            max_request_window_hours=float(policy["max_request_window_hours"]),
            default_request_expiry_days=int(policy["default_request_expiry_days"]),
            requires_approval=bool(policy["requires_approval"]),
            evidence_retention_days=int(policy["evidence_retention_days"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise Problem(502, f"{SERVICE} did not show the agency's policy.", kind="upstream-error") from exc


async def verify_owner(cred: OwnerCredential, token: str, *, client_address: str | None = None) -> None:
    """The credential opens its registration, asked of registry_api (which alone holds its hash) on every use;
    else 401. Nothing is cached: a credential rotated, reset or deleted is refused here from the moment
    registry_api acknowledged the change. `client_address`, the owner's, goes along in
    `X-Canvass-Client-Address` with this service's token: registry_api counts wrong guesses per client, and
    must not take this service for the guesser (it believes the named address only from a Canvass service)."""
    headers = {"Authorization": f"Bearer {token}"}
    if client_address:
        try:
            headers |= {
                CLIENT_ADDRESS_HEADER: client_address,
                SERVICE_AUTHORIZATION_HEADER: f"Bearer {service_token()}",
            }
        except Problem:  # no service token configured: the guesses are counted as this service's
            pass
    try:
        r = await client().get(
            _url(f"/v1/registrations/{cred.registration_id}"), headers=headers, timeout=timeout()
        )
    except httpx.HTTPError as exc:
        raise unreachable(SERVICE, exc) from exc
    if r.status_code == 200:
        return
    if r.status_code == 429:  # the owner's guesses, refused for a while: passed on as they are
        raise Problem(
            429,
            problem_detail(r),
            kind="too-many-requests",
            headers={"Retry-After": r.headers.get("Retry-After", "60")},
        )
    if r.status_code in (401, 403, 404):
        raise Problem(
            401,
            "The management credential is not valid (it may have been rotated, or the registration deleted).",
            headers={"WWW-Authenticate": 'Bearer realm="canvass"'},
        )
    raise bad_gateway(SERVICE, r)


Outcome = Literal["delivered", "undeliverable", "cancelled", "retry"]


async def notify_owner(
    registration_id: uuid.UUID, notification_id: uuid.UUID, kind: str, subject: str, body: str, *, agency: str
) -> tuple[Outcome, str | None]:
    """Ask registry_api to mail the owner on `agency`'s behalf. The notification id makes a repeat harmless.
    An owner who paused the registration or no longer shares it with the agency is not written to (registry_api
    answers 410 not-shared): the message is dropped, as one no longer wanted."""
    try:
        r = await client().post(
            _url(f"/v1/registrations/{registration_id}/notifications"),
            json={
                "notification_id": str(notification_id),
                "kind": kind,
                "agency": agency,
                "subject": subject,
                "body": body,
            },
            headers={
                "Authorization": f"Bearer {service_token()}",
                "Idempotency-Key": str(notification_id),
            },
            timeout=httpx.Timeout(config().delivery_timeout_s),
        )
    except httpx.HTTPError as exc:
        return "retry", f"{type(exc).__name__}"
    except Problem as exc:
        return "retry", exc.detail
    if r.status_code in (200, 202):
        return "delivered", None
    if r.status_code == 410 and _problem_type(r).endswith("/not-shared"):
        # The owner paused the registration or stopped sharing it with the agency: the message is no longer
        # wanted, like one to a target that closed (dropped, not a delivery failure).
        return "cancelled", "not shared with the agency now"
    if r.status_code in (404, 409, 410, 422):
        # The owner deleted or withdrew the registration, or has no email: retrying cannot help.
        return "undeliverable", f"{r.status_code}: {problem_detail(r)}"
    return "retry", f"{r.status_code}: {problem_detail(r)}"


def _problem_type(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("type", "")) if isinstance(body, dict) else ""


class FeedUnavailable(Exception):
    """registry_api did not give the page (unreachable, refused, or an answer not in its contract)."""


@dataclass(frozen=True)
class DeletionPage:
    registration_ids: list[uuid.UUID]
    next_after: int


async def deleted_registrations(after: int, limit: int) -> DeletionPage:
    """The registrations deleted after the cursor `after`, in order (registry_api's feed, read as a service)."""
    try:
        r = await client().get(
            _url("/v1/deleted-registrations"),
            params={"after": after, "limit": limit},
            headers={"Authorization": f"Bearer {service_token()}"},
            timeout=timeout(),
        )
    except httpx.HTTPError as exc:
        raise FeedUnavailable(f"{SERVICE} unreachable: {type(exc).__name__}") from exc
    except Problem as exc:  # no service token configured
        raise FeedUnavailable(exc.detail) from exc
    if r.status_code != 200:
        raise FeedUnavailable(f"{SERVICE} answered {r.status_code}: {problem_detail(r)}")
    try:
        body = r.json()
        page = DeletionPage(
            [uuid.UUID(d["registration_id"]) for d in body["deletions"]], int(body["next_after"])
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise FeedUnavailable(f"{SERVICE} did not answer with a page of deletions") from exc
    if page.next_after < after or len(page.registration_ids) > limit:
        raise FeedUnavailable(f"{SERVICE} answered a page that does not follow the cursor {after}")
    return page
