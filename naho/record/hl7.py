"""HL7 v2.5 ADT messages of IHE PAM France 2.11.1 into the record: parse, apply, acknowledge;
and naho's own identity changes and movements out (`build_adt`, from outbox snapshots).

The wire is elsewhere (naho/interop/mllp.py frames bytes, naho/interop/hl7_listener.py keeps
the inbound log): this module turns a message's text into a typed command with python-hl7,
runs it through the identity and record services, and writes the acknowledgement (STYLE.md
R4, R13). HL7 shapes stop here: services receive their own schemas.

Choices, in one place:

* The patient is named by PID-3. An identifier whose assigning authority (CX-4.1) is ours
  (`authority`, "NAHO") with type PI is our IPP; it wins over any other. A foreign IPP (type PI
  or none, another authority; never an INS) is looked up in the cross-reference
  (record.crossref): a message that creates a patient (A28, A01, A04, A05) with an unknown
  foreign IPP registers a new identity (duplicate search included) and records the foreign IPP
  for it; every applied message teaches the foreign IPPs it names beside a patient found
  otherwise. Any other message naming the patient only by unknown foreign identifiers is
  rejected (AR, rule UnknownPatient). A foreign identifier already naming another record is
  refused (AE ForeignIdentifierConflict), never moved: identity vigilance decides (after a
  merge, A40, lookups follow the survivor). An identifier without assigning authority names
  nobody for sure and is not recorded.
* The stay is the one PV1-19 (visit number, kept as VN) or PID-18 (account number, kept as AN)
  names: our NDA when their authority is ours, else the sender's number as cross-referenced,
  which must be a stay of that patient. Otherwise the patient's open stay (in progress or on
  leave), or for A13 the last finished one. Applied messages teach their foreign visit and
  account numbers for the stay they touched.
* A pre-admission (A05) is dated by PV2-8 (expected admit date), else ZBE-2. An A01/A04 that
  names a pre-admitted stay (PV1-19 or PID-18, as above) is its arrival, in the same stay;
  one that names no stay opens a new one: a planned stay is never guessed for an arrival (the
  patient may come through the emergency room before the planned date). An A38 without a name
  cancels the patient's only planned stay (of the PV1-3 establishment when there are several).
* A06 and A07 each insert a class change (ZBE-4 INSERT) or cancel the opposite one (ZBE-4
  CANCEL, §5.3.5). An insert must be the trigger the §5.3.5 matrix gives for PV1-2's new class
  (E → I is an A06), else AE ClassChangeDirection; PV1-3 moves the patient only if it names
  another unit or another bed.
* PV1-3 = UF ^ room ^ bed (§6.10.2); our bed code is "<unit>-<room>-<bed>", as sites builds it.
* PV1-2 I is an inpatient stay: table 0004 puts day hospital under I too (§6.10.1), and telling
  them apart needs the unit's activity type, which sites does not hold yet.
* A movement's time is ZBE-2, else EVN-6, else PV1-44 (arrival) or PV1-45 (discharge), else
  now. A time without an offset is local time (`zone`).
* A40 merges two records naho knows (PID-3 the survivor, MRG-1 the merged one, by our IPP or
  a cross-referenced one) through identity.merge_patients: traced, undoable, refused for two
  different INS or a pair declared distinct; an A40 already applied is accepted as is. A47
  renames the sender's own IPP in the cross-reference (MRG-1 old, PID-3 new, same authority);
  it never changes naho's IPP (AE IppNotChangedByMessage: merge instead, as IHE France advises)
  nor an INS (AE InsManagedByInsi: naho takes the INS from INSi only; the message waits in the
  dead letters for identity vigilance).
* A44 moves the stay MRG-3 names (else PID-18), a stay of the MRG-1 patient, to the PID-3
  patient (record.move_stay); both patients must be known. The sender's account number keeps
  naming the stay, now the new patient's.
* Identity: A28 and A31 never write strict traits over an identity whose INS was retrieved
  (retrieved or qualified): those are INSi's (RNIV EXI SI 12), refused with AE. An INS received
  in PID-3 is not taken (naho retrieves INS itself through INSi). Other changes of traits go
  through identity.update_traits (a validated identity whose strict traits change goes back
  to provisional).
* Acknowledgement (HL7 v2.5 §2.9, original mode): AR when the message cannot be taken at all
  (unparsable, no MSH-10, not ADT, trigger not handled, patient from an unknown domain); AE
  when it was understood but refused (a rule, a missing field), with ERR-3 (table 0357),
  ERR-5 the rule's name, ERR-8 the reason; AA otherwise.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any

import hl7 as python_hl7
from pydantic import ValidationError

from naho.identity import rules as identity_rules
from naho.identity import service as identity
from naho.identity.errors import InvalidIdentity, PossibleDuplicates
from naho.identity.schemas import PatientCreate, PatientPublic, TraitsUpdate
from naho.identity.service import PatientDataMover
from naho.platform.access import Purpose
from naho.platform.errors import DomainError, NotFound
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.record import crossref, rules
from naho.record import service as record
from naho.record.errors import EncounterNotFound, LocationNotFound
from naho.record.schemas import (
    AdmissionCreate,
    ArrivalCreate,
    ClassChange,
    EncounterPublic,
    PreAdmissionCreate,
    TransferCreate,
)
from naho.sites import service as sites
from naho.sites.errors import UnitNotFound

log = logging.getLogger(__name__)

#: ITI-30 triggers (PAM FR §2.1); movement triggers come from `record.rules`.
CREATE_IDENTITY = "A28"
UPDATE_IDENTITY = "A31"
CHANGE_IDENTIFIERS = "A47"
MERGE_IDENTITIES = "A40"
#: ITI-31 "move account information" (PAM FR §2.2, §5.1.2).
MOVE_ACCOUNT = "A44"
NULL = '""'  # HL7 "delete this value" (v2.5 §2.5.3), e.g. a used name given up (PAM FR §6.6.2)

# HL7 table 0357, the error codes of ERR-3.
SEGMENT_SEQUENCE_ERROR = 100
REQUIRED_FIELD_MISSING = 101
DATA_TYPE_ERROR = 102
TABLE_VALUE_NOT_FOUND = 103
UNSUPPORTED_MESSAGE_TYPE = 200
UNSUPPORTED_EVENT_CODE = 201
UNSUPPORTED_VERSION_ID = 203
UNKNOWN_KEY_IDENTIFIER = 204
DUPLICATE_KEY_IDENTIFIER = 205
APPLICATION_INTERNAL_ERROR = 207
_TABLE_0357 = {
    SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE_ERROR: "Data type error",
    TABLE_VALUE_NOT_FOUND: "Table value not found",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    UNSUPPORTED_VERSION_ID: "Unsupported version id",
    UNKNOWN_KEY_IDENTIFIER: "Unknown key identifier",
    DUPLICATE_KEY_IDENTIFIER: "Duplicate key identifier",
    APPLICATION_INTERNAL_ERROR: "Application internal error",
}


# --- the message, typed ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Header:
    """MSH: who sent what, and how to answer."""

    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    message_type: str  # MSH-9.1
    trigger: str  # MSH-9.2
    structure: str  # MSH-9.3
    control_id: str  # MSH-10
    processing_id: str  # MSH-11
    version: str  # MSH-12.1
    charset: str  # MSH-18

    @property
    def sender(self) -> str:
        """The sending system, the key of duplicate detection with MSH-10."""
        return "/".join(part for part in (self.sending_application, self.sending_facility) if part)[:200] or "?"

    @property
    def type_label(self) -> str:
        return "^".join(part for part in (self.message_type, self.trigger, self.structure) if part)[:40]


@dataclass(frozen=True)
class Identifier:
    """A CX: value, assigning authority (CX-4.1, else CX-4.2), type (CX-5: PI, INS, AN, VN…)."""

    value: str
    authority: str
    type_code: str

    def __str__(self) -> str:
        return f"{self.value}^^^{self.authority}^{self.type_code}"


@dataclass(frozen=True)
class PatientData:
    """PID as sent. None: not sent; "" for a used name: cleared (HL7 "")."""

    identifiers: tuple[Identifier, ...]
    birth_name: str | None
    used_name: str | None
    first_names: str | None
    used_first_name: str | None
    sex: str | None  # M, F, I
    birth_date: date | None
    birth_place: str | None  # INSEE code of the birth commune (XAD-9 of the BDL address)
    phone: str | None
    email: str | None
    address: str | None
    postcode: str | None
    city: str | None
    account_number: Identifier | None  # PID-18
    reliability: tuple[str, ...]  # PID-32: PROV, VALI… and attributes


@dataclass(frozen=True)
class Location:
    """PV1-3: unit of accommodation (UF) ^ room ^ bed ^ facility."""

    unit_code: str
    room: str
    bed: str

    @property
    def bed_code(self) -> str | None:
        if self.room and self.bed:
            return f"{self.unit_code}-{self.room}-{self.bed}"
        return self.bed or None


@dataclass(frozen=True)
class VisitData:
    """PV1 and ZBE as sent."""

    patient_class: str  # PV1-2
    location: Location | None  # PV1-3
    visit_number: Identifier | None  # PV1-19
    at: datetime | None  # when the movement happened
    movement_id: str  # ZBE-1 (the sender's; logged, no column)
    action: str  # ZBE-4: INSERT, CANCEL, UPDATE
    expected_at: datetime | None = None  # PV2-8, expected admit date (A05)


@dataclass(frozen=True)
class AdtCommand:
    header: Header
    patient: PatientData
    visit: VisitData | None


class CreateIdentity(AdtCommand):
    """A28: a new patient."""


class UpdateIdentity(AdtCommand):
    """A31: the patient's traits changed."""


