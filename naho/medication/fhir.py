"""FHIR R4 views of the medication circuit: the formulary's products as Medication, the orders as
MedicationRequest (one resource per version, a new version naming the one it replaced).

Mapping only: the interop facade checks the search parameters and opens the door for the patient;
these functions read the tables and build fhir.resources objects. Codes are naho's own (products
of the formulary, route codes) beside ATC for the substances; the UCD and CIP13 codes are given
when the formulary holds them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.medication import Medication
from fhir.resources.R4B.medicationadministration import (
    MedicationAdministration as MedicationAdministrationResource,
)
from fhir.resources.R4B.medicationdispense import MedicationDispense
from fhir.resources.R4B.medicationrequest import MedicationRequest
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from naho.medication import rules
from naho.medication.models import (
    DispensedDose,
    DispensingBatch,
    FormularyProduct,
    FormularySubstance,
    MedicationAdministration,
    MedicationOrder,
)
from naho.medication.schedule import daily_hours

PRODUCT_SYSTEM = "https://naho.ght-artois.fr/fhir/CodeSystem/formulary-product"
ROUTE_SYSTEM = "https://naho.ght-artois.fr/fhir/CodeSystem/route"
ATC_SYSTEM = "http://www.whocc.no/atc"
UCD_SYSTEM = "urn:oid:1.2.250.1.213.2.3.1"  # code UCD (unité commune de dispensation)
CIP13_SYSTEM = "urn:oid:1.2.250.1.213.2.3.2"  # code CIP 13 (presentation)
UCUM_SYSTEM = "http://unitsofmeasure.org"
LABEL_SYSTEM = "https://naho.ght-artois.fr/fhir/sid/dispensed-dose-label"
NOT_GIVEN_SYSTEM = "https://naho.ght-artois.fr/fhir/CodeSystem/dose-not-given"

#: naho's order statuses as MedicationRequest.status (a replaced version was stopped by its successor).
REQUEST_STATUS = {"active": "active", "suspended": "on-hold", "stopped": "stopped", "replaced": "stopped"}
REQUEST_STATUSES = frozenset(REQUEST_STATUS.values())
MEDICATION_STATUSES = frozenset({"active", "inactive"})


@dataclass(frozen=True, slots=True)
class RequestCriteria:
    """A MedicationRequest search of one patient's orders (the caller went through the door)."""

    statuses: frozenset[str] | None = None  # FHIR statuses
    encounter_id: uuid.UUID | None = None
    product: str | None = None


# --- Medication ------------------------------------------------------------------------------------


def _strength(component: dict[str, Any]) -> dict[str, Any] | None:
    amount = component.get("amount")
    if not amount:
        return None
    volume = component.get("volume_ml")
    return {"numerator": {"value": amount["value"], "unit": amount["unit"]},
            "denominator": {"value": volume, "unit": "mL", "system": UCUM_SYSTEM, "code": "mL"} if volume
            else {"value": 1, "unit": "unit"}}


def medication_resource(row: FormularyProduct, substances: dict[str, FormularySubstance]) -> Medication:
    definition = row.definition
    coding = [{"system": PRODUCT_SYSTEM, "code": row.code, "display": row.name}]
    if definition.get("ucd"):
        coding.append({"system": UCD_SYSTEM, "code": definition["ucd"]})
    coding.extend({"system": CIP13_SYSTEM, "code": cip} for cip in definition.get("cip13") or ())
    ingredients = []
    for component in definition["components"]:
        substance = substances.get(component["substance"])
        concept = ({"coding": [{"system": ATC_SYSTEM, "code": substance.atc, "display": substance.name}],
                    "text": substance.name} if substance else {"text": component["substance"]})
        ingredients.append({"itemCodeableConcept": concept, "isActive": True, "strength": _strength(component)})
    return Medication.model_validate({
        "id": row.code, "code": {"coding": coding, "text": row.name},
        "status": "active" if row.active else "inactive", "form": {"text": row.form}, "ingredient": ingredients})


def _substances_of(session: Session, rows: Sequence[FormularyProduct]) -> dict[str, FormularySubstance]:
    codes = {c["substance"] for row in rows for c in row.definition["components"]}
    if not codes:
        return {}
    return {s.code: s for s in session.scalars(select(FormularySubstance).where(FormularySubstance.code.in_(codes)))}


def read_medication(session: Session, code: str) -> Medication | None:
    row = session.get(FormularyProduct, code)
    return medication_resource(row, _substances_of(session, [row])) if row else None


