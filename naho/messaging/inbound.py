"""Receiving: what community professionals send to the group's mailbox, filed in the record.

`receive_message(uow, raw, config=..., port=...)` takes one message as received (bytes) and
decides its fate, once per Message-ID (a re-delivered mail finds its row and changes nothing):

* a delivery or read report (DSN/MDN, sealed or not) goes to `sending.apply_report`;
* otherwise the S/MIME checks (`smime.open_message`) and the IHE XDM package (`xdm.unpack`);
  any broken rule refuses the mail — kept with its rule and reason, never filed — and queues a
  non-integration notification to the sender (an RFC 8098 MDN `processed/error`);
* the patient named by the package: a qualified identity by its INS, else the traits of
  sourcePatientInfo, taken only when exactly one identity is a *certain* match (RNIV: never a
  probable one); otherwise the letter waits in the "letters to match" worklist;
* the documents filed in the chart with `chart.file_received_document`, by the mailbox's
  interface actor through the one door (purpose administration), as the laboratory's are.

Every outcome is audited. A person (identity vigilance, or a physician of the patient) matches a
waiting letter by IPP with `match_letter`, through the door, and the documents are then filed.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import io
import quopri
import re
import uuid
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.utils import format_datetime, getaddresses

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from naho.identity import rules as identity_rules
from naho.identity import service as identity
from naho.identity.fhir import ids_by_identifier
from naho.identity.schemas import PatientPublic
from naho.messaging import sending, smime, xdm
from naho.messaging.errors import MessagingError, XdmPackageInvalid
from naho.messaging.inbound_models import InboundLetter
from naho.messaging.models import Professional
from naho.messaging.rules import ReportUnreadable
from naho.platform import audit
from naho.platform.access import CareRelationshipPort, Purpose, access_patient
from naho.platform.errors import NotFound
from naho.platform.outbox import enqueue
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.record import chart
from naho.record import rules as record_rules

#: Outbox topic of the non-integration notifications (mailbox.make_answer_handler sends them).
ANSWER_TOPIC = "messaging.inbound-answer"
FILED, UNMATCHED, REFUSED, REPORT = "filed", "unmatched", "refused", "report"
#: Audit actions (source:subject:action).
FILE = "patient:inbound-letter:file"
MATCH = "patient:inbound-letter:match"
UNMATCHED_ACTION = "messaging:inbound-letter:unmatched"
REFUSED_ACTION = "messaging:inbound-letter:refuse"
REPORT_ACTION = "messaging:inbound-letter:report"
WORKLIST_VIEWED = "messaging:inbound-worklist:view"
#: Who may name the patient of a waiting letter: identity vigilance, or a physician of the patient.
MATCHERS = frozenset({Role.IDENTITY_VIGILANCE, Role.PHYSICIAN})
#: INS assigning authorities (NIR, NIA and the test/demo ones) as XDM carries them in the CX.
INS_OIDS = frozenset({identity_rules.INS_NIR_OID, identity_rules.INS_NIA_OID, identity_rules.INS_NIR_TEST_OID,
                      identity_rules.INS_NIR_DEMO_OID})
_MAILBOX_ACTORS = uuid.UUID("8d3f5c1a-52a9-4c07-b1d4-6f0e2a7c9b14")
_ANSWER_IDS = uuid.UUID("c6a1d0f2-93b4-4e58-8a27-1f5d3e9b0c46")
_RIM = xdm.RIM


class InboundLetterNotFound(NotFound):
    """No such letter waiting to be matched."""


@dataclass(frozen=True)
class InboundResult:
    """What became of one received message; `duplicate`: it had been received before."""

    id: uuid.UUID
    message_id: str
    status: str
    rule: str | None = None
    reason: str | None = None
    patient_id: uuid.UUID | None = None
    document_ids: list[uuid.UUID] = field(default_factory=list)
    answer_queued: bool = False
    duplicate: bool = False


def mailbox_actor(sender: str) -> Actor:
    """The sending professional as the services see them: an interface actor (file, never read)."""
    return Actor(account_id=uuid.uuid5(_MAILBOX_ACTORS, sender), username=f"mss:{sender}"[:150],
                 display_name=f"Messagerie sécurisée {sender}"[:300], roles=frozenset({Role.INTERFACE}),
                 via="system")


def _result(row: InboundLetter, *, duplicate: bool = False) -> InboundResult:
    return InboundResult(row.id, row.message_id, row.status, row.rule, row.reason, row.patient_id,
                         [uuid.UUID(str(i)) for i in row.document_ids], row.answer_outbox_id is not None, duplicate)


# --- reading the message's outside --------------------------------------------------------------

def _text(value: object) -> str:
    try:
        return str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError):
        return str(value)


def _message_key(outer: Message, digest: str) -> str:
    """The Message-ID; a message without one is keyed by its body, so a re-delivery still matches."""
    found = _one_line(str(outer.get("Message-ID", "") or ""), 250)
    return found or f"<sha256.{digest}@no-message-id>"


def _sender(outer: Message) -> str:
    addresses = [a for _, a in getaddresses([str(v) for v in outer.get_all("From", [])]) if "@" in a]
    return addresses[0].lower()[:254] if len(addresses) == 1 else ""


def _is_report(message: Message) -> bool:
    return message.get_content_type() == "multipart/report"


def _answerable(outer: Message, sender: str, ours: str) -> bool:
    """Never answer a report, an automatic message, a daemon or ourselves (no mail loops, RFC 3834)."""
    auto = str(outer.get("Auto-Submitted", "no")).strip().lower()
    local = sender.split("@", 1)[0]
    return bool(sender) and sender != ours.lower() and auto in ("", "no") and not _is_report(outer) \
        and local not in ("mailer-daemon", "postmaster")


# --- the patient named by the package ------------------------------------------------------------

@dataclass(frozen=True)
class PatientAsSent:
    """The patient as the package names them: an identifier (CX) and sourcePatientInfo's traits."""

    identifier: str
    assigning_oid: str
    id_type: str
    traits: identity_rules.Traits | None

    @property
    def ins(self) -> str | None:
        return self.identifier if self.assigning_oid in INS_OIDS and re.fullmatch(r"[0-9]{15}", self.identifier) \
            else None

    def summary(self) -> str:
        parts = [f"{self.identifier} ({'INS' if self.ins else self.assigning_oid or '?'})"]
        if self.traits is not None:
            t = self.traits
            parts.append(f"{t.birth_name} {' '.join(t.first_names)} {t.sex} {t.birth_date:%d/%m/%Y}"
                         + (f" {t.birth_place}" if t.birth_place else ""))
        return " · ".join(parts)[:500]