class Admit(AdtCommand):
    """A01 or A04: a stay opens (the class decides admission or registration), or the stay a
    pre-admission planned (named in PV1-19 or PID-18) begins."""


class PreAdmit(AdtCommand):
    """A05: a stay is planned (PV2-8, else ZBE-2, is the planned date)."""


class ChangeClass(AdtCommand):
    """A06 or A07 (ZBE-4 INSERT): the open stay takes the class of PV1-2, in PV1-3."""


class Transfer(AdtCommand):
    """A02: another unit or bed of the same establishment."""


class Discharge(AdtCommand):
    """A03: the stay ends."""


class StartLeave(AdtCommand):
    """A21: the patient leaves for a while."""


class EndLeave(AdtCommand):
    """A22: the patient is back."""


@dataclass(frozen=True)
class MergeIdentities(AdtCommand):
    """A40: the record named in MRG-1 (`prior`) is the patient of PID-3, merged into it."""

    prior: tuple[Identifier, ...] = ()


@dataclass(frozen=True)
class ChangeIdentifiers(AdtCommand):
    """A47: the identifiers of MRG-1 (`prior`) are replaced by those of PID-3."""

    prior: tuple[Identifier, ...] = ()


@dataclass(frozen=True)
class MoveAccount(AdtCommand):
    """A44: the stay of MRG-3 (else PID-18), of the patient of MRG-1 (`prior`), is the PID-3
    patient's."""

    prior: tuple[Identifier, ...] = ()
    prior_account: Identifier | None = None


@dataclass(frozen=True)
class CancelMovement(AdtCommand):
    """A11, A12, A13, A52, A53: the last movement, of one of `kinds`, is cancelled."""

    kinds: tuple[rules.MovementKind, ...]


# Trigger strings come from record.rules, the one place that names them (STYLE.md R8).
_K = rules.MovementKind
_INSERTS: dict[str, type[AdtCommand]] = {
    rules.trigger_event(_K.PRE_ADMISSION): PreAdmit,
    rules.trigger_event(_K.CLASS_TO_INPATIENT): ChangeClass,
    rules.trigger_event(_K.CLASS_TO_OUTPATIENT): ChangeClass,
    rules.trigger_event(_K.ADMISSION): Admit,
    rules.trigger_event(_K.REGISTRATION): Admit,
    rules.trigger_event(_K.TRANSFER): Transfer,
    rules.trigger_event(_K.DISCHARGE): Discharge,
    rules.trigger_event(_K.LEAVE_START): StartLeave,
    rules.trigger_event(_K.LEAVE_END): EndLeave,
}
_CANCELS: dict[str, tuple[rules.MovementKind, ...]] = {}
for _kind in (_K.PRE_ADMISSION, _K.ADMISSION, _K.REGISTRATION, _K.TRANSFER, _K.DISCHARGE, _K.LEAVE_START,
              _K.LEAVE_END, _K.CLASS_TO_INPATIENT, _K.CLASS_TO_OUTPATIENT):
    _CANCELS[rules.cancel_trigger(_kind)] = (*_CANCELS.get(rules.cancel_trigger(_kind), ()), _kind)
#: Every trigger this module accepts.
SUPPORTED_TRIGGERS = frozenset({CREATE_IDENTITY, UPDATE_IDENTITY, CHANGE_IDENTIFIERS, MERGE_IDENTITIES, MOVE_ACCOUNT,
                                *_INSERTS, *_CANCELS})

# PV1-2 → class: the first class having that letter, so I is inpatient (not day hospital).
_CLASS_OF_PV1: dict[str, rules.EncounterClass] = {}
for _class in rules.EncounterClass:
    _CLASS_OF_PV1.setdefault(rules.pv1_class(_class), _class)


# --- refusals --------------------------------------------------------------------------------------

class Hl7Refusal(DomainError):
    """The message is refused before any use case runs; `ack_code` says how (AR or AE)."""

    ack_code = "AE"

    def __init__(self, detail: str, *, code: int, location: str = "", rule: str | None = None,
                 header: Header | None = None) -> None:
        super().__init__(detail, rule=rule or type(self).__name__)
        self.code = code
        self.location = location
        self.header = header


class MessageRejected(Hl7Refusal):
    """The message cannot be taken at all (HL7 "application reject", AR)."""

    ack_code = "AR"


class MessageInvalid(Hl7Refusal):
    """The message was understood but a field is missing or malformed (AE)."""


class UnknownPatient(NotFound):
    """No patient has this IPP of ours."""


class StrictTraitsLocked(DomainError):
    """The strict traits of an identity whose INS was retrieved are INSi's (RNIV EXI SI 12): to
    change them, identity vigilance first brings the identity back to provisional."""

    status = 409


class IdentityAlreadyExists(DomainError):
    """A28 for an IPP of ours that exists with other traits: a change is an A31."""

    status = 409


class IdentityUpdateUnavailable(DomainError):
    """naho has no service yet that updates an identity's traits: a person applies the change."""

    status = 409


class AmbiguousStay(DomainError):
    """Several stays could be the one meant, and the message names none of them."""

    status = 409


@dataclass(frozen=True)
class Refusal:
    """What the acknowledgement says of a refused message."""

    ack_code: str  # AR or AE
    code: int  # HL7 table 0357
    rule: str
    reason: str
    location: str = ""


def refusal_of(exc: BaseException) -> Refusal:
    """The acknowledgement of an error raised while parsing or applying a message."""
    if isinstance(exc, Hl7Refusal):
        return Refusal(exc.ack_code, exc.code, str(exc.extra["rule"]), exc.detail, exc.location)
    if isinstance(exc, DomainError):
        rule = str(exc.extra.get("rule") or type(exc).__name__)
        if isinstance(exc, LocationNotFound | UnitNotFound):
            return Refusal("AE", TABLE_VALUE_NOT_FOUND, rule, exc.detail, "PV1^1^3")
        if isinstance(exc, UnknownPatient):
            return Refusal("AE", UNKNOWN_KEY_IDENTIFIER, rule, exc.detail, "PID^1^3")
        if isinstance(exc, NotFound):
            return Refusal("AE", UNKNOWN_KEY_IDENTIFIER, rule, exc.detail)
        if isinstance(exc, crossref.ForeignIdentifierConflict):
            return Refusal("AE", DUPLICATE_KEY_IDENTIFIER, rule, exc.detail, "PID^1^3")
        if isinstance(exc, PossibleDuplicates | IdentityAlreadyExists):
            return Refusal("AE", DUPLICATE_KEY_IDENTIFIER, rule, exc.detail, "PID^1^5")
        return Refusal("AE", APPLICATION_INTERNAL_ERROR, rule, exc.detail)
    return Refusal("AE", APPLICATION_INTERNAL_ERROR, "InternalError",
                   "the message could not be processed; it waits for an administrator")


# --- text → command --------------------------------------------------------------------------------

_CHARSETS = {"UNICODE UTF-8": "utf-8", "UNICODE": "utf-8", "UTF-8": "utf-8", "8859/15": "iso-8859-15",
             "8859/1": "iso-8859-1", "ASCII": "ascii"}


def decode(raw: bytes) -> tuple[str, str]:
    """The message's text and the codec to answer in: MSH-18 when it names one (PAM FR §6.1:
    "8859/15" or "UNICODE UTF-8"), else UTF-8, else ISO 8859-15, which decodes any byte."""
    first = raw.split(b"\r", 1)[0].split(b"\n", 1)[0].decode("iso-8859-15")
    declared = ""
    if first.startswith("MSH") and len(first) > 3:
        fields = first.split(first[3])
        declared = fields[17] if len(fields) > 17 else ""
        declared = re.split(r"[~^]", declared)[0].strip().upper()
    for codec in (_CHARSETS.get(declared), "utf-8"):
        if codec:
            try:
                return raw.decode(codec), codec
            except UnicodeDecodeError:
                continue
    return raw.decode("iso-8859-15"), "iso-8859-15"


