"""Use cases of the discharge letter (lettre de liaison): draft it from the stay, edit its free
text, sign it (locked, filed in the chart as a PDF with its structured twin), read it.

Each goes through the one door of the stay's patient (purpose care, audited under
`patient:discharge_letter:*`); drafting, editing and signing are a physician's (the policy of the
route, and again here). The signed letter is a chart document: `sending.send_document` sends it
like any other (ADR 0013).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from naho.identity import service as identity
from naho.identity.schemas import PatientPublic
from naho.medication.reconciliation import discharge_changes
from naho.messaging import letter_fhir
from naho.messaging import letter_rules as rules
from naho.messaging.letter_models import DischargeLetter
from naho.platform import i18n
from naho.platform import pdf as pdf_document
from naho.platform.access import CareRelationshipPort, Purpose, access_patient
from naho.platform.errors import Conflict, DomainError, Forbidden, NotFound
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.record import chart
from naho.record import service as record
from naho.record.errors import EncounterNotFound
from naho.record.schemas import EncounterPublic
from naho.results import service as results
from naho.scheduling import service as scheduling
from naho.staff import service as staff

PARIS = ZoneInfo("Europe/Paris")
#: OBR-25 statuses of a report that is complete (final, corrected) or will never come (cancelled).
_DONE = frozenset({"F", "C", "X", "D"})
#: Samples taken this long before the admission (in the emergency department) belong to the stay.
SAMPLED_BEFORE = dt.timedelta(days=1)
TITLE = i18n.N_("Discharge letter")
#: Words of the letter, translated when it is drawn (the letter is a French document).
LABELS = (i18n.N_("Reasons for admission"), i18n.N_("Diagnoses"), i18n.N_("Procedures"),
          i18n.N_("Summary of the stay"), i18n.N_("Treatments at discharge"), i18n.N_("Allergies"),
          i18n.N_("Results pending"), i18n.N_("Follow-up"), i18n.N_("new"), i18n.N_("continued"),
          i18n.N_("modified"), i18n.N_("stopped"), i18n.N_("not reconciled"), i18n.N_("resolved"))


class DischargeLetterNotFound(NotFound):
    """No such stay for this actor, or no letter drafted for it yet."""


class DischargeLetterLocked(Conflict):
    """The letter is signed: it can no longer be changed."""

    title = "Discharge letter signed"


class LetterDraftedMeanwhile(Conflict):
    """Another physician drafted the stay's letter at the same moment (one letter per stay)."""


class DischargeLetterInvalid(DomainError):
    """An edit the letter's rules refuse (unknown section, text too long)."""


class NotAPhysician(Forbidden):
    """Only a physician drafts, edits and signs the discharge letter (R. 1112-1-2)."""


@dataclass(frozen=True)
class LetterPublic:
    id: uuid.UUID
    status: str
    content: rules.LetterContent
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    updated_by: str
    signed_at: dt.datetime | None
    signed_by: str | None
    document_id: uuid.UUID | None
    structured_media_type: str | None

    @property
    def signed(self) -> bool:
        return self.status == rules.LetterStatus.SIGNED


@dataclass(frozen=True)
class LetterView:
    stay: EncounterPublic
    patient: PatientPublic
    letter: LetterPublic | None
    sections: list[rules.Section]


def _labels() -> dict[str, str]:
    return {key: i18n._(key) for key in LABELS}


def sections_of(content: rules.LetterContent) -> list[rules.Section]:
    """The letter's sections with French titles, times in Europe/Paris."""
    return rules.sections(content, _labels(), PARIS)


def _public(row: DischargeLetter) -> LetterPublic:
    return LetterPublic(id=row.id, status=row.status, content=rules.from_json(row.content),
                        created_at=row.created_at, created_by=row.created_by, updated_at=row.updated_at,
                        updated_by=row.updated_by, signed_at=row.signed_at, signed_by=row.signed_by,
                        document_id=row.document_id, structured_media_type=row.structured_media_type)


def _stay(session: Session, encounter_id: uuid.UUID) -> EncounterPublic:
    try:
        return record.get_encounter(session, encounter_id)
    except EncounterNotFound:
        raise DischargeLetterNotFound("no such stay") from None


def _door(session: Session, actor: Actor, encounter_id: uuid.UUID, now: dt.datetime, port: CareRelationshipPort,
          action: str) -> tuple[EncounterPublic, PatientPublic]:
    stay = _stay(session, encounter_id)
    access_patient(session, actor, stay.patient_id, Purpose.CARE, now=now, port=port, action=action,
                   target=str(encounter_id))
    return stay, identity.summaries(session, [stay.patient_id])[stay.patient_id]


def _physician(actor: Actor) -> None:
    if not actor.has_any(Role.PHYSICIAN):
        raise NotAPhysician("only a physician drafts, edits and signs the discharge letter", rule="NotAPhysician")


def _row(session: Session, encounter_id: uuid.UUID) -> DischargeLetter | None:
    return session.scalars(select(DischargeLetter).where(DischargeLetter.encounter_id == encounter_id)).first()


