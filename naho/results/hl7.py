"""HL7 v2.5 ORU^R01 (unsolicited observation results) from the laboratory system: text → typed
results (python-hl7), and the receiver the MLLP listener hands ORU messages to.

The wire is naho/interop/mllp.py; naho/interop/hl7_listener.py sends every message whose MSH-9.1
is ORU here, on the same port as ADT. The receiver keeps the same contract as ADT's: each
message is looked up by (sender, MSH-10) in the inbound log (channel "hl7-oru") and a message
seen before gets its stored acknowledgement and changes nothing; otherwise the results, the
chart entries, the alerts and the inbound row commit in one transaction, and only then the ACK
(AA) leaves. A refused message is kept with its reason and its NAK, status "refused": the
dead letters staff match by hand (results.service.match_dead_letter).

Choices (HL7 v2.5 chapter 7; the French laboratory interfaces follow it, with LOINC in OBX-3
as the "Jeu de valeurs LOINC" of the ANS asks):
* OBX-3 must carry a LOINC code (coding system LN, first or alternate triplet); a local code
  alone is refused (AE NotLoinc) rather than filed under a code nobody reads.
* OBX-2 NM and SN are numbers (a French decimal comma is accepted), ST/TX/FT/CE text; ED is
  an encapsulated document (source ^ type ^ subtype ^ encoding ^ data): a Base64 PDF is filed
  as the report's chart document. Other value types are refused (AE).
* OBX-11 P, F, C, X, D (table 0085); OBX-14, else OBR-7, is when the sample was taken.
* NTE after OBR comments the report, after OBX the result.
* AR when the message cannot be taken (unparsable, not R01, no MSH-10, unknown patient: the
  last one waits in the dead letters to be matched by hand); AE when a field is wrong.
"""

from __future__ import annotations

import base64
import binascii
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import hl7 as python_hl7
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from naho.platform.clock import Clock
from naho.platform.errors import DomainError
from naho.platform.inbox import ACCEPTED, REFUSED, InboundMessage
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from naho.record import hl7 as adt
from naho.record.hl7 import _header, _identifier, _segment, _text_of
from naho.results import rules

log = logging.getLogger(__name__)

CHANNEL = "hl7-oru"
_VALUE_TYPES = frozenset({"NM", "SN", "ST", "TX", "FT", "CE", "CWE", "ED"})
#: Namespace of the laboratory interface actors' ids: one stable id per sender in the audit trail.
_LABORATORIES = uuid.UUID("2b0c8f4e-6d1a-4f7b-8e3c-5a9d0b1c2e3f")


@dataclass(frozen=True)
class Document:
    """An encapsulated document (OBX-2 ED): the laboratory's signed PDF report."""

    title: str
    content: bytes


@dataclass(frozen=True)
class ObservationData:
    """One OBX as sent."""

    position: int  # OBX-1 within the report, for error locations
    value_type: str
    loinc: str
    label: str
    sub_id: str  # OBX-4
    value: rules.Value
    unit: str
    reference: rules.ReferenceRange
    flags: tuple[str, ...]
    status: rules.ResultStatus
    observed_at: datetime | None
    comment: str | None
    document: Document | None = None


@dataclass(frozen=True)
class ReportData:
    """One OBR and its OBX."""

    placer_number: str
    filler_number: str
    service_code: str
    service_label: str
    observed_at: datetime
    reported_at: datetime | None
    status: str
    comment: str | None
    observations: tuple[ObservationData, ...]

    @property
    def key(self) -> str:
        return f"F:{self.filler_number}" if self.filler_number else f"P:{self.placer_number}"


@dataclass(frozen=True)
class ResultMessage:
    header: adt.Header
    patient_identifiers: tuple[adt.Identifier, ...]
    visit_number: adt.Identifier | None
    reports: tuple[ReportData, ...]


def is_results(raw: bytes) -> bool:
    """Whether a message is for this receiver: MSH-9.1 is ORU."""
    first = raw.split(b"\r", 1)[0]
    if not first.startswith(b"MSH") or len(first) < 4:
        return False
    fields = first.split(first[3:4])
    return len(fields) > 8 and fields[8].split(b"^")[0].strip() == b"ORU"


def laboratory_actor(sender: str, *, address: str | None = None) -> Actor:
    """The laboratory system as the services see it: "Interface LAB <sender>" in the audit trail.

    Role.INTERFACE only: the one door lets a system file data for a patient (purpose
    administration), never read clinical content (platform.access.ROLE_PURPOSES).
    """
    return Actor(account_id=uuid.uuid5(_LABORATORIES, sender), username=f"hl7:{sender}",
                 display_name=f"Interface LAB {sender}", roles=frozenset({Role.INTERFACE}), via="system",
                 address=address)


