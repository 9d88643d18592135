"""Sending a chart document to the patient's correspondents, and following what became of it.

`send_document` is one transaction: the door, the consent check, the IHE XDM package, the
S/MIME seal, the letter row and its outbox message. The sealed bytes are stored with the letter:
the outbox handler (naho/messaging/smtp.py) sends exactly these bytes, under the same
Message-ID, however many times it must try. `apply_report` reads a delivery status (RFC 3464)
or disposition (RFC 8098) notification and moves the letter's status by its Message-ID.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import hashlib
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from naho.config import Settings
from naho.identity import service as identity
from naho.identity.rules import ins_is_valid
from naho.messaging import consent, correspondents, directory, smime, xdm
from naho.messaging.errors import MessagingError
from naho.messaging.letter_models import DischargeLetter
from naho.messaging.models import Letter
from naho.messaging.pki import Identity, PkiFiles, load_identity, load_trust_anchors
from naho.messaging.rules import (
    LetterStatus,
    PatientMailboxRefused,
    ReportUnreadable,
    advance,
    letter_status,
    mss_headers,
    parse_report,
    patient_mailbox,
)
from naho.platform import audit, counters, i18n
from naho.platform.access import CareRelationshipPort, Purpose, access_patient
from naho.platform.errors import Conflict, DomainError, NotFound
from naho.platform.outbox import enqueue
from naho.platform.security.actor import Actor
from naho.platform.uow import UnitOfWork
from naho.record import chart
from naho.results import imaging_service as imaging
from naho.results import service as results
from naho.staff import service as staff

LETTER_TOPIC = "messaging.letter"
#: The national identifier of professionals (idNatPs): "8" + RPPS under this OID.
IDNATPS_OID = "1.2.250.1.71.4.2.1"
#: IHE XDS-SD plain text, for the chart's text documents (PDF ones use xdm.FORMAT_PDF).
FORMAT_TEXT = xdm.Code("urn:ihe:iti:xds-sd:text:2008", "1.3.6.1.4.1.19376.1.2.3",
                       "Document à corps non structuré en texte brut")


class MessagingNotConfigured(DomainError):
    """No certificate or no SMTP relay is configured: letters cannot be sent from this instance."""

    status = 503
    title = "Secure messaging unavailable"


class SharingObjected(Conflict):
    """The patient objected to sharing their data with community professionals."""


class RecipientUnreachable(DomainError):
    """A chosen recipient is not a correspondent of the patient, or has no secure mailbox or
    no known certificate (the letter could not be sealed for them)."""


class LetterDocumentNotFound(NotFound):
    """No such document in this patient's chart."""


@dataclass(frozen=True)
class MessagingConfig:
    """The group's mailbox and the ids of its packages, loaded once at start (app.py)."""

    identity: Identity
    trust_anchors: tuple[x509.Certificate, ...]
    oid_root: str
    ipp_oid: str
    institution: str
    #: The patients' mail service: its domain, and its certificate (None: patients get nothing).
    patient_domain: str = "patient.mssante.fr"
    patient_certificate: x509.Certificate | None = None

    @property
    def domain(self) -> str:
        return self.identity.email.rsplit("@", 1)[1]


def load_config(settings: Settings) -> MessagingConfig | None:
    """The configured mailbox, or None when no certificate is named (letters are then refused)."""
    if not settings.messaging_certificate or not settings.messaging_private_key:
        return None
    anchors = tuple(Path(p.strip()) for p in settings.messaging_trust_anchors.split(",") if p.strip())
    files = PkiFiles(settings.messaging_certificate, settings.messaging_private_key, anchors)
    patient_certificate = (x509.load_pem_x509_certificate(settings.messaging_patient_certificate.read_bytes())
                           if settings.messaging_patient_certificate else None)
    return MessagingConfig(identity=load_identity(files), trust_anchors=tuple(load_trust_anchors(files)),
                           oid_root=settings.messaging_oid_root, ipp_oid=settings.messaging_ipp_oid,
                           institution=settings.messaging_institution,
                           patient_domain=settings.messaging_patient_domain,
                           patient_certificate=patient_certificate)


#: A recipient is a community professional of the directory, or the patient's own mailbox.
PROFESSIONAL, PATIENT = "professional", "patient"


@dataclass(frozen=True)
class RecipientPublic:
    professional_id: str  # empty for the patient's own mailbox
    name: str
    address: str
    status: str
    detail: str | None
    kind: str = PROFESSIONAL