def parse_cx(value: str) -> tuple[str, str, str]:
    """`id^^^&oid&ISO^type` → (id, oid, type)."""
    components = value.split("^")
    authority = components[3].split("&") if len(components) > 3 else []
    return (components[0].strip(), authority[1].strip() if len(authority) > 1 else "",
            components[4].strip() if len(components) > 4 else "")


def source_patient_traits(values: Sequence[str]) -> identity_rules.Traits | None:
    """The strict traits of an XDS sourcePatientInfo slot (`PID-5|BIRTH^FIRST^OTHERS^^^^L`,
    `PID-7|YYYYMMDD`, `PID-8|M|F`, birth place as PAM FR writes it: `PID-11|^^^^^^BDL^^<INSEE code>`).
    None when a strict trait is missing or unreadable: the letter then waits for a person."""
    fields: dict[str, list[str]] = {}
    for value in values:
        name, _, content = value.partition("|")
        fields.setdefault(name.strip().upper(), []).append(content.strip())
    names = [n.split("^") for n in fields.get("PID-5", [])]
    legal = next((n for n in names if len(n) > 6 and n[6].upper() == "L"), names[0] if names else None)
    used = next((n for n in names if len(n) > 6 and n[6].upper() == "D"), None)
    birth_place = None
    for address in fields.get("PID-11", []):
        parts = address.split("^")
        if len(parts) > 8 and parts[6].upper() == "BDL" and re.fullmatch(r"[0-9AB]{5}", parts[8].upper()):
            birth_place = parts[8].upper()
    try:
        digits = fields.get("PID-7", [""])[0][:8]
        born = dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
        sex = fields.get("PID-8", [""])[0].upper()[:1]
        if legal is None or sex not in ("M", "F"):
            return None
        birth_name = identity_rules.normalise_name(legal[0])
        first_names = tuple(identity_rules.normalise_name(" ".join(legal[1:3]).replace(",", " ")).split())
        used_name = identity_rules.normalise_name(used[0]) if used and used[0] else None
    except (ValueError, IndexError, identity_rules.IdentityRuleError):
        return None
    if not birth_name or not first_names:
        return None
    return identity_rules.Traits(birth_name=birth_name, used_name=used_name, first_names=first_names,
                                 sex=sex, birth_date=born, birth_place=birth_place)  # type: ignore[arg-type]


