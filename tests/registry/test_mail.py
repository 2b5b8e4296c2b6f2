"""The mail interface: settings choose SMTP, a folder of message files (development) or nothing; every mail has a
Message-ID; no log line names the recipient, their domain or anything of the body."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from shared.mail import DroppingMailer, FolderMailer, SmtpMailer, mailer_for, message_id
from shared.settings import Settings


def _text(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_settings_choose_the_mailer(tmp_path: Path) -> None:
    smtp = mailer_for(
        Settings(CANVASS_MAIL_BACKEND="smtp", CANVASS_SMTP_HOST="mail.example", CANVASS_SMTP_PORT=2526)
    )
    assert isinstance(smtp, SmtpMailer) and (smtp.host, smtp.port) == ("mail.example", 2526)
    dev = mailer_for(
        Settings(CANVASS_ENV="development", CANVASS_MAIL_BACKEND="log", CANVASS_MAIL_DIR=str(tmp_path))
    )
    assert isinstance(dev, FolderMailer) and dev.folder == tmp_path
    assert isinstance(mailer_for(Settings(CANVASS_ENV="test", CANVASS_MAIL_BACKEND="log")), DroppingMailer)


def test_the_development_mail_folder_is_ignored_by_git() -> None:
    root = Path(__file__).resolve().parents[2]
    folder = Settings(CANVASS_ENV="development").mail_dir
    ignored = {line.strip().rstrip("/") for line in (root / ".gitignore").read_text().splitlines()}
    assert Path(folder).parts[0] in ignored


def test_smtp_mailer_delivers_to_the_relay_under_the_given_message_id(mail: tuple[int, Any]) -> None:
    port, box = mail
    to = f"someone-{uuid.uuid4().hex[:8]}@example.org"
    mid = message_id("outbox", uuid.uuid4())
    asyncio.run(
        SmtpMailer("127.0.0.1", port, "Canvass <no-reply@canvass.invalid>").send(
            to, "Hello", "Body text", message_id=mid
        )
    )
    message = box.wait_for(to)
    assert message["Subject"] == "Hello" and "no-reply@canvass.invalid" in message["From"]
    assert message["Message-ID"] == mid
    assert message.get_payload(decode=True).decode().strip() == "Body text"
    other = f"someone-{uuid.uuid4().hex[:8]}@example.org"
    asyncio.run(SmtpMailer("127.0.0.1", port, "Canvass <no-reply@canvass.invalid>").send(other, "Hi", "x"))
    assert box.wait_for(other)["Message-ID"].endswith(
        "@canvass.invalid>"
    )  # one of its own when none is given


def test_the_folder_mailer_writes_the_message_and_logs_no_address_domain_or_body(
    tmp_path: Path, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    mid = message_id("notification", uuid.uuid4())
    asyncio.run(
        FolderMailer(tmp_path, "Canvass <no-reply@canvass.invalid>").send(
            "dana@dana-rivera.example", "Subject", "code cvr_SECRET", message_id=mid
        )
    )
    files = list(tmp_path.glob("*.eml"))
    assert len(files) == 1 and files[0].stat().st_mode & 0o077 == 0
    message = message_from_bytes(files[0].read_bytes())
    assert message["To"] == "dana@dana-rivera.example" and message["Message-ID"] == mid
    assert "cvr_SECRET" in _text(message)
    assert caplog.records, "the folder mailer says where the message went"
    for forbidden in ("dana", "rivera", "example", "cvr_SECRET"):
        assert forbidden not in caplog.text
    caplog.clear()
    asyncio.run(DroppingMailer().send("dana@dana-rivera.example", "Subject", "code cvr_SECRET"))
    assert "rivera" not in caplog.text and "cvr_SECRET" not in caplog.text


def test_the_service_log_names_no_credential_code_address_or_domain_through_a_registration_and_reset(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    """registry_api in development (mail written to a folder), logging at DEBUG: an owner registers, asks for a
    reset, redeems the code, rotates the credential; an advocate registers an owner whose credential is mailed.
    The messages are in the folder; the log holds none of the secrets, addresses or domains."""
    import re

    import httpx

    from shared.auth import mint_token
    from tests.support import start_server

    folder = tmp_path / "mail"
    env = dict(
        service_env,
        CANVASS_ENV="development",
        CANVASS_MAIL_BACKEND="log",
        CANVASS_MAIL_DIR=str(folder),
        CANVASS_LOG_LEVEL="DEBUG",
    )
    server = start_server("registry_api", env)
    domain = f"marker-{uuid.uuid4().hex[:8]}.example"
    owner_email, advocate_email = (
        f"dana.{uuid.uuid4().hex[:6]}@{domain}",
        f"lee.{uuid.uuid4().hex[:6]}@{domain}",
    )
    slug = "t-" + uuid.uuid4().hex[:10]
    secrets: list[str] = []
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            admin = {"Authorization": "Bearer " + mint_token("agency_admin", slug)}
            area = {
                "type": "Polygon",
                "coordinates": [[[-70, 40], [-69.9, 40], [-69.9, 40.1], [-70, 40.1], [-70, 40]]],
            }
            assert (
                c.post(
                    "/v1/agencies", json={"slug": slug, "name": "PD", "jurisdiction": area}, headers=admin
                ).status_code
                == 201
            )
            at = {"type": "Point", "coordinates": [-69.95, 40.05]}
            r = c.post(
                "/v1/registrations", json={"agency": slug, "location": at, "contact": {"email": owner_email}}
            )
            assert r.status_code == 201, r.text
            rid, first = r.json()["id"], r.json()["credential"]
            secrets.append(first)
            assert c.post("/v1/credential-resets", json={"email": owner_email}).status_code == 202

            def mail_with(marker: str) -> str:
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    for f in folder.glob("*.eml") if folder.exists() else []:
                        text = _text(message_from_bytes(f.read_bytes()))
                        if marker in text:
                            return text
                    time.sleep(0.05)
                raise AssertionError(f"no message with {marker}")

            found = re.search(r"cvr_[A-Za-z0-9_-]+", mail_with("cvr_"))
            assert found is not None
            code = found.group(0)
            secrets.append(code)
            redeemed = c.post("/v1/credential-resets/redeem", json={"token": code})
            assert redeemed.status_code == 200, redeemed.text
            secrets.append(redeemed.json()["credential"])
            rotated = c.post(
                f"/v1/registrations/{rid}/credential",
                headers={"Authorization": f"Bearer {redeemed.json()['credential']}"},
            )
            assert rotated.status_code == 200
            secrets.append(rotated.json()["credential"])
            advocate = {"Authorization": "Bearer " + mint_token("advocate", slug)}
            r = c.post(
                "/v1/registrations",
                json={"agency": slug, "location": at, "contact": {"email": advocate_email}},
                headers=advocate,
            )
            assert r.status_code == 201, r.text
            mailed = re.search(r"cvo_[A-Za-z0-9_]+", mail_with(r.json()["id"]))
            assert mailed is not None
            secrets.append(mailed.group(0))
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "mail written to" in log  # the log was captured, at a level that shows the mailer's lines
    for forbidden in [
        *secrets,
        owner_email,
        advocate_email,
        owner_email.split("@")[0],
        domain,
        domain.split(".")[0],
    ]:
        assert forbidden not in log, forbidden
