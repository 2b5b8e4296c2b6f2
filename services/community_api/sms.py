"""The one SMS provider adapter, in the shape of Twilio's Messages API, and the check of its inbound webhook.

Sending: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP Basic with the account SID and auth
token, a form body of `To`, `From` and `Body`; the provider answers 201 with the message's `sid`. What a failure
means for a retry is said by `SendOutcome`: the provider refusing the message (a 4xx other than 429: a number that
replied STOP, a malformed number) is final; a 429, a 5xx or a connection refused is worth trying again, since no
message was sent; a request that was sent but not answered (a timeout) is ambiguous, and is never retried, so a
subscriber never receives an alert twice.

Inbound: the provider posts each reply as a form to our webhook, signed in `X-Twilio-Signature`: base64 of
HMAC-SHA1, keyed with the auth token, over the webhook's full URL followed by each form parameter's name and value,
sorted by name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from enum import Enum

import httpx

from services.community_api.config import config

log = logging.getLogger("canvass.community.sms")


class SendOutcome(Enum):
    SENT = "sent"
    RETRY = "retry"  # nothing was sent: try again later
    FINAL = "final"  # refused, or perhaps sent: never try again


_client: httpx.AsyncClient | None = None


def client() -> httpx.AsyncClient:
    global _client
    if _client is None:
        _client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0))
    return _client


async def close_client() -> None:
    global _client
    if _client is not None:
        await _client.aclose()
        _client = None


def configured() -> bool:
    """Whether this deployment sends text messages (it has the provider's token)."""
    return config().sms_auth_token is not None


async def send(to: str, body: str) -> SendOutcome:
    c = config()
    if c.sms_auth_token is None:  # a subscription made while it did; nothing can be sent now
        log.warning("no SMS provider configured: a text message is not sent")
        return SendOutcome.FINAL
    url = f"{c.sms_api_url.rstrip('/')}/2010-04-01/Accounts/{c.sms_account_sid}/Messages.json"
    try:
        r = await client().post(
            url, data={"To": to, "From": c.sms_from, "Body": body}, auth=(c.sms_account_sid, c.sms_auth_token)
        )
    except (httpx.ConnectError, httpx.ConnectTimeout):
        log.warning("sms provider unreachable; will retry")
        return SendOutcome.RETRY
    except httpx.HTTPError:
        # The request may have reached the provider: sending it again could deliver it twice.
        log.warning("sms provider did not answer; not retried (it may have been sent)")
        return SendOutcome.FINAL
    if r.status_code in (200, 201):
        return SendOutcome.SENT
    if r.status_code == 429 or r.status_code >= 500:
        log.warning("sms provider answered %s; will retry", r.status_code)
        return SendOutcome.RETRY
    log.warning("sms provider refused a message: %s", r.status_code)
    return SendOutcome.FINAL


def signature(url: str, params: list[tuple[str, str]], token: str) -> str:
    payload = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def signed(url: str, params: list[tuple[str, str]], given: str | None) -> bool:
    token = config().sms_auth_token
    if not given or token is None:
        return False
    # As bytes: compare_digest refuses two str unless both are ASCII, and a header may hold any byte.
    return hmac.compare_digest(signature(url, params, token).encode(), given.encode())