def _invalid(detail: str, location: str, rule: str, code: int = adt.DATA_TYPE_ERROR) -> adt.MessageInvalid:
    return adt.MessageInvalid(detail, code=code, location=location, rule=rule)


def parse_oru(text: str, *, zone: tzinfo) -> ResultMessage:
    """The results an ORU^R01 carries. Raises `adt.MessageRejected` (AR) or `adt.MessageInvalid`
    (AE), carrying the header when it could be read."""
    text = text.replace("\r\n", "\r").replace("\n", "\r").strip()
    try:
        message = python_hl7.parse(text)
        header = _header(message)
    except Exception as exc:  # python-hl7 raises ParseException, IndexError, KeyError…
        raise adt.MessageRejected(f"not an HL7 v2 message ({type(exc).__name__})", code=adt.SEGMENT_SEQUENCE_ERROR,
                                  location="MSH", rule="Unparsable") from exc
    try:
        return _message(message, header, zone)
    except adt.Hl7Refusal as exc:
        exc.header = header
        raise
    except Exception as exc:  # a field this reader mishandles: the message waits for a person
        log.exception("ORU %s from %s could not be read", header.control_id, header.sender)
        raise adt.MessageInvalid("the message could not be read; it waits for an administrator",
                                 code=adt.APPLICATION_INTERNAL_ERROR, rule="InternalError", header=header) from exc


def _message(message: Any, header: adt.Header, zone: tzinfo) -> ResultMessage:
    if header.message_type != "ORU" or header.trigger != "R01":
        raise adt.MessageRejected(f"{header.type_label} is not an ORU^R01 message", code=adt.UNSUPPORTED_EVENT_CODE,
                                  location="MSH^1^9", rule="UnsupportedMessage")
    if not header.control_id:
        raise adt.MessageRejected("MSH-10 (message control id) is missing", code=adt.REQUIRED_FIELD_MISSING,
                                  location="MSH^1^10", rule="MissingControlId")
    pid = _segment(message, "PID")
    if pid is None:
        raise _invalid("the PID segment is missing", "PID", "MissingPatient", adt.REQUIRED_FIELD_MISSING)
    identifiers = tuple(i for rep in range(1, adt._repetitions(pid, 3) + 1) if (i := _identifier(pid, 3, rep)))
    if not identifiers:
        raise _invalid("PID-3 names no patient", "PID^1^3", "MissingPatient", adt.REQUIRED_FIELD_MISSING)
    pv1 = _segment(message, "PV1")
    visit = _identifier(pv1, 19) if pv1 is not None else None
    reports: list[ReportData] = []
    obr: Any = None
    observations: list[ObservationData] = []
    comments: list[str] = []  # NTE of the current OBR

    placer = ""  # ORC-2 of the current order: the placer number when OBR-2 leaves it out

    def close() -> None:
        if obr is not None:
            reports.append(_report(obr, observations, comments, zone, placer))

    for segment in message:
        name = str(segment[0])
        if name == "ORC":  # a new order: the report before it is complete
            close()
            obr, observations, comments, placer = None, [], [], _text_of(segment, 2)
        elif name == "OBR":
            close()
            obr, observations, comments = segment, [], []
        elif name == "OBX":
            if obr is None:
                raise _invalid("an OBX comes before any OBR", "OBX", "ObservationWithoutReport",
                               adt.SEGMENT_SEQUENCE_ERROR)
            observations.append(_observation(segment, len(observations) + 1, zone))
        elif name == "NTE" and obr is not None:
            line = _text_of(segment, 3)
            if observations:  # an NTE after an OBX comments that result
                last = observations[-1]
                observations[-1] = replace(last, comment=f"{last.comment}\n{line}" if last.comment else line)
            else:
                comments.append(line)
    close()
    if not reports:
        raise _invalid("the message carries no OBR", "OBR", "MissingReport", adt.REQUIRED_FIELD_MISSING)
    return ResultMessage(header, identifiers, visit, tuple(reports))