def _text_of(segment: Any, field: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
    try:
        value = segment.extract_field(1, field, rep, comp, sub)
    except (IndexError, KeyError):
        return ""
    return str(value).strip()


def _repetitions(segment: Any, field: int) -> int:
    if field >= len(segment):
        return 0
    return len(segment(field)) if str(segment(field)) else 0


def _segment(message: Any, name: str) -> Any | None:
    try:
        return message.segment(name)
    except KeyError:
        return None


def _identifier(segment: Any, field: int, rep: int = 1) -> Identifier | None:
    value = _text_of(segment, field, rep, 1)
    if not value:
        return None
    authority = _text_of(segment, field, rep, 4, 1) or _text_of(segment, field, rep, 4, 2)
    return Identifier(value, authority, _text_of(segment, field, rep, 5))


_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.\d{1,4})?([+-]\d{4})?$")


def parse_time(value: str, zone: tzinfo, where: str) -> datetime | None:
    """An HL7 TS/DTM as an aware datetime; no offset means local time (`zone`)."""
    if not value or value == NULL:
        return None
    match = _TS.match(value)
    if match is None:
        raise MessageInvalid(f"{where}: {value!r} is not a date/time", code=DATA_TYPE_ERROR, location=where)
    year, month, day, hour, minute, second, offset = match.groups()
    if offset:
        sign = -1 if offset[0] == "-" else 1
        zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
    try:
        return datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                        int(second or 0), tzinfo=zone)
    except ValueError as exc:
        raise MessageInvalid(f"{where}: {value!r} is not a date/time", code=DATA_TYPE_ERROR,
                             location=where) from exc


def _header(message: Any) -> Header:
    msh = message.segment("MSH")
    return Header(
        # HD: namespace ^ universal id ^ type; a sender may give only the OID.
        sending_application=_text_of(msh, 3) or _text_of(msh, 3, 1, 2),
        sending_facility=_text_of(msh, 4) or _text_of(msh, 4, 1, 2),
        receiving_application=_text_of(msh, 5), receiving_facility=_text_of(msh, 6),
        message_type=_text_of(msh, 9, 1, 1), trigger=_text_of(msh, 9, 1, 2), structure=_text_of(msh, 9, 1, 3),
        control_id=_text_of(msh, 10), processing_id=_text_of(msh, 11), version=_text_of(msh, 12, 1, 1),
        charset=_text_of(msh, 18),
    )


def parse_adt(text: str, *, zone: tzinfo) -> AdtCommand:
    """The command a PAM FR message asks for. Raises `MessageRejected` (AR) or `MessageInvalid`
    (AE), carrying the header when it could be read."""
    text = text.replace("\r\n", "\r").replace("\n", "\r").strip()
    try:
        message = python_hl7.parse(text)
        header = _header(message)
    except Exception as exc:  # python-hl7 raises ParseException, IndexError, KeyError…
        raise MessageRejected(f"not an HL7 v2 message ({type(exc).__name__})", code=SEGMENT_SEQUENCE_ERROR,
                              location="MSH", rule="Unparsable") from exc
    try:
        return _command(message, header, zone)
    except Hl7Refusal as exc:
        exc.header = header
        raise
    except Exception as exc:  # a field this reader mishandles: the message waits for a person
        log.exception("ADT %s from %s could not be read", header.control_id, header.sender)
        raise MessageInvalid("the message could not be read; it waits for an administrator",
                             code=APPLICATION_INTERNAL_ERROR, rule="InternalError", header=header) from exc


def _command(message: Any, header: Header, zone: tzinfo) -> AdtCommand:
    if not header.control_id:
        raise MessageRejected("MSH-10 (message control id) is missing", code=REQUIRED_FIELD_MISSING,
                              location="MSH^1^10", rule="ControlIdMissing")
    if len(header.control_id) > 199:
        raise MessageRejected("MSH-10 is longer than 199 characters", code=DATA_TYPE_ERROR, location="MSH^1^10",
                              rule="ControlIdTooLong")
    if header.message_type != "ADT":
        raise MessageRejected(f"message type {header.message_type or '(none)'} is not handled, only ADT",
                              code=UNSUPPORTED_MESSAGE_TYPE, location="MSH^1^9", rule="UnsupportedMessageType")
    if header.trigger not in SUPPORTED_TRIGGERS:
        raise MessageRejected(f"trigger {header.trigger or '(none)'} is not handled", code=UNSUPPORTED_EVENT_CODE,
                              location="MSH^1^9", rule="UnsupportedTrigger")
    if not re.match(r"^2\.([5-9]|\d\d)", header.version):
        raise MessageRejected(f"HL7 version {header.version or '(none)'}: PAM FR is HL7 v2.5",
                              code=UNSUPPORTED_VERSION_ID, location="MSH^1^12", rule="UnsupportedVersion")
    pid = _segment(message, "PID")
    if pid is None:
        raise MessageInvalid("the PID segment is missing", code=SEGMENT_SEQUENCE_ERROR, location="PID")
    patient = _patient(pid, zone)
    if header.trigger in (CREATE_IDENTITY, UPDATE_IDENTITY):
        kind: type[AdtCommand] = CreateIdentity if header.trigger == CREATE_IDENTITY else UpdateIdentity
        return kind(header, patient, None)
    if header.trigger in (CHANGE_IDENTIFIERS, MERGE_IDENTITIES, MOVE_ACCOUNT):
        mrg = _segment(message, "MRG")
        prior = tuple(i for rep in range(1, _repetitions(mrg, 1) + 1) if (i := _identifier(mrg, 1, rep))) \
            if mrg is not None else ()
        if not prior:
            raise MessageInvalid(f"{header.trigger} needs the prior identifier in MRG-1", code=REQUIRED_FIELD_MISSING,
                                 location="MRG^1^1", rule="PriorIdentifierMissing")
        if header.trigger == MERGE_IDENTITIES:
            return MergeIdentities(header, patient, None, prior)
        if header.trigger == MOVE_ACCOUNT:
            account = _identifier(mrg, 3) or patient.account_number
            if account is None:
                raise MessageInvalid("A44 names the account moved in MRG-3 (or PID-18)", code=REQUIRED_FIELD_MISSING,
                                     location="MRG^1^3", rule="AccountMissing")
            return MoveAccount(header, patient, None, prior, account)
        return ChangeIdentifiers(header, patient, None, prior)
    visit = _visit(message, header.trigger, zone)
    # A06 and A07 each insert a class change or cancel the opposite one: ZBE-4 tells (§5.3.5).
    if header.trigger in _CANCELS and (header.trigger not in _INSERTS or visit.action == "CANCEL"):
        return CancelMovement(header, patient, visit, _CANCELS[header.trigger])
    return _INSERTS[header.trigger](header, patient, visit)


