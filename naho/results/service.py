"""Use cases of laboratory results: file what the laboratory sends, show it to clinicians,
raise, acknowledge and escalate critical values, match the messages nobody could place.

Every use case goes through the one door first (platform.access), then rules, then writes, in
one transaction. The laboratory system acts as an interface actor: the door lets it file data
for an existing patient (purpose administration: it never reads clinical content back).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, sessionmaker

from naho.identity import service as identity
from naho.identity.fhir import ids_by_identifier
from naho.platform import audit
from naho.platform.access import CareRelationshipPort, Purpose, access_patient, decide
from naho.platform.clock import Clock
from naho.platform.errors import Conflict, NotFound
from naho.platform.inbox import REFUSED, InboundMessage
from naho.platform.security.actor import SYSTEM_ACTOR, Actor
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.record import chart, crossref
from naho.record import hl7 as adt
from naho.record import rules as record_rules
from naho.record import service as record
from naho.results import hl7, orders, release, release_rules, rules
from naho.results.models import LabReport, LabResult, ResultAlert
from naho.staff import service as staff

CRITICAL_VALUES_FILE = Path(__file__).parent / "data" / "critical_values.yaml"
#: Audit actions (source:subject:action).
RECEIVED = "patient:lab-result:receive"
VIEWED = "patient:lab-result:view"
MATCHED = "patient:lab-result:match"
ALERT_VIEWED = "patient:lab-alert:view"
ALERT_ACKNOWLEDGED = "patient:lab-alert:acknowledge"
ALERT_ESCALATED = "patient:lab-alert:escalate"
DEAD_LETTERS_VIEWED = "results:dead-letter:view"
#: Who may match a message nobody could place: identity vigilance, or a physician of the patient.
MATCHERS = frozenset({Role.IDENTITY_VIGILANCE, Role.PHYSICIAN})
_PLOT_WIDTH, _PLOT_HEIGHT = chart.PLOT_WIDTH, chart.PLOT_HEIGHT


class ReportOfAnotherPatient(Conflict):
    """The laboratory's report number already names a report of another patient."""


class AlertNotFound(NotFound):
    """No such alert, or not one this person may see."""


class DeadLetterNotFound(NotFound):
    """No such message waiting to be matched."""


@dataclass(frozen=True)
class ResultsSettings:
    """What the laboratory interface needs beyond the session: our IPP authority, the ACK's
    sender, the critical values."""

    authority: str
    application: str
    facility: str
    zone: str
    critical: rules.CriticalRules
    #: When results reach the patient portal; None: never (an instance without a portal).
    release: release_rules.ReleaseRules | None = None
    #: Whether "a result is available" mails can be sent (the portal's mail handler is set).
    notify_patients: bool = False