def _source_patient_info(package: bytes, subset: str) -> list[str]:
    """sourcePatientInfo of the subset's first document entry. `xdm.unpack` has already checked
    the archive (paths, sizes, no DOCTYPE), which it does not return this slot from."""
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        name = next((n for n in archive.namelist() if n.upper() == f"IHE_XDM/{subset}/METADATA.XML".upper()), None)
        if name is None:
            return []
        root = ET.fromstring(archive.read(name))  # noqa: S314 - checked by xdm.unpack (no DOCTYPE, bounded)
    for entry in root.iter(f"{{{_RIM}}}ExtrinsicObject"):
        for slot in entry.iterfind(f"{{{_RIM}}}Slot"):
            if slot.get("name") == "sourcePatientInfo":
                return [v.text or "" for v in slot.iterfind(f"{{{_RIM}}}ValueList/{{{_RIM}}}Value")]
    return []


def patient_as_sent(submissions: Sequence[xdm.UnpackedSubmission], package: bytes) -> PatientAsSent | None:
    """The patient of the package; None when its subsets name different patients."""
    if len({s.patient_id for s in submissions}) != 1:
        return None
    identifier, oid, id_type = parse_cx(submissions[0].patient_id)
    return PatientAsSent(identifier, oid, id_type,
                         source_patient_traits(_source_patient_info(package, submissions[0].subset)))


def _traits_of(p: PatientPublic) -> identity_rules.Traits:
    return identity_rules.Traits(birth_name=p.birth_name, used_name=p.used_name,
                                 first_names=tuple(p.first_names.split()), sex=p.sex,  # type: ignore[arg-type]
                                 birth_date=p.birth_date, birth_place=p.birth_place)


def find_patient(session: Session, sent: PatientAsSent) -> tuple[uuid.UUID | None, str]:
    """(patient, why not): a qualified identity by its INS (its traits must not contradict the
    package's), else exactly one certain match of the traits (verdict "same", no other
    candidate "same" or "probable", no twin suspected). Never a probable match (RNIV)."""
    if sent.ins:
        found = ids_by_identifier(session, f"urn:oid:{sent.assigning_oid}", sent.ins)
        if len(found) == 1:
            if sent.traits is not None:
                patient = identity.summaries(session, found)[found[0]]
                if identity_rules.match(sent.traits, _traits_of(patient)).verdict not in ("same", "probable"):
                    return None, "TraitsContradictIns"
            return found[0], ""
    if sent.traits is None:
        return None, "NoTraits"
    candidates = identity.find_candidates(session, sent.traits)
    close = [c for c in candidates if c.verdict in ("same", "probable")]
    certain = [c for c in close if c.verdict == "same" and not c.twins_suspected
               and not c.patient.doubtful and not c.patient.fictitious]
    if len(certain) == 1 and len(close) == 1:
        return certain[0].patient.id, ""
    if not close:
        return None, "UnknownPatient"
    return None, "NoCertainMatch" if len(close) == 1 else "SeveralCandidates"


# --- the non-integration notification -------------------------------------------------------------

def _one_line(value: str, limit: int = 500) -> str:
    """A header value from outside, on one line (no header injection through our answer)."""
    return re.sub(r"[\r\n\t ]+", " ", value).strip()[:limit]


