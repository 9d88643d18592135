"""Pure rules of secure messaging: reading the directory extract, a letter's status, and the
delivery reports (RFC 3464 DSN, RFC 8098 MDN) that come back. Values in, values or errors out."""

from __future__ import annotations

import email
import email.policy
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from email.message import Message
from enum import StrEnum

from naho.identity.rules import IdentityStatus, ins_is_valid

# --- the directory extract ------------------------------------------------------------------

#: Columns of the Annuaire Santé "PS_LibreAcces_Personne_activite" extract that naho reads
#: (pipe-separated, first line the header, UTF-8); "Adresse BAL" is the mailbox column of the
#: "Extraction_Correspondance_MSSante" extract, joined by RPPS before the import. Others are ignored.
COLUMN_ID_TYPE = "Type d'identifiant PP"
COLUMN_RPPS = "Identifiant PP"
COLUMN_TITLE = "Libellé civilité d'exercice"
COLUMN_LAST_NAME = "Nom d'exercice"
COLUMN_FIRST_NAME = "Prénom d'exercice"
COLUMN_PROFESSION = "Libellé profession"
COLUMN_SPECIALTY = "Libellé savoir-faire"
COLUMN_PRACTICE = "Raison sociale site"
COLUMN_STREET_NUMBER = "Numéro Voie (coord. structure)"
COLUMN_STREET_REPEAT = "Indice répétition voie (coord. structure)"
COLUMN_STREET_TYPE = "Libellé type de voie (coord. structure)"
COLUMN_STREET = "Libellé Voie (coord. structure)"
COLUMN_POSTCODE = "Code postal (coord. structure)"
COLUMN_CITY = "Libellé commune (coord. structure)"
COLUMN_PHONE = "Téléphone (coord. structure)"
COLUMN_MSS = "Adresse BAL"
REQUIRED_COLUMNS = (COLUMN_ID_TYPE, COLUMN_RPPS, COLUMN_LAST_NAME, COLUMN_FIRST_NAME, COLUMN_PROFESSION)
#: "Type d'identifiant PP": 8 is the RPPS, 0 the older ADELI register (not imported).
RPPS_ID_TYPE = "8"

_RPPS = re.compile(r"^[0-9]{11}$")
_POSTCODE = re.compile(r"^[0-9]{5}$")
# MSSanté mailboxes all live under the mssante.fr domain (operators' sub-domains).
_MSS_ADDRESS = re.compile(r"^[A-Za-z0-9._%+'-]{1,64}@([A-Za-z0-9-]{1,63}\.)*mssante\.fr$", re.IGNORECASE)


class MessagingRuleError(ValueError):
    """Base of the pure rules' refusals."""


class DirectoryExtractInvalid(MessagingRuleError):
    """The extract cannot be imported; `problems` lists (line number, reason), nothing was stored."""

    def __init__(self, problems: Sequence[tuple[int, str]]) -> None:
        self.problems = list(problems)
        shown = "; ".join(f"line {n}: {reason}" for n, reason in self.problems[:20])
        more = f" (and {len(self.problems) - 20} more)" if len(self.problems) > 20 else ""
        super().__init__(f"{len(self.problems)} bad line(s): {shown}{more}")


@dataclass(frozen=True)
class DirectoryEntry:
    rpps: str
    title: str
    last_name: str
    first_name: str
    profession: str
    specialty: str
    practice_name: str
    street: str
    postcode: str
    city: str
    phone: str
    mss_address: str | None


@dataclass(frozen=True)
class ParsedExtract:
    entries: list[DirectoryEntry]
    lines: int
    skipped_not_rpps: int


