"""FHIR R4 views of laboratory orders: each order as a ServiceRequest, each specimen (one label,
one tube, possibly several orders) as a Specimen whose id is its specimen number.

Mapping only: the interop facade (naho/interop/fhir_lab.py) checks the search parameters and
opens the door for the patient; these functions read the table and build fhir.resources objects.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.specimen import Specimen
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from naho.results.models import LabOrder

LOINC_SYSTEM = "http://loinc.org"
TEST_SYSTEM = "https://naho.ght-artois.fr/fhir/CodeSystem/lab-test"
PLACER_SYSTEM = "https://naho.ght-artois.fr/fhir/sid/lab-placer-order-number"
GROUP_SYSTEM = "https://naho.ght-artois.fr/fhir/sid/lab-order-group"
SPECIMEN_SYSTEM = "https://naho.ght-artois.fr/fhir/sid/specimen-number"
SPECIMEN_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0487"
IDENTIFIER_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
#: The order's status as ServiceRequest.status: in progress until final, revoked when cancelled.
REQUEST_STATUS = {"ordered": "active", "collected": "active", "received": "active", "preliminary": "active",
                  "final": "completed", "cancelled": "revoked"}
REQUEST_STATUSES = frozenset(REQUEST_STATUS.values())
_SPECIMEN_TYPES = {"BLD": "Whole blood", "PLAS": "Plasma", "SER": "Serum", "UR": "Urine"}


def request_resource(row: LabOrder) -> ServiceRequest:
    coding = [{"system": TEST_SYSTEM, "code": row.test_code, "display": row.test_label}]
    if row.loinc:
        coding.append({"system": LOINC_SYSTEM, "code": row.loinc, "display": row.test_label})
    resource: dict[str, Any] = {
        "id": str(row.id), "status": REQUEST_STATUS[row.status], "intent": "order", "category": [{"coding": [{
            "system": "http://snomed.info/sct", "code": "108252007", "display": "Laboratory procedure"}]}],
        "identifier": [{"system": PLACER_SYSTEM, "value": row.placer_number, "type": {"coding": [{
            "system": IDENTIFIER_TYPE_SYSTEM, "code": "PLAC", "display": "Placer Identifier"}]}}],
        "requisition": {"system": GROUP_SYSTEM, "value": row.group_number},
        "priority": row.urgency, "code": {"coding": coding, "text": row.test_label},
        "subject": {"reference": f"Patient/{row.patient_id}"},
        "encounter": {"reference": f"Encounter/{row.encounter_id}"},
        "authoredOn": row.ordered_at.isoformat(), "requester": {"display": row.ordered_by},
        "specimen": [{"reference": f"Specimen/{row.specimen_number}"}],
    }
    if row.clinical_info:
        resource["note"] = [{"text": row.clinical_info}]
    return ServiceRequest.model_validate(resource)


def specimen_resource(rows: Sequence[LabOrder]) -> Specimen:
    """The specimen the orders of `rows` share (same specimen number)."""
    first = rows[0]
    collected = next((r for r in rows if r.collected_at is not None), None)
    live = [r for r in rows if r.status != "cancelled"]
    resource: dict[str, Any] = {
        "id": first.specimen_number,
        "identifier": [{"system": SPECIMEN_SYSTEM, "value": first.specimen_number}],
        "status": "available" if collected else "unavailable" if not live else None,
        "type": {"coding": [{"system": SPECIMEN_TYPE_SYSTEM, "code": first.specimen_type,
                             "display": _SPECIMEN_TYPES.get(first.specimen_type, first.specimen_type)}]},
        "subject": {"reference": f"Patient/{first.patient_id}"},
        "request": [{"reference": f"ServiceRequest/{r.id}"} for r in rows],
        "container": [{"description": first.container_label, "type": {"text": first.colour}}],
    }
    if collected is not None and collected.collected_at is not None:
        resource["collection"] = {"collectedDateTime": collected.collected_at.isoformat(),
                                  "collector": {"display": collected.collected_by}}
    return Specimen.model_validate({k: v for k, v in resource.items() if v is not None})


def find_requests(session: Session, patient_id: uuid.UUID, statuses: frozenset[str] | None, *, offset: int,
                  count: int) -> tuple[list[ServiceRequest], int]:
    """One page of the patient's orders, newest first, and how many match; `count` 0 counts."""
    query = select(LabOrder).where(LabOrder.patient_id == patient_id)
    if statuses is not None:
        query = query.where(LabOrder.status.in_([k for k, v in REQUEST_STATUS.items() if v in statuses]))
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    if count <= 0 or offset >= total:
        return [], total
    rows = session.scalars(query.order_by(LabOrder.ordered_at.desc(), LabOrder.placer_number)
                           .offset(offset).limit(count))
    return [request_resource(r) for r in rows], total


def find_specimens(session: Session, patient_id: uuid.UUID, *, offset: int,
                   count: int) -> tuple[list[Specimen], int]:
    """One page of the patient's specimens, newest first (a patient has tens of them, not more)."""
    rows = session.scalars(select(LabOrder).where(LabOrder.patient_id == patient_id)
                           .order_by(LabOrder.ordered_at.desc(), LabOrder.specimen_number.desc(),
                                     LabOrder.placer_number))
    grouped: dict[str, list[LabOrder]] = {}
    for row in rows:
        grouped.setdefault(row.specimen_number, []).append(row)
    shown = list(grouped.values())[offset:offset + count] if count > 0 else []
    return [specimen_resource(g) for g in shown], len(grouped)


def request_patient(session: Session, order_id: uuid.UUID) -> uuid.UUID | None:
    return session.scalars(select(LabOrder.patient_id).where(LabOrder.id == order_id)).first()


def specimen_patient(session: Session, specimen_number: str) -> uuid.UUID | None:
    return session.scalars(select(LabOrder.patient_id).where(LabOrder.specimen_number == specimen_number)).first()


def read_request(session: Session, order_id: uuid.UUID) -> ServiceRequest:
    return request_resource(session.get_one(LabOrder, order_id))


def read_specimen(session: Session, specimen_number: str) -> Specimen:
    return specimen_resource(list(session.scalars(select(LabOrder).where(
        LabOrder.specimen_number == specimen_number).order_by(LabOrder.placer_number))))