def _names(pid: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(birth name, used name, birth first names, used first name) from PID-5 (§6.6.2): type L
    is the birth name, with all birth first names in XPN-3; type D the used name and first name."""
    legal = used = None
    for rep in range(1, _repetitions(pid, 5) + 1):
        kind = _text_of(pid, 5, rep, 7)
        if kind == "L" or (kind == "" and legal is None):
            legal = rep
        elif kind == "D":
            used = rep
    birth_name = first_names = used_name = used_first = None
    if legal is not None:
        birth_name = _text_of(pid, 5, legal, 1) or None
        given, further = _text_of(pid, 5, legal, 2), _text_of(pid, 5, legal, 3)
        if further and given and further.split()[0] != given:
            further = f"{given} {further}"
        first_names = further or given or None
    if used is not None:
        used_name = _text_of(pid, 5, used, 1)
        used_name = "" if used_name == NULL else (used_name or None)
        used_first = _text_of(pid, 5, used, 2) or None
    return birth_name, used_name, first_names, used_first


def _patient(pid: Any, zone: tzinfo) -> PatientData:
    identifiers = tuple(i for rep in range(1, _repetitions(pid, 3) + 1) if (i := _identifier(pid, 3, rep)))
    if not identifiers:
        raise MessageInvalid("PID-3 names no patient identifier", code=REQUIRED_FIELD_MISSING, location="PID^1^3")
    birth_name, used_name, first_names, used_first = _names(pid)
    born = parse_time(_text_of(pid, 7), zone, "PID^1^7")
    sex_code = _text_of(pid, 8)
    sex = {"M": "M", "F": "F", "U": "I"}.get(sex_code)
    if sex_code and sex is None:
        raise MessageInvalid(f"PID-8 {sex_code!r}: PAM FR allows F, M, U", code=TABLE_VALUE_NOT_FOUND,
                             location="PID^1^8")
    birth_place = street = postcode = city = None
    for rep in range(1, _repetitions(pid, 11) + 1):
        kind = _text_of(pid, 11, rep, 7)
        if kind == "BDL":
            birth_place = _text_of(pid, 11, rep, 9) or None
        elif kind in ("H", "") and street is None:
            street = _text_of(pid, 11, rep, 1) or None
            city, postcode = _text_of(pid, 11, rep, 3) or None, _text_of(pid, 11, rep, 5) or None
    phone = email = None
    for rep in range(1, _repetitions(pid, 13) + 1):
        if _text_of(pid, 13, rep, 2) == "NET" or _text_of(pid, 13, rep, 3) == "Internet":
            email = email or _text_of(pid, 13, rep, 4) or None
        else:
            phone = phone or _text_of(pid, 13, rep, 1) or _text_of(pid, 13, rep, 12) or None
    reliability = tuple(_text_of(pid, 32, rep) for rep in range(1, _repetitions(pid, 32) + 1))
    return PatientData(
        identifiers=identifiers, birth_name=birth_name, used_name=used_name, first_names=first_names,
        used_first_name=used_first, sex=sex, birth_date=born.date() if born else None, birth_place=birth_place,
        phone=phone, email=email, address=street, postcode=postcode, city=city,
        account_number=_identifier(pid, 18), reliability=tuple(r for r in reliability if r),
    )


def _visit(message: Any, trigger: str, zone: tzinfo) -> VisitData:
    pv1 = _segment(message, "PV1")
    if pv1 is None:
        raise MessageInvalid("the PV1 segment is missing", code=SEGMENT_SEQUENCE_ERROR, location="PV1")
    unit = _text_of(pv1, 3, 1, 1)
    location = Location(unit, _text_of(pv1, 3, 1, 2), _text_of(pv1, 3, 1, 3)) if unit else None
    zbe, evn = _segment(message, "ZBE"), _segment(message, "EVN")
    at = parse_time(_text_of(zbe, 2), zone, "ZBE^1^2") if zbe is not None else None
    if at is None and evn is not None:
        at = parse_time(_text_of(evn, 6), zone, "EVN^1^6")
    if at is None and _INSERTS.get(trigger) is Admit:
        at = parse_time(_text_of(pv1, 44), zone, "PV1^1^44")
    if at is None and _INSERTS.get(trigger) is Discharge:
        at = parse_time(_text_of(pv1, 45), zone, "PV1^1^45")
    action = _text_of(zbe, 4).upper() if zbe is not None else ""
    allowed = {"CANCEL"} if trigger in _CANCELS else set()
    allowed |= {"INSERT"} if trigger in _INSERTS else set()
    if action and action not in allowed:
        raise MessageInvalid(f"ZBE-4 is {action} but {trigger} means {' or '.join(sorted(allowed))} "
                             "(Z99 carries UPDATE)",
                             code=TABLE_VALUE_NOT_FOUND, location="ZBE^1^4", rule="MovementActionMismatch")
    pv2 = _segment(message, "PV2")
    expected_at = parse_time(_text_of(pv2, 8), zone, "PV2^1^8") if pv2 is not None else None
    return VisitData(patient_class=_text_of(pv1, 2), location=location, visit_number=_identifier(pv1, 19),
                     at=at, movement_id=_text_of(zbe, 1) if zbe is not None else "", action=action,
                     expected_at=expected_at)


# --- command → use cases ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Applied:
    """What a message did, for the inbound log."""

    summary: str
    patient_id: uuid.UUID | None = None
    encounter_id: uuid.UUID | None = None
    #: The sender's own numbers (IPP, account, visit, movement) as sent, logged by the caller
    #: once the transaction committed (the cross-reference keeps IPPs, accounts and visits).
    sender_ids: str = ""


#: Namespace of the interface actors' ids: one stable id per sender in the audit trail.
_INTERFACES = uuid.UUID("6f1d5c3e-2b7a-4c1e-9a55-0d7e1a2b3c4d")


def interface_actor(sender: str, *, address: str | None = None) -> Actor:
    """The sending system as the services see it, in the audit trail as "Interface ADT <sender>".

    Role.INTERFACE says a machine acts; Role.ADMISSION_CLERK is what the one door asks for the
    ADMINISTRATION and IDENTITY purposes (platform.access.ROLE_PURPOSES): an admission system
    does what an admission clerk does, and no more (no CARE purpose, no clinical data).
    """
    return Actor(account_id=uuid.uuid5(_INTERFACES, sender), username=f"hl7:{sender}",
                 display_name=f"Interface ADT {sender}", roles=frozenset({Role.INTERFACE, Role.ADMISSION_CLERK}),
                 via="system", address=address)


def apply(uow: UnitOfWork, actor: Actor, command: AdtCommand, *, authority: str,
          movers: Sequence[PatientDataMover] | None = None) -> Applied:
    """Run the command through the identity and record services.

    Each service opens `with uow:` and commits: give a unit of work that lends one transaction
    to all of them (the listener does) and a message is applied whole or not at all, e.g. A01
    for a new patient registers the identity and admits in one go. `authority` is the assigning
    authority of our IPPs and NDAs (CX-4.1); `movers` the domains whose patient data follows a
    merge (A40), the app's `patient_movers` port (default: the record's only).
    """
    if isinstance(command, MergeIdentities) and movers is not None:
        applied = _merge(uow, actor, command, authority, movers)
    else:
        applied = _HANDLERS[type(command)](uow, actor, command, authority)
    _learn(uow, command, applied, authority)
    return replace(applied, sender_ids=_sender_ids(command))


def _learn(uow: UnitOfWork, command: AdtCommand, applied: Applied, authority: str) -> None:
    """Record the sender's identifiers of the patient and stay the message applied to, in its
    transaction (a refusal here undoes the message)."""
    header = command.header
    source = f"{header.sender} {header.trigger} {header.control_id}"
    with uow:
        s, now = uow.session, uow.clock.now()
        if applied.patient_id is not None:
            for foreign in _foreign_ipps(command.patient, authority):
                known = crossref.patient_of(s, foreign.authority, foreign.value)
                if known is None:
                    crossref.remember_patient(s, foreign.authority, foreign.value, applied.patient_id, now=now,
                                              source=source)
                elif _follow(s, known) != _follow(s, applied.patient_id):
                    raise crossref.ForeignIdentifierConflict(
                        f"IPP {foreign.value} of {foreign.authority} names another patient in naho",
                        rule="ForeignIdentifierConflict")
        if applied.encounter_id is not None:
            for kind, named in _stay_names(command):
                if named is not None and not _is_ours(named, authority) and named.authority:
                    crossref.remember_encounter(s, named.authority, kind, named.value, applied.encounter_id,
                                                now=now, source=source)
        uow.commit()


def _stay_names(command: AdtCommand) -> list[tuple[str, Identifier | None]]:
    """How the message names the stay: PV1-19 (visit number), then PID-18 (account number)."""
    visit = command.visit.visit_number if command.visit is not None else None
    return [(crossref.VISIT, visit), (crossref.ACCOUNT, command.patient.account_number)]


def _is_ours(identifier: Identifier | None, authority: str) -> bool:
    return identifier is not None and identifier.authority.upper() == authority.upper()


def _foreign_ipps(patient: PatientData, authority: str) -> list[Identifier]:
    """The sender's own patient identifiers in PID-3 (never an INS, never one without domain)."""
    return [i for i in patient.identifiers
            if not _is_ours(i, authority) and i.type_code in ("PI", "") and i.authority and i.value != NULL]


def _follow(session: Any, patient_id: uuid.UUID | None) -> uuid.UUID | None:
    """A merged record redirects to its survivor (a few hops at most)."""
    found = patient_id
    for _hop in range(5):
        survivor = identity.merged_into(session, found) if found else None
        if survivor is None:
            break
        found = survivor
    return found


def _find_patient(uow: UnitOfWork, patient: PatientData, authority: str) -> uuid.UUID | None:
    """The patient of our IPP in PID-3, else of a cross-referenced foreign IPP (following
    merges); None if PID-3 names nobody naho knows by either."""
    ours = [i for i in patient.identifiers if _is_ours(i, authority) and i.type_code in ("PI", "")]
    with uow:
        if ours:
            found = _follow(uow.session, identity.id_by_ipp(uow.session, ours[0].value))
            if found is None:
                raise UnknownPatient(f"no patient has IPP {ours[0].value}")
            return found
        for foreign in _foreign_ipps(patient, authority):
            found = _follow(uow.session, crossref.patient_of(uow.session, foreign.authority, foreign.value))
            if found is not None:
                return found
    return None


def _require_patient(uow: UnitOfWork, patient: PatientData, authority: str) -> uuid.UUID:
    found = _find_patient(uow, patient, authority)
    if found is None:
        domains = sorted({i.authority or "?" for i in patient.identifiers})
        raise MessageRejected(f"unknown patient: no cross-reference for identifiers of {', '.join(domains)}",
                              code=UNKNOWN_KEY_IDENTIFIER, location="PID^1^3", rule="UnknownPatient")
    return found


