"""Outgoing mail behind one small interface: SMTP in deployments and tests; in development, a folder of message
files (`CANVASS_MAIL_DIR`, git-ignored) instead of a mail server.

`get_mailer()` picks the implementation from settings (`CANVASS_MAIL_BACKEND` = "smtp" | "log"). Callers send
after their transaction has committed: a mail about data that was rolled back must never leave. A mail that may be
sent again after a crash carries a Message-ID derived from the id of what it announces (`message_id`), so the
repeat is the same message to mail software.

No log line names a recipient, their address or its domain (a personal domain names the person), nor any part
of a message's body, which may carry a credential or a one-time code.
"""

from __future__ import annotations

import asyncio
import email.policy
import logging
import os
import uuid
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import aiosmtplib

from shared.settings import Settings, get_settings

log = logging.getLogger("canvass.mail")


class Mailer(Protocol):
    async def send(
        self,
        to: str,
        subject: str,
        body: str,
        *,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None: ...


def _sender_domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "canvass.invalid"


def message_id(kind: str, ident: uuid.UUID | str) -> str:
    """The Message-ID of the mail announcing `ident` (an outbox message, a notification): the same on every
    attempt, so a mail sent again after a crash is recognisably the same message."""
    return f"<{kind}.{ident}@{_sender_domain(get_settings().mail_from)}>"


# Header lines up to RFC 5322's limit: a Message-ID folded over two lines is one that some software misreads.
POLICY = email.policy.SMTP.clone(max_line_length=998)


def compose(
    sender: str,
    to: str,
    subject: str,
    body: str,
    message_id: str | None,
    headers: Mapping[str, str] | None = None,
) -> EmailMessage:
    """`headers` are further header fields (a list's List-Unsubscribe, say), added after the standard ones."""
    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(domain=_sender_domain(sender))
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message


class SmtpMailer:
    """Plain-text mail through an SMTP relay (STARTTLS when the relay offers it)."""

    def __init__(self, host: str, port: int, sender: str, timeout_s: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.timeout_s = timeout_s

    async def send(
        self,
        to: str,
        subject: str,
        body: str,
        *,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        message = compose(self.sender, to, subject, body, message_id, headers)
        # Flattened here, under POLICY (aiosmtplib would flatten under its own, folding the Message-ID).
        await aiosmtplib.send(
            message.as_bytes(),
            sender=parseaddr(self.sender)[1],
            recipients=[to],
            hostname=self.host,
            port=self.port,
            timeout=self.timeout_s,
        )
        log.info("mail sent: %s", message["Message-ID"])


class FolderMailer:
    """Development: each message is written as a file (`<Message-ID>.eml`, readable by its owner only) to a
    folder the repository ignores, so a developer can follow a credential re-issue without a mail server. The
    log says only that a message was written and where."""

    def __init__(self, folder: str | Path, sender: str) -> None:
        self.folder = Path(folder)
        self.sender = sender

    async def send(
        self,
        to: str,
        subject: str,
        body: str,
        *,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        message = compose(self.sender, to, subject, body, message_id, headers)
        path = self.folder / (str(message["Message-ID"]).strip("<>").replace("/", "_") + ".eml")
        await asyncio.to_thread(self._write, path, message.as_bytes())
        log.info("mail written to %s (not sent)", path)

    def _write(self, path: Path, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


class DroppingMailer:
    """Outside development without SMTP: the message is not sent and not kept (it may carry a secret)."""

    warned = False

    async def send(
        self,
        to: str,
        subject: str,
        body: str,
        *,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # Said once at WARNING (a deployment without a mail relay is a mistake worth seeing), then at DEBUG: an
        # import mails thousands of owners.
        level = logging.DEBUG if DroppingMailer.warned else logging.WARNING
        DroppingMailer.warned = True
        log.log(level, "mail not sent (CANVASS_MAIL_BACKEND=log outside development): %s", subject)


def mailer_for(settings: Settings) -> Mailer:
    if settings.mail_backend == "smtp":
        return SmtpMailer(settings.smtp_host, settings.smtp_port, settings.mail_from)
    if settings.env == "development":
        return FolderMailer(settings.mail_dir, settings.mail_from)
    return DroppingMailer()


@lru_cache
def get_mailer() -> Mailer:
    return mailer_for(get_settings())
