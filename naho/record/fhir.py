"""Stays and the clinical chart as FHIR R4 resources (FR Core conventions): Encounter, Condition,
AllergyIntolerance, Observation, DocumentReference; and the read-only lookups the FHIR facade
needs. Access to a patient's data is decided by the caller, through the one door.

Class (v3 ActCode, the R4 binding of Encounter.class): emergency → EMER, full hospitalisation →
IMP, outpatient acts and consultations → AMB. Partial hospitalisation (day or night) and sessions
(dialysis, chemotherapy, radiotherapy) are both admissions for a planned stay of less than a day:
SS, "short stay", the code FR Core's encounter class value set offers for them; `type` keeps
naho's own class so the two stay distinct.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.observation import Observation
from sqlalchemy import Select, String, false, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, defer

from naho.platform.i18n import PARIS
from naho.record.models import Allergy as AllergyRow
from naho.record.models import ClinicalDocument as DocumentRow
from naho.record.models import ClinicalNote as NoteRow
from naho.record.models import Condition as ConditionRow
from naho.record.models import Observation as ObservationRow
from naho.record.rules import VITAL_BY_LOINC, BadCode, EncounterClass, EncounterStatus, check_icd10
from naho.record.schemas import EncounterPublic
from naho.sites import fhir as sites_fhir

#: The stay number (NDA), unique across the group.
NDA_SYSTEM = "https://naho.ght-artois.fr/fhir/sid/nda"
#: naho's own encounter classes (record.rules.EncounterClass), carried in Encounter.type.
CLASS_SYSTEM = "https://naho.ght-artois.fr/fhir/CodeSystem/encounter-class"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
ESTIMATED_DISCHARGE = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-estimated-discharge-date"

STATUS: dict[EncounterStatus, str] = {
    EncounterStatus.PLANNED: "planned",
    EncounterStatus.IN_PROGRESS: "in-progress",
    EncounterStatus.ON_LEAVE: "onleave",
    EncounterStatus.FINISHED: "finished",
    EncounterStatus.CANCELLED: "cancelled",
}
CLASS: dict[EncounterClass, tuple[str, str]] = {
    EncounterClass.EMERGENCY: ("EMER", "emergency"),
    EncounterClass.INPATIENT: ("IMP", "inpatient encounter"),
    EncounterClass.DAY_HOSPITAL: ("SS", "short stay"),
    EncounterClass.SESSION: ("SS", "short stay"),
    EncounterClass.OUTPATIENT: ("AMB", "ambulatory"),
}
_CLASS_DISPLAY = {
    EncounterClass.EMERGENCY: "Passage aux urgences",
    EncounterClass.INPATIENT: "Hospitalisation complète",
    EncounterClass.DAY_HOSPITAL: "Hospitalisation partielle",
    EncounterClass.SESSION: "Séances",
    EncounterClass.OUTPATIENT: "Actes et consultations externes",
}
#: Encounter.location.status while the stay is in this status; a leave keeps the bed (record.rules).
_LOCATION_STATUS: dict[EncounterStatus, str | None] = {
    EncounterStatus.PLANNED: "planned",
    EncounterStatus.IN_PROGRESS: "active",
    EncounterStatus.ON_LEAVE: "reserved",
    EncounterStatus.FINISHED: "completed",
    EncounterStatus.CANCELLED: None,
}


def statuses_from_fhir(codes: Sequence[str]) -> set[str] | None:
    """naho statuses for FHIR Encounter.status codes; None when one is not a FHIR status of ours."""
    by_code = {code: str(status) for status, code in STATUS.items()}
    if any(code not in by_code for code in codes):
        return None
    return {by_code[code] for code in codes}


def _location(reference: Any, physical: tuple[str, str], status: str | None) -> dict[str, Any]:
    code, display = physical
    return {"location": reference, "status": status,
            "physicalType": {"coding": [{"system": PHYSICAL_TYPE, "code": code, "display": display}]}}


def encounter_resource(e: EncounterPublic, refs: sites_fhir.SiteReferences) -> Encounter:
    status = EncounterStatus(e.status)
    kind = EncounterClass(e.encounter_class)
    code, display = CLASS[kind]
    where = _LOCATION_STATUS[status]
    locations = []
    if e.unit_code and e.unit_code in refs.units:
        locations.append(_location(refs.units[e.unit_code], ("wa", "Ward"), where))
    if e.bed_code and e.bed_code in refs.beds:
        locations.append(_location(refs.beds[e.bed_code], ("bd", "Bed"), where))
    extension = [{"url": ESTIMATED_DISCHARGE, "valueDate": e.expected_end_at.astimezone(PARIS).date()}] \
        if e.expected_end_at else None
    return Encounter(
        id=str(e.id), status=STATUS[status], extension=extension,
        identifier=[{"use": "official", "system": NDA_SYSTEM, "value": e.nda,
                     "type": {"coding": [{"system": V2_0203, "code": "VN", "display": "Visit number"}]}}],
        class_fhir={"system": V3_ACT_CODE, "code": code, "display": display},
        type=[{"coding": [{"system": CLASS_SYSTEM, "code": str(kind), "display": _CLASS_DISPLAY[kind]}]}],
        subject={"reference": f"Patient/{e.patient_id}"},
        period={"start": e.started_at, "end": e.ended_at if status is EncounterStatus.FINISHED else None},
        location=locations or None,
        serviceProvider=refs.establishments.get(e.establishment_code),
    )


def encounter_resources(session: Session, encounters: Sequence[EncounterPublic]) -> list[Encounter]:
    """Encounters with their Organization and Location references, looked up in one go."""
    refs = sites_fhir.references(
        session, establishments=sorted({e.establishment_code for e in encounters}),
        units=sorted({e.unit_code for e in encounters if e.unit_code}),
        beds=sorted({e.bed_code for e in encounters if e.bed_code}),
    )
    return [encounter_resource(e, refs) for e in encounters]


# --- the clinical chart: Condition, AllergyIntolerance, Observation, DocumentReference ---------------------
#
# Codes go out under their official systems: ICD-10 (CIM-10) as HL7's `icd-10`, vital signs in
# LOINC with UCUM units, drug allergies by ATC class or substance. Entries entered in error keep
# that status (a client that stored them must learn they were wrong) and are left out of a search
# unless it asks for that status. Documents and clinical notes are both DocumentReferences, as
# FR Core and IHE MHD carry any clinical text: a document's bytes are read as Binary, a note's
# text travels inline (text/plain) with its LOINC type (progress note, nurse note).

ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
ATC_SYSTEM = "http://www.whocc.no/atc"
#: Non-drug allergens (FOOD:peanut, ENV:latex, OTHER:…): naho's own codes, written as stored.
SUBSTANCE_SYSTEM = "https://naho.ght-artois.fr/fhir/CodeSystem/substance"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

#: The FHIR value sets of the searchable statuses and categories: a value outside them is a
#: client's mistake (400); a value inside that naho never records simply finds nothing.
CONDITION_CLINICAL_CODES = frozenset({"active", "recurrence", "relapse", "inactive", "remission", "resolved"})
CONDITION_VERIFICATION_CODES = frozenset({"unconfirmed", "provisional", "differential", "confirmed", "refuted",
                                          "entered-in-error"})
CONDITION_CATEGORIES = frozenset({"problem-list-item", "encounter-diagnosis"})
ALLERGY_CLINICAL_CODES = frozenset({"active", "inactive", "resolved"})
ALLERGY_VERIFICATION_CODES = frozenset({"unconfirmed", "confirmed", "refuted", "entered-in-error"})
ALLERGY_CATEGORIES = frozenset({"food", "medication", "environment", "biologic"})
OBSERVATION_STATUSES = frozenset({"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                                  "entered-in-error", "unknown"})
OBSERVATION_CATEGORIES = frozenset({"social-history", "vital-signs", "imaging", "laboratory", "procedure",
                                    "survey", "exam", "therapy", "activity"})
DOCUMENT_STATUSES = frozenset({"current", "superseded", "entered-in-error"})

ENTERED_IN_ERROR = "entered_in_error"
#: LOINC display names of the vital signs naho records (record.rules.VITAL_SIGNS).
LOINC_DISPLAY = {
    "8867-4": "Heart rate", "9279-1": "Respiratory rate",
    "59408-5": "Oxygen saturation in Arterial blood by Pulse oximetry", "8310-5": "Body temperature",
    "8480-6": "Systolic blood pressure", "8462-4": "Diastolic blood pressure", "29463-7": "Body weight",
    "8302-2": "Body height",
}
#: Substance namespace → AllergyIntolerance.category.
_ALLERGY_CATEGORY = {"ATC": "medication", "FOOD": "food", "ENV": "environment"}
_CRITICALITY = {"low": "low", "high": "high", "unknown": "unable-to-assess"}
#: Note kind (record.models.ClinicalNote) → LOINC document type of a DocumentReference.
NOTE_TYPES = {"medical": ("11506-3", "Progress note"), "nursing": ("34746-8", "Nurse Note"),
              "other": ("34109-9", "Note")}
TEXT_PLAIN = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class ChartCriteria:
    """A search of one kind of chart entry of one patient, in FHIR's own values (parsed by the
    facade): codes are (system or None, code) and any of them matches; each set is an OR."""

    codes: tuple[tuple[str | None, str], ...] | None = None
    clinical_status: frozenset[str] | None = None
    verification_status: frozenset[str] | None = None
    status: frozenset[str] | None = None
    categories: frozenset[str] | None = None
    #: [since, before): the date of the entry (Observation.effective, DocumentReference.date).
    since: datetime | None = None
    before: datetime | None = None
    #: DocumentReference.type (LOINC): only notes have one.
    types: tuple[tuple[str | None, str], ...] | None = None


def _ref(kind: str, value: uuid.UUID | None) -> dict[str, str] | None:
    return {"reference": f"{kind}/{value}"} if value else None


def _who(label: str) -> dict[str, str]:
    # naho keeps who recorded an entry as a label ("Claire Lefebvre (medecin)"), not an id.
    return {"display": label}


def condition_resource(row: ConditionRow) -> Condition:
    wrong = row.status == ENTERED_IN_ERROR
    return Condition(
        id=str(row.id),
        # FHIR con-5: an entry entered in error has no clinical status.
        clinicalStatus=None if wrong else {"coding": [{"system": CONDITION_CLINICAL, "code": row.status}]},
        verificationStatus={"coding": [{"system": CONDITION_VERIFICATION,
                                        "code": "entered-in-error" if wrong else "confirmed"}]},
        category=[{"coding": [{"system": CONDITION_CATEGORY, "code": "problem-list-item",
                               "display": "Problem List Item"}]}],
        code={"coding": [{"system": ICD10_SYSTEM, "code": row.icd10, "display": row.label}], "text": row.label},
        subject=_ref("Patient", row.patient_id), encounter=_ref("Encounter", row.encounter_id),
        onsetDateTime=row.onset, recordedDate=row.recorded_at, recorder=_who(row.recorded_by),
    )


def _substance(code: str, label: str) -> dict[str, Any]:
    space, _, value = code.partition(":")
    system, value = (ATC_SYSTEM, value) if space == "ATC" else (SUBSTANCE_SYSTEM, code)
    return {"coding": [{"system": system, "code": value, "display": label}], "text": label}


def allergy_resource(row: AllergyRow) -> AllergyIntolerance:
    wrong = row.status == ENTERED_IN_ERROR
    category = _ALLERGY_CATEGORY.get(row.substance_code.partition(":")[0])
    return AllergyIntolerance(
        id=str(row.id),
        clinicalStatus=None if wrong else {"coding": [{"system": ALLERGY_CLINICAL, "code": row.status}]},
        verificationStatus={"coding": [{"system": ALLERGY_VERIFICATION,
                                        "code": "entered-in-error" if wrong else "confirmed"}]},
        type=row.kind if row.kind in ("allergy", "intolerance") else None,
        category=[category] if category else None,
        criticality=_CRITICALITY.get(row.criticality),
        code=_substance(row.substance_code, row.substance_label),
        patient={"reference": f"Patient/{row.patient_id}"},
        recordedDate=row.recorded_at, recorder=_who(row.recorded_by),
        reaction=[{"manifestation": [{"text": row.reaction}]}] if row.reaction else None,
    )


def observation_resource(row: ObservationRow) -> Observation:
    vital = row.loinc in VITAL_BY_LOINC
    display = LOINC_DISPLAY.get(row.loinc)
    return Observation(
        id=str(row.id), status="entered-in-error" if row.status == ENTERED_IN_ERROR else "final",
        category=[{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs",
                               "display": "Vital Signs"}]}] if vital else None,
        code={"coding": [{"system": LOINC_SYSTEM, "code": row.loinc, "display": display}], "text": display},
        subject=_ref("Patient", row.patient_id), encounter=_ref("Encounter", row.encounter_id),
        effectiveDateTime=row.effective_at, issued=row.recorded_at, performer=[_who(row.recorded_by)],
        valueQuantity={"value": row.value, "unit": row.unit, "system": UCUM_SYSTEM, "code": row.unit},
    )


def document_resource(row: DocumentRow, binary_base: str) -> DocumentReference:
    """A chart document; its bytes are read as `Binary/{id}` (the same id), through the door."""
    return DocumentReference(
        id=str(row.id), status="current", subject=_ref("Patient", row.patient_id), date=row.added_at,
        author=[_who(row.added_by)], description=row.title,
        content=[{"attachment": {"contentType": row.media_type, "size": row.size, "title": row.title,
                                 "url": f"{binary_base}/{row.id}", "creation": row.added_at}}],
        context={"encounter": [_ref("Encounter", row.encounter_id)]} if row.encounter_id else None,
    )


def note_resource(row: NoteRow) -> DocumentReference:
    """A clinical note: its text inline, typed in LOINC by kind."""
    code, display = NOTE_TYPES.get(row.kind, NOTE_TYPES["other"])
    text = row.text.encode("utf-8")
    return DocumentReference(
        id=str(row.id), status="current", subject=_ref("Patient", row.patient_id), date=row.written_at,
        type={"coding": [{"system": LOINC_SYSTEM, "code": code, "display": display}], "text": display},
        author=[_who(row.author)],
        content=[{"attachment": {"contentType": TEXT_PLAIN, "size": len(text), "data": base64.b64encode(text),
                                 "creation": row.written_at}}],
        context={"encounter": [_ref("Encounter", row.encounter_id)]} if row.encounter_id else None,
    )


def _condition_statuses(c: ChartCriteria) -> set[str]:
    wanted = {"active", "resolved"}  # by default, not what was entered in error
    if c.verification_status is not None:
        wanted = ({"active", "resolved"} if "confirmed" in c.verification_status else set()) \
            | ({ENTERED_IN_ERROR} if "entered-in-error" in c.verification_status else set())
    if c.clinical_status is not None:
        wanted &= set(c.clinical_status)  # naho's two clinical statuses carry FHIR's names
    return wanted


def _allergy_statuses(c: ChartCriteria) -> set[str]:
    wanted = {"active", "inactive"}
    if c.verification_status is not None:
        wanted = ({"active", "inactive"} if "confirmed" in c.verification_status else set()) \
            | ({ENTERED_IN_ERROR} if "entered-in-error" in c.verification_status else set())
    if c.clinical_status is not None:
        wanted &= set(c.clinical_status)
    return wanted


def _observation_statuses(c: ChartCriteria) -> set[str]:
    if c.status is None:
        return {"final"}
    return ({"final"} if "final" in c.status else set()) | \
        ({ENTERED_IN_ERROR} if "entered-in-error" in c.status else set())


def _codes_clause(column: Any, codes: tuple[tuple[str | None, str], ...], systems: dict[str, str]) -> Any:
    """`column` IN the stored forms of the codes; `systems` maps a FHIR system to the prefix naho
    stores codes of that system with ("" when stored bare). A system naho does not use finds nothing."""
    stored: set[str] = set()
    for system, code in codes:
        prefixes = list(systems.values()) if system is None else ([systems[system]] if system in systems else [])
        stored.update(prefix + code.strip() for prefix in prefixes)
    return column.in_(sorted(stored)) if stored else false()


def _icd10_forms(codes: tuple[tuple[str | None, str], ...]) -> tuple[tuple[str | None, str], ...]:
    normal = []
    for system, code in codes:
        try:
            normal.append((system, check_icd10(code)))
        except BadCode:
            continue  # not an ICD-10 code: matches no condition
    return tuple(normal)


def _within(column: Any, c: ChartCriteria) -> list[Any]:
    return [*([column >= c.since] if c.since else []), *([column < c.before] if c.before else [])]


def _query(resource_type: str, patient_id: uuid.UUID, c: ChartCriteria) -> tuple[Select[Any], tuple[Any, ...]]:
    """The rows of one patient a search designates, and the order they are shown in (newest first)."""
    if resource_type == "Condition":
        clauses = [ConditionRow.patient_id == patient_id, ConditionRow.status.in_(sorted(_condition_statuses(c)))]
        if c.codes is not None:
            clauses.append(_codes_clause(ConditionRow.icd10, _icd10_forms(c.codes), {ICD10_SYSTEM: ""}))
        if c.categories is not None and "problem-list-item" not in c.categories:
            clauses.append(false())
        return select(ConditionRow).where(*clauses), (ConditionRow.recorded_at.desc(), ConditionRow.id)
    if resource_type == "AllergyIntolerance":
        clauses = [AllergyRow.patient_id == patient_id, AllergyRow.status.in_(sorted(_allergy_statuses(c)))]
        if c.codes is not None:
            clauses.append(_codes_clause(AllergyRow.substance_code, c.codes,
                                         {ATC_SYSTEM: "ATC:", SUBSTANCE_SYSTEM: ""}))
        if c.categories is not None:
            spaces = [space for space, category in _ALLERGY_CATEGORY.items() if category in c.categories]
            clauses.append(or_(*[AllergyRow.substance_code.startswith(f"{s}:") for s in spaces]) if spaces
                           else false())
        return select(AllergyRow).where(*clauses), (AllergyRow.recorded_at.desc(), AllergyRow.id)
    if resource_type == "Observation":
        clauses = [ObservationRow.patient_id == patient_id,
                   ObservationRow.status.in_(sorted(_observation_statuses(c))),
                   *_within(ObservationRow.effective_at, c)]
        if c.codes is not None:
            clauses.append(_codes_clause(ObservationRow.loinc, c.codes, {LOINC_SYSTEM: ""}))
        if c.categories is not None:
            clauses.append(ObservationRow.loinc.in_(sorted(VITAL_BY_LOINC)) if "vital-signs" in c.categories
                           else false())
        return select(ObservationRow).where(*clauses), (ObservationRow.effective_at.desc(), ObservationRow.id)
    raise ValueError(f"not a chart resource: {resource_type}")


def _documents_and_notes(patient_id: uuid.UUID, c: ChartCriteria) -> Any:
    """(id, at, kind) of a patient's documents and notes a DocumentReference search designates."""
    current = c.status is None or "current" in c.status  # naho neither supersedes nor withdraws one
    doc_clauses = [DocumentRow.patient_id == patient_id, *_within(DocumentRow.added_at, c)]
    if not current or c.types is not None:  # a document has no type
        doc_clauses.append(false())
    note_clauses = [NoteRow.patient_id == patient_id, *_within(NoteRow.written_at, c)]
    if c.types is not None:
        kinds = [kind for kind, (code, _) in NOTE_TYPES.items()
                 if any(system in (None, LOINC_SYSTEM) and value == code for system, value in c.types)]
        note_clauses.append(NoteRow.kind.in_(kinds) if kinds else false())
    if not current:
        note_clauses.append(false())
    docs = select(DocumentRow.id.label("id"), DocumentRow.added_at.label("at"),
                  literal("document", String).label("kind")).where(*doc_clauses)
    notes = select(NoteRow.id.label("id"), NoteRow.written_at.label("at"),
                   literal("note", String).label("kind")).where(*note_clauses)
    return union_all(docs, notes).subquery()


