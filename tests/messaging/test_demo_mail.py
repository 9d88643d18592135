"""`naho demo` sends letters with no outside service: demo certificates made once (the directory's
professionals and the patients' mail service included) and a local relay that keeps each letter."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select

from naho.config import Settings
from naho.messaging import sink
from naho.messaging.demo import GROUP_MAILBOX, start_demo_mail
from naho.messaging.models import Professional
from naho.messaging.sending import load_config
from naho.platform.uow import UnitOfWork


def test_the_demo_makes_its_certificates_once_and_relays_letters_to_a_local_store(
        uow_factory: Callable[[], UnitOfWork], db_url: str, tmp_path: Path) -> None:
    mail = start_demo_mail(uow_factory(), tmp_path / "demo")
    try:
        env = mail.environment
        settings = Settings(mode="test", database_url=db_url, workers=False, **{  # type: ignore[arg-type]
            key.removeprefix("NAHO_").lower(): value for key, value in env.items()})
        config = load_config(settings)
        assert config is not None and config.identity.email == GROUP_MAILBOX
        assert config.patient_certificate is not None and config.patient_domain == "patient.mssante.fr"
        with uow_factory() as uow:  # every professional with a mailbox can be written to
            rows = uow.session.execute(select(Professional.mss_address, Professional.certificate_pem).where(
                Professional.mss_address.is_not(None))).all()
        assert rows and all(pem for _, pem in rows)

        message = EmailMessage()
        message["From"], message["To"], message["Message-ID"] = GROUP_MAILBOX, rows[0][0], "<demo-1@naho>"
        message["Subject"] = "test"
        message.set_content("test")
        with smtplib.SMTP(env["NAHO_MESSAGING_SMTP_HOST"], int(env["NAHO_MESSAGING_SMTP_PORT"]), timeout=10) as smtp:
            smtp.send_message(message)
        assert list(sink.stored(mail.received)) == ["<demo-1@naho>"]
    finally:
        mail.stop()

    group = tmp_path / "demo" / "pki" / "group.crt"
    made = group.read_bytes()
    again = start_demo_mail(uow_factory(), tmp_path / "demo")  # a second start keeps the same certificates
    try:
        assert group.read_bytes() == made
    finally:
        again.stop()
