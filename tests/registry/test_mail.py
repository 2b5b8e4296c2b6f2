"""The mail interface: settings choose SMTP or log-only; SMTP delivers to the configured relay."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from shared.mail import LogMailer, SmtpMailer, mailer_for
from shared.settings import Settings


def test_settings_choose_the_mailer() -> None:
    smtp = mailer_for(
        Settings(CANVASS_MAIL_BACKEND="smtp", CANVASS_SMTP_HOST="mail.example", CANVASS_SMTP_PORT=2526)
    )
    assert isinstance(smtp, SmtpMailer) and (smtp.host, smtp.port) == ("mail.example", 2526)
    assert isinstance(mailer_for(Settings(CANVASS_MAIL_BACKEND="log")), LogMailer)


def test_smtp_mailer_delivers_to_the_relay(mail: tuple[int, Any]) -> None:
    port, box = mail
    to = f"someone-{uuid.uuid4().hex[:8]}@example.org"
    asyncio.run(
        SmtpMailer("127.0.0.1", port, "Canvass <no-reply@canvass.invalid>").send(to, "Hello", "Body text")
    )
    message = box.wait_for(to)
    assert message["Subject"] == "Hello" and "no-reply@canvass.invalid" in message["From"]
    assert message.get_payload(decode=True).decode().strip() == "Body text"


def test_log_mailer_logs_the_domain_only_and_the_body_only_in_development(caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="canvass.mail")
    asyncio.run(LogMailer().send("dana@example.org", "Subject", "secret body"))
    assert "example.org" in caplog.text and "dana" not in caplog.text and "secret body" not in caplog.text
    caplog.clear()
    dev = mailer_for(Settings(CANVASS_ENV="development", CANVASS_MAIL_BACKEND="log"))
    asyncio.run(dev.send("dana@example.org", "Subject", "secret body"))
    assert "secret body" in caplog.text