def find_medications(session: Session, *, products: Sequence[str] | None, atc: Sequence[str] | None,
                     statuses: frozenset[str] | None, offset: int, count: int) -> tuple[list[Medication], int]:
    """Products of the formulary by product code, by ATC code (the product's first substance's, as
    the order-entry search: a prefix finds a class) and status; name order."""
    query = select(FormularyProduct)
    if products is not None:
        query = query.where(FormularyProduct.code.in_(list(products)))
    if atc is not None:
        query = query.where(or_(*(FormularyProduct.atc.startswith(a.upper(), autoescape=True) for a in atc)))
    if statuses is not None and statuses != MEDICATION_STATUSES:
        query = query.where(FormularyProduct.active.is_("active" in statuses))
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    if count <= 0 or offset >= total:
        return [], total
    rows = list(session.scalars(query.order_by(FormularyProduct.name, FormularyProduct.code)
                                .offset(offset).limit(count)))
    substances = _substances_of(session, rows)
    return [medication_resource(r, substances) for r in rows], total


# --- MedicationRequest -----------------------------------------------------------------------------


def _timing(row: MedicationOrder) -> dict[str, Any]:
    bounds = {"start": row.starts_at.isoformat(), **({"end": row.ends_at.isoformat()} if row.ends_at else {})}
    repeat: dict[str, Any] = {"boundsPeriod": bounds}
    kind = rules.FrequencyKind(row.frequency)
    if kind is rules.FrequencyKind.ONCE:
        repeat["count"] = 1
    elif kind is rules.FrequencyKind.TIMES_PER_DAY and row.times_per_day:
        repeat.update(frequency=row.times_per_day, period=1, periodUnit="d",
                      timeOfDay=[t.isoformat() for t in daily_hours(row.times_per_day)])
    elif row.every_hours and kind in (rules.FrequencyKind.EVERY_HOURS, rules.FrequencyKind.IF_NEEDED):
        repeat.update(frequency=1, period=row.every_hours, periodUnit="h")
    return {"repeat": repeat}


def _dosage(row: MedicationOrder, route_label: str | None) -> dict[str, Any]:
    kind = rules.FrequencyKind(row.frequency)
    quantity = {"value": row.dose_value, "unit": row.dose_unit}
    dosage: dict[str, Any] = {
        "sequence": 1, "timing": _timing(row),
        "route": {"coding": [{"system": ROUTE_SYSTEM, "code": row.route, "display": route_label}],
                  "text": route_label or row.route},
        "doseAndRate": [{"rateQuantity": quantity} if kind is rules.FrequencyKind.CONTINUOUS
                        else {"doseQuantity": quantity}],
    }
    if kind is rules.FrequencyKind.IF_NEEDED:
        dosage["asNeededCodeableConcept"] = {"text": row.indication or ""}
        if row.max_per_24h:
            dosage["maxDosePerPeriod"] = {
                "numerator": {"value": row.max_per_24h, "unit": "dose"},
                "denominator": {"value": 24, "unit": "h", "system": UCUM_SYSTEM, "code": "h"}}
    if row.comment:
        dosage["text"] = row.comment
    return dosage


def request_resource(row: MedicationOrder, product_name: str | None) -> MedicationRequest:
    notes = [{"text": row.comment}] if row.comment else []
    if row.override_reason:
        notes.append({"text": f"override: {row.override_reason}"})
    reason = "replaced by a new version" if row.status == "replaced" else row.status_reason
    resource = {
        "id": str(row.id), "status": REQUEST_STATUS[row.status], "intent": "order",
        "statusReason": {"text": reason} if reason and row.status != "active" else None,
        "medicationReference": {"reference": f"Medication/{row.product_code}", "display": product_name},
        "subject": {"reference": f"Patient/{row.patient_id}"},
        "encounter": {"reference": f"Encounter/{row.encounter_id}"} if row.encounter_id else None,
        "authoredOn": row.created_at.isoformat(), "requester": {"display": row.prescriber_label},
        "reasonCode": [{"text": row.indication}] if row.indication else None,
        "dosageInstruction": [_dosage(row, rules.ROUTES.get(row.route))],
        "priorPrescription": {"reference": f"MedicationRequest/{row.replaces_id}"} if row.replaces_id else None,
        "note": notes or None,
    }
    return MedicationRequest.model_validate({k: v for k, v in resource.items() if v is not None})