@dataclass(frozen=True)
class LetterPublic:
    id: uuid.UUID
    document_id: uuid.UUID
    document_title: str
    message_id: str
    subject: str
    status: str
    status_detail: str | None
    recipients: list[RecipientPublic]
    created_at: dt.datetime
    created_by: str
    sent_at: dt.datetime | None
    delivered_at: dt.datetime | None
    read_at: dt.datetime | None

    def as_json(self) -> dict[str, Any]:
        return {"id": str(self.id), "document_id": str(self.document_id), "document_title": self.document_title,
                "message_id": self.message_id, "subject": self.subject, "status": self.status,
                "status_detail": self.status_detail,
                "recipients": [r.__dict__ for r in self.recipients],
                **{k: (v.isoformat() if v else None) for k, v in (
                    ("created_at", self.created_at), ("sent_at", self.sent_at),
                    ("delivered_at", self.delivered_at), ("read_at", self.read_at))},
                "created_by": self.created_by}


def _public(row: Letter) -> LetterPublic:
    return LetterPublic(
        id=row.id, document_id=row.document_id, document_title=row.document_title, message_id=row.message_id,
        subject=row.subject, status=row.status, status_detail=row.status_detail,
        recipients=[RecipientPublic(r["professional_id"], r["name"], r["address"], r["status"], r.get("detail"),
                                    r.get("kind", PROFESSIONAL))
                    for r in row.recipients],
        created_at=row.created_at, created_by=row.created_by, sent_at=row.sent_at,
        delivered_at=row.delivered_at, read_at=row.read_at)


def letters_of(session: Session, patient_id: uuid.UUID) -> list[LetterPublic]:
    """What was sent about the patient, newest first (the caller went through the door)."""
    rows = session.scalars(select(Letter).where(Letter.patient_id == patient_id)
                           .order_by(Letter.created_at.desc(), Letter.number.desc()))
    return [_public(row) for row in rows]


def _author(session: Session, actor: Actor, institution: str) -> xdm.Author:
    member = staff.staff_of_account(session, actor.account_id)
    if member is None or not member.rpps:
        person = f"^{_hl7(actor.display_name)}"
    else:
        person = (f"8{member.rpps}^{_hl7(member.last_name.upper())}^{_hl7(member.first_name)}"
                  f"^^^^^^&{IDNATPS_OID}&ISO^D^^^IDNPS")
    return xdm.Author(person, _hl7(institution))


def _hl7(text: str) -> str:
    """HL7 v2 components carry no separator characters."""
    return re.sub(r"[|^&~\\]", " ", text).strip()


def document_type(session: Session, document_id: uuid.UUID) -> xdm.Code:
    """The XDS type of a chart document: a discharge letter, a laboratory's report, an imaging
    report, or else the summary of an episode of care (a document added by hand)."""
    if session.scalar(select(DischargeLetter.id).where(DischargeLetter.document_id == document_id)) is not None:
        return xdm.TYPE_DISCHARGE_LETTER
    if results.is_lab_report_document(session, document_id):
        return xdm.TYPE_LAB_REPORT
    if imaging.is_report_document(session, document_id):
        return xdm.TYPE_IMAGING_REPORT
    return xdm.TYPE_EPISODE_SUMMARY


def _compose(config: MessagingConfig, *, letter_id: uuid.UUID, number: int, patient: Any, author: xdm.Author,
             title: str, type_code: xdm.Code, media_type: str, content: bytes, to: list[str],
             certificates: list[x509.Certificate], now: dt.datetime) -> tuple[str, bytes, str]:
    """(subject, sealed message, Message-ID) of one letter: XDM package + document, signed, encrypted."""
    ins = patient.ins if patient.ins and ins_is_valid(patient.ins) else None
    document = xdm.Document(content, media_type, title, type_code,
                            xdm.FORMAT_PDF if media_type == "application/pdf" else FORMAT_TEXT, now)
    package = xdm.pack(xdm.Submission(
        uid_root=config.oid_root, number=number,
        patient_id=xdm.patient_identifier(ins=ins, ipp=patient.ipp, ipp_oid=config.ipp_oid),
        author=author, title=title, submitted_at=now, documents=[document], content_type=type_code))
    extension = "pdf" if media_type == "application/pdf" else "txt"
    body = i18n._("Please find attached a document about your patient %(name)s, born on %(birth)s.") % {
        "name": patient.display_name, "birth": patient.birth_date.strftime("%d/%m/%Y")}
    inner = smime.build_content(body + "\n", [
        smime.Attachment("IHE_XDM.ZIP", "application/zip", package),
        smime.Attachment(f"document.{extension}", media_type, content)])
    subject = f"{title} - {patient.display_name}"[:300]
    cda_codes = [document.type_code.code] if document.format_code == xdm.FORMAT_CDA else []
    message = smime.seal_message(letter_id=str(letter_id), domain=config.domain, sender=config.identity, to=to,
                                 recipient_certificates=certificates, subject=subject, content=inner, date=now,
                                 mss_headers=mss_headers(cda_codes))
    # Ask the reader's mail client for a read receipt (RFC 8098); outer headers are not signed.
    message["Disposition-Notification-To"] = config.identity.email
    return subject, message.as_bytes(policy=email.policy.SMTP), str(message["Message-ID"])


