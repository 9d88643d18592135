"""Patient mails: appointment reminders and offers (topic mail.reminder, with an .ics), account
links (topic mail.portal), "a result is available" (topic mail.result). Sent with the SMTP relay
adapter of naho.messaging.

A patient mail says when and where, with a link to the portal: never the specialty, the reason
or the practitioner (a mailbox is not a safe place for health data). The recipients of an
appointment mail are found when sending: the patient's verified address, and the parents acting
for a child. The message id is the outbox id, so a mail delivered twice is recognisable.
"""

from __future__ import annotations

import email.policy
import logging
import uuid
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from naho.config import Settings
from naho.messaging.smtp import Relay
from naho.platform.clock import Clock
from naho.platform.i18n import _, local_datetime
from naho.platform.outbox import Envelope, Handler
from naho.platform.security.models import Account
from naho.portal.models import PatientAccount, ProxyLink
from naho.scheduling.rules import calendar_file

log = logging.getLogger(__name__)
ACCOUNT_LINKS = {"verify_email": "/portail/verifier?jeton=", "reset_password": "/portail/reinitialiser?jeton="}


def recipients(session: Session, patient_id: uuid.UUID) -> list[str]:
    """The patient's verified address, and those of the parents acting for them."""
    own = session.execute(select(Account.email).join(PatientAccount, PatientAccount.account_id == Account.id)
                          .where(PatientAccount.patient_id == patient_id,
                                 PatientAccount.email_verified_at.is_not(None))).scalars().all()
    parents = session.execute(select(Account.email).join(ProxyLink, ProxyLink.proxy_account_id == Account.id)
                              .where(ProxyLink.patient_id == patient_id,
                                     ProxyLink.revoked_at.is_(None))).scalars().all()
    return sorted({e for e in [*own, *parents] if e})


def compose(payload: dict[str, str], to: list[str], sender: str, base_url: str, now: datetime,
            message_id: uuid.UUID) -> EmailMessage:
    """The mail of one outbox message, in French, with no health data."""
    message = EmailMessage()
    message["From"], message["To"] = sender, ", ".join(to)
    message["Message-ID"] = make_msgid(idstring=str(message_id), domain="naho")
    kind = payload["kind"]
    if kind in ACCOUNT_LINKS:
        link = f"{base_url}{ACCOUNT_LINKS[kind]}{payload['token']}"
        message["Subject"] = _("Your patient portal account")
        intro = _("Confirm your e-mail address:") if kind == "verify_email" else _("Choose a new password:")
        unasked = _("If you did not ask for this, ignore this message.")  # outside the f-string: extracted
        message.set_content(f"{intro}\n{link}\n\n{unasked}\n")
        return message
    if kind == "login_code":  # the code of one sign-in, and nothing else
        message["Subject"] = _("Your sign-in code")
        text = _("Your code to sign in to the patient portal: %(code)s. It is valid for %(minutes)s minutes.") % {
            "code": payload["code"], "minutes": payload.get("minutes", "10")}
        warning = _("If you did not try to sign in, change your password.")
        message.set_content(f"{text}\n\n{warning}\n")
        return message
    if kind == "result_available":  # never which result, nor its value: the portal says it
        message["Subject"] = _("A new result is available on your patient portal")
        text = _("A new result is available. Sign in to your patient portal to read it.")
        message.set_content(f"{text}\n{base_url}/portail/resultats\n")
        return message
    starts, ends = datetime.fromisoformat(payload["starts_at"]), datetime.fromisoformat(payload["ends_at"])
    when = local_datetime(starts)
    link = f"{base_url}/portail"
    if kind == "offer":
        message["Subject"] = _("An appointment slot is available for you")
        text = _("A slot freed up on the waiting list you are on. "
                 "Accept it on the portal before it goes to the next person.")
    else:
        message["Subject"] = _("Reminder of your appointment")
        text = _("This is a reminder of your appointment.")
    when_label, place_label = _("Date and time"), _("Place")
    message.set_content(f"{text}\n\n{when_label}: {when}\n{place_label}: {payload['place']}\n{link}\n")
    ics = calendar_file(f"{payload['reference']}@naho", starts, ends, now, summary=_("Hospital appointment"),
                        location=payload["place"], url=link)
    message.add_attachment(ics.encode(), maintype="text", subtype="calendar", filename="rendez-vous.ics")
    return message


def make_mail_handler(settings: Settings, session_factory: sessionmaker[Session], clock: Clock,
                      relay: Relay | None = None) -> Handler:
    """The outbox handler of topics mail.reminder and mail.portal."""
    target = relay or Relay(settings.portal_smtp_host, settings.portal_smtp_port)
    base_url = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")

    def handle(envelope: Envelope) -> None:
        payload = envelope.payload
        if "to" in payload:
            to = [payload["to"]]
        else:
            with session_factory() as session:
                to = recipients(session, uuid.UUID(payload["patient_id"]))
        if not to:
            return  # no verified address: nothing to send, and nothing to retry
        message = compose(payload, to, settings.portal_mail_sender, base_url, clock.now(), envelope.id)
        # CRLF line ends (policy SMTP): smtplib sends bytes as they are.
        relayed = target.send(message.as_bytes(policy=email.policy.SMTP), settings.portal_mail_sender, to,
                              envelope_id=str(envelope.id))
        if relayed.refused:  # refused for good (5xx): trying again would not help
            log.warning("patient mail %s refused by the relay: %s", envelope.id, relayed.refused)

    return handle
