"""The mail interface: settings choose SMTP, a folder of message files (development) or nothing; every mail has a
Message-ID; no log line names the recipient, their domain or anything of the body."""

from __future__ import annotations

import asyncio
import logging
import uuid
from email import message_from_bytes
from pathlib import Path
from typing import Any

from shared.mail import DroppingMailer, FolderMailer, SmtpMailer, mailer_for, message_id
from shared.settings import Settings


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
    assert "cvr_SECRET" in message.get_payload(decode=True).decode()
    assert caplog.records, "the folder mailer says where the message went"
    for forbidden in ("dana", "rivera", "example", "cvr_SECRET"):
        assert forbidden not in caplog.text
    caplog.clear()
    asyncio.run(DroppingMailer().send("dana@dana-rivera.example", "Subject", "code cvr_SECRET"))
    assert "rivera" not in caplog.text and "cvr_SECRET" not in caplog.text