def build_answer(*, ours: str, to: str, original_message_id: str, rule: str, reason: str,
                 received_at: dt.datetime, inbound_id: uuid.UUID) -> bytes:
    """An RFC 8098 MDN `processed/error` telling the sender their message was not integrated, with
    the rule broken. It carries no patient data (no subject, no content), hence sent unsealed.
    Plain ASCII (the French text is quoted-printable): no relay needs 8BITMIME for it."""
    domain = ours.rsplit("@", 1)[1]
    original, reason = _one_line(original_message_id, 250), _one_line(reason)
    boundary = f"naho-{uuid.uuid5(_ANSWER_IDS, str(inbound_id)).hex}"
    text = (f"Votre message {original or ''} reçu le {received_at:%d/%m/%Y %H:%M} UTC n'a pas été intégré "
            f"au dossier patient : {rule} ({reason}).\r\n"
            f"Your message was not integrated into the patient record: {rule} ({reason}).\r\n")
    about = [f"In-Reply-To: {original}"] if original else []
    lines = [
        f"From: {ours}", f"To: {_one_line(to, 254)}", "Subject: =?utf-8?q?Non-int=C3=A9gration_de_votre_message?=",
        f"Date: {format_datetime(received_at.astimezone(dt.UTC))}",
        f"Message-ID: <{uuid.uuid5(_ANSWER_IDS, str(inbound_id))}@{domain}>", *about,
        "Auto-Submitted: auto-replied", "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=disposition-notification; boundary="{boundary}"', "",
        f"--{boundary}", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: quoted-printable",
        "", quopri.encodestring(text.encode("utf-8")).decode("ascii"),
        f"--{boundary}", "Content-Type: message/disposition-notification", "",
        f"Reporting-UA: {domain}; naho", f"Final-Recipient: rfc822; {ours}",
        *([f"Original-Message-ID: {original}"] if original else []),
        "Disposition: automatic-action/MDN-sent-automatically; processed/error",
        f"Error: {rule}: {reason}", "", f"--{boundary}--", ""]
    return "\r\n".join(lines).encode("ascii", "replace")


def answer_of(session: Session, inbound_id: uuid.UUID) -> tuple[bytes, str, str] | None:
    """(answer bytes, our address, recipient) for the outbox handler."""
    row = session.get(InboundLetter, inbound_id)
    if row is None or row.answer is None:
        return None
    head = email.message_from_bytes(row.answer, policy=email.policy.compat32)
    return row.answer, _sender(head), row.sender


# --- the use case ------------------------------------------------------------------------------

def _professional(session: Session, sender: str) -> uuid.UUID | None:
    if not sender:
        return None
    return session.scalars(select(Professional.id).where(func.lower(Professional.mss_address) == sender)
                           .limit(1)).first()


def _known(uow: UnitOfWork, message_id: str) -> InboundResult | None:
    with uow:
        row = uow.session.scalars(select(InboundLetter).where(InboundLetter.message_id == message_id)).first()
        return _result(row, duplicate=True) if row is not None else None


def _body_digest(raw: bytes) -> str:
    """The message without its header, line ends made canonical: what a re-delivery leaves alone
    (relays prepend trace headers; mail stores may rewrite CRLF)."""
    parts = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)
    body = parts[1] if len(parts) > 1 else b""
    return hashlib.sha256(re.sub(rb"\r?\n", b"\r\n", body).rstrip()).hexdigest()


def _reception_key(uow: UnitOfWork, message_id: str, digest: str) -> tuple[str, InboundResult | None]:
    """(the key to record this message under, its earlier reception if it is a re-delivery).

    The Message-ID is not signed: a message that reuses another's Message-ID with another body
    (a forgery sent first to have the real letter dropped as a "duplicate", or a sender's bug)
    is recorded under the Message-ID and its body's digest, and judged on its own."""
    with uow:
        for key in (message_id, f"{message_id[:200]}#{digest[:32]}"):
            row = uow.session.scalars(select(InboundLetter).where(InboundLetter.message_id == key)).first()
            if row is None:
                return key, None
            if _body_digest(row.raw) == digest:
                return key, _result(row, duplicate=True)
    raise AssertionError("the second key carries the digest: its row has this body")


def _store(uow: UnitOfWork, row: InboundLetter, write: Callable[[Session, InboundLetter], None]) -> InboundResult:
    """Add the row (and what `write` files) in one transaction; a concurrent receiver of the
    same Message-ID loses on the unique constraint and reads the winner's row."""
    try:
        with uow:
            s = uow.session
            write(s, row)
            s.add(row)
            s.flush()
            result = _result(row)
            uow.commit()
            return result
    except IntegrityError:
        known = _known(uow, row.message_id)
        if known is None:
            raise
        return known


