"""HL7 v2 ADT in over MLLP: frames (interop.mllp) → PAM FR mapping (record.hl7) → inbound log.

For each message: decode, parse, look up (sender, MSH-10) in `InboundMessage`; a message seen
before gets its stored acknowledgement again and changes nothing. Otherwise its use cases run
in ONE transaction with the inbound row, and the ACK leaves only after the commit (STYLE.md R3,
DESIGN "ACK only after commit"). A refused message is kept with its error and its ACK, status
"refused": the dead-letter list a person works through. The raw text is kept either way.

If the database fails, no ACK is sent and the connection closes: the sender keeps the message
and sends it again, and the dedupe makes that safe. Wire it in app.py's lifespan:

    server = await start_listener(container, settings.mllp_host, settings.mllp_port)
    ...
    await stop_listener(server)
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Collection
from types import TracebackType
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from naho.interop.mllp import serve_mllp, stop_mllp
from naho.platform.clock import Clock
from naho.platform.deps import Container
from naho.platform.errors import DomainError
from naho.platform.events import EventBus
from naho.platform.inbox import ACCEPTED, REFUSED, InboundMessage
from naho.platform.uow import UnitOfWork
from naho.record import hl7 as adt
from naho.results import hl7 as oru

log = logging.getLogger(__name__)

CHANNEL = "hl7-adt"


def _key(header: adt.Header) -> str | None:
    """The MSH-10 under which a message is recognised when sent again, if usable."""
    return header.control_id if header.control_id and len(header.control_id) < 200 else None


class SharedTransaction(UnitOfWork):
    """One open session lent to several use cases, so that they commit together.

    Services still say `with uow:` … `uow.commit()`: here the block neither opens nor closes a
    session, the commit only flushes, and events wait for the owner's real commit and
    `publish()`. The owner rolls back on error. One caveat: `access_patient` commits its refusal
    itself; the interface actor is never refused the ADMINISTRATION or IDENTITY purposes.
    (A generic tool: it belongs in platform/uow.py.)
    """

    def __init__(self, session: Session, clock: Clock, bus: EventBus) -> None:
        self.session = session
        self.clock = clock
        self._bus = bus
        self._events: list[object] = []

    def __enter__(self) -> SharedTransaction:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def commit(self) -> None:
        self.session.flush()

    def publish(self) -> None:
        events, self._events = self._events, []
        for event in events:
            self._bus.publish(event)


class AdtListener:
    """Receives ADT messages for one naho instance; `receive` is synchronous (database work),
    `handle` runs it off the event loop for the MLLP server."""

    def __init__(self, container: Container, *, authority: str | None = None,
                 senders: Collection[str] | None = None) -> None:
        settings = container.settings
        self._factory = container.session_factory
        self._clock = container.clock
        self._bus = container.bus
        #: Assigning authority (CX-4.1) of our IPPs and NDAs.
        self.authority = authority or settings.hl7_application
        self.application = settings.hl7_application
        self.facility = settings.hl7_facility
        self.zone = ZoneInfo(settings.timezone)
        #: MSH-3/MSH-4 ("APP/FACILITY") allowed to send; None: any system that can connect.
        self.senders = frozenset(senders) if senders is not None else None
        #: Every domain's patient data that follows a merge (A40): the app's port.
        self.movers = container.ports.get("patient_movers")
        #: ORU^R01 from the laboratory, on the same port: the results domain's receiver (app.py).
        self.results = container.ports.get("hl7_results")

    async def handle(self, message: bytes, peer: str) -> bytes:
        return await asyncio.to_thread(self.receive, message, peer)

    def receive(self, raw: bytes, peer: str = "") -> bytes:
        """The acknowledgement of one message, after its outcome is committed."""
        if self.results is not None and oru.is_results(raw):
            return bytes(self.results.receive(raw, peer))
        text, codec = adt.decode(raw)
        text = text.replace("\x00", "")  # PostgreSQL text refuses NUL; HL7 has no use for it
        command: adt.AdtCommand | None = None
        refusal: adt.Refusal | None = None
        try:
            command = adt.parse_adt(text, zone=self.zone)
            header: adt.Header | None = command.header
        except adt.Hl7Refusal as exc:
            header, refusal = exc.header, adt.refusal_of(exc)
        with self._factory() as session:
            if header is not None and _key(header):
                stored = self._stored(session, header)
                if stored is not None:
                    log.info("ADT %s from %s sent again: stored acknowledgement returned", header.control_id,
                             header.sender)
                    return stored.encode(codec, "replace")
            if command is not None and self.senders is not None and command.header.sender not in self.senders:
                refusal = adt.Refusal("AR", adt.UNKNOWN_KEY_IDENTIFIER, "UnknownSender",
                                      f"sender {command.header.sender} is not declared to naho", "MSH^1^3")
            if command is not None and refusal is None:
                outcome = self._apply(session, command, text, peer)
                if isinstance(outcome, str):
                    return outcome.encode(codec, "replace")
                refusal = outcome
            assert refusal is not None
            return self._refuse(session, header, text, refusal).encode(codec, "replace")

    def _ack(self, header: adt.Header | None, refusal: adt.Refusal | None) -> str:
        return adt.build_ack(header, refusal, control_id=uuid.uuid4().hex[:20], at=self._clock.now(), zone=self.zone,
                             application=self.application, facility=self.facility)

    def _row(self, header: adt.Header | None, text: str, status: str, ack: str, error: str | None) -> InboundMessage:
        return InboundMessage(
            channel=CHANNEL, sender=header.sender if header else "?",
            # A message without a usable MSH-10 cannot be recognised when sent again: its own key.
            control_id=(_key(header) if header else None) or f"missing:{uuid.uuid4().hex}",
            message_type=header.type_label if header else "?", received_at=self._clock.now(), status=status,
            error=error, raw=text, ack=ack,
        )

    def _stored(self, session: Session, header: adt.Header) -> str | None:
        return session.execute(select(InboundMessage.ack).where(
            InboundMessage.channel == CHANNEL, InboundMessage.sender == header.sender,
            InboundMessage.control_id == header.control_id)).scalar_one_or_none()

    def _apply(self, session: Session, command: adt.AdtCommand, text: str, peer: str) -> str | adt.Refusal:
        """Apply and log the message in one transaction: its ACK (AA), or why it was refused."""
        uow = SharedTransaction(session, self._clock, self._bus)
        header = command.header
        try:
            applied = adt.apply(uow, adt.interface_actor(header.sender, address=peer or None), command,
                                authority=self.authority, movers=self.movers)
        except (OperationalError, InterfaceError):
            session.rollback()
            raise  # the database is away: no ACK, the sender sends again
        except Exception as exc:
            session.rollback()
            if not isinstance(exc, DomainError):
                log.exception("ADT %s from %s: unexpected error", header.control_id, header.sender)
            return adt.refusal_of(exc)
        ack = self._ack(header, None)
        session.add(self._row(header, text, ACCEPTED, ack, None))
        try:
            session.commit()
        except IntegrityError:
            # The same message, sent again on another connection, was committed first.
            session.rollback()
            stored = self._stored(session, header)
            if stored is None:
                raise
            log.info("ADT %s from %s: committed first on another connection; its acknowledgement returned",
                     header.control_id, header.sender)
            return stored
        uow.publish()
        log.info("ADT %s %s from %s: %s (sender's ids: %s)", header.trigger, header.control_id, header.sender,
                 applied.summary, applied.sender_ids)
        return ack

    def _refuse(self, session: Session, header: adt.Header | None, text: str, refusal: adt.Refusal) -> str:
        ack = self._ack(header, refusal)
        session.add(self._row(header, text, REFUSED, ack, f"{refusal.rule}: {refusal.reason}"))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            stored = self._stored(session, header) if header is not None else None
            if stored is None:
                raise
            log.info("ADT %s from %s: committed first on another connection; its acknowledgement returned",
                     header.control_id if header else "?", header.sender if header else "?")
            return stored
        log.warning("ADT %s from %s refused (%s %s): %s", header.control_id if header else "?",
                    header.sender if header else "?", refusal.ack_code, refusal.rule, refusal.reason)
        return ack


async def start_listener(container: Container, host: str, port: int, *, authority: str | None = None,
                         senders: Collection[str] | None = None) -> asyncio.Server:
    """Listen for ADT messages over MLLP on host:port (port 0: any free port)."""
    listener = AdtListener(container, authority=authority, senders=senders)
    server = await serve_mllp(listener.handle, host, port)
    log.info("HL7 ADT listener on %s", ", ".join(str(s.getsockname()) for s in server.sockets))
    return server


async def stop_listener(server: asyncio.Server) -> None:
    """Stop listening; messages being handled are finished and acknowledged first."""
    await stop_mllp(server)
