"""Orders loaded as they stand in a source system: the demo's synthetic patients, or a migration
from a former prescribing system. Not a user's signature, so no door: each order is checked like
a signed one against the patient and the orders loaded before it; one with a blocking alert is
left out and counted, the alerts needing a reason keep the reason the source gave. The caller
audits the batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from naho.identity import service as identity
from naho.medication import rules
from naho.medication.models import MedicationOrder, MedicationOrderAlert
from naho.medication.schemas import OrderCreate
from naho.medication.service import ACTIVE, REVIEW_PENDING, catalogue
from naho.record import chart

#: What an imported order that raised alerts needing a reason says, when its source gave none.
IMPORTED_REASON = "Traitement en cours repris de la prescription d'origine"


@dataclass(frozen=True, slots=True)
class ImportedOrder:
    patient_id: uuid.UUID
    encounter_id: uuid.UUID | None
    order: OrderCreate
    prescriber_id: uuid.UUID
    prescriber_label: str
    signed_at: datetime
    #: The pharmacist's analysis as it stands in the source (pending, validated).
    review_status: str = REVIEW_PENDING


@dataclass(frozen=True, slots=True)
class ImportReport:
    imported: int
    left_out: int  # a blocking alert stood


def _rule_order(data: OrderCreate | MedicationOrder) -> rules.Order:
    return rules.Order(data.product_code, rules.Quantity(data.dose_value, data.dose_unit),
                       rules.check_route(data.route),
                       rules.Frequency(rules.FrequencyKind(data.frequency), data.times_per_day, data.every_hours,
                                       data.max_per_24h))


def import_orders(session: Session, items: Sequence[ImportedOrder], *, now: datetime) -> ImportReport:
    """Insert the orders that pass the checks, in the caller's transaction."""
    cat = catalogue(session)
    patients = list(dict.fromkeys(i.patient_id for i in items))
    people = identity.summaries(session, patients)
    loaded: dict[uuid.UUID, list[rules.Order]] = {}
    for patient_id in patients:
        loaded[patient_id] = [_rule_order(r) for r in session.scalars(select(MedicationOrder).where(
            MedicationOrder.patient_id == patient_id, MedicationOrder.status == ACTIVE))]
    contexts: dict[uuid.UUID, tuple[float, float | None, float | None, rules.Sex, frozenset[str]]] = {}
    imported = left_out = 0
    for item in items:
        data = item.order
        if item.patient_id not in contexts:
            person = people[item.patient_id]
            contexts[item.patient_id] = (
                max(0.0, (now.date() - person.birth_date).days / 365.25),
                chart.latest_measure(session, item.patient_id, "weight"),
                chart.latest_measure(session, item.patient_id, "height"),
                {"F": rules.Sex.FEMALE, "M": rules.Sex.MALE}.get(person.sex, rules.Sex.UNKNOWN),
                chart.active_allergy_codes(session, item.patient_id))
        age, weight, height, sex, allergies = contexts[item.patient_id]
        weight = data.weight_kg if data.weight_kg is not None else weight
        height = data.height_cm if data.height_cm is not None else height
        order = _rule_order(data)
        context = rules.PatientContext(age_years=age, weight_kg=weight, height_cm=height, sex=sex,
                                       allergies=allergies, active_orders=tuple(loaded[item.patient_id]))
        alerts = rules.check_order(order, context, cat)
        if any(a.severity is rules.Severity.BLOCKING for a in alerts):
            left_out += 1
            continue
        needs_reason = any(a.severity is rules.Severity.OVERRIDE_REQUIRED for a in alerts)
        reason = (data.override_reason or IMPORTED_REASON) if needs_reason else None
        row = MedicationOrder(
            id=uuid.uuid4(), patient_id=item.patient_id, encounter_id=item.encounter_id, version=1, status=ACTIVE,
            review_status=item.review_status, product_code=data.product_code, dose_value=data.dose_value,
            dose_unit=data.dose_unit, route=data.route, frequency=str(data.frequency),
            times_per_day=data.times_per_day, every_hours=data.every_hours, max_per_24h=data.max_per_24h,
            indication=data.indication, starts_at=data.starts_at or item.signed_at,
            ends_at=(data.starts_at or item.signed_at) + timedelta(days=data.duration_days)
            if data.duration_days else None,
            comment=data.comment, weight_kg=weight, height_cm=height, pregnant=data.pregnant,
            override_reason=reason, prescriber_id=item.prescriber_id, prescriber_label=item.prescriber_label,
            created_at=item.signed_at)
        session.add(row)
        session.add_all(MedicationOrderAlert(
            order_id=row.id, patient_id=item.patient_id, kind=a.kind.value, severity=a.severity.value,
            message=a.message, params=dict(a.params), substance=a.substance,
            override_reason=reason if a.severity is rules.Severity.OVERRIDE_REQUIRED else None) for a in alerts)
        loaded[item.patient_id].append(order)
        imported += 1
    session.flush()
    return ImportReport(imported, left_out)