def _refuse(uow: UnitOfWork, row: InboundLetter, outer: Message, rule: str, reason: str,
            config: sending.MessagingConfig) -> InboundResult:
    row.status, row.rule, row.reason = REFUSED, rule, reason[:1000]
    row.patient_id, row.document_ids = None, []

    def write(s: Session, r: InboundLetter) -> None:
        if ANSWER_TOPIC in uow.channels and _answerable(outer, r.sender, config.identity.email):
            r.answer = build_answer(ours=config.identity.email, to=r.sender,
                                    original_message_id=str(outer.get("Message-ID", "") or ""),
                                    rule=rule, reason=reason, received_at=r.received_at, inbound_id=r.id)
            r.answer_outbox_id = enqueue(s, ANSWER_TOPIC, {"inbound_id": str(r.id)}, now=r.received_at)
        audit.record(s, None, REFUSED_ACTION, at=r.received_at, target=r.message_id, reason=f"{rule}: {reason}"[:1000],
                     details={"sender": r.sender, "answered": r.answer is not None})
    return _store(uow, row, write)


def _report(uow: UnitOfWork, row: InboundLetter, raw: bytes, config: sending.MessagingConfig) -> InboundResult:
    """A DSN or MDN: applied by `sending.apply_report` (its own transaction, forward-only, so
    applying it again after a crash changes nothing), then kept here under its Message-ID."""
    try:
        letter_id = sending.apply_report(uow, raw, config)
    except (ReportUnreadable, MessagingError) as exc:
        row.status, row.rule, row.reason = REFUSED, type(exc).__name__, str(exc)[:1000]
    else:
        row.status = REPORT
        row.reason = f"letter {letter_id}" if letter_id else "not about one of our letters"

    def write(s: Session, r: InboundLetter) -> None:
        audit.record(s, None, REPORT_ACTION, at=r.received_at, target=r.message_id,
                     details={"sender": r.sender, "status": r.status, "outcome": r.reason or ""})
    return _store(uow, row, write)


def _file(session: Session, actor: Actor, patient_id: uuid.UUID, submissions: Sequence[xdm.UnpackedSubmission],
          *, author: str, now: dt.datetime) -> list[uuid.UUID]:
    """The package's documents in the chart (the caller went through the door)."""
    encounter_id = chart.current_encounter(session, patient_id)
    return [chart.file_received_document(session, patient_id, encounter_id, document.title or submission.unique_id,
                                         document.data, author=author, now=now)
            for submission in submissions for document in submission.documents]


def _package(opened: smime.OpenedMessage) -> bytes | None:
    return next((a.data for a in opened.attachments() if a.filename.upper() == "IHE_XDM.ZIP"), None)


def receive_message(uow: UnitOfWork, raw: bytes, *, config: sending.MessagingConfig | None,
                    port: CareRelationshipPort) -> InboundResult:
    """Receive one message of the group mailbox: report, refused, filed or waiting to be matched."""
    if config is None:
        raise sending.MessagingNotConfigured("the group mailbox's certificate is not configured",
                                             rule="MessagingNotConfigured")
    outer = email.message_from_bytes(raw, policy=email.policy.compat32)
    digest = _body_digest(raw)
    message_id, known = _reception_key(uow, _message_key(outer, digest), digest)
    if known is not None:
        return known  # re-delivered: nothing changes
    now = uow.clock.now()
    sender = _sender(outer)
    row = InboundLetter(id=uuid.uuid4(), message_id=message_id, sender=sender,
                        subject=_text(outer.get("Subject", ""))[:300], received_at=now, status=REFUSED,
                        patient_as_sent="", document_ids=[], raw=raw)
    if _is_report(outer):
        return _report(uow, row, raw, config)
    try:
        opened = smime.open_message(raw, recipient=config.identity, trust_anchors=config.trust_anchors, now=now)
    except MessagingError as exc:
        return _refuse(uow, row, outer, type(exc).__name__, str(exc), config)
    if _is_report(opened.content):  # a sealed read receipt
        return _report(uow, row, raw, config)
    package = _package(opened)
    if package is None:
        return _refuse(uow, row, outer, "XdmPackageMissing", "the message carries no IHE_XDM.ZIP", config)
    try:
        submissions = xdm.unpack(package)
    except XdmPackageInvalid as exc:
        return _refuse(uow, row, outer, type(exc).__name__, str(exc), config)
    for document in (d for submission in submissions for d in submission.documents):
        try:  # the chart's own rule, judged now: a letter waiting for a person must be fileable
            record_rules.document_media_type(document.data)
        except record_rules.DocumentRefused as exc:
            return _refuse(uow, row, outer, "DocumentRefused", f"{document.uri}: {exc}", config)
    sent = patient_as_sent(submissions, package)
    row.patient_as_sent = sent.summary() if sent else "several patients"
    actor = mailbox_actor(sender)

    def write(s: Session, r: InboundLetter) -> None:
        r.professional_id = _professional(s, sender)
        patient_id, why = find_patient(s, sent) if sent else (None, "SeveralPatients")
        if patient_id is None:
            r.status, r.rule, r.reason = UNMATCHED, why, "the patient could not be identified with certainty"
            audit.record(s, None, UNMATCHED_ACTION, at=now, target=r.message_id, reason=why,
                         details={"sender": sender})
            return
        access_patient(s, actor, patient_id, Purpose.ADMINISTRATION, now=now, port=port, action=FILE,
                       target=r.message_id)
        r.document_ids = [str(i) for i in _file(s, actor, patient_id, submissions, author=actor.label, now=now)]
        r.status, r.patient_id = FILED, patient_id

    try:
        return _store(uow, row, write)
    except record_rules.DocumentRefused as exc:
        return _refuse(uow, row, outer, "DocumentRefused", str(exc), config)