def _find_documents(session: Session, patient_id: uuid.UUID, c: ChartCriteria, *, offset: int, count: int,
                    binary_base: str) -> tuple[list[Any], int]:
    both = _documents_and_notes(patient_id, c)
    total = session.execute(select(func.count()).select_from(both)).scalar_one()
    if count <= 0 or offset >= total:
        return [], total
    keys = session.execute(select(both.c.id, both.c.kind).order_by(both.c.at.desc(), both.c.id)
                           .offset(offset).limit(count)).all()
    wanted = {kind: [k.id for k in keys if k.kind == kind] for kind in ("document", "note")}
    # Never the bytes of a document: a search lists, Binary reads.
    docs = session.scalars(select(DocumentRow).options(defer(DocumentRow.content))
                           .where(DocumentRow.id.in_(wanted["document"]))) if wanted["document"] else []
    notes = session.scalars(select(NoteRow).where(NoteRow.id.in_(wanted["note"]))) if wanted["note"] else []
    found = {row.id: document_resource(row, binary_base) for row in docs}
    found.update({row.id: note_resource(row) for row in notes})
    return [found[k.id] for k in keys], total


CHART_TYPES = ("Condition", "AllergyIntolerance", "Observation", "DocumentReference")
_MODELS: dict[str, Any] = {"Condition": ConditionRow, "AllergyIntolerance": AllergyRow,
                           "Observation": ObservationRow, "DocumentReference": DocumentRow}


