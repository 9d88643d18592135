"""Use cases of imaging: the patient's studies from the PACS and their images, imaging orders,
the radiologists' reports.

Every use case goes through the one door first (platform.access, care purpose, audited), then
rules, then writes, in one transaction. A study is the patient's only when the PACS says so
(`imaging_rules.study_belongs`: PatientID is the IPP): a study UID in a URL never opens another
patient's images, whoever's page it is typed into. The PACS is asked after the door, never
before, and a PACS that does not answer leaves the page usable (`pacs_error`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from naho.identity import service as identity
from naho.platform import counters, i18n, outbox, pdf
from naho.platform.access import CareRelationshipPort, Purpose, access_patient
from naho.platform.errors import Conflict, NotFound
from naho.platform.security.actor import Actor
from naho.platform.uow import UnitOfWork
from naho.record import chart
from naho.record import service as record
from naho.results import imaging_rules as rules
from naho.results.imaging_models import ImagingOrder, ImagingReport
from naho.results.imaging_ports import ImageStore, PacsUnavailable
from naho.results.models import LabReport, LabResult

#: Audit actions (source:subject:action).
STUDIES_VIEWED = "patient:imaging:view"
STUDY_VIEWED = "patient:imaging-study:view"
IMAGE_VIEWED = "patient:image:view"
ORDERED = "patient:imaging-order:create"
REPORTED = "patient:imaging-report:create"
#: The outbox topic an imaging order is sent on once committed (a RIS handler plugs in there).
ORDER_TOPIC = "imaging.order"


class ImagingStudyNotFound(NotFound):
    """No such study, or not this patient's: the same answer for both."""


class NoCurrentStay(Conflict):
    """An imaging exam is ordered for the patient's current stay: there is none."""


@dataclass(frozen=True)
class ImagingSettings:
    authority: str  # the IPP's assigning authority (HL7 MSH-3 of naho), e.g. NAHO
    zone: ZoneInfo


@dataclass(frozen=True)
class OrderPublic:
    id: uuid.UUID
    accession_number: str
    modality: str
    body_part: str
    question: str
    urgency: str
    ordered_at: datetime
    ordered_by: str
    status: rules.OrderStatus
    study_uid: str | None


@dataclass(frozen=True)
class ReportPublic:
    id: uuid.UUID
    study_uid: str
    accession_number: str | None
    findings: str
    conclusion: str
    author: str
    signed_at: datetime


@dataclass(frozen=True)
class ReceivedReport:
    """A report the RIS sent as ORU^R01 (filed by the results receiver), matched to an imaging
    order or study by its accession number in OBR-2 (placer) or OBR-3 (filler)."""

    accession_number: str
    label: str
    status: str  # OBR-25
    reported_at: datetime | None
    lines: list[str]
    document_id: uuid.UUID | None


@dataclass(frozen=True)
class ImagingView:
    """The imaging page of a patient: studies from the PACS, orders, reports."""

    patient_id: uuid.UUID
    ipp: str
    studies: list[rules.StudySummary]
    orders: list[OrderPublic]
    reports: dict[str, list[ReportPublic]]  # by study UID
    pacs_error: bool = False
    received: dict[str, ReceivedReport] = field(default_factory=dict)  # by accession number


