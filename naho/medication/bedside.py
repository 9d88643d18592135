"""The five rights at the bedside (right patient, drug, dose, route, time) and the statuses of the
plan of care's doses.

Pure: the order as signed, what was scanned and what the nurse states → a list of checks, each
passed, refusing (`blocking`) or a warning that is shown and traced (order not yet reviewed by the
pharmacist, late dose with its reason, partial dose with its reason, no scan with its reason).
Messages are English msgids formatted with their params, translated when shown. Sources: HAS,
"Outils de sécurisation et d'auto-évaluation de l'administration des médicaments" (2011, the
five rights) and the arrêté du 6 avril 2011 (every administration traced, a dose not given said
with its reason).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from naho.medication.dispensing_rules import may_substitute
from naho.medication.rules import (
    FrequencyKind,
    MedicationRuleError,
    Order,
    PatientContext,
    Product,
    parse_unit,
    presentations_per_dose,
)
from naho.medication.schedule import TIME_TOLERANCE, WARD_TZ
from naho.platform.i18n import N_

#: Two amounts of product units are the same below this relative difference (rounding of 1/3).
_SAME = 1e-6


class Outcome(StrEnum):
    GIVEN = "given"
    NOT_GIVEN = "not_given"
    PARTLY_GIVEN = "partly_given"


class NotGivenReason(StrEnum):
    PATIENT_REFUSED = "patient_refused"
    ABSENT = "absent"
    FASTING = "fasting"
    VOMITING = "vomiting"
    PRODUCT_UNAVAILABLE = "product_unavailable"
    CLINICAL_CONDITION = "clinical_condition"
    OTHER = "other"


class DoseStatus(StrEnum):
    """Where a due dose stands on the timeline."""

    TO_GIVE = "to_give"
    LATE = "late"
    GIVEN = "given"
    NOT_GIVEN = "not_given"
    PARTLY_GIVEN = "partly_given"


class Right(StrEnum):
    """What a check is about, as the bedside dialog lists them."""

    PATIENT = "patient"
    ORDER = "order"
    REVIEW = "review"
    DRUG = "drug"
    DOSE = "dose"
    ROUTE = "route"
    TIME = "time"
    REASON = "reason"
    RATE = "rate"


@dataclass(frozen=True, slots=True)
class Check:
    """One check's result: `passed`, else `blocking` (refused) or a warning, shown and traced."""

    right: Right
    passed: bool
    blocking: bool
    message: str
    params: tuple[tuple[str, str], ...] = ()

    def text(self, translate: Callable[[str], str] = lambda m: m) -> str:
        """The message in the reader's language: pass `naho.platform.i18n._`."""
        return translate(self.message).format(**dict(self.params))


def _ok(right: Right, message: str, **params: str) -> Check:
    return Check(right, True, False, message, tuple(sorted(params.items())))


def _block(right: Right, message: str, **params: str) -> Check:
    return Check(right, False, True, message, tuple(sorted(params.items())))


def _warn(right: Right, message: str, **params: str) -> Check:
    return Check(right, False, False, message, tuple(sorted(params.items())))


def blocked(checks: Sequence[Check]) -> bool:
    return any(c.blocking for c in checks)


def _num(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".").replace(".", ",")


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """The order version the dose belongs to, as the checks need it."""

    order: Order
    product: Product
    status: str
    review_status: str
    patient_ipp: str
    indication: str | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """What happens at the bedside. `amount` is in units of the product (tablets, ampoules...);
    `product` is the scanned product (None when no dose was scanned, then `no_scan_reason`)."""

    outcome: Outcome
    at: datetime
    route: str | None = None
    product: Product | None = None
    amount: float | None = None
    due_at: datetime | None = None
    wristband_ipp: str | None = None
    reason: str | None = None
    reason_code: NotGivenReason | None = None
    no_scan_reason: str | None = None
    #: Times the same "if needed" order was given before (any order of the window is fine).
    earlier_doses: tuple[datetime, ...] = field(default_factory=tuple)