def load_critical_rules(path: Path = CRITICAL_VALUES_FILE) -> rules.CriticalRules:
    return rules.load_critical_rules(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


# --- filing what the laboratory sends --------------------------------------------------------------

def _follow(session: Session, patient_id: uuid.UUID | None) -> uuid.UUID | None:
    for _hop in range(5):
        survivor = identity.merged_into(session, patient_id) if patient_id else None
        if survivor is None:
            return patient_id
        patient_id = survivor
    return patient_id


def find_patient(session: Session, identifiers: tuple[adt.Identifier, ...], authority: str) -> uuid.UUID | None:
    """The patient PID-3 names: our IPP, else a qualified INS, else a sender's IPP learnt in the
    cross-reference (as ADT taught it); merges are followed. None: nobody naho knows."""
    ours = authority.upper()
    for i in identifiers:
        if i.authority.upper() == ours and i.type_code in ("PI", ""):
            return _follow(session, identity.id_by_ipp(session, i.value))
    for i in identifiers:
        if i.type_code == "INS" and len(found := ids_by_identifier(session, None, i.value)) == 1:
            return found[0]  # an INS names an identity only once qualified (RNIV EXI SI 08)
    for i in identifiers:
        if i.type_code in ("PI", "") and i.authority and (known := crossref.patient_of(session, i.authority, i.value)):
            return _follow(session, known)
    return None


def _stay(session: Session, patient_id: uuid.UUID, visit: adt.Identifier | None, authority: str) -> uuid.UUID | None:
    """The stay PV1-19 names (our NDA or the sender's visit number), else the patient's current one."""
    if visit is not None:
        named: uuid.UUID | None = None
        if visit.authority.upper() == authority.upper():
            found = record.stay_by_nda(session, visit.value)
            named = found[0] if found and found[1] == patient_id else None
        elif visit.authority:
            stay = crossref.encounter_of(session, visit.authority, crossref.VISIT, visit.value)
            named = stay if stay and record.get_encounter(session, stay).patient_id == patient_id else None
        if named is not None:
            return named
    return chart.current_encounter(session, patient_id)


def _chart_entry(loinc: str, unit: str, number: float | None) -> tuple[str, str, float] | None:
    """What a result files in the chart, if the chart keeps it and the value is plausible."""
    entry = rules.chart_value(loinc, unit, number)
    if entry is None:
        return None
    known = next((r for r in record_rules.LAB_RESULTS.values() if r.loinc == entry[0]), None)
    return entry if known is not None and known.low <= entry[2] <= known.high else None


def receive_results(session: Session, actor: Actor, message: hl7.ResultMessage, *, now: datetime,
                    settings: ResultsSettings, port: CareRelationshipPort, patient_id: uuid.UUID | None = None,
                    purpose: Purpose = Purpose.ADMINISTRATION) -> str:
    """File one ORU^R01 in the caller's transaction (the caller commits, then acknowledges):
    reports, every result version, the chart's entries, the PDF, critical value alerts.

    `patient_id` is given when a person matched the message by hand. Raises
    adt.MessageRejected (UnknownPatient) when PID-3 names nobody naho knows.
    """
    header = message.header
    if patient_id is None:
        patient_id = find_patient(session, message.patient_identifiers, settings.authority)
    if patient_id is None:
        domains = sorted({i.authority or "?" for i in message.patient_identifiers})
        raise adt.MessageRejected(f"unknown patient: no patient for identifiers of {', '.join(domains)}",
                                  code=adt.UNKNOWN_KEY_IDENTIFIER, location="PID^1^3", rule="UnknownPatient")
    access_patient(session, actor, patient_id, purpose, now=now, port=port, action=RECEIVED,
                   target=f"{header.sender} {header.control_id}"[:300])
    encounter_id = _stay(session, patient_id, message.visit_number, settings.authority)
    source = f"{header.sender} {header.control_id}"[:300]
    filed = alerts = 0
    received: list[tuple[LabReport, Collection[LabResult], bool]] = []
    for data in message.reports:
        report, known = _report(session, patient_id, encounter_id, header.sender, data, now)
        current = {r.chain: r for r in session.scalars(select(LabResult).where(
            LabResult.report_id == report.id, LabResult.current.is_(True)))} if known else {}
        for obs in data.observations:
            if obs.document is not None:
                try:
                    report.document_id = chart.file_received_document(
                        session, patient_id, encounter_id, obs.document.title, obs.document.content,
                        author=actor.label, now=now)
                except record_rules.DocumentRefused as exc:
                    raise adt.MessageInvalid(f"OBX {obs.position}: {exc}", code=adt.DATA_TYPE_ERROR,
                                             location=f"OBX^{obs.position}^5", rule="DocumentRefused") from exc
                continue
            result = _result(session, report, current, obs, data, now, source, actor.label)
            filed += 1
            alerts += _alert(session, settings.critical, result, encounter_id, now)
        orders.match_results(session, patient_id, data.placer_number, report.id,
                             [r.status for r in current.values()], now)
        received.append((report, list(current.values()), known))
    if settings.release is not None:
        release.refresh_received(session, received, settings.release, now, notify=settings.notify_patients)
    return f"{filed} result(s) of {len(message.reports)} report(s), {alerts} critical"


def _report(session: Session, patient_id: uuid.UUID, encounter_id: uuid.UUID | None, sender: str,
            data: hl7.ReportData, now: datetime) -> tuple[LabReport, bool]:
    """The report these results belong to, and whether it was known before (new: no earlier version)."""
    report = session.execute(select(LabReport).where(LabReport.sender == sender, LabReport.report_key == data.key)
                             ).scalar_one_or_none()
    known = report is not None
    if report is None:
        report = LabReport(id=uuid.uuid4(), patient_id=patient_id, encounter_id=encounter_id, sender=sender,
                           report_key=data.key, service_code=data.service_code, service_label=data.service_label)
        session.add(report)
    elif report.patient_id != patient_id:
        raise ReportOfAnotherPatient(f"report {data.key} of {sender} belongs to another patient",
                                     rule="ReportOfAnotherPatient")
    report.placer_number = data.placer_number or report.placer_number
    report.filler_number = data.filler_number or report.filler_number
    report.status, report.observed_at, report.reported_at = data.status, data.observed_at, data.reported_at
    report.comment = data.comment or report.comment
    report.updated_at = now
    return report, known


def _result(session: Session, report: LabReport, current: dict[str, LabResult], obs: hl7.ObservationData,
            data: hl7.ReportData, now: datetime, source: str, author: str) -> LabResult:
    chain = f"{obs.loinc}:{obs.sub_id}"
    previous = current.get(chain)
    try:
        status = rules.next_status(rules.ResultStatus(previous.status) if previous else None, obs.status)
    except rules.FinalResultNotPreliminary as exc:
        raise adt.MessageInvalid(f"OBX {obs.loinc}: {exc}", code=adt.DATA_TYPE_ERROR,
                                 location=f"OBX^{obs.position}^11", rule="FinalResultNotPreliminary") from exc
    at = obs.observed_at or data.observed_at
    row = LabResult(id=uuid.uuid4(), report_id=report.id, patient_id=report.patient_id, chain=chain, loinc=obs.loinc,
                    label=obs.label, value_type=obs.value_type, number=obs.value.number,
                    comparator=obs.value.comparator, text=obs.value.text, unit=obs.unit, reference=obs.reference.text,
                    reference_low=obs.reference.low, reference_high=obs.reference.high, flags=" ".join(obs.flags),
                    status=str(status), observed_at=at, comment=obs.comment,
                    version=previous.version + 1 if previous else 1, current=True, received_at=now, source=source)
    if previous is not None:
        previous.current = False
        if previous.observation_id is not None:
            chart.retract_observations(session, [previous.observation_id])
    entry = _chart_entry(obs.loinc, obs.unit, obs.value.number) if status.valid else None
    if entry is not None:
        [row.observation_id] = chart.file_lab_observations(session, report.patient_id, report.encounter_id,
                                                           [(entry[0], entry[2], entry[1], at)], author=author,
                                                           now=now)
    session.add(row)
    current[chain] = row  # the same test twice in one report: the second is the next version
    return row


def _alert(session: Session, critical: rules.CriticalRules, result: LabResult, encounter_id: uuid.UUID | None,
           now: datetime) -> int:
    if rules.ResultStatus(result.status).withdrawn:
        return 0
    direction = rules.critical(critical, result.loinc, result.unit, result.number, tuple(result.flags.split()))
    if direction is None:
        return 0
    unit_code = record.get_encounter(session, encounter_id).unit_code if encounter_id else None
    shown = f"{rules.shown_value(result.number, result.text, result.comparator)} {result.unit}"
    session.add(ResultAlert(id=uuid.uuid4(), result_id=result.id, patient_id=result.patient_id,
                            encounter_id=encounter_id, unit_code=unit_code, loinc=result.loinc, label=result.label,
                            shown=shown[:60], direction=direction, raised_at=now))
    return 1


# --- reading -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Trend:
    """A test's trend plot: a point per result, the reference band, in a PLOT_WIDTH × PLOT_HEIGHT box."""

    loinc: str
    label: str
    unit: str
    points: str  # SVG polyline
    dots: list[tuple[float, float, bool]]  # x, y, abnormal
    band: tuple[float, float] | None  # y of the reference band's top and bottom


@dataclass(frozen=True)
class AlertPublic:
    id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    label: str
    shown: str
    direction: str
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    escalated_at: datetime | None
    escalated_to: str | None


@dataclass(frozen=True)
class ReportPublic:
    id: uuid.UUID
    service_label: str
    placer_number: str | None
    filler_number: str | None
    status: str
    observed_at: datetime
    comment: str | None
    document_id: uuid.UUID | None


@dataclass(frozen=True)
class ResultsView:
    patient_id: uuid.UUID
    dates: list[datetime]
    rows: list[rules.Row]
    trends: list[Trend]
    reports: list[ReportPublic]
    alerts: list[AlertPublic]


def is_lab_report_document(session: Session, document_id: uuid.UUID) -> bool:
    """Is this chart document a laboratory's signed report (filed from an ORU's OBX ED)?"""
    return session.scalar(select(LabReport.id).where(LabReport.document_id == document_id).limit(1)) is not None


def _versions(session: Session, patient_id: uuid.UUID,
              reports: Collection[uuid.UUID] | None = None) -> list[rules.Version]:
    query = select(LabResult).where(LabResult.patient_id == patient_id)
    if reports is not None:
        query = query.where(LabResult.report_id.in_(list(reports)))
    rows = session.execute(query.order_by(LabResult.received_at, LabResult.version)).scalars()
    return [rules.Version((r.report_id, r.chain), r.loinc, r.label, r.number, r.text, r.comparator, r.unit,
                          r.reference, tuple(r.flags.split()), r.status, r.observed_at, n)
            for n, r in enumerate(rows)]


def _trend(row: rules.Row, low: float | None, high: float | None) -> Trend | None:
    points = sorted((at, c.number, rules.is_abnormal(c.flags)) for at, c in row.cells.items()
                    if c.number is not None and not rules.ResultStatus(c.status).withdrawn)
    if not points:
        return None
    bottom, top = rules.trend([(at, v) for at, v, _ in points], low, high)
    start, end = points[0][0], points[-1][0]
    span = (end - start).total_seconds() or 1.0

    def y(value: float) -> float:
        return round(_PLOT_HEIGHT - (value - bottom) / (top - bottom) * _PLOT_HEIGHT, 1)

    dots = [(round((at - start).total_seconds() / span * _PLOT_WIDTH, 1) if len(points) > 1 else _PLOT_WIDTH / 2,
             y(v), abnormal) for at, v, abnormal in points]
    band = (y(high if high is not None else top), y(low if low is not None else bottom)) \
        if low is not None or high is not None else None
    return Trend(row.loinc, row.label, row.unit, " ".join(f"{x},{yy}" for x, yy, _ in dots), dots, band)


def _alerts(session: Session, where: ColumnElement[bool], limit: int = 200) -> list[AlertPublic]:
    rows = list(session.scalars(select(ResultAlert).where(where).order_by(ResultAlert.raised_at.desc()).limit(limit)))
    names = identity.summaries(session, {r.patient_id for r in rows})
    return [AlertPublic(r.id, r.patient_id, names[r.patient_id].display_name if r.patient_id in names else "?",
                        r.label, r.shown, r.direction, r.raised_at, r.acknowledged_at, r.acknowledged_by,
                        r.escalated_at, r.escalated_to) for r in rows]


def _open_alerts(session: Session, patient_id: uuid.UUID) -> list[AlertPublic]:
    return _alerts(session, (ResultAlert.patient_id == patient_id) & ResultAlert.acknowledged_at.is_(None))


def read_results(session: Session, patient_id: uuid.UUID,
                 reports: Collection[uuid.UUID] | None = None) -> ResultsView:
    """The patient's results as the page and the API show them (the caller went through the door);
    with `reports`, only those reports' (what the patient's portal shows: the released ones)."""
    dates, rows = rules.cumulative(_versions(session, patient_id, reports))
    current = select(LabResult).where(LabResult.patient_id == patient_id, LabResult.current.is_(True))
    listed = select(LabReport).where(LabReport.patient_id == patient_id)
    if reports is not None:
        current = current.where(LabResult.report_id.in_(list(reports)))
        listed = listed.where(LabReport.id.in_(list(reports)))
    bounds = {r.loinc: (r.reference_low, r.reference_high) for r in session.scalars(
        current.order_by(LabResult.observed_at))}
    trends = [t for row in rows if (t := _trend(row, *bounds.get(row.loinc, (None, None))))]
    shown = [ReportPublic(r.id, r.service_label or r.service_code, r.placer_number, r.filler_number, r.status,
                          r.observed_at, r.comment, r.document_id)
             for r in session.scalars(listed.order_by(LabReport.observed_at.desc()).limit(100))]
    alerts = _open_alerts(session, patient_id) if reports is None else []
    return ResultsView(patient_id, dates, rows, trends, shown, alerts)


def view_results(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, port: CareRelationshipPort) -> ResultsView:
    with uow:
        access_patient(uow.session, actor, patient_id, Purpose.CARE, now=uow.clock.now(), port=port, action=VIEWED)
        view = read_results(uow.session, patient_id)
        uow.commit()
        return view


# --- critical value alerts ---------------------------------------------------------------------

def open_alerts_of(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID,
                   port: CareRelationshipPort) -> list[AlertPublic]:
    """The patient's unacknowledged critical values (the banner of the patient's pages)."""
    with uow:
        access_patient(uow.session, actor, patient_id, Purpose.CARE, now=uow.clock.now(), port=port,
                       action=ALERT_VIEWED)
        alerts = _open_alerts(uow.session, patient_id)
        uow.commit()
        return alerts


def alerts_for(uow: UnitOfWork, actor: Actor, port: CareRelationshipPort) -> list[AlertPublic]:
    """The unacknowledged critical values this person must see: of patients in their care, and
    those escalated to them. Each patient shown is audited."""
    with uow:
        s, now = uow.session, uow.clock.now()
        mine = []
        for alert in _alerts(s, ResultAlert.acknowledged_at.is_(None), limit=500):
            escalated = actor.username in (alert.escalated_to or "").split()
            if escalated or decide(s, actor, alert.patient_id, Purpose.CARE, now, port) is not None:
                audit.record(s, actor, ALERT_VIEWED, at=now, patient_id=alert.patient_id, target=str(alert.id),
                             details={"basis": "escalation" if escalated else "care"})
                mine.append(alert)
        uow.commit()
        return mine


def acknowledge_alert(uow: UnitOfWork, actor: Actor, alert_id: uuid.UUID, port: CareRelationshipPort) -> AlertPublic:
    """A physician of the patient (or the senior physician it escalated to) saw the critical value."""
    with uow:
        s, now = uow.session, uow.clock.now()
        row = s.get(ResultAlert, alert_id)
        if row is None or not actor.has_any(Role.PHYSICIAN):
            raise AlertNotFound("no such alert")
        if actor.username not in (row.escalated_to or "").split():
            access_patient(s, actor, row.patient_id, Purpose.CARE, now=now, port=port, action=ALERT_ACKNOWLEDGED,
                           target=str(alert_id))
        else:
            audit.record(s, actor, ALERT_ACKNOWLEDGED, at=now, patient_id=row.patient_id, target=str(alert_id),
                         details={"basis": "escalation"})
        if row.acknowledged_at is None:
            row.acknowledged_at, row.acknowledged_by = now, actor.label
        [public] = _alerts(s, ResultAlert.id == alert_id)
        uow.commit()
        return public


def _seniors(session: Session, critical: rules.CriticalRules, unit_code: str | None) -> list[str]:
    if unit_code is None:
        return []
    if unit_code in critical.senior_physicians:
        return list(critical.senior_physicians[unit_code])
    members, _total = staff.list_staff(session, unit_code=unit_code, limit=50)
    return [m.username for m in members if m.profession == str(Role.PHYSICIAN) and m.active]


def escalate_overdue(uow: UnitOfWork, critical: rules.CriticalRules) -> int:
    """Send each critical value nobody acknowledged within `escalate_after_minutes` to the senior
    physician(s) of the patient's unit, once; the worker runs it every minute. Returns how many."""
    with uow:
        s, now = uow.session, uow.clock.now()
        due = now - timedelta(minutes=critical.escalate_after_minutes)
        rows = list(s.scalars(select(ResultAlert).where(
            ResultAlert.acknowledged_at.is_(None), ResultAlert.escalated_at.is_(None), ResultAlert.raised_at <= due)
            .order_by(ResultAlert.raised_at).limit(500)))
        for row in rows:
            if not rules.escalation_due(row.raised_at, False, False, now, critical.escalate_after_minutes):
                continue
            row.escalated_at = now
            row.escalated_to = " ".join(_seniors(s, critical, row.unit_code))[:300] or None
            audit.record(s, SYSTEM_ACTOR, ALERT_ESCALATED, at=now, patient_id=row.patient_id, target=str(row.id),
                         details={"to": row.escalated_to or "", "unit": row.unit_code or ""})
        uow.commit()
        return len(rows)


# --- dead letters: messages nobody could place ---------------------------------------------------

@dataclass(frozen=True)
class DeadLetter:
    id: uuid.UUID
    sender: str
    control_id: str
    received_at: datetime
    error: str
    patient: str  # PID-3 and PID-5, PID-7 as sent, for the person who matches it


def _pid_summary(raw: str) -> str:
    for line in raw.replace("\n", "\r").split("\r"):
        if line.startswith("PID"):
            fields = line.split(line[3:4]) if len(line) > 3 else []
            picked = [fields[i] for i in (3, 5, 7) if i < len(fields)]
            return " · ".join(p.replace("^", " ").strip() for p in picked if p)[:300]
    return ""


def dead_letters(uow: UnitOfWork, actor: Actor, *, limit: int = 200) -> list[DeadLetter]:
    """Refused laboratory messages not yet resolved, oldest first (audited: they name patients)."""
    with uow:
        s, now = uow.session, uow.clock.now()
        rows = list(s.scalars(select(InboundMessage).where(
            InboundMessage.channel == hl7.CHANNEL, InboundMessage.status == REFUSED,
            InboundMessage.resolved_at.is_(None)).order_by(InboundMessage.received_at).limit(limit)))
        audit.record(s, actor, DEAD_LETTERS_VIEWED, at=now, details={"count": len(rows)})
        uow.commit()
        return [DeadLetter(r.id, r.sender, r.control_id, r.received_at, r.error or "", _pid_summary(r.raw))
                for r in rows]


def match_dead_letter(uow: UnitOfWork, actor: Actor, message_id: uuid.UUID, ipp: str, settings: ResultsSettings,
                      port: CareRelationshipPort) -> uuid.UUID:
    """A person says whose results a refused message carries: it is applied to that patient
    (through the door, audited), the sender's IPP is learnt for the next messages, and the
    message leaves the dead letters with an AA as its stored acknowledgement."""
    with uow:
        s, now = uow.session, uow.clock.now()
        row = s.get(InboundMessage, message_id)
        if row is None or row.channel != hl7.CHANNEL or row.status != REFUSED or row.resolved_at is not None:
            raise DeadLetterNotFound("no such message waiting to be matched")
        patient_id = _follow(s, identity.id_by_ipp(s, ipp)) if ipp.strip().isdigit() else None
        if patient_id is None:
            raise NotFound("no patient has this IPP", rule="UnknownIpp")
        purpose = Purpose.IDENTITY if actor.has_any(Role.IDENTITY_VIGILANCE) else Purpose.CARE
        access_patient(s, actor, patient_id, purpose, now=now, port=port, action=MATCHED, target=str(message_id))
        message = hl7.parse_oru(row.raw, zone=ZoneInfo(settings.zone))
        receive_results(s, actor, message, now=now, settings=settings, port=port, patient_id=patient_id,
                        purpose=purpose)
        for i in message.patient_identifiers:
            if (i.type_code in ("PI", "") and i.authority and i.authority.upper() != settings.authority.upper()
                    and crossref.patient_of(s, i.authority, i.value) is None):
                crossref.remember_patient(s, i.authority, i.value, patient_id, now=now,
                                          source=f"{row.sender} {row.control_id} matched by {actor.username}"[:300])
        row.resolved_at, row.resolved_by = now, actor.label
        row.ack = adt.build_ack(message.header, None, control_id=uuid.uuid4().hex[:20], at=now,
                                zone=ZoneInfo(settings.zone), application=settings.application,
                                facility=settings.facility)
        uow.commit()
        return patient_id


# --- wiring --------------------------------------------------------------------------------------

def make_receiver(session_factory: sessionmaker[Session], clock: Clock, settings: ResultsSettings,
                  port: CareRelationshipPort) -> hl7.ResultsReceiver:
    """The ORU receiver the MLLP listener hands laboratory messages to (app.py wires it)."""
    def apply(session: Session, actor: Actor, message: hl7.ResultMessage) -> str:
        return receive_results(session, actor, message, now=clock.now(), settings=settings, port=port)
    return hl7.ResultsReceiver(session_factory, clock, apply, zone=settings.zone, application=settings.application,
                               facility=settings.facility)
