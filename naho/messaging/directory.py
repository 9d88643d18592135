"""The directory of community professionals: imported from the national extract, searched by
name, RPPS or city, with the secure mailbox and certificate that sending a letter needs."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from naho.messaging import rules
from naho.messaging.models import Professional
from naho.messaging.pki import certificate_emails
from naho.platform import audit
from naho.platform.errors import DomainError, NotFound
from naho.platform.security.actor import Actor
from naho.platform.uow import UnitOfWork

#: The synthetic extract shipped for the demo and the tests (fictitious professionals).
SAMPLE_EXTRACT = Path(__file__).parent / "data" / "annuaire_sante_extrait.txt"
SEARCH_LIMIT = 50


class DirectoryImportRefused(DomainError):
    """The extract has bad lines: none of it was stored."""


class CertificateRefused(DomainError):
    """The certificate is unreadable or is not that of the professional's secure mailbox."""


class ProfessionalNotFound(NotFound):
    """No professional with this id in the directory."""


@dataclass(frozen=True)
class ProfessionalPublic(rules.DirectoryEntry):
    """A professional as stored: the extract's entry, its id, whether its certificate is known."""

    id: uuid.UUID
    has_certificate: bool

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data["id"] = str(self.id)
        return data


@dataclass(frozen=True)
class ImportCounts:
    lines: int
    created: int
    updated: int
    unchanged: int
    skipped_not_rpps: int


def to_public(row: Professional) -> ProfessionalPublic:
    return ProfessionalPublic(id=row.id, rpps=row.rpps, title=row.title, last_name=row.last_name,
                              first_name=row.first_name, profession=row.profession, specialty=row.specialty,
                              practice_name=row.practice_name, street=row.street, postcode=row.postcode,
                              city=row.city, phone=row.phone, mss_address=row.mss_address,
                              has_certificate=bool(row.certificate_pem))


_FIELDS = ("title", "last_name", "first_name", "profession", "specialty", "practice_name", "street", "postcode",
           "city", "phone", "mss_address")


def store_extract(session: Session, lines: Iterable[str], *, now: datetime) -> ImportCounts:
    """Store an extract in the caller's transaction: all of it or, on any bad line, nothing
    (DirectoryImportRefused naming each bad line). A re-import updates in place, by RPPS, and
    keeps the certificates already known."""
    try:
        parsed = rules.parse_extract(lines)
    except rules.DirectoryExtractInvalid as exc:
        raise DirectoryImportRefused(str(exc), rule="DirectoryExtractInvalid",
                                     problems=[{"line": n, "reason": r} for n, r in exc.problems]) from exc
    existing = {row.rpps: row for row in session.scalars(
        select(Professional).where(Professional.rpps.in_([e.rpps for e in parsed.entries])))}
    created = updated = unchanged = 0
    for entry in parsed.entries:
        row = existing.get(entry.rpps)
        if row is None:
            row = Professional(id=uuid.uuid4(), rpps=entry.rpps, imported_at=now)
            session.add(row)
            created += 1
        elif all(getattr(row, name) == getattr(entry, name) for name in _FIELDS):
            unchanged += 1
            continue
        else:
            updated += 1
        for name in _FIELDS:
            setattr(row, name, getattr(entry, name))
        row.search_name = rules.fold(f"{entry.last_name} {entry.first_name}")
        row.search_city = rules.fold(entry.city)
        row.updated_at = now
    session.flush()
    return ImportCounts(parsed.lines, created, updated, unchanged, parsed.skipped_not_rpps)


def import_extract(uow: UnitOfWork, actor: Actor, lines: Iterable[str], *, source: str) -> ImportCounts:
    """The use case: store the extract and trace who imported what."""
    with uow:
        now = uow.clock.now()
        counts = store_extract(uow.session, lines, now=now)
        audit.record(uow.session, actor, "messaging:directory:import", at=now, target=source[:300],
                     details=asdict(counts))
        uow.commit()
        return counts


def search(session: Session, query: str, *, limit: int = SEARCH_LIMIT) -> list[ProfessionalPublic]:
    """Professionals whose RPPS is the query, or whose name or city starts with it (any word)."""
    text = rules.fold(query)
    if len(text) < 2:
        return []
    conditions = [Professional.rpps == query.strip(), Professional.search_name.startswith(text, autoescape=True),
                  Professional.search_name.contains(f" {text}", autoescape=True),
                  Professional.search_city.startswith(text, autoescape=True)]
    rows = session.scalars(select(Professional).where(or_(*conditions))
                           .order_by(Professional.search_name, Professional.rpps).limit(limit))
    return [to_public(row) for row in rows]


def get_professional(session: Session, professional_id: uuid.UUID) -> ProfessionalPublic:
    row = session.get(Professional, professional_id)
    if row is None:
        raise ProfessionalNotFound("no such professional in the directory")
    return to_public(row)


def certificate_of(session: Session, professional_id: uuid.UUID) -> x509.Certificate | None:
    row = session.get(Professional, professional_id)
    if row is None or not row.certificate_pem:
        return None
    return x509.load_pem_x509_certificate(row.certificate_pem.encode("ascii"))


def set_certificate(session: Session, rpps: str, pem: bytes, *, now: datetime) -> ProfessionalPublic:
    """Record a professional's encryption certificate (from the national directory's LDAP or
    given by the professional): it must be readable and carry their secure mailbox address."""
    row = session.scalars(select(Professional).where(Professional.rpps == rpps)).first()
    if row is None:
        raise ProfessionalNotFound("no such professional in the directory")
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CertificateRefused("the certificate is not a readable PEM certificate",
                                 rule="CertificateUnreadable") from exc
    if not row.mss_address or row.mss_address not in certificate_emails(certificate):
        raise CertificateRefused("the certificate is not that of the professional's secure mailbox",
                                 rule="CertificateAddressMismatch")
    row.certificate_pem = pem.decode("ascii")
    row.updated_at = now
    session.flush()
    return to_public(row)