def send_document(uow_factory: Callable[[], UnitOfWork], actor: Actor, patient_id: uuid.UUID,
                  document_id: uuid.UUID, professional_ids: Sequence[uuid.UUID], port: CareRelationshipPort,
                  config: MessagingConfig | None, *, to_patient: bool = False) -> uuid.UUID:
    """Send a document of the chart to some of the patient's correspondents, and (`to_patient`)
    to the patient's own secure mailbox; returns the letter id.

    Refused, with the reason, when messaging is not configured, when the patient objected to
    sharing with community professionals (a letter to the patient alone needs no consent: it is
    theirs), when the patient's identity is not qualified (no INS, no mailbox), or when a
    recipient cannot receive it securely."""
    uow = uow_factory()
    if config is None or LETTER_TOPIC not in uow.channels:
        raise MessagingNotConfigured("secure messaging is not configured on this instance",
                                     rule="MessagingNotConfigured")
    wanted = list(dict.fromkeys(professional_ids))
    if not wanted and not to_patient:
        raise RecipientUnreachable("choose at least one recipient", rule="NoRecipient")
    # The document's bytes, through the chart's own door (audited as a view of the document).
    meta, content = chart.open_document(uow_factory(), actor, document_id, port)
    with uow:
        s, now = uow.session, uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port, action="patient:letter:send",
                       target=str(document_id))
        if document_id not in {d.id for d in chart.documents(s, patient_id)}:
            raise LetterDocumentNotFound("no such document in this patient's chart", rule="LetterDocumentNotFound")
        if wanted and not consent.sharing_allowed(s, patient_id, consent.COMMUNITY_PROFESSIONALS):
            # The refusal stays in the trail: commit it alone, then say why.
            audit.record(s, actor, "patient:letter:refused", at=now, patient_id=patient_id,
                         target=str(document_id), reason="the patient objected to sharing")
            uow.commit()
            raise SharingObjected("the patient objected to sharing their data with community professionals",
                                  rule="SharingObjected")
        attached = {c.professional.id: c.professional for c in correspondents.current(s, patient_id)}
        recipients: list[dict[str, str | None]] = []
        certificates: list[x509.Certificate] = []
        for professional_id in wanted:
            professional = attached.get(professional_id)
            if professional is None:
                raise RecipientUnreachable("a recipient is not a correspondent of the patient",
                                           rule="NotACorrespondent")
            certificate = directory.certificate_of(s, professional_id)
            if not professional.mss_address or certificate is None:
                raise RecipientUnreachable(f"{professional.display_name} has no secure mailbox or certificate",
                                           rule="NoSecureMailbox", professional=str(professional_id))
            recipients.append({"professional_id": str(professional_id), "kind": PROFESSIONAL,
                               "name": professional.display_name, "address": professional.mss_address,
                               "status": str(LetterStatus.QUEUED), "detail": None})
            certificates.append(certificate)
        patient = identity.summaries(s, [patient_id])[patient_id]
        if to_patient:
            try:
                address = patient_mailbox(patient.ins, patient.status, doubtful=patient.doubtful,
                                          fictitious=patient.fictitious, domain=config.patient_domain)
            except PatientMailboxRefused as exc:
                raise RecipientUnreachable(str(exc), rule="PatientMailboxRefused") from exc
            if config.patient_certificate is None:
                raise RecipientUnreachable("the patients' mail service has no known certificate",
                                           rule="NoPatientMailService")
            recipients.append({"professional_id": "", "kind": PATIENT, "name": patient.display_name,
                               "address": address, "status": str(LetterStatus.QUEUED), "detail": None})
            certificates.append(config.patient_certificate)
        letter_id, number = uuid.uuid4(), counters.next_number(s, "messaging_letter")
        try:
            subject, raw, message_id = _compose(
                config, letter_id=letter_id, number=number, patient=patient,
                author=_author(s, actor, config.institution), title=meta.title,
                type_code=document_type(s, document_id), media_type=meta.media_type,
                content=content, to=[str(r["address"]) for r in recipients], certificates=certificates, now=now)
        except (ValueError, MessagingError) as exc:
            raise RecipientUnreachable(f"the letter cannot be sealed: {exc}", rule="SealRefused") from exc
        outbox_id = enqueue(s, LETTER_TOPIC, {"letter_id": str(letter_id)}, now=now)
        s.add(Letter(id=letter_id, patient_id=patient_id, document_id=document_id, document_title=meta.title,
                     document_sha256=hashlib.sha256(content).hexdigest(), number=number, message_id=message_id,
                     subject=subject, sender=config.identity.email, recipients=recipients,
                     status=str(LetterStatus.QUEUED), status_detail=None, raw=raw, outbox_id=outbox_id,
                     created_at=now, created_by=actor.label, updated_at=now))
        uow.commit()
        return letter_id