def _text(value: str | None) -> str:
    return (value or "").strip()


def check_patient(facts: OrderFacts, attempt: Attempt) -> Check:
    """Right patient: the wristband's IPP is the order's patient's."""
    if attempt.wristband_ipp is None:
        if _text(attempt.no_scan_reason):
            return _warn(Right.PATIENT, N_("Wristband not scanned: {reason}"), reason=_text(attempt.no_scan_reason))
        return _block(Right.PATIENT, N_("Scan the patient's wristband."))
    if attempt.wristband_ipp != facts.patient_ipp:
        return _block(Right.PATIENT, N_("Wrong patient: this wristband (IPP {scanned}) is not the patient of "
                                        "this order (IPP {expected})."),
                      scanned=attempt.wristband_ipp, expected=facts.patient_ipp)
    return _ok(Right.PATIENT, N_("Right patient (IPP {ipp})."), ipp=facts.patient_ipp)


def check_order_in_force(facts: OrderFacts) -> list[Check]:
    """The order is active (not suspended, stopped or replaced); not yet reviewed is said."""
    found = [_ok(Right.ORDER, N_("The order is active."))] if facts.status == "active" else [
        _block(Right.ORDER, N_("The order is {status}: it is not given."), status=facts.status)]
    if facts.review_status == "pending":
        found.append(_warn(Right.REVIEW, N_("Not yet reviewed by the pharmacist.")))
    elif facts.review_status == "refused":
        found.append(_warn(Right.REVIEW, N_("The pharmacist refused this order: call the prescriber.")))
    return found


def same_medicine(ordered: Product, scanned: Product) -> bool:
    """A generic of the ordered product: exactly the same substances and strengths per unit (the
    pharmacy's rule of exact generics, whatever the route)."""
    return any(may_substitute(ordered, scanned, route) for route in scanned.routes)


def check_drug(facts: OrderFacts, scanned: Product) -> Check:
    """Right drug: the ordered product, or one with the same substances and strengths per unit
    that may be given by the ordered route."""
    ordered = facts.product
    if scanned.code == ordered.code:
        return _ok(Right.DRUG, N_("Right drug: {name}."), name=scanned.name)
    if not same_medicine(ordered, scanned):
        return _block(Right.DRUG, N_("Wrong drug: {scanned} is not {ordered}."), scanned=scanned.name,
                      ordered=ordered.name)
    if facts.order.route not in scanned.routes:
        return _block(Right.DRUG, N_("{scanned} is not given by the route ordered ({route})."),
                      scanned=scanned.name, route=facts.order.route)
    return _ok(Right.DRUG, N_("Equivalent drug: {scanned} for {ordered} (same substances and strengths)."),
               scanned=scanned.name, ordered=ordered.name)


def check_dose(facts: OrderFacts, attempt: Attempt, product: Product, patient: PatientContext) -> Check:
    """Right dose: the units given are those one administration takes (`presentations_per_dose`).
    Less is accepted only as a partial dose with its reason; more is always refused."""
    expected = presentations_per_dose(facts.order, product, patient)
    if expected is None:
        return _warn(Right.DOSE, N_("The number of units cannot be computed: check the dose by eye ({dose})."),
                     dose=f"{_num(facts.order.dose.value)} {facts.order.dose.unit}")
    given = attempt.amount if attempt.amount is not None else expected
    if not (math.isfinite(given) and given > 0):
        return _block(Right.DOSE, N_("The amount given is a positive number."))
    if abs(given - expected) <= _SAME * max(1.0, expected):
        if attempt.outcome is Outcome.PARTLY_GIVEN:
            return _block(Right.DOSE, N_("A partial dose is less than the whole dose ({expected} units)."),
                          expected=_num(expected))
        return _ok(Right.DOSE, N_("Right dose: {expected} unit(s)."), expected=_num(expected))
    if given > expected:
        return _block(Right.DOSE, N_("Wrong dose: {given} unit(s) instead of {expected}."), given=_num(given),
                      expected=_num(expected))
    if attempt.outcome is Outcome.PARTLY_GIVEN and _text(attempt.reason):
        return _warn(Right.DOSE, N_("Partial dose: {given} of {expected} unit(s) ({reason})."), given=_num(given),
                     expected=_num(expected), reason=_text(attempt.reason))
    return _block(Right.DOSE, N_("Wrong dose: {given} unit(s) instead of {expected}; a partial dose is recorded "
                                 "as such with its reason."), given=_num(given), expected=_num(expected))