def _view(session: Session, stay: EncounterPublic, patient: PatientPublic) -> LetterView:
    row = _row(session, stay.id)
    letter = _public(row) if row else None
    return LetterView(stay, patient, letter, sections_of(letter.content) if letter else [])


def view_letter(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID, port: CareRelationshipPort) -> LetterView:
    """The stay's letter, if drafted (physicians and nurses of the care team read it)."""
    with uow:
        stay, patient = _door(uow.session, actor, encounter_id, uow.clock.now(), port,
                              "patient:discharge_letter:view")
        view = _view(uow.session, stay, patient)
        uow.commit()
        return view


def _frequency(change: object) -> str | None:
    times = getattr(change, "times_per_day", None)
    every = getattr(change, "every_hours", None)
    if times:
        return i18n._("%(n)s times a day") % {"n": times}
    if every:
        return i18n._("every %(h)s h") % {"h": f"{every:g}"}
    frequency = getattr(change, "frequency", None)
    return str(frequency) if frequency else None


def _content(session: Session, stay: EncounterPublic, patient: PatientPublic, now: dt.datetime,
             appointments: list[scheduling.AppointmentView]) -> rules.LetterContent:
    """The stay's data as the letter's first draft (the caller went through the door)."""
    view = chart.read_chart(session, patient.id, now)
    diagnoses = [rules.Diagnosis(c.icd10, c.label, c.status) for c in view.conditions
                 if c.status == "active" or c.recorded_at >= stay.started_at]
    treatments = [rules.Treatment(c.change, c.drug, c.dose, _frequency(c), c.reason)
                  for c in discharge_changes(session, stay.id)]
    pending = [rules.PendingResult(r.service_label, r.observed_at, r.status)
               for r in results.read_results(session, patient.id).reports
               if r.status not in _DONE and r.observed_at >= stay.started_at - SAMPLED_BEFORE]
    follow_ups = [rules.FollowUp(a.starts_at, f"{a.schedule.name} ({a.consultation_type})",
                                 a.schedule.establishment_name or a.schedule.establishment_code)
                  for a in appointments if a.starts_at >= (stay.ended_at or now) - dt.timedelta(hours=1)]
    allergies = [a.substance_label + (f" ({a.reaction})" if a.reaction else "") for a in view.allergies]
    return rules.draft(
        patient_name=patient.display_name, patient_birth_date=patient.birth_date, patient_sex=patient.sex,
        ipp=patient.ipp, ins=patient.ins, nda=stay.nda, establishment=stay.establishment_code,
        unit=stay.unit_name or stay.unit_code, admitted_at=stay.started_at, discharged_at=stay.ended_at,
        diagnoses=diagnoses, treatments=treatments, pending_results=pending, appointments=follow_ups,
        allergies=allergies)


def draft_letter(uow_factory: Callable[[], UnitOfWork], actor: Actor, encounter_id: uuid.UUID,
                 port: CareRelationshipPort) -> LetterView:
    """Draft the letter from the stay, or refresh a draft's data from it (the physician's free
    text is kept); refused once signed."""
    _physician(actor)
    with uow_factory() as first:
        patient_id = _stay(first.session, encounter_id).patient_id
    # The appointments through scheduling's own door (audited there as a list of appointments).
    appointments = scheduling.patient_appointments(uow_factory(), actor, patient_id, port)
    uow = uow_factory()
    with uow:
        s, now = uow.session, uow.clock.now()
        stay, patient = _door(s, actor, encounter_id, now, port, "patient:discharge_letter:draft")
        content = _content(s, stay, patient, now, appointments)
        row = _row(s, encounter_id)
        if row is None:
            s.add(DischargeLetter(patient_id=patient.id, encounter_id=encounter_id,
                                  status=str(rules.LetterStatus.DRAFT), content=rules.to_json(content),
                                  created_at=now, created_by=actor.label, updated_at=now, updated_by=actor.label))
        else:
            if row.status == rules.LetterStatus.SIGNED:
                raise DischargeLetterLocked("the letter is signed", rule="LetterAlreadySigned")
            kept = rules.from_json(row.content)
            content = rules.edit(content, rules.LetterStatus.DRAFT,
                                 {name: getattr(kept, name) for name in rules.EDITABLE_SECTIONS})
            row.content, row.updated_at, row.updated_by = rules.to_json(content), now, actor.label
        try:
            s.flush()
        except IntegrityError as exc:  # the unique stay: the other draft won the race
            raise LetterDraftedMeanwhile("the letter was drafted meanwhile: reload it",
                                         rule="LetterDraftedMeanwhile") from exc
        view = _view(s, stay, patient)
        uow.commit()
        return view


def _draft_row(session: Session, encounter_id: uuid.UUID) -> DischargeLetter:
    row = _row(session, encounter_id)
    if row is None:
        raise DischargeLetterNotFound("no letter drafted for this stay", rule="LetterNotDrafted")
    return row