def _patient_create(patient: PatientData) -> PatientCreate:
    name, first_names, born, sex = patient.birth_name, patient.first_names, patient.birth_date, patient.sex
    if not (name and first_names and born and sex):
        where = "PID^1^5" if not (name and first_names) else "PID^1^7" if not born else "PID^1^8"
        raise MessageInvalid("an identity needs birth name, first names, birth date and sex (RNIV)",
                             code=REQUIRED_FIELD_MISSING, location=where, rule="InvalidIdentity")
    if any(i.type_code == "INS" for i in patient.identifiers):
        log.info("an INS received in PID-3 is not taken: naho retrieves INS through INSi")
    try:
        return PatientCreate(
            birth_name=name, used_name=patient.used_name or None, first_names=first_names,
            used_first_name=patient.used_first_name, sex=sex, birth_date=born,
            birth_place=patient.birth_place, phone=patient.phone, email=patient.email, address=patient.address,
            postcode=patient.postcode, city=patient.city,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error.get("loc", ()))
        raise MessageInvalid(f"identity field {where}: {error.get('msg', 'invalid')}", code=DATA_TYPE_ERROR,
                             location="PID", rule="InvalidIdentity") from exc


def _normalised_names(value: str) -> str:
    return " ".join(identity_rules.normalise_name(n) for n in value.split())


def identity_differences(current: PatientPublic, sent: PatientData) -> tuple[list[str], list[str]]:
    """(strict traits, other traits) the message would change; a trait not sent changes nothing."""
    strict: list[str] = []
    other: list[str] = []
    if sent.birth_name is not None and identity_rules.normalise_name(sent.birth_name) != current.birth_name:
        strict.append("birth name")
    if sent.first_names is not None and _normalised_names(sent.first_names) != current.first_names:
        strict.append("first names")
    if sent.sex is not None and sent.sex != current.sex:
        strict.append("sex")
    if sent.birth_date is not None and sent.birth_date != current.birth_date:
        strict.append("birth date")
    if sent.birth_place is not None and sent.birth_place != (current.birth_place or ""):
        strict.append("birth place")
    if sent.used_name is not None and (identity_rules.normalise_name(sent.used_name) or None) != current.used_name:
        other.append("used name")
    if sent.used_first_name is not None and _normalised_names(sent.used_first_name) != (current.used_first_name or ""):
        other.append("used first name")
    for label, value, known in (("phone", sent.phone, current.phone), ("email", sent.email, current.email),
                                ("address", sent.address, current.address),
                                ("postcode", sent.postcode, current.postcode), ("city", sent.city, current.city)):
        if value is not None and value != (known or ""):
            other.append(label)
    return strict, other


def _check_traits(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, sent: PatientData) -> list[str]:
    """Refuse strict changes to an identity whose INS was retrieved; return the other changes."""
    current = identity.get_patient(uow, actor, patient_id, Purpose.IDENTITY, record.CARE)
    strict, other = identity_differences(current, sent)
    if strict and identity_rules.IdentityStatus(current.status).ins_retrieved:
        raise StrictTraitsLocked(f"IPP {current.ipp} is {current.status}: its {', '.join(strict)} come from INSi "
                                 "and are not changed by a message")
    return strict + other


def _create_identity(uow: UnitOfWork, actor: Actor, command: AdtCommand, authority: str) -> Applied:
    existing = _find_patient(uow, command.patient, authority)
    if existing is not None:
        changes = _check_traits(uow, actor, existing, command.patient)
        if changes:
            raise IdentityAlreadyExists(f"this IPP exists with another {', '.join(changes)}: send an A31")
        return Applied("identity already known, unchanged", existing)
    created = identity.register_patient(uow, actor, _patient_create(command.patient))
    return Applied(f"identity created with IPP {created.ipp}", created.id)


def _update_identity(uow: UnitOfWork, actor: Actor, command: AdtCommand, authority: str) -> Applied:
    """A31: apply the changed traits through identity.update_traits (the RNIV rules: strict traits
    of an identity whose INS was retrieved are refused above; a validated identity whose strict
    traits change goes back to provisional)."""
    patient_id = _require_patient(uow, command.patient, authority)
    changes = _check_traits(uow, actor, patient_id, command.patient)
    if not changes:
        return Applied("identity unchanged", patient_id)
    sent = command.patient
    fields = {name: getattr(sent, name) for name in (
        "birth_name", "used_name", "first_names", "used_first_name", "sex", "birth_date", "birth_place",
        "phone", "email", "address", "postcode", "city") if getattr(sent, name) is not None}
    for name in ("used_name", "used_first_name"):
        if fields.get(name) == "":
            fields[name] = None  # HL7 "" clears the value
    try:
        update = TraitsUpdate(reason=f"A31 from {actor.display_name}", **fields)
        identity.update_traits(uow, actor, patient_id, update, record.CARE)
    except ValidationError as exc:
        raise IdentityUpdateUnavailable(f"the traits sent are not valid: {exc.errors()[0]['msg']}") from exc
    except InvalidIdentity as exc:
        raise IdentityUpdateUnavailable(str(exc)) from exc
    return Applied(f"identity updated: {', '.join(changes)}", patient_id)


class InsManagedByInsi(DomainError):
    """naho takes an INS only from the INSi teleservice (RNIV): a change of INS sent by another
    system waits for identity vigilance, who queries INSi."""

    status = 409


class IppNotChangedByMessage(DomainError):
    """naho's IPP is never changed by a message (IHE France advises a merge, A40, instead)."""

    status = 409


def _prior_patient(uow: UnitOfWork, prior: Identifier, authority: str) -> uuid.UUID:
    """The record MRG-1 names: by our IPP, else by a cross-referenced foreign IPP."""
    with uow:
        if _is_ours(prior, authority):
            found = identity.id_by_ipp(uow.session, prior.value)
        else:
            found = crossref.patient_of(uow.session, prior.authority, prior.value) if prior.authority else None
    if found is None:
        raise MessageInvalid(f"MRG-1 {prior.value} of {prior.authority or '?'} names no patient naho knows",
                             code=UNKNOWN_KEY_IDENTIFIER, location="MRG^1^1", rule="UnknownPatient")
    return found


def _merge(uow: UnitOfWork, actor: Actor, command: AdtCommand, authority: str,
           movers: Sequence[PatientDataMover] = (record.MOVER,)) -> Applied:
    """A40: merge the MRG-1 record into the PID-3 one through identity.merge_patients (traced,
    undoable; refused for two different INS, a pair declared distinct or suspected twins). Both
    must be known. `movers`: every domain's patient data that follows a merge (the app's port)."""
    assert isinstance(command, MergeIdentities)
    survivor = _require_patient(uow, command.patient, authority)
    merged = _prior_patient(uow, command.prior[0], authority)
    with uow:
        already = _follow(uow.session, merged) == survivor
    if already:
        return Applied("already merged into this patient", survivor)
    header = command.header
    identity.merge_patients(uow, actor, survivor, merged, f"A40 from {header.sender} ({header.control_id})",
                            record.CARE, movers)
    return Applied(f"merged {command.prior[0].value} into this patient", survivor)


def _change_identifiers(uow: UnitOfWork, actor: Actor, command: AdtCommand, authority: str) -> Applied:
    """A47: the sender renamed its IPP (MRG-1 the old one, PID-3 the new one of the same
    authority): the cross-reference follows. naho's IPP and the INS are not changed this way."""
    assert isinstance(command, ChangeIdentifiers)
    patient_id: uuid.UUID | None = None
    for prior in command.prior:
        if prior.type_code == "INS":
            raise InsManagedByInsi(f"A47 on INS {prior.value}: naho takes the INS only from INSi; identity "
                                   "vigilance checks this change")
        if _is_ours(prior, authority):
            raise IppNotChangedByMessage(f"IPP {prior.value} is naho's and is not changed by a message: "
                                         "send a merge (A40)")
        new = [i for i in _foreign_ipps(command.patient, authority)
               if i.authority.upper() == prior.authority.upper() and i.value != prior.value]
        if len(new) != 1:
            raise MessageInvalid(f"PID-3 must carry the new identifier of {prior.authority or '?'} replacing "
                                 f"{prior.value}", code=REQUIRED_FIELD_MISSING, location="PID^1^3",
                                 rule="NewIdentifierMissing")
        with uow:
            renamed = crossref.rename_patient_identifier(uow.session, prior.authority, prior.value, new[0].value)
            renamed = _follow(uow.session, renamed)
        if renamed is None:
            raise MessageInvalid(f"MRG-1 {prior.value} of {prior.authority or '?'} names no patient naho knows",
                                 code=UNKNOWN_KEY_IDENTIFIER, location="MRG^1^1", rule="UnknownPatient")
        if patient_id is not None and renamed != patient_id:
            raise crossref.ForeignIdentifierConflict("MRG-1 names two different patients",
                                                     rule="ForeignIdentifierConflict")
        patient_id = renamed
    ours = _find_patient(uow, replace(command.patient, identifiers=tuple(
        i for i in command.patient.identifiers if _is_ours(i, authority))), authority)
    if ours is not None and ours != patient_id:
        raise crossref.ForeignIdentifierConflict("PID-3 names our IPP of another patient",
                                                 rule="ForeignIdentifierConflict")
    return Applied(f"identifiers changed: {', '.join(p.value for p in command.prior)}", patient_id)


