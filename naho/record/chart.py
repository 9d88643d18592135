"""Use cases of the clinical chart: allergies, problems (ICD-10), vital signs (LOINC), notes.

Same shape as record.service: the one door first (purpose care), rules, write, audit. The chart
page reads only what it shows (latest notes, the last days of vitals), so a patient with ten
years of history opens as fast as a new one.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from naho.platform.access import CareRelationshipPort, Purpose, access_patient
from naho.platform.security.actor import Actor
from naho.platform.uow import UnitOfWork
from naho.record import rules
from naho.record.errors import EncounterNotFound, MovementRefused
from naho.record.models import Allergy, ClinicalDocument, ClinicalNote, Condition, Encounter, Observation
from naho.record.schemas import (
    AllergyCreate,
    AllergyPublic,
    ChartView,
    ConditionCreate,
    ConditionPublic,
    DocumentPublic,
    NoteCreate,
    NotePublic,
    ObservationPublic,
    VitalsCreate,
    VitalSeries,
)

#: How far back the chart plots vital signs.
VITALS_WINDOW = timedelta(days=7)
NOTES_SHOWN = 20
PLOT_WIDTH, PLOT_HEIGHT = 240, 60


class ChartEntryRefused(MovementRefused):
    """A chart entry breaks a rule (implausible value, malformed code)."""

    title = "Chart entry refused"


@dataclass(frozen=True)
class VitalsRecorded:
    patient_id: uuid.UUID
    observation_ids: tuple[uuid.UUID, ...]


def polyline(values: list[tuple[datetime, float]], start: datetime, end: datetime, low: float, high: float) -> str:
    """SVG polyline points of (time, value) pairs in a PLOT_WIDTH × PLOT_HEIGHT box."""
    if len(values) < 2 or end <= start or high <= low:
        return ""
    span = (end - start).total_seconds()
    points = []
    for at, value in values:
        x = (at - start).total_seconds() / span * PLOT_WIDTH
        y = PLOT_HEIGHT - (min(max(value, low), high) - low) / (high - low) * PLOT_HEIGHT
        points.append(f"{x:.1f},{y:.1f}")
    return " ".join(points)


def _current_encounter(session: Session, patient_id: uuid.UUID) -> uuid.UUID | None:
    return session.execute(select(Encounter.id).where(
        Encounter.patient_id == patient_id,
        Encounter.status.in_([str(rules.EncounterStatus.IN_PROGRESS), str(rules.EncounterStatus.ON_LEAVE)]),
    ).limit(1)).scalar_one_or_none()


def _obs(row: Observation) -> ObservationPublic:
    sign = rules.VITAL_BY_LOINC.get(row.loinc)
    return ObservationPublic(id=row.id, loinc=row.loinc, key=sign.key if sign else row.loinc, value=row.value,
                             unit=row.unit, effective_at=row.effective_at, recorded_by=row.recorded_by)


def current_encounter(session: Session, patient_id: uuid.UUID) -> uuid.UUID | None:
    """The patient's stay in progress (or on leave), if any: other domains file their entries in it."""
    return _current_encounter(session, patient_id)


def latest_measure(session: Session, patient_id: uuid.UUID, key: str) -> float | None:
    """The latest valid value of a vital sign (`weight`, `height`...), or None (the caller went
    through the door). Medication orders read weight and height here."""
    sign = rules.VITAL_SIGNS[key]
    return session.execute(select(Observation.value).where(
        Observation.patient_id == patient_id, Observation.loinc == sign.loinc, Observation.status == "final")
        .order_by(Observation.effective_at.desc()).limit(1)).scalar_one_or_none()


def latest_lab_result(session: Session, patient_id: uuid.UUID, key: str) -> tuple[float, datetime] | None:
    """The latest valid laboratory result (`creatinine`) and when it was measured, or None (the
    caller went through the door). Medication orders compute the creatinine clearance from it."""
    result = rules.LAB_RESULTS[key]
    row = session.execute(select(Observation.value, Observation.effective_at).where(
        Observation.patient_id == patient_id, Observation.loinc == result.loinc, Observation.status == "final")
        .order_by(Observation.effective_at.desc()).limit(1)).first()
    return (row[0], row[1]) if row else None