def chart_resource(row: Any, binary_base: str) -> Any:
    if isinstance(row, ConditionRow):
        return condition_resource(row)
    if isinstance(row, AllergyRow):
        return allergy_resource(row)
    if isinstance(row, ObservationRow):
        return observation_resource(row)
    if isinstance(row, NoteRow):
        return note_resource(row)
    return document_resource(row, binary_base)


def find_chart_entries(session: Session, resource_type: str, patient_id: uuid.UUID, criteria: ChartCriteria, *,
                       offset: int, count: int, binary_base: str) -> tuple[list[Any], int]:
    """One page of a patient's entries of this type, newest first, and how many match in all.
    The caller went through the door for the patient; `count` 0 only counts."""
    if resource_type == "DocumentReference":
        return _find_documents(session, patient_id, criteria, offset=offset, count=count, binary_base=binary_base)
    query, order = _query(resource_type, patient_id, criteria)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    if count <= 0 or offset >= total:
        return [], total
    rows = session.scalars(query.order_by(*order).offset(offset).limit(count)).all()
    return [chart_resource(row, binary_base) for row in rows], total


def _model(session: Session, resource_type: str, entry_id: uuid.UUID) -> Any:
    """The table holding this entry: a DocumentReference is a document or a note (ids are UUIDs,
    so at most one of them holds it)."""
    if resource_type != "DocumentReference":
        return _MODELS[resource_type]
    is_note = session.scalars(select(NoteRow.id).where(NoteRow.id == entry_id)).first() is not None
    return NoteRow if is_note else DocumentRow


def chart_entry_patient(session: Session, resource_type: str, entry_id: uuid.UUID) -> uuid.UUID | None:
    """Whose entry this is (the caller then goes through the door), None when there is none."""
    model = _model(session, resource_type, entry_id)
    return session.scalars(select(model.patient_id).where(model.id == entry_id)).first()


def read_chart_entry(session: Session, resource_type: str, entry_id: uuid.UUID, binary_base: str) -> Any:
    model = _model(session, resource_type, entry_id)
    query = select(model).where(model.id == entry_id)
    if model is DocumentRow:
        query = query.options(defer(DocumentRow.content))
    return chart_resource(session.scalars(query).one(), binary_base)