def _report(obr: Any, observations: list[ObservationData], comments: list[str], zone: tzinfo,
            order_placer: str = "") -> ReportData:
    placer, filler = _text_of(obr, 2) or order_placer, _text_of(obr, 3)
    if not placer and not filler:
        raise _invalid("OBR-2 and OBR-3 are both empty: the report has no number", "OBR^1^3", "MissingOrderNumber",
                       adt.REQUIRED_FIELD_MISSING)
    observed = adt.parse_time(_text_of(obr, 7), zone, "OBR^1^7")
    if observed is None:
        raise _invalid("OBR-7 (observation date/time) is missing", "OBR^1^7", "MissingObservationTime",
                       adt.REQUIRED_FIELD_MISSING)
    comment = "\n".join(line for line in comments if line) or None
    return ReportData(placer[:100], filler[:100], _text_of(obr, 4)[:60], _text_of(obr, 4, 1, 2)[:200], observed,
                      adt.parse_time(_text_of(obr, 22), zone, "OBR^1^22"), _text_of(obr, 25)[:2] or "F", comment,
                      tuple(observations))


def _loinc(obx: Any) -> tuple[str, str]:
    """(LOINC code, label) of OBX-3: the first triplet if its system is LN, else the alternate."""
    for code_at, system_at in ((1, 3), (4, 6)):
        if _text_of(obx, 3, 1, system_at).upper() == "LN":
            code = _text_of(obx, 3, 1, code_at)
            return code, _text_of(obx, 3, 1, code_at + 1) or code
    code = _text_of(obx, 3, 1, 1)
    if not _text_of(obx, 3, 1, 3):  # no coding system: a LOINC-shaped code is taken as one
        return code, _text_of(obx, 3, 1, 2) or code
    return "", code


def _observation(obx: Any, position: int, zone: tzinfo) -> ObservationData:
    where = f"OBX^{position}"
    value_type = _text_of(obx, 2).upper()
    if value_type not in _VALUE_TYPES:
        raise _invalid(f"OBX-2 value type {value_type!r} is not handled", f"{where}^2", "UnsupportedValueType",
                       adt.TABLE_VALUE_NOT_FOUND)
    code, label = _loinc(obx)
    try:
        loinc = rules.check_loinc(code)
        status = rules.parse_status(_text_of(obx, 11))
    except rules.NotLoinc as exc:
        raise _invalid(f"OBX-3: {exc} (the laboratory sends LOINC codes, system LN)", f"{where}^3", "NotLoinc",
                       adt.TABLE_VALUE_NOT_FOUND) from exc
    except rules.UnknownResultStatus as exc:
        raise _invalid(f"OBX-11: {exc}", f"{where}^11", "UnknownResultStatus", adt.TABLE_VALUE_NOT_FOUND) from exc
    observed = adt.parse_time(_text_of(obx, 14), zone, f"{where}^14")
    flags = rules.parse_flags(_text_of(obx, 8, rep) for rep in range(1, adt._repetitions(obx, 8) + 1))
    if value_type == "ED":
        return ObservationData(position, value_type, loinc, label[:200], _text_of(obx, 4)[:20], rules.Value(None, None),
                               "", rules.parse_range(""), flags, status, observed, None,
                               _document(obx, label, where))
    raw = "^".join(_text_of(obx, 5, 1, c) for c in (1, 2)) if value_type == "SN" else _text_of(obx, 5)
    try:
        value = rules.parse_value(value_type, raw)
    except rules.NotANumber as exc:
        raise _invalid(f"OBX-5: {exc} although OBX-2 says {value_type}", f"{where}^5", "NotANumber") from exc
    reference = rules.parse_range(_text_of(obx, 7))
    unit = rules.ucum(_text_of(obx, 6))
    return ObservationData(position, value_type, loinc, label[:200], _text_of(obx, 4)[:20], value, unit[:40],
                           rules.ReferenceRange(reference.text[:60], reference.low, reference.high),
                           rules.derive_flags(value, reference, flags), status, observed, None)


def _document(obx: Any, label: str, where: str) -> Document:
    encoding, data = _text_of(obx, 5, 1, 4), _text_of(obx, 5, 1, 5)
    if encoding.upper() != "BASE64" or not data:
        raise _invalid("OBX-5 of an ED must carry Base64 data (ED-4 Base64, ED-5 the data)", f"{where}^5",
                       "UnsupportedEncoding", adt.DATA_TYPE_ERROR)
    try:
        content = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid("OBX-5: the Base64 data does not decode", f"{where}^5", "BadBase64") from exc
    return Document(label or "Compte rendu de biologie", content)


# --- the receiver --------------------------------------------------------------------------------

#: Applies one parsed message in the given session (results.service.receive_results, bound).
Apply = Callable[[Session, Actor, ResultMessage], str]


