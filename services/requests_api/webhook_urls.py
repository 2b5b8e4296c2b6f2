"""Where a webhook may point. The worker POSTs from inside the network, so an agency's URL must not reach what
only the inside can: loopback, private (10/8, 172.16/12, 192.168/16), link-local (169.254/16, fe80::/10),
unique-local (fc00::/7), unspecified, multicast or any other non-global address.

Two checks. When the URL is set (`check_webhook_url`): in production it must be https, and a host that is an IP
literal (in any spelling getaddrinfo accepts, such as `2130706433`) must be a global address. When a message is
delivered (`pin_webhook`): the host is resolved, every address it resolves to must be allowed, and the POST goes
to the addresses checked, in turn until one takes the connection (the name kept for `Host` and TLS), so a name
cannot resolve to a safe address for the check and an inside one for the connection.

In development and test (where the suite's receiver listens on 127.0.0.1 over http) loopback is allowed, over
http or https; every other rule holds."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_NAMED_LOOPBACK = ("localhost", "localhost.", "ip6-localhost", "ip6-loopback")


class WebhookRefused(ValueError):
    """The URL, or what its host resolves to, is not a place webhooks may go."""


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64: the IPv4 address is the last 32 bits
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal(ip: IPAddress, env: str) -> str | None:
    """Why webhooks may not go to this address, or None when they may."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            return refusal(inner, env)
    if ip.is_loopback:
        return None if env != "production" else "a loopback address"
    for test, what in (
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_private, "a private or unique-local address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "an address that is not globally routable"),
    ):
        if test:
            return what
    return None


def ip_literal(host: str) -> IPAddress | None:
    """The address a host names directly, in any form the resolver would accept as one (dotted quad, IPv6, and
    the legacy IPv4 spellings such as 127.1, 0x7f.0.0.1 or 2130706433)."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise WebhookRefused("not a valid URL") from exc
    if parsed.scheme not in ("http", "https"):
        raise WebhookRefused("use an https:// URL")
    if not parsed.host:
        raise WebhookRefused("the URL has no host")
    return parsed


def check_webhook_url(url: str, env: str) -> str:
    """The URL if webhooks may be sent to it; WebhookRefused (a ValueError: a 422 in a request body) otherwise."""
    parsed = _parse(url)
    host = parsed.host.lower()
    literal = ip_literal(host)
    loopback = host in _NAMED_LOOPBACK or host.endswith(".localhost") or bool(literal and literal.is_loopback)
    if parsed.scheme != "https" and (env == "production" or not loopback):
        raise WebhookRefused("use an https:// URL (plain http is allowed only to loopback in development)")
    if env == "production" and (host in _NAMED_LOOPBACK or host.endswith(".localhost")):
        raise WebhookRefused("webhooks may not go to localhost")
    if literal is not None:
        why = refusal(literal, env)
        if why is not None:
            raise WebhookRefused(f"webhooks may not go to {why} ({literal})")
    return url


@dataclass(frozen=True)
class PinnedWebhook:
    """Where to connect (the URL with the checked address as its host), with what the server must see."""

    url: httpx.URL
    host_header: str
    sni_hostname: str | None
    address: str
    others: tuple[str, ...] = ()  # the name's further addresses, each checked too, tried in turn

    @property
    def extensions(self) -> dict[str, str] | None:
        """For httpx: TLS is negotiated, and the certificate checked, for the name, not the address."""
        return {"sni_hostname": self.sni_hostname} if self.sni_hostname else None

    def candidates(self) -> list[PinnedWebhook]:
        """This address, then each further one the name resolved to."""
        return [self] + [
            replace(self, url=self.url.copy_with(host=address), address=address, others=())
            for address in self.others
        ]


async def post_pinned(client: httpx.AsyncClient, pinned: PinnedWebhook, **kwargs: Any) -> httpx.Response:
    """POST to the first of the name's checked addresses that takes the connection (as a browser or curl tries a
    name's addresses in turn). Only a failure to connect moves on: once a request may have been sent, the error
    is the caller's, so a delivery is never sent twice by this loop."""
    last: httpx.HTTPError | None = None
    for target in pinned.candidates():
        try:
            return await client.post(target.url, extensions=target.extensions, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            last = exc
    assert last is not None
    raise last


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def pin_webhook(url: str, env: str, resolve: Resolver = _getaddrinfo) -> PinnedWebhook:
    """Check the URL, resolve its host and check every address, before any connection: WebhookRefused when a
    webhook may not go there (an OSError when the name does not resolve)."""
    check_webhook_url(url, env)
    parsed = _parse(url)
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    literal = ip_literal(host)
    addresses = [str(literal)] if literal is not None else await resolve(host, port)
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    for address in addresses:
        ip = ipaddress.ip_address(
            address.split("%", 1)[0]
        )  # a scoped IPv6 address carries its zone after '%'
        why = refusal(ip, env)
        if why is not None:
            raise WebhookRefused(f"{host} resolves to {why} ({ip})")
    unique = list(dict.fromkeys(a.split("%", 1)[0] for a in addresses))
    chosen = unique[0]
    host_header = httpx.Request("POST", parsed).headers["Host"]
    return PinnedWebhook(
        url=parsed.copy_with(host=chosen),
        host_header=host_header,
        sni_hostname=host if parsed.scheme == "https" and literal is None else None,
        address=chosen,
        others=tuple(unique[1:]),
    )
