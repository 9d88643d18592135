"""The SMTP adapter: the outbox handler that hands a sealed letter to the relay.

The handler sends the letter's stored bytes (same Message-ID on every attempt) with smtplib,
STARTTLS when the relay offers it (or always, when configured so), DSN requested when the relay
supports it (ENVID is the letter id, so a report finds its letter even without the headers).
A letter no longer queued was accepted already: it is not sent again. A temporary failure
(connection lost, 4xx) raises, and the outbox tries again with backoff; a permanent refusal
(5xx) of every recipient, of the sender or of the data marks the letter failed, not retried.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from naho.config import Settings
from naho.messaging.rules import LetterStatus
from naho.messaging.sending import Relayed, letter_to_send, record_relayed
from naho.platform.clock import Clock
from naho.platform.outbox import Envelope, Handler


class RelayRefusedTls(RuntimeError):
    """STARTTLS is required and the relay does not offer it."""


@dataclass(frozen=True)
class Relay:
    host: str
    port: int
    starttls: str = "auto"  # auto | required | never
    ca_file: Path | None = None
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Relay:
        return cls(settings.messaging_smtp_host, settings.messaging_smtp_port, settings.messaging_smtp_starttls,
                   settings.messaging_smtp_ca_file, settings.messaging_smtp_timeout)

    def send(self, raw: bytes, sender: str, recipients: Sequence[str], *, envelope_id: str) -> Relayed:
        """Hand one message to the relay; which recipients it accepted and which it refused for good.

        Raises on a temporary failure (the outbox retries)."""
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as client:
            client.ehlo()
            if self.starttls != "never" and client.has_extn("starttls"):
                context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
                client.starttls(context=context)
                client.ehlo()
            elif self.starttls == "required":
                raise RelayRefusedTls(f"{self.host}:{self.port} does not offer STARTTLS")
            mail_options: list[str] = []
            rcpt_options: list[str] = []
            if client.has_extn("dsn"):
                mail_options = ["RET=HDRS", f"ENVID={envelope_id}"]
                rcpt_options = ["NOTIFY=SUCCESS,FAILURE,DELAY"]
            try:
                refused = client.sendmail(sender, list(recipients), raw, mail_options, rcpt_options)
            except smtplib.SMTPRecipientsRefused as exc:
                refused = exc.recipients
                if any(code < 500 for code, _ in refused.values()):
                    raise  # some refusals are temporary: try the whole letter again later
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
                if exc.smtp_code < 500:
                    raise
                # The relay refuses the letter itself for good (our sender, its content).
                reply = exc.smtp_error if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error).encode()
                refused = {address: (exc.smtp_code, reply) for address in recipients}
        permanent = {address: f"{code} {reply.decode('utf-8', 'replace')}" for address, (code, reply) in refused.items()
                     if code >= 500}
        temporary = [address for address, (code, _) in refused.items() if code < 500]
        if temporary:
            raise smtplib.SMTPRecipientsRefused({a: refused[a] for a in temporary})
        return Relayed([a for a in recipients if a not in refused], permanent)


def make_letter_handler(settings: Settings, session_factory: sessionmaker[Session], clock: Clock,
                        relay: Relay | None = None) -> Handler:
    """The outbox handler of topic messaging.letter."""
    target = relay or Relay.from_settings(settings)

    def handle(envelope: Envelope) -> None:
        letter_id = uuid.UUID(str(envelope.payload["letter_id"]))
        with session_factory() as session:
            found = letter_to_send(session, letter_id)
        if found is None:
            raise LookupError(f"letter {letter_id} does not exist")
        raw, sender, recipients, status = found
        if status != LetterStatus.QUEUED:
            return  # the relay accepted it already: never a second letter
        outcome = target.send(raw, sender, recipients, envelope_id=str(letter_id))
        with session_factory() as session, session.begin():
            record_relayed(session, letter_id, outcome, now=clock.now())

    return handle
