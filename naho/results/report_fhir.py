"""FHIR R4 views of laboratory results: each report (OBR) as a DiagnosticReport whose results are
contained Observations (the current version of each test: value, UCUM unit, reference range,
interpretation, status), and whose signed PDF is its presentedForm (a link to the Binary).

Mapping only: the interop facade checks the search parameters and opens the door for the patient.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from naho.results import rules
from naho.results.models import LabReport, LabResult

LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
SERVICE_SYSTEM = "https://naho.ght-artois.fr/fhir/CodeSystem/laboratory-battery"
PLACER_SYSTEM = "https://naho.ght-artois.fr/fhir/sid/lab-placer-order"
FILLER_SYSTEM = "https://naho.ght-artois.fr/fhir/sid/lab-filler-order"
SECTION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0074"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

#: OBR-25 / OBX-11 (HL7 table 0085) as DiagnosticReport.status and Observation.status.
REPORT_STATUS = {"P": "preliminary", "F": "final", "C": "corrected", "X": "cancelled", "D": "entered-in-error",
                 "I": "registered", "R": "partial", "A": "partial"}
OBSERVATION_STATUS = {"P": "preliminary", "F": "final", "C": "corrected", "X": "cancelled", "D": "entered-in-error"}
REPORT_STATUSES = frozenset(REPORT_STATUS.values())
#: OBX-8 flags (table 0078) that FHIR's interpretation value set names the same way.
_INTERPRETATIONS = {"L": "L", "H": "H", "LL": "LL", "HH": "HH", "N": "N", "A": "A", "AA": "AA", "<": "<", ">": ">",
                    "U": "U", "D": "D", "B": "B", "W": "W", "S": "S", "R": "R", "I": "I"}


@dataclass(frozen=True, slots=True)
class ReportCriteria:
    """A DiagnosticReport search of one patient's laboratory reports (the caller went through the door)."""

    statuses: frozenset[str] | None = None  # FHIR statuses
    codes: frozenset[str] | None = None  # LOINC codes of a result, or battery codes
    since: Any = None
    before: Any = None


def _observation(result: LabResult, index: int, patient_ref: str) -> dict[str, Any]:
    observation: dict[str, Any] = {
        "resourceType": "Observation", "id": f"r{index}",
        "status": OBSERVATION_STATUS.get(result.status, "unknown"),
        "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC_SYSTEM, "code": result.loinc, "display": result.label}],
                 "text": result.label},
        "subject": {"reference": patient_ref},
        "effectiveDateTime": result.observed_at.isoformat(),
        "issued": result.received_at.isoformat(),
    }
    if rules.ResultStatus(result.status).withdrawn:
        observation["dataAbsentReason"] = {"text": "cancelled by the laboratory"}
    elif result.number is not None:
        quantity: dict[str, Any] = {"value": result.number, "unit": result.unit}
        if result.unit:
            quantity.update(system=UCUM_SYSTEM, code=result.unit)
        if result.comparator in ("<", "<=", ">", ">="):
            quantity["comparator"] = result.comparator
        observation["valueQuantity"] = quantity
    elif result.text:
        observation["valueString"] = result.text
    flags = [f for f in result.flags.split() if f in _INTERPRETATIONS]
    if flags:
        observation["interpretation"] = [{"coding": [{"system": INTERPRETATION_SYSTEM, "code": _INTERPRETATIONS[f]}]}
                                         for f in flags]
    if result.reference_low is not None or result.reference_high is not None or result.reference:
        reference: dict[str, Any] = {"text": result.reference} if result.reference else {}
        for key, bound in (("low", result.reference_low), ("high", result.reference_high)):
            if bound is not None:
                reference[key] = {"value": bound, "unit": result.unit,
                                  **({"system": UCUM_SYSTEM, "code": result.unit} if result.unit else {})}
        observation["referenceRange"] = [reference]
    if result.comment:
        observation["note"] = [{"text": result.comment}]
    return observation


def report_resource(session: Session, report: LabReport, binary_base: str) -> DiagnosticReport:
    patient_ref = f"Patient/{report.patient_id}"
    results = list(session.scalars(select(LabResult).where(LabResult.report_id == report.id,
                                                           LabResult.current.is_(True))
                                   .order_by(LabResult.loinc, LabResult.chain)))
    contained = [_observation(r, n, patient_ref) for n, r in enumerate(results, 1)]
    identifiers = [{"system": system, "value": value} for system, value in (
        (PLACER_SYSTEM, report.placer_number), (FILLER_SYSTEM, report.filler_number)) if value]
    data: dict[str, Any] = {
        "resourceType": "DiagnosticReport", "id": str(report.id),
        "identifier": identifiers or None,
        "status": REPORT_STATUS.get(report.status, "unknown"),
        "category": [{"coding": [{"system": SECTION_SYSTEM, "code": "LAB", "display": "Laboratory"}]}],
        "code": {"coding": [{"system": SERVICE_SYSTEM, "code": report.service_code,
                             "display": report.service_label or report.service_code}],
                 "text": report.service_label or report.service_code},
        "subject": {"reference": patient_ref},
        "effectiveDateTime": report.observed_at.isoformat(),
        "issued": (report.reported_at or report.updated_at).isoformat(),
        "contained": contained or None,
        "result": [{"reference": f"#{o['id']}"} for o in contained] or None,
        "conclusion": report.comment or None,
    }
    if report.encounter_id:
        data["encounter"] = {"reference": f"Encounter/{report.encounter_id}"}
    if report.document_id:
        data["presentedForm"] = [{"contentType": "application/pdf", "url": f"{binary_base}/{report.document_id}",
                                  "title": report.service_label or "Compte rendu"}]
    return DiagnosticReport.model_validate({k: v for k, v in data.items() if v is not None})


def report_patient(session: Session, report_id: uuid.UUID) -> uuid.UUID | None:
    return session.scalar(select(LabReport.patient_id).where(LabReport.id == report_id))


def find_reports(session: Session, patient_id: uuid.UUID, criteria: ReportCriteria, *, offset: int, count: int,
                 binary_base: str) -> tuple[list[DiagnosticReport], int]:
    """One patient's reports matching the criteria, newest first, and how many match."""
    query = select(LabReport).where(LabReport.patient_id == patient_id)
    if criteria.statuses is not None:
        codes = [code for code, status in REPORT_STATUS.items() if status in criteria.statuses]
        query = query.where(LabReport.status.in_(codes))
    if criteria.codes is not None:
        with_result = select(LabResult.report_id).where(LabResult.patient_id == patient_id,
                                                        LabResult.loinc.in_(criteria.codes))
        query = query.where(LabReport.id.in_(with_result) | LabReport.service_code.in_(criteria.codes))
    if criteria.since is not None:
        query = query.where(LabReport.observed_at >= criteria.since)
    if criteria.before is not None:
        query = query.where(LabReport.observed_at < criteria.before)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows: Sequence[LabReport] = session.scalars(
        query.order_by(LabReport.observed_at.desc(), LabReport.id).offset(offset).limit(count)).all()
    return [report_resource(session, r, binary_base) for r in rows], total


def read_report(session: Session, report_id: uuid.UUID, binary_base: str) -> DiagnosticReport | None:
    row = session.get(LabReport, report_id)
    return None if row is None else report_resource(session, row, binary_base)