def record_lab_result(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, key: str, value: float,
                      effective_at: datetime | None, port: CareRelationshipPort) -> ObservationPublic:
    """One laboratory result typed from the lab's report (`creatinine` in µmol/L); refused when
    implausible or dated in the future."""
    def write(s: Session, now: datetime) -> ObservationPublic:
        if key not in rules.LAB_RESULTS:
            raise rules.UnknownVitalSign(f"unknown laboratory result {key!r}")
        result = rules.check_vital(key, value)
        at = effective_at or now
        if at > now + rules.FUTURE_TOLERANCE:
            raise rules.MovementInTheFuture("a result cannot be dated in the future")
        row = Observation(patient_id=patient_id, encounter_id=_current_encounter(s, patient_id), loinc=result.loinc,
                          value=value, unit=result.unit, effective_at=at, recorded_at=now, recorded_by=actor.label)
        s.add(row)
        s.flush()
        return _obs(row)
    return _write(uow, actor, patient_id, port, "patient:lab:create", write)  # type: ignore[return-value]


def active_allergy_codes(session: Session, patient_id: uuid.UUID) -> frozenset[str]:
    """The substance codes of the patient's active allergies (`ATC:J01C`, `FOOD:peanut`)."""
    return frozenset(session.scalars(select(Allergy.substance_code).where(
        Allergy.patient_id == patient_id, Allergy.status == "active")))


def read_chart(session: Session, patient_id: uuid.UUID, now: datetime) -> ChartView:
    """What the chart page shows (the caller went through the door)."""
    allergies = [AllergyPublic(id=a.id, substance_code=a.substance_code, substance_label=a.substance_label,
                               kind=a.kind, criticality=a.criticality, reaction=a.reaction, status=a.status,
                               recorded_at=a.recorded_at, recorded_by=a.recorded_by)
                 for a in session.scalars(select(Allergy).where(Allergy.patient_id == patient_id,
                                                               Allergy.status == "active")
                                          .order_by(Allergy.recorded_at))]
    conditions = [ConditionPublic(id=c.id, icd10=c.icd10, label=c.label, onset=c.onset, status=c.status,
                                  recorded_at=c.recorded_at, recorded_by=c.recorded_by)
                  for c in session.scalars(select(Condition).where(Condition.patient_id == patient_id,
                                                                   Condition.status != "entered_in_error")
                                           .order_by(Condition.recorded_at.desc()))]
    since = now - VITALS_WINDOW
    series = []
    for sign in rules.VITAL_SIGNS.values():
        recent = list(session.scalars(select(Observation).where(
            Observation.patient_id == patient_id, Observation.loinc == sign.loinc, Observation.status == "final",
            Observation.effective_at >= since).order_by(Observation.effective_at)))
        latest = recent[-1] if recent else session.scalars(select(Observation).where(
            Observation.patient_id == patient_id, Observation.loinc == sign.loinc, Observation.status == "final")
            .order_by(Observation.effective_at.desc()).limit(1)).first()
        values = [(o.effective_at, o.value) for o in recent]
        low = min([v for _, v in values], default=sign.low)
        high = max([v for _, v in values], default=sign.high)
        margin = max((high - low) * 0.1, 1.0)
        series.append(VitalSeries(key=sign.key, unit=sign.unit, latest=_obs(latest) if latest else None,
                                  points=polyline(values, since, now, low - margin, high + margin),
                                  low=low, high=high))
    notes_query = select(ClinicalNote).where(ClinicalNote.patient_id == patient_id)
    notes = [NotePublic(id=n.id, kind=n.kind, text=n.text, written_at=n.written_at, author=n.author)
             for n in session.scalars(notes_query.order_by(ClinicalNote.written_at.desc()).limit(NOTES_SHOWN))]
    total = session.execute(select(func.count()).select_from(notes_query.subquery())).scalar_one()
    return ChartView(patient_id=patient_id, allergies=allergies, conditions=conditions, vitals=series,
                     notes=notes, notes_total=total)