@dataclass(frozen=True)
class SeriesView:
    series: rules.SeriesSummary
    frames: list[rules.Frame]

    @property
    def key_frame(self) -> rules.Frame | None:
        """The thumbnail's frame: the middle of the series (the first slice is often empty)."""
        return self.frames[len(self.frames) // 2] if self.frames else None


@dataclass(frozen=True)
class StudyView:
    patient_id: uuid.UUID
    study: rules.StudySummary
    series: list[SeriesView]
    reports: list[ReportPublic]
    order: OrderPublic | None
    received: ReceivedReport | None = None
    presets: list[rules.WindowPreset] = field(default_factory=lambda: list(rules.WINDOW_PRESETS.values()))


def _ipp(session: Session, patient_id: uuid.UUID) -> str:
    return identity.summaries(session, [patient_id])[patient_id].ipp


def _reports(session: Session, patient_id: uuid.UUID, study_uid: str | None = None) -> list[ReportPublic]:
    query = select(ImagingReport).where(ImagingReport.patient_id == patient_id)
    if study_uid is not None:
        query = query.where(ImagingReport.study_uid == study_uid)
    return [ReportPublic(r.id, r.study_uid, r.accession_number, r.findings, r.conclusion, r.author, r.signed_at)
            for r in session.scalars(query.order_by(ImagingReport.signed_at))]


def _received(session: Session, patient_id: uuid.UUID, accessions: set[str]) -> dict[str, ReceivedReport]:
    """Reports received over HL7 whose order number is one of these accession numbers."""
    if not accessions:
        return {}
    found: dict[str, ReceivedReport] = {}
    for r in session.scalars(select(LabReport).where(LabReport.patient_id == patient_id, or_(
            LabReport.placer_number.in_(accessions), LabReport.filler_number.in_(accessions)))
            .order_by(LabReport.observed_at)):
        accession = r.placer_number if r.placer_number in accessions else r.filler_number
        results = session.scalars(select(LabResult).where(LabResult.report_id == r.id, LabResult.current.is_(True)))
        lines = [x.text for x in sorted(results, key=lambda x: (len(x.chain), x.chain)) if x.text]
        found[str(accession)] = ReceivedReport(str(accession), r.service_label or r.service_code, r.status,
                                               r.reported_at, lines, r.document_id)
    return found


def _orders(session: Session, patient_id: uuid.UUID, studies: list[rules.StudySummary],
            received: dict[str, ReceivedReport] | None = None) -> list[OrderPublic]:
    by_accession = {s.accession_number: s.uid for s in studies if s.accession_number}
    reported = set(session.scalars(select(ImagingReport.order_id).where(
        ImagingReport.patient_id == patient_id, ImagingReport.order_id.is_not(None))))
    reported_studies = set(session.scalars(select(ImagingReport.study_uid).where(
        ImagingReport.patient_id == patient_id)))
    out = []
    for o in session.scalars(select(ImagingOrder).where(ImagingOrder.patient_id == patient_id)
                             .order_by(ImagingOrder.ordered_at.desc())):
        study_uid = by_accession.get(o.accession_number)
        status = rules.order_status(o.cancelled_at is not None, study_uid is not None,
                                    o.id in reported or (study_uid is not None and study_uid in reported_studies)
                                    or o.accession_number in (received or {}))
        out.append(OrderPublic(o.id, o.accession_number, o.modality, o.body_part, o.question, o.urgency,
                               o.ordered_at, o.ordered_by, status, study_uid))
    return out


def _find_studies(store: ImageStore, ipp: str) -> tuple[list[rules.StudySummary], bool]:
    try:
        return store.find_studies([ipp]), False
    except PacsUnavailable:
        return [], True


def view_imaging(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, port: CareRelationshipPort,
                 store: ImageStore, settings: ImagingSettings) -> ImagingView:
    """The patient's studies (PatientID = IPP), orders with the study that fulfils each, reports."""
    with uow:
        s = uow.session
        access_patient(s, actor, patient_id, Purpose.CARE, now=uow.clock.now(), port=port, action=STUDIES_VIEWED)
        ipp = _ipp(s, patient_id)
        found, failed = _find_studies(store, ipp)
        studies = [st for st in found if rules.study_belongs(st, ipp, authority=settings.authority)]
        reports: dict[str, list[ReportPublic]] = {}
        for report in _reports(s, patient_id):
            reports.setdefault(report.study_uid, []).append(report)
        accessions = set(s.scalars(select(ImagingOrder.accession_number).where(ImagingOrder.patient_id == patient_id)))
        received = _received(s, patient_id, accessions | {st.accession_number for st in studies if st.accession_number})
        view = ImagingView(patient_id, ipp, studies, _orders(s, patient_id, studies, received), reports, failed,
                           received)
        uow.commit()
        return view


def _owned_study(session: Session, store: ImageStore, patient_id: uuid.UUID, study_uid: str,
                 settings: ImagingSettings) -> rules.StudySummary:
    """The study if the PACS has it under this patient's IPP; ImagingStudyNotFound otherwise."""
    if not rules.is_uid(study_uid):
        raise ImagingStudyNotFound("no such study")
    study = store.get_study(study_uid)
    if study is None or not rules.study_belongs(study, _ipp(session, patient_id), authority=settings.authority):
        raise ImagingStudyNotFound("no such study")
    return study


def view_study(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, study_uid: str, port: CareRelationshipPort,
               store: ImageStore, settings: ImagingSettings) -> StudyView:
    """One study of the patient: its series with their frames (what the viewer scrolls), the
    order it fulfils, its reports."""
    with uow:
        s = uow.session
        access_patient(s, actor, patient_id, Purpose.CARE, now=uow.clock.now(), port=port, action=STUDY_VIEWED,
                       target=study_uid[:300])
        study = _owned_study(s, store, patient_id, study_uid, settings)
        series = [SeriesView(se, rules.frames_of(store.list_instances(study.uid, se.uid)))
                  for se in store.list_series(study.uid)]
        received = _received(s, patient_id, {study.accession_number} if study.accession_number else set())
        orders = [o for o in _orders(s, patient_id, [study], received) if o.study_uid == study.uid]
        view = StudyView(patient_id, study, series, _reports(s, patient_id, study.uid), orders[0] if orders else None,
                         received.get(study.accession_number))
        uow.commit()
        return view


def render_image(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, study_uid: str, series_uid: str,
                 instance_uid: str, frame: int, port: CareRelationshipPort, store: ImageStore,
                 settings: ImagingSettings, *, window: str | None = None, size: int | None = None) -> bytes:
    """One frame as a JPEG, fetched from the PACS by naho (the browser never reaches the PACS),
    through the door; every picture shown is audited."""
    with uow:
        s = uow.session
        access_patient(s, actor, patient_id, Purpose.CARE, now=uow.clock.now(), port=port, action=IMAGE_VIEWED,
                       target=f"{study_uid}/{series_uid}/{instance_uid}/{frame}"[:300])
        preset = rules.window_preset(window)
        if not (rules.is_uid(series_uid) and rules.is_uid(instance_uid)) or frame < 1:
            raise ImagingStudyNotFound("no such image")
        study = _owned_study(s, store, patient_id, study_uid, settings)
        uow.commit()
    try:
        return store.render(study.uid, series_uid, instance_uid, frame, window=preset, size=size)
    except LookupError:
        raise ImagingStudyNotFound("no such image") from None


# --- orders ----------------------------------------------------------------------------------------

def _next_accession(session: Session, now: datetime, zone: ZoneInfo) -> str:
    year = now.astimezone(zone).year
    return rules.accession_number(year, counters.next_number(session, f"imaging_accession_{year}"))


def import_order(session: Session, patient_id: uuid.UUID, encounter_id: uuid.UUID, *, modality: str,
                 body_part: str, question: str, urgency: str = "routine", ordered_by: str, now: datetime,
                 zone: ZoneInfo, account_id: uuid.UUID | None = None) -> ImagingOrder:
    """Write an order in the caller's transaction (the caller went through the door, or seeds
    the demo): the rules checked, an accession number of the year."""
    request = rules.check_order(modality, body_part, question, urgency)
    row = ImagingOrder(id=uuid.uuid4(), patient_id=patient_id, encounter_id=encounter_id,
                       accession_number=_next_accession(session, now, zone), modality=request.modality,
                       body_part=request.body_part, question=request.question, urgency=str(request.urgency),
                       ordered_at=now, ordered_by=ordered_by[:300], ordered_by_account=account_id)
    session.add(row)
    session.flush()
    return row


def order_exam(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, *, modality: str, body_part: str,
               question: str, urgency: str, port: CareRelationshipPort, settings: ImagingSettings) -> OrderPublic:
    """A physician of the care team orders an imaging exam for the current stay. The order goes
    on the outbox (topic imaging.order) in the same transaction: a RIS handler sends it at
    least once when one is configured."""
    rules.check_may_order(actor.roles)
    with uow:
        s, now = uow.session, uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port, action=ORDERED)
        stay = chart.current_encounter(s, patient_id)
        if stay is None:
            raise NoCurrentStay("the patient has no current stay", rule="NoCurrentStay")
        row = import_order(s, patient_id, stay, modality=modality, body_part=body_part, question=question,
                           urgency=urgency, ordered_by=actor.label, now=now, zone=settings.zone,
                           account_id=actor.account_id)
        outbox.enqueue(s, ORDER_TOPIC, {
            "order_id": str(row.id), "accession_number": row.accession_number, "patient_ipp": _ipp(s, patient_id),
            "visit_nda": record.get_encounter(s, stay).nda, "modality": row.modality, "body_part": row.body_part,
            "question": row.question, "urgency": row.urgency, "ordered_by": row.ordered_by,
        }, now=now, ordering_key=f"imaging:{patient_id}")
        public = OrderPublic(row.id, row.accession_number, row.modality, row.body_part, row.question, row.urgency,
                             row.ordered_at, row.ordered_by, rules.OrderStatus.ORDERED, None)
        uow.commit()
        return public


