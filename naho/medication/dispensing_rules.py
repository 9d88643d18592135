"""Pure rules of nominative dispensing (dispensation nominative): what the pharmacy prepares for
one patient's order over a period, and which pack may be given for an ordered product.

Sources: arrêté du 6 avril 2011 (the pharmacist analyses every prescription before dispensing;
narcotics follow their own register); Code de la santé publique R.5132-36 (the narcotics
register). Values in, lines out: no database, clock or file (STYLE R1).

Choices made here:

* Scheduled doses (once, n a day, every n hours) are the plan of care's (`schedule.due_between`),
  each with the units of product one administration takes (`rules.presentations_per_dose`),
  rounded up to whole units: half a tablet is dispensed as one tablet, which the nurse splits.
* A continuous infusion gets the bags (or vials) its rate consumes over the part of the period
  it runs, from the product's volume (mL/h) or strength (mg/h, µg/kg/min).
* An "if needed" order gets its maximum per 24 h times the days of the period it covers.
* A quantity that cannot be known (a per-kg dose without weight, a product without strength) is
  said with `units=None` and a reason, never guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from naho.medication import rules, schedule
from naho.platform.i18n import N_

#: The pharmacist's analysis that allows dispensing (medication_order.review_status).
VALIDATED = "validated"
_EPSILON = 1e-9


class NeedKind(StrEnum):
    DOSE = "dose"  # one scheduled administration
    INFUSION = "infusion"  # the bags a continuous infusion uses in the period
    IF_NEEDED = "if_needed"  # the most an "if needed" order may use in the period


@dataclass(frozen=True, slots=True)
class Need:
    """Units of the ordered product to dispense, due at `due_at` (None for "if needed");
    `units` None when unknown, with the reason (an English msgid) in `unknown`."""

    kind: NeedKind
    due_at: datetime | None
    sequence: int
    units: int | None
    exact_units: float | None
    unknown: str | None = None


def whole_units(exact: float) -> int:
    """Whole units to dispense for `exact` units of product (0.5 tablet → 1; 2.0000001 → 2)."""
    return max(1, math.ceil(exact - 1e-6))


def _overlap_hours(starts_at: datetime, ends_at: datetime | None, window_start: datetime,
                   window_end: datetime) -> float:
    start = max(starts_at, window_start)
    end = min(ends_at, window_end) if ends_at is not None else window_end
    return max(0.0, (end - start) / timedelta(hours=1))


def infusion_units(order: rules.Order, product: rules.Product, patient: rules.PatientContext,
                   hours: float) -> float | None:
    """Units (bags, vials) of `product` a continuous infusion at `order`'s rate uses in `hours`,
    or None if it cannot be known (volume rate of a product without volume, unknown weight...)."""
    dose = order.dose.parsed
    if dose.per_hour is None or hours <= 0:
        return None
    first = product.components[0]
    if dose.dimension is rules.Dimension.VOLUME and not (dose.per_kg or dose.per_m2):
        if first.volume_ml is None:
            return None
        return order.dose.value * dose.to_base * dose.per_hour * hours / first.volume_ml
    if first.amount is None:
        return None
    amounts = rules.order_amounts(order, product, patient, first.amount.unit)
    if amounts is None or amounts.hourly is None:
        return None
    return amounts.hourly * hours / first.amount.value


def needs(order: rules.Order, product: rules.Product, patient: rules.PatientContext, *,
          starts_at: datetime, ends_at: datetime | None, window_start: datetime,
          window_end: datetime) -> list[Need]:
    """What to dispense of one order for [window_start, window_end)."""
    frequency = order.frequency
    kind = frequency.kind
    if kind is rules.FrequencyKind.CONTINUOUS:
        hours = _overlap_hours(starts_at, ends_at, window_start, window_end)
        if hours <= 0:
            return []
        exact = infusion_units(order, product, patient, hours)
        return [_need(NeedKind.INFUSION, max(starts_at, window_start), 1, exact,
                      N_("Unknown quantity: the bags cannot be computed from the rate and the product."))]
    if kind is rules.FrequencyKind.IF_NEEDED:
        hours = _overlap_hours(starts_at, ends_at, window_start, window_end)
        if hours <= 0:
            return []
        per_dose = rules.presentations_per_dose(order, product, patient)
        days = math.ceil(hours / 24.0 - _EPSILON)
        exact = per_dose * frequency.doses_per_day() * days if per_dose is not None else None
        return [_need(NeedKind.IF_NEEDED, None, 1, exact,
                      N_("Unknown quantity: the units per dose cannot be computed (weight, strength)."))]
    per_dose = rules.presentations_per_dose(order, product, patient)
    return [_need(NeedKind.DOSE, due.at, due.sequence, per_dose,
                  N_("Unknown quantity: the units per dose cannot be computed (weight, strength)."))
            for due in schedule.due_between(frequency, starts_at, ends_at, window_start, window_end)]


def _need(kind: NeedKind, due_at: datetime | None, sequence: int, exact: float | None, why: str) -> Need:
    if exact is None or not math.isfinite(exact) or exact <= 0:
        return Need(kind, due_at, sequence, None, None, why)
    return Need(kind, due_at, sequence, whole_units(exact), exact)


def dispensable(review_status: str) -> bool:
    """Only an order the pharmacist validated is dispensed; the others await the analysis."""
    return review_status == VALIDATED


def is_narcotic(product: rules.Product, catalogue: rules.Catalogue) -> bool:
    """A narcotic (stupéfiant) product, or one holding a narcotic substance: its own register."""
    return product.narcotic or any(s.narcotic for s in catalogue.substances_of(product))


_Component = tuple[str, float | None, str | None, float | None]


def _composition(product: rules.Product) -> tuple[_Component, ...]:
    """Substances with their strength in base units (1 g = 1000 mg) and volume, in order."""
    out: list[_Component] = []
    for c in product.components:
        if c.amount is None:
            out.append((c.substance, None, None, c.volume_ml))
        else:
            unit = c.amount.parsed
            out.append((c.substance, round(c.amount.value * unit.to_base, 9), unit.dimension.value, c.volume_ml))
    return tuple(out)


def may_substitute(ordered: rules.Product, given: rules.Product, route: str) -> bool:
    """Whether a pack of `given` may be dispensed for an order of `ordered`: the same product, or
    an exact generic (same substances, same strengths and volumes) that has the order's route."""
    if given.code == ordered.code:
        return True
    if route not in given.routes:
        return False
    ordered_comp, given_comp = _composition(ordered), _composition(given)
    return ordered_comp == given_comp and all(strength is not None for _, strength, _, _ in given_comp)