def check_route(facts: OrderFacts, attempt: Attempt) -> Check:
    """Right route: the route used is the order's."""
    used = attempt.route or facts.order.route
    if used != facts.order.route:
        return _block(Right.ROUTE, N_("Wrong route: {used} instead of {ordered}."), used=used,
                      ordered=facts.order.route)
    return _ok(Right.ROUTE, N_("Right route: {route}."), route=used)


def check_time(facts: OrderFacts, attempt: Attempt, tolerance: timedelta = TIME_TOLERANCE) -> Check:
    """Right time. A scheduled dose: not before its due time less the tolerance; later than the
    tolerance with a reason. An 'if needed' dose: its indication stated, within the maximum per
    24 h and the minimum interval."""
    frequency = facts.order.frequency
    if frequency.kind is FrequencyKind.IF_NEEDED:
        return _check_if_needed(facts, attempt)
    if attempt.due_at is None:
        return _block(Right.TIME, N_("Choose the due dose this administration is for."))
    if attempt.at < attempt.due_at - tolerance:
        return _block(Right.TIME, N_("Too early: this dose is due at {due}."), due=_hhmm(attempt.due_at))
    if attempt.at > attempt.due_at + tolerance:
        if _text(attempt.reason):
            return _warn(Right.TIME, N_("Late (due at {due}): {reason}"), due=_hhmm(attempt.due_at),
                         reason=_text(attempt.reason))
        return _block(Right.TIME, N_("Late (due at {due}): state the reason for the delay."),
                      due=_hhmm(attempt.due_at))
    return _ok(Right.TIME, N_("Right time (due at {due})."), due=_hhmm(attempt.due_at))


def _hhmm(at: datetime) -> str:
    return at.astimezone(WARD_TZ).strftime("%d/%m %H:%M")


def _check_if_needed(facts: OrderFacts, attempt: Attempt) -> Check:
    frequency = facts.order.frequency
    if not _text(attempt.reason):
        return _block(Right.TIME, N_("State why this 'if needed' dose is given ({indication})."),
                      indication=facts.indication or "")
    day = [t for t in attempt.earlier_doses if attempt.at - timedelta(hours=24) < t <= attempt.at]
    cap = frequency.max_per_24h or 0
    if len(day) >= cap:
        return _block(Right.TIME, N_("Already {count} dose(s) in 24 h: the maximum is {max}."),
                      count=str(len(day)), max=str(cap))
    if frequency.every_hours and day:
        next_at = max(day) + timedelta(hours=frequency.every_hours)
        if attempt.at < next_at:
            return _block(Right.TIME, N_("Too soon after the last dose: not before {at}."), at=_hhmm(next_at))
    return _ok(Right.TIME, N_("'If needed' dose {n} of {max} in 24 h: {reason}"), n=str(len(day) + 1),
               max=str(cap), reason=_text(attempt.reason))


def check_not_given(attempt: Attempt) -> Check:
    """A dose not given says why (coded; 'other' with a text)."""
    if attempt.reason_code is None:
        return _block(Right.REASON, N_("Choose why the dose is not given."))
    if attempt.reason_code is NotGivenReason.OTHER and not _text(attempt.reason):
        return _block(Right.REASON, N_("Describe the reason the dose is not given."))
    return _ok(Right.REASON, N_("Not given: {reason}"), reason=_text(attempt.reason) or str(attempt.reason_code))