# --- reports ---------------------------------------------------------------------------------------

class _Part:
    def __init__(self, title: str, lines: list[str]) -> None:
        self.title, self.lines = title, lines


def _report_pdf(session: Session, patient_id: uuid.UUID, study: rules.StudySummary, row: ImagingReport,
                zone: ZoneInfo) -> bytes:
    patient = identity.summaries(session, [patient_id])[patient_id]
    performed = study.performed_at.astimezone(zone).strftime("%d/%m/%Y %H:%M") if study.performed_at else "—"
    header = [f"{patient.display_name} · {patient.birth_date.strftime('%d/%m/%Y')} · IPP {patient.ipp}",
              f"{study.description or ', '.join(study.modalities)} · {performed}",
              f"{i18n._('Accession number')} : {study.accession_number or '—'}"]
    signed = row.signed_at.astimezone(zone).strftime("%d/%m/%Y %H:%M")
    return pdf.render(title=i18n._("Imaging report"), header=header,
                      sections=[_Part(i18n._("Findings"), row.findings.splitlines()),
                                _Part(i18n._("Conclusion"), row.conclusion.splitlines())],
                      footer=[f"{row.author} · {signed}"], created_at=row.signed_at)


def is_report_document(session: Session, document_id: uuid.UUID) -> bool:
    """Is this chart document a signed imaging report?"""
    return session.scalar(select(ImagingReport.id).where(ImagingReport.document_id == document_id).limit(1)) is not None