def open_chart(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, port: CareRelationshipPort) -> ChartView:
    with uow:
        now = uow.clock.now()
        access_patient(uow.session, actor, patient_id, Purpose.CARE, now=now, port=port,
                       action="patient:chart:view")
        view = read_chart(uow.session, patient_id, now)
        uow.commit()
        return view


def _write(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, port: CareRelationshipPort, action: str,
           write) -> object:  # type: ignore[no-untyped-def]
    with uow:
        s = uow.session
        now = uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port, action=action)
        try:
            result = write(s, now)
        except rules.StayRuleError as exc:
            raise ChartEntryRefused(str(exc), rule=type(exc).__name__) from exc
        uow.commit()
        return result


def add_allergy(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, data: AllergyCreate,
                port: CareRelationshipPort) -> uuid.UUID:
    def write(s: Session, now: datetime) -> uuid.UUID:
        row = Allergy(id=uuid.uuid4(), patient_id=patient_id, substance_code=rules.check_substance(data.substance_code),
                      substance_label=data.substance_label.strip(), kind=data.kind, criticality=data.criticality,
                      reaction=data.reaction, status="active", recorded_at=now, recorded_by=actor.label)
        s.add(row)
        return row.id
    return _write(uow, actor, patient_id, port, "patient:allergy:create", write)  # type: ignore[return-value]


def add_condition(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, data: ConditionCreate,
                  port: CareRelationshipPort) -> uuid.UUID:
    def write(s: Session, now: datetime) -> uuid.UUID:
        row = Condition(id=uuid.uuid4(), patient_id=patient_id, encounter_id=_current_encounter(s, patient_id),
                        icd10=rules.check_icd10(data.icd10), label=data.label.strip(), status="active",
                        onset=data.onset, recorded_at=now, recorded_by=actor.label)
        s.add(row)
        return row.id
    return _write(uow, actor, patient_id, port, "patient:condition:create", write)  # type: ignore[return-value]


def record_vitals(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, data: VitalsCreate,
                  port: CareRelationshipPort) -> list[ObservationPublic]:
    """One round of vital signs, all or nothing: one implausible value refuses the round."""
    measures = {k: v for k, v in data.model_dump(exclude={"effective_at"}).items() if v is not None}

    def write(s: Session, now: datetime) -> list[ObservationPublic]:
        if not measures:
            raise rules.UnknownVitalSign("no measure given")
        at = data.effective_at or now
        if at > now + rules.FUTURE_TOLERANCE:
            raise rules.MovementInTheFuture("a measure cannot be dated in the future")
        encounter = _current_encounter(s, patient_id)
        rows = []
        for key, value in measures.items():
            sign = rules.check_vital(key, float(value))
            rows.append(Observation(patient_id=patient_id, encounter_id=encounter, loinc=sign.loinc,
                                    value=float(value), unit=sign.unit, effective_at=at, recorded_at=now,
                                    recorded_by=actor.label))
        s.add_all(rows)
        s.flush()
        uow.emit(VitalsRecorded(patient_id, tuple(r.id for r in rows)))
        return [_obs(r) for r in rows]

    return _write(uow, actor, patient_id, port, "patient:vitals:create", write)  # type: ignore[return-value]


def add_note(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, data: NoteCreate,
             port: CareRelationshipPort) -> None:
    def write(s: Session, now: datetime) -> None:
        file_note(s, patient_id, _current_encounter(s, patient_id), data, author=actor.label, now=now)
    _write(uow, actor, patient_id, port, "patient:note:create", write)


def file_note(session: Session, patient_id: uuid.UUID, encounter_id: uuid.UUID | None, data: NoteCreate, *,
              author: str, now: datetime) -> uuid.UUID:
    """File a note in the caller's transaction (a teleconsultation's note with its session's end:
    no stay, `encounter_id` None); the caller went through the door and audits."""
    row = ClinicalNote(id=uuid.uuid4(), patient_id=patient_id, encounter_id=encounter_id, kind=data.kind,
                       text=data.text.strip(), written_at=now, author=author)
    session.add(row)
    return row.id