def _move_account(uow: UnitOfWork, actor: Actor, command: AdtCommand, authority: str) -> Applied:
    """A44: the stay MRG-3 names (our NDA, or the sender's account number as cross-referenced),
    a stay of the MRG-1 patient, moves to the PID-3 patient (record.move_stay, audited)."""
    assert isinstance(command, MoveAccount) and command.prior_account is not None
    to_patient = _require_patient(uow, command.patient, authority)
    from_patient = _prior_patient(uow, command.prior[0], authority)
    with uow:
        from_patient = _follow(uow.session, from_patient) or from_patient
        stays = record.stays_of(uow.session, from_patient)
    named = replace(command.patient, account_number=command.prior_account)
    stay = _stay_named(uow, stays, replace(command, patient=named, visit=None), authority)
    if stay is None:
        raise MessageInvalid(f"MRG-3 {command.prior_account.value} names no stay of the MRG-1 patient",
                             code=UNKNOWN_KEY_IDENTIFIER, location="MRG^1^3", rule="UnknownAccount")
    header = command.header
    moved = record.move_stay(uow, actor, stay.id, to_patient, f"A44 from {header.sender} ({header.control_id})")
    return Applied(f"stay NDA {moved.nda} moved to this patient", to_patient, stay.id)


def _need_visit(command: AdtCommand) -> VisitData:
    assert command.visit is not None  # parse_adt reads PV1 for every movement
    return command.visit


def _need_location(visit: VisitData) -> Location:
    if visit.location is None:
        raise MessageInvalid("PV1-3.1 (unit of accommodation) is required for this movement (PAM FR §5.1.1)",
                             code=REQUIRED_FIELD_MISSING, location="PV1^1^3", rule="UnitRequired")
    return visit.location


def _open_stay(uow: UnitOfWork, patient_id: uuid.UUID, command: AdtCommand, authority: str, *,
               finished: bool = False, planned: bool = False) -> EncounterPublic:
    visit = _need_visit(command)
    with uow:
        stays = record.stays_of(uow.session, patient_id)
        establishment = None
        if visit.location is not None:
            try:
                establishment = sites.get_unit(uow.session, visit.location.unit_code).establishment_code
            except UnitNotFound:
                establishment = None
    named_stay = _stay_named(uow, stays, command, authority)
    if named_stay is not None:
        return named_stay
    if finished:
        done = [s for s in stays if s.status == rules.EncounterStatus.FINISHED and s.ended_at]
        done.sort(key=lambda s: s.ended_at or s.started_at, reverse=True)
        candidates = done[:1]
    elif planned:
        candidates = [s for s in stays if s.status == rules.EncounterStatus.PLANNED]
    else:
        open_ = (rules.EncounterStatus.IN_PROGRESS, rules.EncounterStatus.ON_LEAVE)
        candidates = [s for s in stays if s.status in open_]
    if len(candidates) > 1 and establishment is not None:
        candidates = [s for s in candidates if s.establishment_code == establishment]
    if not candidates:
        raise EncounterNotFound("the patient has no finished stay" if finished else "the patient has no planned stay"
                                if planned else "the patient has no open stay")
    if len(candidates) > 1:
        kind = "planned" if planned else "open"
        raise AmbiguousStay(f"the patient has {len(candidates)} {kind} stays: name ours in PV1-19")
    return candidates[0]


def _sender_ids(command: AdtCommand) -> str:
    ids = [str(i) for i in command.patient.identifiers]
    if command.patient.account_number is not None:
        ids.append(f"account {command.patient.account_number}")
    if command.visit is not None and command.visit.visit_number is not None:
        ids.append(f"visit {command.visit.visit_number}")
    if command.visit is not None and command.visit.movement_id:
        ids.append(f"movement {command.visit.movement_id}")
    return "; ".join(ids)


def _encounter_class(visit: VisitData) -> rules.EncounterClass:
    found = _CLASS_OF_PV1.get(visit.patient_class)
    if found is None:
        raise MessageInvalid(f"PV1-2 {visit.patient_class or '(none)'}: naho takes E, I, R and O",
                             code=TABLE_VALUE_NOT_FOUND, location="PV1^1^2", rule="UnsupportedPatientClass")
    return found


def _admit(uow: UnitOfWork, actor: Actor, command: AdtCommand, authority: str) -> Applied:
    visit = _need_visit(command)
    location = _need_location(visit)
    encounter_class = _encounter_class(visit)
    patient_id = _find_patient(uow, command.patient, authority)
    if patient_id is None:
        patient_id = identity.register_patient(uow, actor, _patient_create(command.patient)).id
    planned = _named_stay(uow, patient_id, command, authority)
    if planned is not None:
        arrived = record.admit_planned_patient(uow, actor, planned.id, ArrivalCreate(
            unit_code=location.unit_code, bed_code=location.bed_code, at=visit.at))
        return Applied(f"pre-admitted stay {arrived.id} begins, NDA {arrived.nda}", patient_id, arrived.id)
    with uow:
        establishment = sites.get_unit(uow.session, location.unit_code).establishment_code
    stay = record.admit_patient(uow, actor, AdmissionCreate(
        patient_id=patient_id, establishment_code=establishment, encounter_class=str(encounter_class),
        unit_code=location.unit_code, bed_code=location.bed_code, at=visit.at))
    return Applied(f"admitted into stay {stay.id}, NDA {stay.nda}", patient_id, stay.id)


def _named_stay(uow: UnitOfWork, patient_id: uuid.UUID, command: AdtCommand,
                authority: str) -> EncounterPublic | None:
    """The stay of this patient the message names (PV1-19, else PID-18), if it names one."""
    with uow:
        stays = record.stays_of(uow.session, patient_id)
    return _stay_named(uow, stays, command, authority)


def _stay_named(uow: UnitOfWork, stays: list[EncounterPublic], command: AdtCommand,
                authority: str) -> EncounterPublic | None:
    """Among the patient's `stays`, the one named by our NDA or by a cross-referenced number of
    the sender; None if the message names none naho knows. A name naho knows for a stay that is
    not this patient's is refused."""
    for kind, named in _stay_names(command):
        if named is None:
            continue
        if _is_ours(named, authority):
            for stay in stays:
                if stay.nda == named.value:
                    return stay
            raise EncounterNotFound(f"no stay of this patient has NDA {named.value}")
        if not named.authority:
            continue
        with uow:
            encounter_id = crossref.encounter_of(uow.session, named.authority, kind, named.value)
        if encounter_id is None:
            continue
        for stay in stays:
            if stay.id == encounter_id:
                return stay
        raise EncounterNotFound(f"{kind} {named.value} of {named.authority} is a stay of another patient")
    return None


def _pre_admit(uow: UnitOfWork, actor: Actor, command: AdtCommand, authority: str) -> Applied:
    visit = _need_visit(command)
    location = _need_location(visit)
    encounter_class = _encounter_class(visit)
    planned_at = visit.expected_at or visit.at
    if planned_at is None:
        raise MessageInvalid("a pre-admission needs its planned date (PV2-8, or ZBE-2)", code=REQUIRED_FIELD_MISSING,
                             location="PV2^1^8", rule="PlannedDateRequired")
    patient_id = _find_patient(uow, command.patient, authority)
    if patient_id is None:
        patient_id = identity.register_patient(uow, actor, _patient_create(command.patient)).id
    with uow:
        establishment = sites.get_unit(uow.session, location.unit_code).establishment_code
    stay = record.pre_admit_patient(uow, actor, PreAdmissionCreate(
        patient_id=patient_id, establishment_code=establishment, encounter_class=str(encounter_class),
        unit_code=location.unit_code, bed_code=location.bed_code, planned_at=planned_at))
    return Applied(f"pre-admitted for {planned_at:%Y-%m-%d %H:%M} into stay {stay.id}, NDA {stay.nda}",
                   patient_id, stay.id)


