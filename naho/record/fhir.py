"""Stays as FHIR R4 Encounter resources (FR Core conventions), and the read-only lookups the
FHIR facade needs. Access to a stay is decided by the caller, through the one door.

Class (v3 ActCode, the R4 binding of Encounter.class): emergency → EMER, full hospitalisation →
IMP, outpatient acts and consultations → AMB. Partial hospitalisation (day or night) and sessions
(dialysis, chemotherapy, radiotherapy) are both admissions for a planned stay of less than a day:
SS, "short stay", the code FR Core's encounter class value set offers for them; `type` keeps
naho's own class so the two stay distinct.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from fhir.resources.R4B.encounter import Encounter
from sqlalchemy import select
from sqlalchemy.orm import Session

from naho.platform.i18n import PARIS
from naho.record.models import Encounter as EncounterRow
from naho.record.rules import EncounterClass, EncounterStatus
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


def encounter_id_by_nda(session: Session, nda: str) -> uuid.UUID | None:
    """The stay behind an NDA (the caller then goes through the door for its patient)."""
    return session.scalars(select(EncounterRow.id).where(EncounterRow.nda == nda.strip())).first()