def import_history(session: Session, patient_id: uuid.UUID, *, observations: list[tuple[str, float, datetime]],
                   notes: list[tuple[str, str, datetime]], author: str, now: datetime,
                   conditions: Sequence[tuple[str, str, datetime | None]] = (),
                   allergies: Sequence[tuple[str, str, str, str, str | None]] = (),
                   encounter_id: uuid.UUID | None = None) -> None:
    """Bulk-load past chart data (synthetic data, migration); callers audit the batch.

    Conditions are (ICD-10, label, onset), allergies (substance code, label, kind, criticality,
    reaction): their codes pass the same rules as a typed entry (BadCode otherwise). Vital signs
    and notes belong to `encounter_id` when given.
    """
    session.add_all(Observation(patient_id=patient_id, encounter_id=encounter_id,
                                loinc=rules.VITAL_SIGNS[key].loinc, value=value, unit=rules.VITAL_SIGNS[key].unit,
                                effective_at=at, recorded_at=now, recorded_by=author)
                    for key, value, at in observations)
    session.add_all(ClinicalNote(patient_id=patient_id, encounter_id=encounter_id, kind=kind, text=text,
                                 written_at=at, author=author) for kind, text, at in notes)
    session.add_all(Condition(patient_id=patient_id, encounter_id=None, icd10=rules.check_icd10(code), label=label,
                              status="active", onset=onset, recorded_at=now, recorded_by=author)
                    for code, label, onset in conditions)
    session.add_all(Allergy(patient_id=patient_id, substance_code=rules.check_substance(code), substance_label=label,
                            kind=kind, criticality=criticality, reaction=reaction, status="active", recorded_at=now,
                            recorded_by=author) for code, label, kind, criticality, reaction in allergies)




def add_document(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, title: str, content: bytes,
                 port: CareRelationshipPort) -> uuid.UUID:
    """File a PDF or text document in the chart; its type is judged on its bytes."""
    def write(s: Session, now: datetime) -> uuid.UUID:
        media_type = rules.document_media_type(content)
        row = ClinicalDocument(patient_id=patient_id, encounter_id=_current_encounter(s, patient_id),
                               title=title.strip()[:200] or "Document", media_type=media_type, size=len(content),
                               sha256=hashlib.sha256(content).hexdigest(), content=content, added_at=now,
                               added_by=actor.label)
        s.add(row)
        s.flush()
        return row.id
    return _write(uow, actor, patient_id, port, "patient:document:create", write)  # type: ignore[return-value]


def documents(session: Session, patient_id: uuid.UUID) -> list[DocumentPublic]:
    rows = session.execute(select(ClinicalDocument.id, ClinicalDocument.title, ClinicalDocument.media_type,
                                  ClinicalDocument.size, ClinicalDocument.added_at, ClinicalDocument.added_by)
                           .where(ClinicalDocument.patient_id == patient_id)
                           .order_by(ClinicalDocument.added_at.desc())).all()
    return [DocumentPublic(id=i, title=t, media_type=m, size=n, added_at=a, added_by=b) for i, t, m, n, a, b in rows]


def open_document(uow: UnitOfWork, actor: Actor, document_id: uuid.UUID,
                  port: CareRelationshipPort) -> tuple[DocumentPublic, bytes]:
    """A document's bytes, through the door of its patient (audited; 404 when not allowed)."""
    with uow:
        s = uow.session
        row = s.get(ClinicalDocument, document_id)
        if row is None:
            raise EncounterNotFound("no such document")
        access_patient(s, actor, row.patient_id, Purpose.CARE, now=uow.clock.now(), port=port,
                       action="patient:document:view", target=str(document_id))
        meta = DocumentPublic(id=row.id, title=row.title, media_type=row.media_type, size=row.size,
                              added_at=row.added_at, added_by=row.added_by)
        content = row.content
        uow.commit()
        return meta, content