def check_administration(facts: OrderFacts, attempt: Attempt, patient: PatientContext,
                         ordered_instead: Product | None = None) -> list[Check]:
    """Every check of one administration, in the order the dialog shows them. The dose is the
    scanned product, or with a stated `no_scan_reason` the ordered one (`ordered_instead`)."""
    checks = [check_patient(facts, attempt), *check_order_in_force(facts)]
    if attempt.outcome is Outcome.NOT_GIVEN:
        return [*checks, check_not_given(attempt)]
    product = attempt.product
    if product is None:
        if not _text(attempt.no_scan_reason):
            return [*checks, _block(Right.DRUG, N_("Scan the dose's label."))]
        product = ordered_instead or facts.product
        checks.append(_warn(Right.DRUG, N_("Dose not scanned: {reason}"), reason=_text(attempt.no_scan_reason)))
    else:
        checks.append(check_drug(facts, product))
    return [*checks, check_dose(facts, attempt, product, patient), check_route(facts, attempt),
            check_time(facts, attempt)]


# --- continuous infusions -----------------------------------------------------------------------------


def check_rate(dose_rate: float, ordered: float, unit: str, titration: tuple[float | None, float | None]) -> Check:
    """A continuous infusion's dose rate (in the order's unit): within the titration range the
    prescriber set, else the rate ordered."""
    low, high = titration
    if not (math.isfinite(dose_rate) and dose_rate > 0):
        return _block(Right.RATE, N_("The rate is a positive number."))
    if low is None and high is None:
        if abs(dose_rate - ordered) > _SAME * max(1.0, ordered):
            return _block(Right.RATE, N_("The rate ordered is {ordered} {unit}: another rate needs a new order "
                                         "or a titration range."), ordered=_num(ordered), unit=unit)
        return _ok(Right.RATE, N_("Rate ordered: {rate} {unit}."), rate=_num(dose_rate), unit=unit)
    if (low is not None and dose_rate < low - _SAME) or (high is not None and dose_rate > high + _SAME):
        return _block(Right.RATE, N_("{rate} {unit} is outside the titration range ({low} to {high} {unit})."),
                      rate=_num(dose_rate), unit=unit, low=_num(low) if low is not None else "—",
                      high=_num(high) if high is not None else "—")
    return _ok(Right.RATE, N_("{rate} {unit}, within the titration range."), rate=_num(dose_rate), unit=unit)


# --- the timeline -----------------------------------------------------------------------------------------


def dose_status(due_at: datetime, now: datetime, outcome: Outcome | str | None,
                tolerance: timedelta = TIME_TOLERANCE) -> DoseStatus:
    """A due dose's status: its recorded outcome, else late past the tolerance, else to give."""
    if outcome is not None:
        return DoseStatus(str(outcome))
    return DoseStatus.LATE if now > due_at + tolerance else DoseStatus.TO_GIVE


def doses_in_24h(given_at: Sequence[datetime], now: datetime) -> int:
    """How many 'if needed' doses were given in the 24 hours before `now`."""
    return sum(1 for t in given_at if now - timedelta(hours=24) < t <= now)


def dose_rate_from_pump(rate_ml_h: float, concentration_value: float | None, concentration_unit: str | None,
                        order_unit: str, weight_kg: float | None) -> float | None:
    """The dose rate (in the order's unit: mg/h, µg/kg/min...) a pump set at `rate_ml_h` gives with
    the preparation's concentration (`1 mg/mL`), or None when it cannot be known."""
    if not concentration_value or not concentration_unit or "/" not in concentration_unit:
        return None
    amount_unit, volume_unit = (p.strip() for p in concentration_unit.split("/", 1))
    if volume_unit != "mL":
        return None
    ordered = parse_unit(order_unit)
    if ordered.per_hour is None or ordered.per_m2 or (ordered.per_kg and not weight_kg):
        return None
    try:
        per_hour = rate_ml_h * concentration_value * parse_unit(amount_unit).to_base / ordered.to_base
    except MedicationRuleError:
        return None
    if parse_unit(amount_unit).dimension is not ordered.dimension:
        return None
    rate = per_hour / ordered.per_hour
    return rate / weight_kg if ordered.per_kg and weight_kg else rate