def _change_class(uow: UnitOfWork, actor: Actor, command: AdtCommand, authority: str) -> Applied:
    """A06/A07: the open stay takes PV1-2's class, in PV1-3 when it names another place. The
    trigger must be the one the §5.3.5 matrix gives for that change."""
    visit = _need_visit(command)
    new_class = _encounter_class(visit)
    patient_id = _require_patient(uow, command.patient, authority)
    stay = _open_stay(uow, patient_id, command, authority)
    old_class = rules.EncounterClass(stay.encounter_class)
    if rules.pv1_class(old_class) != rules.pv1_class(new_class):
        expected = rules.trigger_event(rules.class_change_kind(old_class, new_class))
        if expected != command.header.trigger:
            raise MessageInvalid(f"{rules.pv1_class(old_class)} → {visit.patient_class} is an {expected}, "
                                 f"not an {command.header.trigger} (PAM FR §5.3.5)", code=UNSUPPORTED_EVENT_CODE,
                                 location="MSH^1^9", rule="ClassChangeDirection")
    if new_class is rules.EncounterClass.INPATIENT and old_class is rules.EncounterClass.DAY_HOSPITAL:
        new_class = old_class  # PV1-2 I covers both (§6.10.1): the unit, not the message, tells them apart
    location = visit.location
    # PV1-3 repeats the place (§5.1.1); only another unit, or another bed named, moves the patient.
    moved = location is not None and (location.unit_code != stay.unit_code
                                      or (location.bed_code is not None and location.bed_code != stay.bed_code))
    changed = record.change_encounter_class(uow, actor, stay.id, ClassChange(
        encounter_class=str(new_class), unit_code=location.unit_code if location and moved else None,
        bed_code=location.bed_code if location and moved else None, at=visit.at))
    return Applied(f"class changed to {changed.encounter_class}, NDA {changed.nda}", patient_id, stay.id)


def _transfer(uow: UnitOfWork, actor: Actor, command: AdtCommand, authority: str) -> Applied:
    location = _need_location(_need_visit(command))
    patient_id = _require_patient(uow, command.patient, authority)
    stay = _open_stay(uow, patient_id, command, authority)
    moved = record.transfer_patient(uow, actor, stay.id, TransferCreate(
        unit_code=location.unit_code, bed_code=location.bed_code, at=_need_visit(command).at))
    return Applied(f"transferred to {moved.bed_code or moved.unit_code}, NDA {moved.nda}", patient_id, stay.id)


def _movement(use_case: Callable[..., EncounterPublic], summary: str) -> Callable[..., Applied]:
    def run(uow: UnitOfWork, actor: Actor, command: AdtCommand, authority: str) -> Applied:
        patient_id = _require_patient(uow, command.patient, authority)
        stay = _open_stay(uow, patient_id, command, authority)
        use_case(uow, actor, stay.id, at=_need_visit(command).at)
        return Applied(f"{summary}, NDA {stay.nda}", patient_id, stay.id)
    return run


def _cancel(uow: UnitOfWork, actor: Actor, command: AdtCommand, authority: str) -> Applied:
    assert isinstance(command, CancelMovement)
    patient_id = _require_patient(uow, command.patient, authority)
    reopening = rules.MovementKind.DISCHARGE in command.kinds
    planned = rules.MovementKind.PRE_ADMISSION in command.kinds
    stay = _open_stay(uow, patient_id, command, authority, finished=reopening, planned=planned)
    active = [m for m in stay.movements if not m.cancelled]
    last = rules.MovementKind(active[-1].kind) if active else None
    # A11 cancels an admission or a registration: the stay's last movement says which.
    kind = last if last in command.kinds else command.kinds[0]
    record.cancel_last_movement(uow, actor, stay.id, str(kind))
    return Applied(f"{kind} cancelled, NDA {stay.nda}", patient_id, stay.id)


_HANDLERS: dict[type[AdtCommand], Callable[[UnitOfWork, Actor, AdtCommand, str], Applied]] = {
    CreateIdentity: _create_identity,
    UpdateIdentity: _update_identity,
    MergeIdentities: _merge,
    ChangeIdentifiers: _change_identifiers,
    MoveAccount: _move_account,
    PreAdmit: _pre_admit,
    ChangeClass: _change_class,
    Admit: _admit,
    Transfer: _transfer,
    Discharge: _movement(record.discharge_patient, "discharged"),
    StartLeave: _movement(record.start_leave, "on leave"),
    EndLeave: _movement(record.end_leave, "back from leave"),
    CancelMovement: _cancel,
}


# --- the acknowledgement ---------------------------------------------------------------------------

_ESCAPES = str.maketrans({"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\",
                          "\r": " ", "\n": " "})


def escape(value: str) -> str:
    """A value made safe for a field of a message using the standard separators |^~\\&."""
    return value.translate(_ESCAPES)


def build_ack(header: Header | None, refusal: Refusal | None, *, control_id: str, at: datetime, zone: tzinfo,
              application: str, facility: str) -> str:
    """ACK in original mode (HL7 v2.5 §2.9.2): MSH, MSA, and ERR when refused.

    MSA-3 repeats the reason: deprecated since v2.4 but still what many French interface
    engines show to their operators.
    """
    h = header
    msh = ["MSH", "^~\\&", escape(application), escape(facility),
           escape(h.sending_application) if h else "", escape(h.sending_facility) if h else "",
           at.astimezone(zone).strftime("%Y%m%d%H%M%S%z"), "",
           f"ACK^{escape(h.trigger)}^ACK" if h and h.trigger else "ACK", escape(control_id),
           escape(h.processing_id) if h and h.processing_id else "P",
           escape(h.version) if h and h.version else "2.5",
           "", "", "", "", "", escape(h.charset) if h else ""]
    segments = ["|".join(msh).rstrip("|")]  # MSH-1 is the "|" that follows "MSH"
    code = refusal.ack_code if refusal else "AA"
    msa = ["MSA", code, escape(h.control_id) if h else ""]
    if refusal:
        msa.append(escape(refusal.reason))
    segments.append("|".join(msa))
    if refusal:
        segments.append("|".join([
            "ERR", "", refusal.location, f"{refusal.code}^{_TABLE_0357.get(refusal.code, '')}^HL70357", "E",
            escape(refusal.rule), "", "", escape(refusal.reason)]))
    return "\r".join(segments) + "\r"


# --- naho's own movements, out ---------------------------------------------------------------------

# Message structure (MSH-9.3) of each trigger, HL7 v2.5 chapter 3 as PAM FR §2.2 uses it.
_STRUCTURES = {"A01": "ADT_A01", "A04": "ADT_A01", "A05": "ADT_A05", "A02": "ADT_A02", "A03": "ADT_A03",
               "A06": "ADT_A06", "A07": "ADT_A06", "A11": "ADT_A09", "A12": "ADT_A12", "A13": "ADT_A01",
               "A21": "ADT_A21", "A22": "ADT_A21", "A52": "ADT_A52", "A53": "ADT_A52", "A38": "ADT_A38",
               "A28": "ADT_A05", "A31": "ADT_A05", "A47": "ADT_A30", "A40": "ADT_A39", "A44": "ADT_A43"}
# Namespace (CX-4.1) of the INS assigning authorities; the OID (CX-4.2) is what receivers check.
_INS_NAMESPACES = {identity_rules.INS_NIR_OID: "ASIP-SANTE-INS-NIR", identity_rules.INS_NIA_OID: "ASIP-SANTE-INS-NIA",
                   identity_rules.INS_NIR_TEST_OID: "ASIP-SANTE-INS-NIR-TEST",
                   identity_rules.INS_NIR_DEMO_OID: "ASIP-SANTE-INS-NIR-DEMO"}
_SEX_OUT = {"M": "M", "F": "F", "I": "U"}


def _ts(value: datetime, zone: tzinfo) -> str:
    return value.astimezone(zone).strftime("%Y%m%d%H%M%S%z")


def _ins_cx(value: str, oid: str | None) -> str:
    oid = oid or identity_rules.INS_NIR_OID
    return f"{escape(value) if value != NULL else NULL}^^^{_INS_NAMESPACES.get(oid, 'INS')}&{oid}&ISO^INS"


def _msh(trigger: str, control_id: str, now: datetime, zone: tzinfo, sending_application: str,
         sending_facility: str, receiving_application: str, receiving_facility: str) -> str:
    return "|".join(["MSH", "^~\\&", escape(sending_application), escape(sending_facility),
                     escape(receiving_application), escape(receiving_facility), _ts(now, zone), "",
                     f"ADT^{trigger}^{_STRUCTURES.get(trigger, 'ADT_A01')}", escape(control_id), "P", "2.5^FRA^2.11",
                     "", "", "", "", "FRA", "UNICODE UTF-8"])