def write_report(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, study_uid: str, *, findings: str,
                 conclusion: str, port: CareRelationshipPort, store: ImageStore,
                 settings: ImagingSettings) -> ReportPublic:
    """A physician (the radiologist) signs a report on a study of the patient; it is linked to
    the order whose accession number the study carries."""
    rules.check_may_report(actor.roles)
    text, closing = rules.check_report(findings, conclusion)
    with uow:
        s, now = uow.session, uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port, action=REPORTED,
                       target=study_uid[:300])
        study = _owned_study(s, store, patient_id, study_uid, settings)
        order = s.execute(select(ImagingOrder).where(
            ImagingOrder.patient_id == patient_id, ImagingOrder.accession_number == study.accession_number)
        ).scalar_one_or_none() if study.accession_number else None
        row = ImagingReport(id=uuid.uuid4(), patient_id=patient_id, study_uid=study.uid,
                            accession_number=study.accession_number[:16] or None, order_id=order.id if order else None,
                            findings=text, conclusion=closing, author=actor.label[:300],
                            author_account=actor.account_id, signed_at=now)
        # The signed report goes to the chart as a PDF: read there, and sent like any chart document.
        title = i18n._("Imaging report") + (f" {study.accession_number}" if study.accession_number else "")
        row.document_id = chart.file_received_document(
            s, patient_id, order.encounter_id if order else chart.current_encounter(s, patient_id), title[:200],
            _report_pdf(s, patient_id, study, row, settings.zone), author=actor.label, now=now)
        s.add(row)
        uow.commit()
        return ReportPublic(row.id, row.study_uid, row.accession_number, row.findings, row.conclusion, row.author,
                            row.signed_at)


# --- FHIR ------------------------------------------------------------------------------------------

def studies_for_fhir(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, port: CareRelationshipPort,
                     store: ImageStore, settings: ImagingSettings, purpose: Purpose
                     ) -> list[tuple[rules.StudySummary, list[rules.SeriesSummary]]]:
    """The patient's studies with their series (FHIR ImagingStudy search), through the door."""
    with uow:
        s = uow.session
        access_patient(s, actor, patient_id, purpose, now=uow.clock.now(), port=port, action=STUDIES_VIEWED)
        ipp = _ipp(s, patient_id)
        studies = [st for st in store.find_studies([ipp]) if rules.study_belongs(st, ipp, authority=settings.authority)]
        uow.commit()
    return [(st, store.list_series(st.uid)) for st in studies]


def study_for_fhir(uow: UnitOfWork, actor: Actor, study_uid: str, port: CareRelationshipPort, store: ImageStore,
                   settings: ImagingSettings, purpose: Purpose
                   ) -> tuple[uuid.UUID, rules.StudySummary, list[rules.SeriesSummary]]:
    """One study by its UID (FHIR ImagingStudy read): the patient its PatientID names, through
    the door; ImagingStudyNotFound when unknown, not a patient of naho, or not to be opened."""
    study = store.get_study(study_uid) if rules.is_uid(study_uid) else None
    with uow:
        s = uow.session
        patient_id = identity.id_by_ipp(s, study.patient_id) if study and study.patient_id.isdigit() else None
        if study is None or patient_id is None or not rules.study_belongs(
                study, _ipp(s, patient_id), authority=settings.authority):
            raise ImagingStudyNotFound("no such study")
        access_patient(s, actor, patient_id, purpose, now=uow.clock.now(), port=port, action=STUDY_VIEWED,
                       target=study_uid[:300])
        uow.commit()
    return patient_id, study, store.list_series(study.uid)
