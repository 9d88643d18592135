"""The group mailbox's transport: where received messages are fetched, and the answers sent.

A `MailSource` lists the messages waiting and is told when one was recorded; `poll_mailbox`
hands each to `inbound.receive_message` and marks it done only after that committed. A crash in
between leaves the message in the source: the next poll receives it again, and its Message-ID
makes that a no-op. Two sources:

* `ImapSource` — the mailbox of the MSSanté operator, over IMAP (imaplib, TLS or STARTTLS):
  unseen messages of a folder, fetched without marking them (BODY.PEEK), flagged \\Seen once
  recorded;
* `MaildirSource` — a directory of `.eml` files (a local delivery agent, a gateway dropping
  files, the demo and the tests): moved to `done/` once recorded.

`make_answer_handler` is the outbox handler that sends the non-integration notifications
through the same SMTP relay as the letters.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import ssl
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from sqlalchemy.orm import Session, sessionmaker

from naho.config import Settings
from naho.messaging.inbound import InboundResult, answer_of
from naho.messaging.smtp import Relay
from naho.platform.outbox import Envelope, Handler

log = logging.getLogger(__name__)
#: Largest message fetched (the XDM limits are 50 MB of archive; base64 adds a third).
MAX_MESSAGE_BYTES = 80 * 1024 * 1024


class MailSource(Protocol):
    """Where received messages wait: `pending` yields (key, raw bytes), `done` removes one."""

    def pending(self) -> Iterator[tuple[str, bytes]]: ...

    def done(self, key: str) -> None: ...


@dataclass
class MaildirSource:
    """A directory of `.eml` files, oldest name first; recorded ones move to `done/`."""

    path: Path

    def pending(self) -> Iterator[tuple[str, bytes]]:
        for file in sorted(self.path.glob("*.eml")):
            if file.is_file() and file.stat().st_size <= MAX_MESSAGE_BYTES:
                yield file.name, file.read_bytes()

    def done(self, key: str) -> None:
        target = self.path / "done"
        target.mkdir(exist_ok=True)
        (self.path / key).replace(target / key)


@dataclass
class ImapSource:
    """A folder of an IMAP mailbox: unseen messages, flagged \\Seen once recorded.

    One connection per poll (the worker runs every minute or so): no idle connection to keep
    alive, and a server restart costs one missed poll."""

    host: str
    port: int = 993
    user: str = ""
    password: str = ""
    folder: str = "INBOX"
    tls: Literal["ssl", "starttls", "never"] = "ssl"
    ca_file: Path | None = None
    timeout: float = 30.0

    def __post_init__(self) -> None:
        self._client: imaplib.IMAP4 | None = None

    def _connect(self) -> imaplib.IMAP4:
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        client: imaplib.IMAP4
        if self.tls == "ssl":
            client = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context, timeout=self.timeout)
        else:
            client = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
        try:
            if self.tls == "starttls":
                client.starttls(ssl_context=context)
            client.login(self.user, self.password)
            status, _ = client.select(self.folder)
            if status != "OK":
                raise imaplib.IMAP4.error(f"cannot select folder {self.folder!r}")
        except BaseException:
            client.shutdown()  # refused (credentials, TLS, folder): close the socket, not leak it
            raise
        return client

    def pending(self) -> Iterator[tuple[str, bytes]]:
        self._client = self._connect()
        try:
            status, data = self._client.uid("SEARCH", "UNSEEN")
            if status != "OK":
                raise imaplib.IMAP4.error("UID SEARCH UNSEEN failed")
            for uid in (data[0] or b"").split():
                key = uid.decode("ascii") if isinstance(uid, bytes) else str(uid)
                status, parts = self._client.uid("FETCH", key, "(RFC822.SIZE BODY.PEEK[])")
                raw = next((p[1] for p in parts if isinstance(p, tuple) and len(p) > 1), None)
                size = re.search(rb"RFC822\.SIZE (\d+)", parts[0][0] if parts and isinstance(parts[0], tuple)
                                 else b"")
                if status == "OK" and isinstance(raw, bytes) and not (size and int(size[1]) > MAX_MESSAGE_BYTES):
                    yield key, raw
        finally:
            client, self._client = self._client, None
            if client is not None:
                with contextlib.suppress(OSError, imaplib.IMAP4.error):
                    client.logout()

    def done(self, key: str) -> None:
        if self._client is not None:
            self._client.uid("STORE", key, "+FLAGS", "(\\Seen)")


def poll_mailbox(source: MailSource, receive: Callable[[bytes], InboundResult]) -> int:
    """Receive every pending message; returns how many were recorded. A message whose reception
    failed (database down...) stays in the source for the next poll."""
    recorded = 0
    for key, raw in source.pending():
        try:
            result = receive(raw)
        except Exception:
            log.exception("inbound message %s could not be recorded; left for the next poll", key)
            continue
        source.done(key)
        recorded += 1
        log.info("inbound message %s: %s%s", result.message_id, result.status,
                 " (already received)" if result.duplicate else "")
    return recorded


def source_from_settings(settings: Settings) -> MailSource | None:
    """The configured mailbox: IMAP, a maildir-like directory, or none."""
    if settings.messaging_mailbox == "imap" and settings.messaging_imap_host:
        return ImapSource(settings.messaging_imap_host, settings.messaging_imap_port, settings.messaging_imap_user,
                          settings.messaging_imap_password, settings.messaging_imap_folder,
                          settings.messaging_imap_tls, settings.messaging_imap_ca_file)
    if settings.messaging_mailbox == "maildir" and settings.messaging_maildir is not None:
        settings.messaging_maildir.mkdir(parents=True, exist_ok=True)
        return MaildirSource(settings.messaging_maildir)
    return None


def make_answer_handler(settings: Settings, session_factory: sessionmaker[Session],
                        relay: Relay | None = None) -> Handler:
    """The outbox handler of topic messaging.inbound-answer: the stored answer, same bytes each try."""
    target = relay or Relay.from_settings(settings)

    def handle(envelope: Envelope) -> None:
        inbound_id = uuid.UUID(str(envelope.payload["inbound_id"]))
        with session_factory() as session:
            found = answer_of(session, inbound_id)
        if found is None:
            raise LookupError(f"inbound letter {inbound_id} has no answer")
        raw, ours, to = found
        target.send(raw, ours, [to], envelope_id=str(inbound_id))

    return handle