def fold(text: str) -> str:
    """Upper case without accents, apostrophes or dashes: what searches compare."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[\s'’-]+", " ", plain).strip().upper()


def is_mss_address(address: str) -> bool:
    return bool(_MSS_ADDRESS.match(address))


def parse_extract(lines: Iterable[str]) -> ParsedExtract:
    """Read an extract; refuse it whole (DirectoryExtractInvalid) if any line is bad.

    A professional appears once per activity in the national extract: the first line of an RPPS
    gives the practice, a later line may only add the secure mailbox the first one lacked."""
    iterator = iter(lines)
    header_line = next(iterator, None)
    if header_line is None:
        raise DirectoryExtractInvalid([(1, "the file is empty")])
    header = [name.strip().lstrip("\ufeff") for name in header_line.rstrip("\r\n").split("|")]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise DirectoryExtractInvalid([(1, f"missing column(s): {', '.join(missing)}")])
    position = {name: i for i, name in enumerate(header) if name}
    problems: list[tuple[int, str]] = []
    entries: dict[str, DirectoryEntry] = {}
    skipped = count = 0
    for number, raw in enumerate(iterator, start=2):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        count += 1
        values = line.split("|")
        if len(values) != len(header):
            problems.append((number, f"{len(values)} fields instead of {len(header)}"))
            continue

        def value(column: str, values: list[str] = values) -> str:
            index = position.get(column)
            return values[index].strip() if index is not None else ""

        if value(COLUMN_ID_TYPE) != RPPS_ID_TYPE:
            skipped += 1
            continue
        try:
            entry = _entry(value)
        except MessagingRuleError as exc:
            problems.append((number, str(exc)))
            continue
        first = entries.get(entry.rpps)
        if first is None:
            entries[entry.rpps] = entry
        elif first.mss_address is None and entry.mss_address:
            entries[entry.rpps] = replace(first, mss_address=entry.mss_address)
    if problems:
        raise DirectoryExtractInvalid(problems)
    return ParsedExtract(list(entries.values()), count, skipped)


def _entry(value: Callable[[str], str]) -> DirectoryEntry:
    rpps = value(COLUMN_RPPS)
    if not _RPPS.match(rpps):
        raise MessagingRuleError(f"RPPS {rpps!r} is not 11 digits")
    last, first, profession = value(COLUMN_LAST_NAME), value(COLUMN_FIRST_NAME), value(COLUMN_PROFESSION)
    if not last or not first or not profession:
        raise MessagingRuleError("name, first name and profession are required")
    postcode = value(COLUMN_POSTCODE)
    if postcode and not _POSTCODE.match(postcode):
        raise MessagingRuleError(f"postcode {postcode!r} is not 5 digits")
    mss = value(COLUMN_MSS) or None
    if mss is not None and not is_mss_address(mss):
        raise MessagingRuleError(f"{mss!r} is not a secure messaging (mssante.fr) address")
    street = " ".join(part for part in (value(COLUMN_STREET_NUMBER), value(COLUMN_STREET_REPEAT),
                                         value(COLUMN_STREET_TYPE), value(COLUMN_STREET)) if part)
    return DirectoryEntry(rpps=rpps, title=value(COLUMN_TITLE), last_name=last.upper(), first_name=first,
                          profession=profession, specialty=value(COLUMN_SPECIALTY),
                          practice_name=value(COLUMN_PRACTICE), street=street, postcode=postcode,
                          city=value(COLUMN_CITY), phone=value(COLUMN_PHONE),
                          mss_address=mss.lower() if mss else None)


# --- correspondents --------------------------------------------------------------------------


class CorrespondentRole(StrEnum):
    GP = "gp"  # médecin traitant: one at a time
    OTHER = "other"


# --- letters ---------------------------------------------------------------------------------


class LetterStatus(StrEnum):
    QUEUED = "queued"  # in the outbox
    SENT = "sent"  # the relay accepted it
    DELIVERED = "delivered"  # a DSN says it reached the mailbox
    READ = "read"  # an MDN says it was displayed
    FAILED = "failed"  # a DSN says it could not be delivered


_RANK = {LetterStatus.QUEUED: 0, LetterStatus.SENT: 1, LetterStatus.DELIVERED: 2, LetterStatus.READ: 3}


def advance(current: LetterStatus, reported: LetterStatus) -> LetterStatus:
    """A recipient's status after a report: it only moves forward (a late 'sent' never undoes
    'delivered'); a failure stands unless the recipient then reads the letter."""
    if current is LetterStatus.FAILED:
        return LetterStatus.READ if reported is LetterStatus.READ else current
    if reported is LetterStatus.FAILED:
        return current if current is LetterStatus.READ else reported
    return reported if _RANK[reported] > _RANK[current] else current


def letter_status(recipient_statuses: Iterable[LetterStatus]) -> LetterStatus:
    """A letter's status: failed if any recipient failed, else the least advanced recipient's."""
    statuses = list(recipient_statuses)
    if not statuses:
        return LetterStatus.QUEUED
    if LetterStatus.FAILED in statuses:
        return LetterStatus.FAILED
    return min(statuses, key=lambda s: _RANK[s])


def mss_headers(cda_codes: Sequence[str]) -> list[tuple[str, str]]:
    """The X-MSS- headers of a letter (Référentiel socle MSSanté #2, ECO.2.4.1): one X-MSS-CODECDA
    per CDA document of the IHE_XDM archive, valued with the CDA's code; none at all when the
    archive carries no CDA (a PDF letter). X-MSS-INS and the others follow the CDA too: they
    come with the structured discharge letter."""
    return [("X-MSS-CODECDA", code) for code in cda_codes]


class PatientMailboxRefused(MessagingRuleError):
    """The patient has no usable secure mailbox: their INS is not qualified (or is doubtful)."""


def patient_mailbox(ins: str | None, status: str, *, doubtful: bool, fictitious: bool, domain: str) -> str:
    """The patient's own secure mailbox (Mon espace santé): the INS matricule at the patients'
    domain. Only a qualified identity's INS may be used in an exchange (RNIV, EXI SI 08), so a
    retrieved, validated or provisional identity, a doubtful or fictitious one, has none."""
    if IdentityStatus(status) is not IdentityStatus.QUALIFIED or doubtful or fictitious:
        raise PatientMailboxRefused("the patient's identity is not qualified: their INS cannot be used")
    if not ins or not ins_is_valid(ins):
        raise PatientMailboxRefused("the patient has no valid INS matricule")
    if not re.fullmatch(r"[a-z0-9.-]+\.[a-z]{2,}", domain):
        raise PatientMailboxRefused(f"{domain!r} is not a mail domain")
    return f"{ins}@{domain}"


# --- delivery reports ------------------------------------------------------------------------


class ReportUnreadable(MessagingRuleError):
    """The message is not a delivery status or disposition notification naho can read."""


@dataclass(frozen=True)
class RecipientReport:
    address: str
    status: LetterStatus | None  # None: informative only (delayed, relayed, deleted...)
    detail: str


@dataclass(frozen=True)
class DeliveryReport:
    kind: str  # "dsn" | "mdn"
    original_message_id: str | None
    envelope_id: str | None
    recipients: list[RecipientReport] = field(default_factory=list)


_DSN_ACTIONS = {"delivered": LetterStatus.DELIVERED, "expanded": LetterStatus.DELIVERED,
                "failed": LetterStatus.FAILED}


def parse_report(raw: bytes) -> DeliveryReport:
    """Read a multipart/report: delivery-status (RFC 3464) or disposition-notification (RFC 8098)."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    if message.get_content_type() != "multipart/report":
        raise ReportUnreadable(f"a {message.get_content_type()} is not a report")
    report_type = str(message.get_param("report-type", "")).lower()
    payload = message.get_payload()
    parts = [part for part in payload if isinstance(part, Message)] if isinstance(payload, list) else []
    if len(parts) < 2:
        raise ReportUnreadable("a report has at least two parts")
    original = _original_message_id(parts[2:]) if len(parts) > 2 else None
    if report_type == "delivery-status":
        return _dsn(parts[1], original)
    if report_type == "disposition-notification":
        return _mdn(parts[1], original)
    raise ReportUnreadable(f"report type {report_type!r} is not handled")


def _field_groups(part: Message) -> list[dict[str, str]]:
    """The header blocks of a message/delivery-status or message/disposition-notification body."""
    payload = part.get_payload()
    if isinstance(payload, list):  # the email package parses these bodies as a list of blocks
        blocks = [{k.lower(): _unfold(v) for k, v in block.items()} for block in payload
                  if isinstance(block, Message)]
    else:
        text = payload if isinstance(payload, str) else ""
        blocks = []
        for chunk in re.split(r"\r?\n\s*\r?\n", text.strip()):
            parsed = email.message_from_string(chunk + "\n\n", policy=email.policy.compat32)
            blocks.append({k.lower(): _unfold(v) for k, v in parsed.items()})
    return [b for b in blocks if b]


def _unfold(value: object) -> str:
    return re.sub(r"\s+", " ", str(value)).strip()


def _address(value: str) -> str:
    """`rfc822; someone@example.org` → someone@example.org"""
    return value.split(";", 1)[-1].strip().strip("<>").lower()


def _dsn(part: Message, original: str | None) -> DeliveryReport:
    if part.get_content_type() != "message/delivery-status":
        raise ReportUnreadable("the second part of a DSN must be message/delivery-status")
    blocks = _field_groups(part)
    if len(blocks) < 2:
        raise ReportUnreadable("a DSN has per-message fields and at least one recipient")
    per_message, per_recipient = blocks[0], blocks[1:]
    recipients = []
    for block in per_recipient:
        target = block.get("original-recipient") or block.get("final-recipient")
        action = block.get("action", "").lower()
        if not target or not action:
            raise ReportUnreadable("a DSN recipient needs Final-Recipient and Action")
        detail = " ".join(x for x in (action, block.get("status", ""), block.get("diagnostic-code", "")) if x)
        recipients.append(RecipientReport(_address(target), _DSN_ACTIONS.get(action), detail[:1000]))
    return DeliveryReport("dsn", original, per_message.get("original-envelope-id"), recipients)


def _mdn(part: Message, original: str | None) -> DeliveryReport:
    if part.get_content_type() != "message/disposition-notification":
        raise ReportUnreadable("the second part of an MDN must be message/disposition-notification")
    fields: dict[str, str] = {}
    for block in _field_groups(part):
        fields.update(block)
    disposition = fields.get("disposition", "").lower()
    target = fields.get("original-recipient") or fields.get("final-recipient")
    if not disposition or not target:
        raise ReportUnreadable("an MDN needs Disposition and Final-Recipient")
    kind = disposition.split(";", 1)[-1].split("/", 1)[0].strip()
    status = LetterStatus.READ if kind == "displayed" else None
    message_id = fields.get("original-message-id") or original
    return DeliveryReport("mdn", message_id, None, [RecipientReport(_address(target), status, disposition[:1000])])


def _original_message_id(parts: Sequence[Message]) -> str | None:
    """The Message-ID of the returned original (message/rfc822 or text/rfc822-headers)."""
    for part in parts:
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            found = payload[0].get("Message-ID")
        elif isinstance(payload, str):
            found = email.message_from_string(payload, policy=email.policy.compat32).get("Message-ID")
        else:
            found = None
        if found:
            return _unfold(found)
    return None
