"""Webhooks cannot be aimed inside the network (SSRF): in production a webhook URL must be https and its host
must not be, nor resolve to, a loopback, private, link-local, unique-local, unspecified or multicast address.
Checked when the URL is set (IP literals, the scheme) and again at each delivery, before connecting (the name
resolved, every address checked, the connection pinned to the checked address with TLS still verified for the
name). Development and test allow loopback over http (the suite's own receiver)."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.requests_api.webhook_urls import WebhookRefused, check_webhook_url, pin_webhook, post_pinned
from tests.conftest import Token
from tests.requests.conftest import OFFSET, Flow, NewOwner, eventually
from tests.support import Db, QuietHandler, http_server

INSIDE = [
    "https://127.0.0.1/hook",
    "https://127.8.9.10/hook",
    "https://[::1]/hook",
    "https://10.1.2.3/hook",
    "https://172.16.0.1/hook",
    "https://172.31.255.254/hook",
    "https://192.168.1.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://[fe80::1]/hook",
    "https://[fc00::1]/hook",
    "https://[fd12:3456::1]/hook",
    "https://0.0.0.0/hook",
    "https://[::]/hook",
    "https://224.0.0.1/hook",
    "https://[ff02::1]/hook",
    "https://100.64.0.1/hook",
    "https://[::ffff:10.0.0.1]/hook",
    "https://2130706433/hook",  # 127.0.0.1 spelled as one number
    "https://0x7f.1/hook",
    "https://localhost/hook",
]


@pytest.mark.parametrize("url", INSIDE)
def test_in_production_a_webhook_url_with_an_inside_address_is_refused(url: str) -> None:
    with pytest.raises(WebhookRefused):
        check_webhook_url(url, "production")


@pytest.mark.parametrize(
    "url", ["http://rms.example.gov/hook", "http://93.184.216.34/hook", "ftp://x.example/"]
)
def test_in_production_a_webhook_url_must_be_https(url: str) -> None:
    with pytest.raises(WebhookRefused, match="https"):
        check_webhook_url(url, "production")


@pytest.mark.parametrize(
    "url", ["https://rms.example.gov/canvass/events", "https://93.184.216.34:8443/h?x=1"]
)
def test_in_production_an_https_url_to_a_public_host_is_accepted(url: str) -> None:
    assert check_webhook_url(url, "production") == url


def test_in_development_loopback_is_allowed_over_http_and_nothing_else_inside() -> None:
    for env in ("development", "test"):
        for url in ("http://127.0.0.1:8080/hook", "http://localhost:9000/hook", "https://[::1]/hook"):
            assert check_webhook_url(url, env) == url
        for url in ("http://rms.example.gov/hook", "https://10.0.0.1/hook", "https://169.254.169.254/"):
            with pytest.raises(WebhookRefused):
                check_webhook_url(url, env)


def test_setting_a_webhook_to_an_inside_address_is_a_422(flow: Flow, auth: Token) -> None:
    admin = auth("agency_admin", flow.agency.slug)
    for url in (
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.5/hook",
        "http://rms.example.gov/h",
    ):
        r = flow.client.put(f"/v1/agencies/{flow.agency.slug}/webhook", json={"url": url}, headers=admin)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "/body/url" in r.text
    assert flow.client.get(f"/v1/agencies/{flow.agency.slug}/webhook", headers=admin).status_code == 404


def _resolver(table: dict[str, list[str]]) -> Any:
    calls: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


async def test_at_delivery_a_name_resolving_inside_is_refused_before_connecting() -> None:
    resolve = _resolver(
        {
            "rebind.example": ["10.0.0.7"],
            "metadata.example": ["169.254.169.254"],
            "mixed.example": ["93.184.216.34", "192.168.0.10"],
            "v6.example": ["fd00::5"],
            "loop.example": ["127.0.0.1"],
        }
    )
    for host in ("rebind.example", "metadata.example", "mixed.example", "v6.example", "loop.example"):
        with pytest.raises(WebhookRefused, match="resolves to"):
            await pin_webhook(f"https://{host}/hook", "production", resolve)
    # With the real resolver too: localhost is refused at configuration (in production) and by resolution.
    with pytest.raises(WebhookRefused):
        await pin_webhook("https://localhost/hook", "production")
    # An address literal saved before these checks is refused at delivery without any lookup.
    with pytest.raises(WebhookRefused):
        await pin_webhook("https://10.9.9.9/hook", "production", resolve)
    assert resolve.calls == [
        "rebind.example",
        "metadata.example",
        "mixed.example",
        "v6.example",
        "loop.example",
    ]


async def test_at_delivery_the_connection_is_pinned_to_the_checked_address() -> None:
    resolve = _resolver({"rms.example.gov": ["93.184.216.34", "93.184.216.35"]})
    pinned = await pin_webhook("https://rms.example.gov:8443/canvass/events?v=1", "production", resolve)
    assert str(pinned.url) == "https://93.184.216.34:8443/canvass/events?v=1"
    assert pinned.host_header == "rms.example.gov:8443"
    assert pinned.extensions == {"sni_hostname": "rms.example.gov"}
    resolve6 = _resolver({"v6.example.gov": ["2606:2800:220:1:248:1893:25c8:1946"]})
    pinned6 = await pin_webhook("https://v6.example.gov/h", "production", resolve6)
    assert str(pinned6.url) == "https://[2606:2800:220:1:248:1893:25c8:1946]/h"
    # Development: the suite's loopback receiver.
    local = await pin_webhook("http://127.0.0.1:5000/hook", "test", resolve)
    assert str(local.url) == "http://127.0.0.1:5000/hook" and local.extensions is None


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[int, ssl.SSLContext, list[tuple[str | None, str]]]]:
    """An https receiver on 127.0.0.1 whose certificate names only hooks.example.test; what it saw (SNI, Host)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.example.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("hooks.example.test")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    seen: list[tuple[str | None, str]] = []
    sni: list[str | None] = []
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server_ctx.sni_callback = lambda sock, server_name, ctx: sni.append(server_name)  # type: ignore[assignment,misc]

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append((sni[-1] if sni else None, self.headers.get("Host", "")))
            self.send_response(204)
            self.end_headers()

    client_ctx = ssl.create_default_context(cadata=cert_pem.decode())
    with http_server(Handler, lambda sock: server_ctx.wrap_socket(sock, server_side=True)) as port:
        yield port, client_ctx, seen