def import_entries(session: Session, *, author: str, now: datetime,
                   allergies: Sequence[tuple[uuid.UUID, AllergyCreate]] = (),
                   conditions: Sequence[tuple[uuid.UUID, ConditionCreate, str]] = (),
                   vitals: Sequence[tuple[uuid.UUID, str, float, datetime]] = ()) -> dict[str, list[uuid.UUID]]:
    """Bulk-load chart entries of many patients (a legacy record through a FHIR transaction
    bundle), one multi-row insert per table, in the caller's transaction; the same code and
    plausibility rules as a typed entry (ChartEntryRefused otherwise). Conditions carry their
    status (active | resolved); vital signs are (patient, LOINC, value, when). Not a user
    action: callers decide access and audit the batch. Returns the new rows' ids per table.
    """
    try:
        allergy_rows = [{"id": uuid.uuid4(), "patient_id": patient_id,
                         "substance_code": rules.check_substance(a.substance_code),
                         "substance_label": a.substance_label.strip(), "kind": a.kind, "criticality": a.criticality,
                         "reaction": a.reaction, "status": "active", "recorded_at": now, "recorded_by": author}
                        for patient_id, a in allergies]
        condition_rows = [{"id": uuid.uuid4(), "patient_id": patient_id, "encounter_id": None,
                           "icd10": rules.check_icd10(c.icd10), "label": c.label.strip(), "status": status,
                           "onset": c.onset, "recorded_at": now, "recorded_by": author}
                          for patient_id, c, status in conditions]
        observation_rows = []
        for patient_id, loinc, value, at in vitals:
            known = rules.VITAL_BY_LOINC.get(loinc)
            if known is None:
                raise rules.UnknownVitalSign(f"LOINC {loinc} is not a vital sign naho records")
            sign = rules.check_vital(known.key, value)
            observation_rows.append({"id": uuid.uuid4(), "patient_id": patient_id, "encounter_id": None,
                                     "loinc": sign.loinc, "value": value, "unit": sign.unit, "effective_at": at,
                                     "recorded_at": now, "recorded_by": author, "status": "final"})
    except rules.StayRuleError as exc:
        raise ChartEntryRefused(str(exc), rule=type(exc).__name__) from exc
    for table, rows in ((Allergy, allergy_rows), (Condition, condition_rows), (Observation, observation_rows)):
        if rows:
            session.execute(insert(table.__table__), rows)  # Core: the ORM bulk path costs as much again
    return {"allergy": [r["id"] for r in allergy_rows], "condition": [r["id"] for r in condition_rows],
            "observation": [r["id"] for r in observation_rows]}


def file_lab_observations(session: Session, patient_id: uuid.UUID, encounter_id: uuid.UUID | None,
                          values: Sequence[tuple[str, float, str, datetime]], *, author: str,
                          now: datetime) -> list[uuid.UUID]:
    """File laboratory results received from the laboratory system (LOINC, value, UCUM unit,
    when) so that `latest_lab_result` reads them; in the caller's transaction (the results
    domain went through the door, checked plausibility with rules.check_vital, and audits)."""
    ids: list[uuid.UUID] = []
    for loinc, value, unit, at in values:
        row = Observation(id=uuid.uuid4(), patient_id=patient_id, encounter_id=encounter_id, loinc=loinc,
                          value=value, unit=unit, effective_at=at, recorded_at=now, recorded_by=author,
                          status="final")
        session.add(row)
        ids.append(row.id)
    return ids


def retract_observations(session: Session, observation_ids: Sequence[uuid.UUID]) -> None:
    """Observations corrected or withdrawn by their source: kept, no longer read as valid."""
    for row in session.scalars(select(Observation).where(Observation.id.in_(list(observation_ids)))):
        row.status = "entered_in_error"


def file_received_document(session: Session, patient_id: uuid.UUID, encounter_id: uuid.UUID | None, title: str,
                           content: bytes, *, author: str, now: datetime) -> uuid.UUID:
    """File a document another system sent (a laboratory's signed PDF report), in the caller's
    transaction; the same type rules as a document added by hand (rules.DocumentRefused)."""
    row = ClinicalDocument(id=uuid.uuid4(), patient_id=patient_id, encounter_id=encounter_id,
                           title=title.strip()[:200] or "Document", media_type=rules.document_media_type(content),
                           size=len(content), sha256=hashlib.sha256(content).hexdigest(), content=content,
                           added_at=now, added_by=author)
    session.add(row)
    return row.id