# --- after the send ----------------------------------------------------------------------------


def _update_recipients(row: Letter, changes: dict[str, tuple[LetterStatus | None, str | None]],
                       now: dt.datetime) -> None:
    """Move the named recipients (by address) forward and the letter with them; a None status
    only notes the detail (a delayed delivery, a deleted-unread receipt)."""
    updated = []
    for recipient in row.recipients:
        change = changes.get(recipient["address"].lower())
        if change is not None:
            status, detail = change
            current = LetterStatus(recipient["status"])
            recipient = {**recipient, "status": str(advance(current, status) if status else current),
                         "detail": detail or recipient.get("detail")}
        updated.append(recipient)
    row.recipients = updated  # a new list: JSON columns track assignment, not mutation
    overall = letter_status(LetterStatus(r["status"]) for r in updated)
    if overall is not LetterStatus(row.status):
        row.status = str(overall)
        if overall is LetterStatus.SENT:
            row.sent_at = row.sent_at or now
        elif overall is LetterStatus.DELIVERED:
            row.delivered_at = row.delivered_at or now
        elif overall is LetterStatus.READ:
            row.read_at = row.read_at or now
    failed = [f"{r['address']}: {r.get('detail') or ''}" for r in updated if r["status"] == LetterStatus.FAILED]
    row.status_detail = "; ".join(failed)[:1000] or None
    row.updated_at = now


@dataclass(frozen=True)
class Relayed:
    """What the relay did with one letter."""

    accepted: list[str]
    refused: dict[str, str]


def letter_to_send(session: Session, letter_id: uuid.UUID) -> tuple[bytes, str, list[str], str] | None:
    """(sealed bytes, sender, recipients, status) of a letter for the outbox handler."""
    row = session.get(Letter, letter_id)
    if row is None:
        return None
    return row.raw, row.sender, [r["address"] for r in row.recipients], row.status


def record_relayed(session: Session, letter_id: uuid.UUID, outcome: Relayed, *, now: dt.datetime) -> None:
    """The relay accepted (sent) or refused for good (failed) each recipient."""
    row = session.get(Letter, letter_id)
    if row is None:
        return
    changes: dict[str, tuple[LetterStatus | None, str | None]] = {
        a.lower(): (LetterStatus.SENT, None) for a in outcome.accepted}
    changes.update({a.lower(): (LetterStatus.FAILED, reason) for a, reason in outcome.refused.items()})
    if row.sent_at is None and outcome.accepted:
        row.sent_at = now
    _update_recipients(row, changes, now)


def apply_report(uow: UnitOfWork, raw: bytes, config: MessagingConfig | None = None) -> uuid.UUID | None:
    """Apply an inbound DSN or MDN to the letter it reports on; returns the letter id, or None
    when it names no letter of ours. An MDN sent sealed (S/MIME) is opened with our key first."""
    now = uow.clock.now()
    head = email.message_from_bytes(raw, policy=email.policy.compat32)
    if head.get_content_type() in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
        if config is None:
            raise ReportUnreadable("a sealed report needs the messaging certificate to be opened")
        opened = smime.open_message(raw, recipient=config.identity, trust_anchors=config.trust_anchors, now=now)
        raw = opened.content.as_bytes(policy=email.policy.SMTP)
    report = parse_report(raw)
    with uow:
        s = uow.session
        row = None
        if report.original_message_id:
            row = s.scalars(select(Letter).where(Letter.message_id == report.original_message_id.strip())).first()
        if row is None and report.envelope_id:
            try:
                row = s.get(Letter, uuid.UUID(report.envelope_id.strip()))
            except ValueError:
                row = None
        if row is None:
            return None
        _update_recipients(row, {r.address: (r.status, r.detail) for r in report.recipients}, now)
        audit.record(s, None, f"messaging:letter:{report.kind}", at=now, patient_id=row.patient_id,
                     target=str(row.id), details={r.address: r.detail for r in report.recipients})
        letter_id = row.id
        uow.commit()
        return letter_id