async def test_a_pinned_https_delivery_still_verifies_the_certificate_for_the_name(
    tls_receiver: tuple[int, ssl.SSLContext, list[tuple[str | None, str]]],
) -> None:
    port, ctx, seen = tls_receiver
    resolve = _resolver({"hooks.example.test": ["127.0.0.1"], "other.example.test": ["127.0.0.1"]})
    async with httpx.AsyncClient(verify=ctx) as client:
        pinned = await pin_webhook(f"https://hooks.example.test:{port}/hook", "test", resolve)
        r = await client.post(
            pinned.url, content=b"{}", headers={"Host": pinned.host_header}, extensions=pinned.extensions
        )
        assert r.status_code == 204
        assert seen == [("hooks.example.test", f"hooks.example.test:{port}")]
        # The same address under a name the certificate does not carry: TLS refuses it.
        wrong = await pin_webhook(f"https://other.example.test:{port}/hook", "test", resolve)
        with pytest.raises(httpx.ConnectError):
            await client.post(
                wrong.url, content=b"{}", headers={"Host": wrong.host_header}, extensions=wrong.extensions
            )
    await asyncio.sleep(0)


def test_the_worker_refuses_a_stored_inside_url_at_delivery_and_connects_nowhere(
    flow: Flow, new_owner: NewOwner, auth: Token, db: Db
) -> None:
    admin = auth("agency_admin", flow.agency.slug)
    put = flow.client.put(
        f"/v1/agencies/{flow.agency.slug}/webhook",
        json={"url": "https://rms.example.gov/canvass/events"},
        headers=admin,
    )
    assert put.status_code == 200, put.text
    # A URL stored before the configuration check existed (or by hand): the delivery check still holds.
    db.execute(
        "UPDATE requests.agency_webhooks SET url = 'https://169.254.169.254/latest/meta-data/' WHERE agency = $1",
        flow.agency.slug,
    )
    owner = new_owner(flow.agency, flow.agency.near(dx=OFFSET))
    rid = flow.sent()["id"]
    r = flow.client.post(f"/v1/owner/requests/{rid}/answer", json={"answer": "accept"}, headers=owner.headers)
    assert r.status_code == 200, r.text
    row = eventually(
        lambda: db.fetch(
            "SELECT status, attempts, last_error FROM requests.outbox WHERE request_id = $1"
            " AND channel = 'agency_webhook' AND status <> 'pending'",
            rid,
        )
    )
    assert row, "the webhook message was never settled"
    assert row[0]["status"] == "undeliverable" and row[0]["attempts"] == 1
    assert "refused" in row[0]["last_error"] and "link-local" in row[0]["last_error"]


@pytest.fixture
def plain_receiver() -> Iterator[tuple[int, list[str]]]:
    """An http receiver on 127.0.0.1 only (so 127.0.0.2 on its port refuses connections); the Host headers seen."""
    seen: list[str] = []

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append(self.headers.get("Host", ""))
            self.send_response(204)
            self.end_headers()

    with http_server(Handler) as port:
        yield port, seen


async def test_a_delivery_tries_each_checked_address_until_one_takes_the_connection(
    plain_receiver: tuple[int, list[str]],
) -> None:
    port, seen = plain_receiver
    resolve = _resolver(
        {"two.localhost": ["127.0.0.2", "127.0.0.2", "127.0.0.1"], "none.localhost": ["127.0.0.2"]}
    )
    pinned = await pin_webhook(f"http://two.localhost:{port}/hook", "test", resolve)
    assert (pinned.address, pinned.others) == ("127.0.0.2", ("127.0.0.1",))  # each address once, in order
    async with httpx.AsyncClient() as client:
        r = await post_pinned(client, pinned, content=b"{}", headers={"Host": pinned.host_header})
        assert r.status_code == 204 and seen == [f"two.localhost:{port}"]
        nowhere = await pin_webhook(f"http://none.localhost:{port}/hook", "test", resolve)
        with pytest.raises(httpx.ConnectError):
            await post_pinned(client, nowhere, content=b"{}", headers={"Host": nowhere.host_header})
    assert len(seen) == 1


async def test_a_delivery_that_may_have_been_sent_is_not_sent_again_elsewhere(
    plain_receiver: tuple[int, list[str]],
) -> None:
    port, seen = plain_receiver
    # 127.0.0.2 on the receiver's port takes the connection and never answers.
    silent = socket.socket()
    silent.bind(("127.0.0.2", port))
    silent.listen()
    try:
        resolve = _resolver({"slow.localhost": ["127.0.0.2", "127.0.0.1"]})
        pinned = await pin_webhook(f"http://slow.localhost:{port}/hook", "test", resolve)
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.ReadTimeout):
                await post_pinned(
                    client, pinned, content=b"{}", headers={"Host": pinned.host_header}, timeout=0.5
                )
        assert seen == []  # the next address was not tried: the first may have received the delivery
    finally:
        silent.close()