def _product_names(session: Session, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    return {code: name for code, name in session.execute(
        select(FormularyProduct.code, FormularyProduct.name).where(FormularyProduct.code.in_(codes)))}


def _names(session: Session, rows: Sequence[MedicationOrder]) -> dict[str, str]:
    return _product_names(session, {r.product_code for r in rows})


def _request_query(patient_id: uuid.UUID, c: RequestCriteria) -> Select[Any]:
    query = select(MedicationOrder).where(MedicationOrder.patient_id == patient_id)
    if c.statuses is not None:
        ours = [code for code, fhir_code in REQUEST_STATUS.items() if fhir_code in c.statuses]
        query = query.where(MedicationOrder.status.in_(ours))
    if c.encounter_id is not None:
        query = query.where(MedicationOrder.encounter_id == c.encounter_id)
    if c.product is not None:
        query = query.where(MedicationOrder.product_code == c.product)
    return query


def find_requests(session: Session, patient_id: uuid.UUID, criteria: RequestCriteria, *, offset: int,
                  count: int) -> tuple[list[MedicationRequest], int]:
    """One page of a patient's order versions, newest first, and how many match; `count` 0 counts."""
    query = _request_query(patient_id, criteria)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    if count <= 0 or offset >= total:
        return [], total
    rows = list(session.scalars(query.order_by(MedicationOrder.created_at.desc(), MedicationOrder.id)
                                .offset(offset).limit(count)))
    names = _names(session, rows)
    return [request_resource(r, names.get(r.product_code)) for r in rows], total


def read_request(session: Session, order_id: uuid.UUID) -> MedicationRequest:
    row = session.get_one(MedicationOrder, order_id)
    return request_resource(row, _names(session, [row]).get(row.product_code))


# --- MedicationDispense, MedicationAdministration --------------------------------------------------

#: A dispensed dose's state from its batch: prepared at the pharmacy, on its way, received on the ward.
DISPENSE_STATUS = {"open": "preparation", "prepared": "preparation", "handed_over": "in-progress",
                   "received": "completed"}
DISPENSE_STATUSES = frozenset(DISPENSE_STATUS.values())
#: Bedside events as MedicationAdministration.status.
ADMINISTRATION_STATUSES = frozenset({"completed", "not-done", "in-progress"})


def _given_product(code: str | None, name: str | None, lot: str | None, expiry: Any) -> dict[str, Any]:
    """The product as given, with its lot and expiry: a contained Medication (FHIR's place for a batch)."""
    batch = {k: v for k, v in (("lotNumber", lot), ("expirationDate", expiry.isoformat() if expiry else None))
             if v is not None}
    return {"resourceType": "Medication", "id": "given",
            "code": {"coding": [{"system": PRODUCT_SYSTEM, "code": code, "display": name}], "text": name},
            **({"batch": batch} if batch else {})}


def dispense_resource(dose: DispensedDose, batch: DispensingBatch, name: str | None) -> MedicationDispense:
    resource = {
        "id": str(dose.id), "status": DISPENSE_STATUS.get(batch.status, "unknown"),
        "contained": [_given_product(dose.product_code, name, dose.lot, dose.expiry)],
        "medicationReference": {"reference": "#given", "display": name},
        "subject": {"reference": f"Patient/{dose.patient_id}"},
        "authorizingPrescription": [{"reference": f"MedicationRequest/{dose.order_id}"}],
        "identifier": [{"system": LABEL_SYSTEM, "value": dose.label}],
        "quantity": {"value": dose.units, "unit": "unit"},
        "whenPrepared": dose.prepared_at.isoformat(),
        "whenHandedOver": batch.handed_over_at.isoformat() if batch.handed_over_at else None,
        "destination": {"display": batch.unit_code},
        "performer": [{"actor": {"display": dose.prepared_by}}],
        "note": [{"text": f"due {dose.due_at.isoformat()}"}] if dose.due_at else None,
    }
    return MedicationDispense.model_validate({k: v for k, v in resource.items() if v is not None})


def _administration_status(row: MedicationAdministration) -> str:
    if row.outcome == "not_given":
        return "not-done"
    return "in-progress" if row.kind in ("infusion_start", "rate_change", "bag_change") else "completed"


def administration_resource(row: MedicationAdministration, name: str | None) -> MedicationAdministrationResource:
    dosage: dict[str, Any] = {}
    if row.route:
        dosage["route"] = {"coding": [{"system": ROUTE_SYSTEM, "code": row.route,
                                       "display": rules.ROUTES.get(row.route)}]}
    if row.amount is not None:
        dosage["dose"] = {"value": row.amount, "unit": "unit"}
    if row.rate_ml_h is not None:
        dosage["rateQuantity"] = {"value": row.rate_ml_h, "unit": "mL/h", "system": UCUM_SYSTEM, "code": "mL/h"}
    not_done = row.outcome == "not_given"
    notes = [text for text in (row.reason, row.kind if row.kind not in ("dose", "if_needed") else None,
                               "partly given" if row.outcome == "partly_given" else None) if text]
    resource = {
        "id": str(row.id), "status": _administration_status(row),
        "statusReason": [{"coding": [{"system": NOT_GIVEN_SYSTEM, "code": row.reason_code}],
                          **({"text": row.reason} if row.reason else {})}] if not_done and row.reason_code else None,
        "contained": [_given_product(row.product_code, name, row.lot, row.expiry)] if row.product_code else None,
        "medicationReference": {"reference": "#given", "display": name} if row.product_code else None,
        "medicationCodeableConcept": {"text": "not given"} if not row.product_code else None,
        "subject": {"reference": f"Patient/{row.patient_id}"},
        "effectiveDateTime": row.at.isoformat(),
        "performer": [{"actor": {"display": row.recorded_by}}],
        "request": {"reference": f"MedicationRequest/{row.order_id}"},
        "dosage": dosage or None,
        "note": [{"text": text} for text in notes] or None,
    }
    return MedicationAdministrationResource.model_validate({k: v for k, v in resource.items() if v is not None})


@dataclass(frozen=True, slots=True)
class EventCriteria:
    """A MedicationDispense or MedicationAdministration search of one patient (door passed)."""

    statuses: frozenset[str] | None = None
    order_id: uuid.UUID | None = None


def find_dispenses(session: Session, patient_id: uuid.UUID, c: EventCriteria, *, offset: int,
                   count: int) -> tuple[list[MedicationDispense], int]:
    """One page of a patient's dispensed doses, newest first, and how many match."""
    query = (select(DispensedDose, DispensingBatch).join(DispensingBatch, DispensingBatch.id == DispensedDose.batch_id)
             .where(DispensedDose.patient_id == patient_id))
    if c.order_id is not None:
        query = query.where(DispensedDose.order_id == c.order_id)
    if c.statuses is not None:
        query = query.where(DispensingBatch.status.in_([k for k, v in DISPENSE_STATUS.items() if v in c.statuses]))
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    if count <= 0 or offset >= total:
        return [], total
    rows = list(session.execute(query.order_by(DispensedDose.prepared_at.desc(), DispensedDose.id)
                                .offset(offset).limit(count)))
    names = _product_names(session, {d.product_code for d, _b in rows})
    return [dispense_resource(d, b, names.get(d.product_code)) for d, b in rows], total


def find_administrations(session: Session, patient_id: uuid.UUID, c: EventCriteria, *, offset: int,
                         count: int) -> tuple[list[MedicationAdministrationResource], int]:
    """One page of a patient's bedside events, newest first, and how many match."""
    query = select(MedicationAdministration).where(MedicationAdministration.patient_id == patient_id)
    if c.order_id is not None:
        query = query.where(MedicationAdministration.order_id == c.order_id)
    if c.statuses is not None:
        wanted = []
        if "not-done" in c.statuses:
            wanted.append(MedicationAdministration.outcome == "not_given")
        running = MedicationAdministration.kind.in_(("infusion_start", "rate_change", "bag_change"))
        given = MedicationAdministration.outcome != "not_given"
        if "in-progress" in c.statuses:
            wanted.append(given & running)
        if "completed" in c.statuses:
            wanted.append(given & ~running)
        query = query.where(or_(*wanted))
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    if count <= 0 or offset >= total:
        return [], total
    rows = list(session.scalars(query.order_by(MedicationAdministration.at.desc(), MedicationAdministration.id)
                                .offset(offset).limit(count)))
    names = _product_names(session, {r.product_code for r in rows if r.product_code})
    return [administration_resource(r, names.get(r.product_code or "")) for r in rows], total


_MODELS: dict[str, Any] = {"MedicationRequest": MedicationOrder, "MedicationDispense": DispensedDose,
                           "MedicationAdministration": MedicationAdministration}


def resource_patient(session: Session, resource_type: str, row_id: uuid.UUID) -> uuid.UUID | None:
    """Whose order, dispensed dose or bedside event this is (the caller then goes through the
    door), None when there is none."""
    model = _MODELS[resource_type]
    return session.scalars(select(model.patient_id).where(model.id == row_id)).first()


def read_resource(session: Session, resource_type: str, event_id: uuid.UUID) -> Any:
    if resource_type == "MedicationRequest":
        return read_request(session, event_id)
    if resource_type == "MedicationDispense":
        dose = session.get_one(DispensedDose, event_id)
        batch = session.get_one(DispensingBatch, dose.batch_id)
        return dispense_resource(dose, batch, _product_names(session, {dose.product_code}).get(dose.product_code))
    row = session.get_one(MedicationAdministration, event_id)
    return administration_resource(row, _product_names(session, {row.product_code or ""}).get(row.product_code or ""))