# --- the worklist ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LetterToMatch:
    id: uuid.UUID
    sender: str
    professional_id: uuid.UUID | None
    subject: str
    received_at: dt.datetime
    rule: str
    patient: str


def letters_to_match(uow: UnitOfWork, actor: Actor, *, limit: int = 200) -> list[LetterToMatch]:
    """Letters waiting for a person to name their patient, oldest first (audited: they name patients)."""
    with uow:
        s, now = uow.session, uow.clock.now()
        rows = list(s.scalars(select(InboundLetter).where(InboundLetter.status == UNMATCHED)
                              .order_by(InboundLetter.received_at).limit(limit)))
        audit.record(s, actor, WORKLIST_VIEWED, at=now, details={"count": len(rows)})
        uow.commit()
        return [LetterToMatch(r.id, r.sender, r.professional_id, r.subject, r.received_at, r.rule or "",
                              r.patient_as_sent) for r in rows]


def match_letter(uow: UnitOfWork, actor: Actor, inbound_id: uuid.UUID, ipp: str, *,
                 config: sending.MessagingConfig | None, port: CareRelationshipPort) -> uuid.UUID:
    """A person says whose letter it is (by IPP): through the door (identity vigilance for identity,
    a physician for care), audited, and the documents are filed in that patient's chart."""
    if config is None:
        raise sending.MessagingNotConfigured("the group mailbox's certificate is not configured",
                                             rule="MessagingNotConfigured")
    with uow:
        s, now = uow.session, uow.clock.now()
        row = s.get(InboundLetter, inbound_id)
        if row is None or row.status != UNMATCHED or not actor.has_any(*MATCHERS):
            raise InboundLetterNotFound("no such letter waiting to be matched", rule="InboundLetterNotFound")
        patient_id = identity.id_by_ipp(s, ipp) if ipp.strip().isdigit() else None
        for _hop in range(5):  # a merged record: its survivor
            survivor = identity.merged_into(s, patient_id) if patient_id else None
            if survivor is None:
                break
            patient_id = survivor
        if patient_id is None:
            raise NotFound("no patient has this IPP", rule="UnknownIpp")
        purpose = Purpose.IDENTITY if actor.has_any(Role.IDENTITY_VIGILANCE) else Purpose.CARE
        access_patient(s, actor, patient_id, purpose, now=now, port=port, action=MATCH, target=row.message_id)
        # Verified when it arrived: opened again as of then (a certificate may have expired since).
        opened = smime.open_message(row.raw, recipient=config.identity, trust_anchors=config.trust_anchors,
                                    now=row.received_at)
        package = _package(opened)
        assert package is not None  # it was unpacked on arrival
        documents = _file(s, actor, patient_id, xdm.unpack(package), author=actor.label, now=now)
        row.status, row.patient_id, row.document_ids = FILED, patient_id, [str(i) for i in documents]
        row.resolved_at, row.resolved_by = now, actor.label
        uow.commit()
        return patient_id