def edit_letter(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID, changes: Mapping[str, str],
                port: CareRelationshipPort) -> LetterView:
    """Change the free-text sections of a draft; a signed letter answers 409."""
    _physician(actor)
    with uow:
        s, now = uow.session, uow.clock.now()
        stay, patient = _door(s, actor, encounter_id, now, port, "patient:discharge_letter:edit")
        row = _draft_row(s, encounter_id)
        try:
            content = rules.edit(rules.from_json(row.content), rules.LetterStatus(row.status), changes)
        except rules.LetterAlreadySigned as exc:
            raise DischargeLetterLocked(str(exc), rule="LetterAlreadySigned") from exc
        except rules.LetterSectionInvalid as exc:
            raise DischargeLetterInvalid(str(exc), rule="LetterSectionInvalid") from exc
        row.content, row.updated_at, row.updated_by = rules.to_json(content), now, actor.label
        s.flush()
        view = _view(s, stay, patient)
        uow.commit()
        return view


def _render(content: rules.LetterContent, *, signed_by: str | None, signed_at: dt.datetime | None,
            at: dt.datetime) -> bytes:
    born = content.patient_birth_date.strftime("%d/%m/%Y")
    header = [
        f"{content.establishment}" + (f" - {content.unit}" if content.unit else ""),
        f"{i18n._('Patient')}: {content.patient_name} ({content.patient_sex}), {i18n._('born on')} {born}"
        f" - IPP {content.ipp}" + (f" - INS {content.ins}" if content.ins else ""),
        f"{i18n._('Stay')} {content.nda}: {content.admitted_at.astimezone(PARIS):%d/%m/%Y %H:%M}"
        + (f" - {content.discharged_at.astimezone(PARIS):%d/%m/%Y %H:%M}" if content.discharged_at else ""),
    ]
    if signed_by and signed_at:
        footer = [f"{i18n._('Signed by')} {signed_by}, {signed_at.astimezone(PARIS):%d/%m/%Y %H:%M}"]
    else:
        footer = [i18n._("Draft: not signed")]
    return pdf_document.render(title=i18n._(TITLE), header=header, sections=sections_of(content), footer=footer,
                             created_at=signed_at or at)


def sign_letter(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID, port: CareRelationshipPort, *,
                institution: str) -> LetterView:
    """Sign the draft: locked, signer and time recorded (audited with the door), the PDF filed
    in the chart of the stay, the FHIR document Bundle kept with the letter."""
    _physician(actor)
    with uow:
        s, now = uow.session, uow.clock.now()
        stay, patient = _door(s, actor, encounter_id, now, port, "patient:discharge_letter:sign")
        row = _draft_row(s, encounter_id)
        try:
            rules.check_signable(rules.LetterStatus(row.status))
        except rules.LetterAlreadySigned as exc:
            raise DischargeLetterLocked(str(exc), rule="LetterAlreadySigned") from exc
        content = rules.from_json(row.content)
        member = staff.staff_of_account(s, actor.account_id)
        pdf = _render(content, signed_by=actor.display_name, signed_at=now, at=now)
        title = f"{i18n._(TITLE)} - {content.nda}"
        structured = letter_fhir.bundle(
            letter_id=row.id, content=content, sections=sections_of(content), title=title, patient=patient,
            signer_name=actor.display_name, signer_rpps=member.rpps if member else None, signed_at=now,
            encounter_id=encounter_id, institution=institution)
        row.document_id = chart.file_received_document(s, patient.id, encounter_id, title, pdf, author=actor.label,
                                                       now=now)
        row.status, row.signed_at, row.signed_by, row.signer_account_id = (
            str(rules.LetterStatus.SIGNED), now, actor.label, actor.account_id)
        row.structured, row.structured_media_type = structured, letter_fhir.MEDIA_TYPE
        row.updated_at, row.updated_by = now, actor.label
        s.flush()
        view = _view(s, stay, patient)
        uow.commit()
        return view


def letter_pdf_bytes(uow_factory: Callable[[], UnitOfWork], actor: Actor, encounter_id: uuid.UUID,
                     port: CareRelationshipPort) -> tuple[str, bytes]:
    """(file name, PDF): the filed document once signed, else a preview of the draft."""
    uow = uow_factory()
    with uow:
        s, now = uow.session, uow.clock.now()
        _stay_row, _patient = _door(s, actor, encounter_id, now, port, "patient:discharge_letter:view")
        row = _draft_row(s, encounter_id)
        content, document_id = rules.from_json(row.content), row.document_id
        uow.commit()
    name = f"lettre-de-liaison-{content.nda}.pdf"
    if document_id is not None:
        _meta, pdf = chart.open_document(uow_factory(), actor, document_id, port)
        return name, pdf
    return name, _render(content, signed_by=None, signed_at=None, at=now)


def structured_of(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID,
                  port: CareRelationshipPort) -> tuple[str, bytes]:
    """(media type, bytes) of the signed letter's structured twin (404 before signing)."""
    with uow:
        s = uow.session
        _door(s, actor, encounter_id, uow.clock.now(), port, "patient:discharge_letter:view")
        row = _draft_row(s, encounter_id)
        if row.structured is None or row.structured_media_type is None:
            raise DischargeLetterNotFound("the letter is not signed yet", rule="LetterNotSigned")
        result = row.structured_media_type, row.structured
        uow.commit()
        return result