class ResultsReceiver:
    """Receives ORU messages: dedupe, apply, log, acknowledge after commit (see the module)."""

    def __init__(self, session_factory: sessionmaker[Session], clock: Clock, apply: Apply, *, zone: str,
                 application: str, facility: str) -> None:
        self._factory = session_factory
        self._clock = clock
        self._apply_results = apply
        self.zone = ZoneInfo(zone)
        self.application = application
        self.facility = facility
        self._queue: list[_Waiting] = []
        self._queue_lock = threading.Lock()
        self._writer = threading.Lock()  # one transaction at a time in this process

    def receive(self, raw: bytes, peer: str = "") -> bytes:
        """The acknowledgement of one message, after its outcome is committed.

        Group commit: messages that arrive on several connections while a transaction is being
        written wait for it, then go together in the next one (one commit for all, each in its
        own savepoint so that a refused one undoes only itself); each ACK still leaves after the
        commit that holds its message.
        """
        item = _Waiting(raw, peer)
        with self._queue_lock:
            self._queue.append(item)
        with self._writer:
            if item.reply is None and item.error is None:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._write(batch)
        if item.error is not None:
            raise item.error
        assert item.reply is not None
        return item.reply

    def _write(self, batch: list[_Waiting]) -> None:
        try:
            with self._factory() as session:
                pending = [self._one(session, item.raw, item.peer) for item in batch]
                try:
                    session.commit()
                except IntegrityError:
                    # The same message committed first by another process: one at a time.
                    session.rollback()
                    pending = []
            if not pending:
                for item in batch:
                    with self._factory() as session:
                        reply = self._one(session, item.raw, item.peer)
                        session.commit()
                    item.reply = reply
                return
            for item, reply in zip(batch, pending, strict=True):
                item.reply = reply
        except BaseException as exc:  # the database is away: no ACK, the laboratory sends again
            for item in batch:
                if item.reply is None:
                    item.error = exc
            raise

    def _one(self, session: Session, raw: bytes, peer: str) -> bytes:
        """Apply and log one message in the session's transaction (not committed): its ACK."""
        text, codec = adt.decode(raw)
        text = text.replace("\x00", "")
        message: ResultMessage | None = None
        refusal: adt.Refusal | None = None
        try:
            message = parse_oru(text, zone=self.zone)
            header: adt.Header | None = message.header
        except adt.Hl7Refusal as exc:
            header, refusal = exc.header, adt.refusal_of(exc)
        if header is not None and header.control_id:
            stored = stored_ack(session, header.sender, header.control_id)  # also sees this batch's
            if stored is not None:
                return stored.encode(codec, "replace")
        if message is not None:
            refusal = self._apply(session, message, peer)
        ack = self.ack(header, refusal)
        session.add(InboundMessage(
            channel=CHANNEL, sender=header.sender if header else "?",
            control_id=(header.control_id[:200] if header and header.control_id else f"missing:{uuid.uuid4().hex}"),
            message_type=header.type_label if header else "?", received_at=self._clock.now(),
            status=REFUSED if refusal else ACCEPTED, error=f"{refusal.rule}: {refusal.reason}" if refusal else None,
            raw=text, ack=ack))
        if refusal is not None:
            log.warning("ORU %s from %s refused (%s %s): %s", header.control_id if header else "?",
                        header.sender if header else "?", refusal.ack_code, refusal.rule, refusal.reason)
        return ack.encode(codec, "replace")

    def ack(self, header: adt.Header | None, refusal: adt.Refusal | None) -> str:
        return adt.build_ack(header, refusal, control_id=uuid.uuid4().hex[:20], at=self._clock.now(), zone=self.zone,
                             application=self.application, facility=self.facility)

    def _apply(self, session: Session, message: ResultMessage, peer: str) -> adt.Refusal | None:
        """Apply one message in a savepoint: None, or why it was refused (and undone)."""
        header = message.header
        savepoint = session.begin_nested()
        try:
            summary = self._apply_results(session, laboratory_actor(header.sender, address=peer or None), message)
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:
            if savepoint.is_active:
                savepoint.rollback()
            if not isinstance(exc, DomainError):
                log.exception("ORU %s from %s: unexpected error", header.control_id, header.sender)
            return adt.refusal_of(exc)
        savepoint.commit()
        log.info("ORU %s from %s: %s", header.control_id, header.sender, summary)
        return None


@dataclass
class _Waiting:
    """A message waiting for the transaction that will hold it."""

    raw: bytes
    peer: str
    reply: bytes | None = None
    error: BaseException | None = None


def stored_ack(session: Session, sender: str, control_id: str) -> str | None:
    return session.execute(select(InboundMessage.ack).where(
        InboundMessage.channel == CHANNEL, InboundMessage.sender == sender,
        InboundMessage.control_id == control_id[:200])).scalar_one_or_none()