def _pid(person: dict[str, Any], authority: str, *, removed_ins: dict[str, Any] | None = None) -> str:
    """PID of a snapshot's patient: IPP and, once qualified, INS in PID-3 (§6.6.1); PID-32 VALI
    only with the INS, else PROV, with DOUT / FICT. `removed_ins`: an INS receivers must drop,
    written "" under its authority (A47, §4.4.3)."""
    ids = [f"{escape(person['ipp'])}^^^{escape(authority)}^PI"]
    if person.get("ins"):
        ids.append(_ins_cx(str(person["ins"]), person.get("ins_oid")))
    elif removed_ins is not None:
        ids.append(_ins_cx(NULL, removed_ins.get("ins_oid")))
    first_names = str(person["first_names"])
    names = [f"{escape(person['birth_name'])}^{escape(first_names.split(' ')[0])}^{escape(first_names)}^^^^L"]
    if person.get("used_name") or person.get("used_first_name"):
        names.append(f"{escape(person.get('used_name') or person['birth_name'])}^"
                     f"{escape(person.get('used_first_name') or first_names.split(' ')[0])}^^^^^D")
    birth_place = f"^^^^^^BDL^^{escape(person['birth_place'])}" if person.get("birth_place") else ""
    reliability = ["VALI" if person.get("ins") else "PROV"]
    reliability += [code for flag, code in (("doubtful", "DOUT"), ("fictitious", "FICT")) if person.get(flag)]
    pid = ["PID", "1", "", "~".join(ids), "", "~".join(names), "", date.fromisoformat(person["birth_date"])
           .strftime("%Y%m%d"), _SEX_OUT.get(str(person["sex"]), "U"), "", "", birth_place,
           *[""] * 20, "~".join(reliability)]
    return "|".join(pid)


#: ZFD-7 (IHE table ZFD-7, PAM FR §6.18.7): the document checked, for the proofs that have a code.
#: A proof with no code of its own (an eIDAS identity, a travel document for a foreign minor) goes
#: with ZFD-7 empty rather than under a code that names another document.
_ZFD_PROOF = {
    identity_rules.ProofKind.NATIONAL_ID_CARD: "CN",
    identity_rules.ProofKind.PASSPORT: "PA",
    identity_rules.ProofKind.RESIDENCE_PERMIT: "CS",
    identity_rules.ProofKind.TRUSTED_THIRD_PARTY: "TC",
    identity_rules.ProofKind.MINOR_BIRTH_RECORD_WITH_PARENT_ID: "AN",
    identity_rules.ProofKind.BIRTH_CERTIFICATE: "AN",
    identity_rules.ProofKind.FAMILY_RECORD_BOOK: "LE",
    identity_rules.ProofKind.DRIVING_LICENCE: "PC",
}
#: The events that carry ZFD (PAM FR §6.18); naho sends A01, A04, A05, A28 and A31 of them.
_ZFD_TRIGGERS = frozenset({"A01", "A04", "A05", "A14", "A28", "A31"})


def _zfd(person: dict[str, Any], zone: tzinfo) -> str:
    """ZFD, how the identity was established: ZFD-5 INSI when the INS came from the teleservice
    (ZFD-6 when), else SM (typed at a desk); ZFD-7 the document checked, while the status rests on
    one. ZFD-1 to ZFD-4 and ZFD-8 stay empty: naho records no lunar date, gestation, SMS consent,
    corrected birth date or document expiry."""
    evidence: dict[str, Any] = person.get("evidence") or {}
    insi_at = evidence.get("insi_at")
    proof = evidence.get("proof")
    fields = ["ZFD", "", "", "", "", "INSI" if insi_at else "SM",
              _ts(datetime.fromisoformat(insi_at), zone) if insi_at else "",
              _ZFD_PROOF.get(proof, "") if proof else ""]  # StrEnum keys: found by their value
    return "|".join(fields).rstrip("|")


def build_adt(snapshot: dict[str, Any], *, control_id: str, sending_application: str, sending_facility: str,
              now: datetime, authority: str | None = None, zone: tzinfo = UTC, receiving_application: str = "",
              receiving_facility: str = "") -> str:
    """The PAM FR message (HL7 v2.5, profile 2.11) notifying one movement or identity change of
    naho's: `snapshot` is what record.service (movements, ITI-31) or identity.service
    (identities, ITI-30: "message": "identity") put in the outbox.

    Pure: no database, no clock (`now` is MSH-7 and EVN-2). Conventions are the inbound side's,
    so a naho reads what a naho sends: PID-3 IPP `ipp^^^<authority>^PI`, PV1-3 `unit^room^bed`,
    PV1-19 the NDA under our authority. The INS goes in PID-3 and PID-32 says VALI only for a
    qualified identity (PAM FR §6.6.1, §6.6.15); any other identity is PROV, with DOUT / FICT as
    attributes. naho keeps one UF per movement, so it is the UF of accommodation (PV1-3), of
    medical responsibility (ZBE-7) and of care (ZBE-8) at once; ZBE-9 says HMS, or L for a bed
    change within the unit. Movements are always current: ZBE-5 = N (rules.py never cancels
    history). MSH-5/MSH-6 name the receiver when the settings do.
    """
    authority = authority or sending_application
    trigger = str(snapshot["trigger"])
    msh = _msh(trigger, control_id, now, zone, sending_application, sending_facility, receiving_application,
               receiving_facility)
    if snapshot.get("message") in ("identity", "account"):
        return _identity_message(snapshot, msh, authority=authority, now=now, zone=zone)
    action = str(snapshot["action"])
    person: dict[str, Any] = snapshot["patient"]
    at = datetime.fromisoformat(str(snapshot["movement_at"]))
    evn = ["EVN", "", _ts(now, zone), "", "", "", _ts(at, zone)]

    unit = escape(str(snapshot["unit_code"]))
    location = "^".join([unit, escape(snapshot.get("room") or ""), escape(snapshot.get("bed") or "")]).rstrip("^")
    pv1 = ["PV1", "1", rules.pv1_class(rules.EncounterClass(snapshot["encounter_class"])), location,
           *[""] * 15, f"{escape(snapshot['nda'])}^^^{escape(authority)}^AN"]

    previous = snapshot.get("previous_unit_code")
    nature = "L" if snapshot.get("movement_kind") == str(rules.MovementKind.TRANSFER) and previous == \
        snapshot["unit_code"] else "HMS"
    finess = escape(snapshot.get("finess") or "")
    ward = f"{escape(snapshot.get('unit_name') or '')}^^^^^{finess}^UF^^^{unit}" if unit else ""
    zbe = ["ZBE", f"{escape(snapshot['movement_id'])}^{escape(sending_application)}", _ts(at, zone), "",
           action, "N", escape(snapshot.get("original_trigger") or "") if action == "CANCEL" else "",
           ward, ward, nature]
    segments = [msh, "|".join(evn).rstrip("|"), _pid(person, authority), "|".join(pv1), "|".join(zbe)]
    if trigger == rules.trigger_event(rules.MovementKind.PRE_ADMISSION):
        segments.insert(4, "|".join(["PV2", *[""] * 7, _ts(at, zone)]))  # PV2-8: expected admit date
    if trigger in _ZFD_TRIGGERS and action == "INSERT":
        segments.append(_zfd(person, zone))  # after PV1, PV2, ZBE (§2.2 message structures)
    return "\r".join(segments) + "\r"


def _identity_message(snapshot: dict[str, Any], msh: str, *, authority: str, now: datetime, zone: tzinfo) -> str:
    """A28, A31 (PID, PV1 class N), A47 (MRG-1 the INS receivers drop or replace, §4.4) and A40
    (MRG-1 the merged record's IPP, §2.1): ITI-30 in PAM FR. And A44 (ITI-31, ADT_A43): PID the
    patient the account now belongs to with the NDA in PID-18, MRG-1 the previous patient's IPP,
    MRG-3 the account moved."""
    trigger = str(snapshot["trigger"])
    person: dict[str, Any] = snapshot["patient"]
    prior: dict[str, Any] = snapshot.get("prior") or {}
    at = datetime.fromisoformat(str(snapshot["at"]))
    removed = prior if trigger == "A47" and prior.get("ins") else None
    pid = _pid(person, authority, removed_ins=removed)
    evn = "|".join(["EVN", "", _ts(now, zone), "", "", "", _ts(at, zone)])
    if trigger == "A44":
        account = f"{escape(str(snapshot['nda']))}^^^{escape(authority)}^AN"
        fields = pid.split("|")
        fields[18] = account
        return "\r".join([msh, evn, "|".join(fields),
                           f"MRG|{escape(str(prior['ipp']))}^^^{escape(authority)}^PI||{account}"]) + "\r"
    segments = [msh, evn, pid, "PV1|1|N"]
    if trigger in _ZFD_TRIGGERS:
        segments.append(_zfd(person, zone))
    if trigger == "A47" and prior.get("ins"):
        segments.insert(3, f"MRG|{_ins_cx(str(prior['ins']), prior.get('ins_oid'))}")
    elif trigger == "A40":
        segments.insert(3, f"MRG|{escape(str(prior['ipp']))}^^^{escape(authority)}^PI")
    return "\r".join(segments) + "\r"
