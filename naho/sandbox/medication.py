"""Synthetic medication orders for the demo's patients in bed: the usual regimens of a French
ward (paracetamol, enoxaparin prophylaxis, a proton-pump inhibitor, tramadol if needed...),
drawn by the unit's kind and the patient's age, signed by a physician of the unit when the patient
came in. They go through the same checks as a signed order (medication.imports): a penicillin-
allergic patient never gets amoxicillin; most are already validated by the pharmacist."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from naho.medication.imports import ImportedOrder, ImportReport, import_orders
from naho.medication.rules import FrequencyKind
from naho.medication.schemas import OrderCreate

VALIDATED_SHARE = 0.8
_ADULT_WARDS = frozenset({"medicine", "geriatrics", "oncology", "surgery", "rehabilitation", "icu", "maternity",
                          "psychiatry"})
_PROPHYLAXIS_WARDS = frozenset({"medicine", "geriatrics", "oncology", "surgery", "icu", "rehabilitation"})


@dataclass(frozen=True, slots=True)
class InBed:
    """A patient in bed as the seed admitted them."""

    patient_id: uuid.UUID
    encounter_id: uuid.UUID
    unit_kind: str
    age: int
    admitted_at: datetime
    physician_id: uuid.UUID | None
    physician_label: str | None


def _order(product: str, value: float, unit: str, route: str, frequency: FrequencyKind, **more: object) -> OrderCreate:
    return OrderCreate.model_validate({"product_code": product, "dose_value": value, "dose_unit": unit,
                                       "route": route, "frequency": frequency, **more})


def regimen(rng: random.Random, unit_kind: str, age: int) -> list[OrderCreate]:
    """The orders a patient of this age in this kind of unit is likely to have."""
    daily = FrequencyKind.TIMES_PER_DAY
    if age < 15:
        if unit_kind != "paediatrics":
            return []
        return [_order("PARA24SB", 15, "mg/kg", "PO", daily, times_per_day=4)]
    if unit_kind not in _ADULT_WARDS:
        return []
    orders = []
    if rng.random() < 0.7:
        orders.append(_order("PARA1GCP", 1, "g", "PO", daily, times_per_day=3))
    if unit_kind in _PROPHYLAXIS_WARDS and rng.random() < 0.6:
        orders.append(_order("ENOX4000", 4000, "UI", "SC", daily, times_per_day=1))
    if rng.random() < 0.3:
        orders.append(_order("ESOM20CP", 20, "mg", "PO", daily, times_per_day=1))
    if rng.random() < (0.6 if unit_kind == "surgery" else 0.2):
        orders.append(_order("TRAM50GEL", 50, "mg", "PO", FrequencyKind.IF_NEEDED, max_per_24h=4, every_hours=6,
                             indication="Douleur EVA > 4 malgré le paracétamol"))
    if age >= 50 and rng.random() < 0.25:
        orders.append(_order("AMLO5GEL", 5, "mg", "PO", daily, times_per_day=1))
    if unit_kind in ("medicine", "geriatrics") and age >= 60 and rng.random() < 0.15:
        orders.append(_order("FURO40CP", 40, "mg", "PO", daily, times_per_day=1))
    if unit_kind in ("medicine", "surgery") and rng.random() < 0.15:
        orders.append(_order("AMOX1GCP", 1, "g", "PO", daily, times_per_day=3, duration_days=7))
    return orders


def seed_orders(session: Session, patients: list[InBed], *, rng: random.Random, now: datetime) -> ImportReport:
    """Orders for the patients in bed, signed an hour after they came in (in the caller's
    transaction); those a check blocks are left out and counted."""
    items = []
    for p in patients:
        if p.physician_id is None or p.physician_label is None:
            continue
        signed = min(p.admitted_at + timedelta(hours=1), now)
        for order in regimen(rng, p.unit_kind, p.age):
            items.append(ImportedOrder(
                p.patient_id, p.encounter_id, order.model_copy(update={"starts_at": signed}), p.physician_id,
                p.physician_label, signed, "validated" if rng.random() < VALIDATED_SHARE else "pending"))
    return import_orders(session, items, now=now)
