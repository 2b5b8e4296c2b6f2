"""Outgoing mail behind one small interface: SMTP in deployments and tests, a log-only mailer in development.

`get_mailer()` picks the implementation from settings (`CANVASS_MAIL_BACKEND` = "smtp" | "log"). Callers send
after their transaction has committed: a mail about data that was rolled back must never leave.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from functools import lru_cache
from typing import Protocol

import aiosmtplib

from shared.settings import Settings, get_settings

log = logging.getLogger("canvass.mail")


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


def _domain(address: str) -> str:
    # Logs name the recipient's domain only: an address is personal data.
    return address.rpartition("@")[2] or "?"


class SmtpMailer:
    """Plain-text mail through an SMTP relay (STARTTLS when the relay offers it)."""

    def __init__(self, host: str, port: int, sender: str, timeout_s: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.timeout_s = timeout_s

    async def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        await aiosmtplib.send(message, hostname=self.host, port=self.port, timeout=self.timeout_s)
        log.info("mail sent to a recipient at %s: %s", _domain(to), subject)


class LogMailer:
    """The message is logged, not sent. Its body (which may carry a one-time secret) is logged only in
    development, so a developer can follow a credential re-issue without a mail server."""

    def __init__(self, include_body: bool = False) -> None:
        self.include_body = include_body

    async def send(self, to: str, subject: str, body: str) -> None:
        log.info("mail (not sent, log backend) to a recipient at %s: %s", _domain(to), subject)
        if self.include_body:
            log.info("mail body:\n%s", body)


def mailer_for(settings: Settings) -> Mailer:
    if settings.mail_backend == "smtp":
        return SmtpMailer(settings.smtp_host, settings.smtp_port, settings.mail_from)
    return LogMailer(include_body=settings.env == "development")


@lru_cache
def get_mailer() -> Mailer:
    return mailer_for(get_settings())
