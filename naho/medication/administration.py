"""Use cases of the plan of care as given (eMAR): the unit's timeline, recording an administration
at the bedside after the wristband and dose scans (the five rights, `bedside`), continuous
infusions (start, rate change, bag change, stop), the anaesthetist's drug record and the
wristband.

Same shape as `service`: the one door (purpose care) for a patient's data, the pure checks,
then write and audit in one transaction. A refused administration writes nothing but its audit
event (committed alone, as a refused order is). The unit's timeline is the bed board's kind of
read: open to the unit's nurses and physicians, one audit event listing the patients shown,
one query per kind of row whatever the number of beds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from naho.identity import service as identity
from naho.medication import bedside, dispensing, rules, service
from naho.medication.barcodes import ExpiredLot, PackScan, product_for
from naho.medication.bedside import Check, NotGivenReason, Outcome, Right
from naho.medication.models import MedicationAdministration, MedicationOrder
from naho.medication.scan import DoseScan, ScanKind, read_dose, read_wristband
from naho.medication.schedule import WARD_TZ, Due, due_between
from naho.medication.schemas import OrderCreate, OrderPublic, StatusChange
from naho.platform import audit, i18n
from naho.platform.access import CareRelationshipPort, Purpose, access_patient, reading_purpose
from naho.platform.errors import Conflict, DomainError, Forbidden
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.record import service as record
from naho.staff import service as staff

GIVERS = frozenset({Role.NURSE, Role.PHYSICIAN})
#: How far back 'if needed' doses are counted, and the timeline's default window.
DAY = timedelta(hours=24)
HOURS_BEFORE, HOURS_AFTER = 4, 12
_INFUSION_EVENTS = ("infusion_start", "rate_change", "bag_change", "infusion_stop")


# --- errors ---------------------------------------------------------------------------------------


class AdministrationBlocked(DomainError):
    """One of the five rights is not met: nothing is recorded (the checks are listed)."""

    title = "Administration refused"


class AlreadyRecorded(Conflict):
    """This due dose (or this infusion's start) is already recorded."""

    title = "Already recorded"


class AdministrationNotAllowed(Forbidden):
    """Only nurses and physicians record administrations; the timeline is the unit's."""


class AdministrationInvalid(DomainError):
    """The request does not name a dose of this order (no such due time, wrong kind of order)."""

    title = "Invalid administration"


class DoseNotResolvable(DomainError):
    """The dose's label cannot be turned into a product (yet)."""


# --- shapes ---------------------------------------------------------------------------------------


class CheckPublic(BaseModel):
    right: str
    passed: bool
    blocking: bool
    message: str  # in the reader's language


class AdministrationCreate(BaseModel):
    """One administration at the bedside: the scans as typed by the scanner (or why a scan was
    skipped), the due dose it is for (`due_at`, from the timeline; none for 'if needed' doses,
    nor for a 'once' order), the outcome, and for a partial dose the units given."""

    order_id: uuid.UUID
    due_at: datetime | None = None
    outcome: Outcome = Outcome.GIVEN
    patient_scan: str | None = Field(default=None, max_length=120)
    dose_scan: str | None = Field(default=None, max_length=200)
    no_scan_reason: str | None = Field(default=None, max_length=500)
    amount: float | None = Field(default=None, gt=0)
    route: str | None = Field(default=None, max_length=10)
    reason_code: NotGivenReason | None = None
    reason: str | None = Field(default=None, max_length=1000)


class InfusionEventCreate(BaseModel):
    """Start, rate change, bag change or stop of a continuous infusion. `dose_rate` is in the
    order's unit (mg/h...); `rate_ml_h` the pump's setting."""

    kind: str = Field(pattern=r"^(infusion_start|rate_change|bag_change|infusion_stop)$")
    dose_rate: float | None = Field(default=None, gt=0)
    rate_ml_h: float | None = Field(default=None, gt=0)
    bag_volume_ml: float | None = Field(default=None, gt=0)
    patient_scan: str | None = Field(default=None, max_length=120)
    dose_scan: str | None = Field(default=None, max_length=200)
    no_scan_reason: str | None = Field(default=None, max_length=500)
    reason: str | None = Field(default=None, max_length=1000)


class AdministrationPublic(BaseModel):
    id: uuid.UUID | None  # None for a check run without recording
    #: A check run only: a blocking check stands (recording would be refused).
    blocked: bool = False
    order_id: uuid.UUID
    patient_id: uuid.UUID
    kind: str
    outcome: str
    at: datetime
    due_at: datetime | None
    due_sequence: int | None
    product_code: str | None
    lot: str | None
    amount: float | None
    route: str | None
    dose_rate: float | None = None
    rate_ml_h: float | None = None
    recorded_by: str
    unreviewed: bool
    checks: list[CheckPublic]


class DoseLine(BaseModel):
    """A due dose on the timeline, with its status (bedside.DoseStatus)."""

    due_at: datetime
    sequence: int
    status: str
    administered_at: datetime | None = None
    recorded_by: str | None = None


class OrderLine(BaseModel):
    order_id: uuid.UUID
    product_code: str
    product_name: str
    dose: str
    route: str
    frequency: str
    indication: str | None
    unreviewed: bool
    #: The pharmacist refused this version: the prescriber is to be called before giving it.
    review_refused: bool = False
    #: Not active only for an infusion still running after its order ended (to be stopped).
    order_status: str = "active"
    doses: list[DoseLine] = []
    #: 'if needed' orders: doses given in the last 24 h and the maximum.
    given_24h: int | None = None
    max_per_24h: int | None = None
    #: Continuous infusions: started, current rate (order's unit and mL/h), stopped.
    infusion: str | None = None  # not_started | running | stopped
    dose_rate: float | None = None
    rate_ml_h: float | None = None


class PatientLine(BaseModel):
    patient_id: uuid.UUID
    name: str
    ipp: str
    birth_date: date
    bed: str
    room: str
    orders: list[OrderLine]


class Timeline(BaseModel):
    unit_code: str
    unit_name: str
    start: datetime
    end: datetime
    now: datetime
    patients: list[PatientLine]


class Wristband(BaseModel):
    patient_id: uuid.UUID
    ipp: str
    code: str
    birth_name: str
    used_name: str | None
    first_names: str
    birth_date: date
    sex: str


# --- scans and dose resolution --------------------------------------------------------------------


class ResolvedDose(BaseModel):
    product_code: str
    lot: str | None = None
    expiry: date | None = None
    #: A nominatively dispensed dose names its patient and order: given to another, it is refused.
    patient_id: uuid.UUID | None = None
    order_id: uuid.UUID | None = None


DoseResolver = Callable[[Session, DoseScan, rules.Catalogue], ResolvedDose]


def _unit_dose(session: Session, scan: DoseScan, catalogue: rules.Catalogue) -> ResolvedDose:
    product = catalogue.product(scan.product_code or "")
    return ResolvedDose(product_code=product.code, lot=scan.lot, expiry=scan.expiry)


def _pack(session: Session, scan: DoseScan, catalogue: rules.Catalogue) -> ResolvedDose:
    pack = PackScan(gtin="0" + (scan.cip13 or ""), cip13=scan.cip13, lot=scan.lot, expiry=scan.expiry, serial=None)
    return ResolvedDose(product_code=product_for(pack, catalogue).code, lot=scan.lot, expiry=scan.expiry)


def _dispensed(session: Session, scan: DoseScan, catalogue: rules.Catalogue) -> ResolvedDose:
    """A label printed by the pharmacy at nominative dispensing: the dose it names, for whom."""
    dose = dispensing.dose_of_label(session, scan.raw)
    if dose is None:
        raise DoseNotResolvable("no dose was dispensed under this label", rule="UnknownDispensedDose")
    return ResolvedDose(product_code=dose.product_code, lot=dose.lot, expiry=dose.expiry,
                        patient_id=dose.patient_id, order_id=dose.order_id)


#: How a dose's label becomes a product, by kind of label.
DOSE_RESOLVERS: dict[ScanKind, DoseResolver] = {
    ScanKind.UNIT_DOSE: _unit_dose,
    ScanKind.PACK: _pack,
    ScanKind.DISPENSED_DOSE: _dispensed,
}

#: What a refused scan says at the bedside, by error.
_SCAN_REFUSALS: dict[str, str] = {
    "ExpiredLot": i18n.N_("Expired lot {lot} ({expiry}): do not use it."),
    "NotAWristband": i18n.N_("This is not a wristband: scan the patient's wristband first."),
    "NotADose": i18n.N_("This is a wristband: scan the dose's label."),
    "DoseNotResolvable": i18n.N_("No dose was dispensed under this label: scan the unit-dose label or the box."),
    "UnknownProduct": i18n.N_("This product is not in the formulary."),
    "NotAMedicinePack": i18n.N_("This code is not a medicine's."),
    "ExpiryUnknown": i18n.N_("The box's code carries no expiry date: check the box and give the reason "
                             "for not scanning."),
}
_UNREADABLE = i18n.N_("Unreadable code: scan again.")


def _refused_scan(right: Right, exc: DomainError) -> Check:
    name = type(exc).__name__
    if isinstance(exc, ExpiredLot):
        params = (("expiry", str(exc.extra.get("expiry", ""))), ("lot", str(exc.extra.get("lot") or "?")))
        return Check(right, False, True, _SCAN_REFUSALS[name], params)
    return Check(right, False, True, _SCAN_REFUSALS.get(name, _UNREADABLE))


def _read_patient(text: str | None, today: date) -> tuple[str | None, Check | None]:
    if not (text or "").strip():
        return None, None
    try:
        return read_wristband(text or "", today).ipp, None
    except rules.MedicationRuleError as exc:  # unreadable, or not a wristband
        return None, _refused_scan(Right.PATIENT, exc)


def _read_dose(session: Session, text: str | None, today: date,
               catalogue: rules.Catalogue) -> tuple[ResolvedDose | None, Check | None]:
    if not (text or "").strip():
        return None, None
    try:
        scan = read_dose(text or "", today)
        return DOSE_RESOLVERS[scan.kind](session, scan, catalogue), None
    except (rules.MedicationRuleError, DoseNotResolvable) as exc:  # unreadable, expired, unknown, unsupported
        return None, _refused_scan(Right.DRUG, exc)


def _merge(checks: list[Check], refused: list[Check]) -> list[Check]:
    """The scans' refusals in place of the checks of the same right."""
    rights = {c.right for c in refused}
    return [*refused, *(c for c in checks if c.right not in rights)]


def _public_checks(checks: list[Check]) -> list[CheckPublic]:
    return [CheckPublic(right=str(c.right), passed=c.passed, blocking=c.blocking, message=c.text(i18n._))
            for c in checks]


def _stored_checks(checks: list[Check]) -> list[dict[str, Any]]:
    return [{"right": str(c.right), "passed": c.passed, "blocking": c.blocking, "message": c.message,
             "params": dict(c.params)} for c in checks]


# --- recording ------------------------------------------------------------------------------------


def _require_giver(actor: Actor) -> None:
    if not actor.roles & GIVERS:
        raise AdministrationNotAllowed("only nurses and physicians record administrations")


def _today(now: datetime) -> date:
    return now.astimezone(WARD_TZ).date()


def _frequency(row: MedicationOrder) -> rules.Frequency:
    return rules.Frequency(rules.FrequencyKind(row.frequency), row.times_per_day, row.every_hours, row.max_per_24h)


def _due_of(row: MedicationOrder, due_at: datetime | None) -> Due:
    """The scheduled dose at `due_at` (a 'once' order's only dose when none is named)."""
    if due_at is None and row.frequency == rules.FrequencyKind.ONCE:
        due_at = row.starts_at
    if due_at is None:
        raise AdministrationInvalid("name the due dose (due_at)", rule="DueDoseRequired")
    found = [d for d in due_between(_frequency(row), row.starts_at, row.ends_at, due_at - timedelta(minutes=1),
                                    due_at + timedelta(minutes=1)) if d.at == due_at]
    if not found:
        raise AdministrationInvalid("no dose of this order is due at that time", rule="NoSuchDueDose")
    return found[0]


def _patient_context(row: MedicationOrder, birth_date: date, now: datetime) -> rules.PatientContext:
    """What the dose computation needs: the weight and height the order was signed with."""
    return rules.PatientContext(age_years=max(0.0, (now.date() - birth_date).days / 365.25),
                                weight_kg=row.weight_kg, height_cm=row.height_cm)


def _earlier_if_needed(s: Session, row: MedicationOrder, now: datetime) -> tuple[datetime, ...]:
    """'If needed' doses of the same product given to the patient in the last 24 h (any version)."""
    return tuple(s.scalars(select(MedicationAdministration.at).where(
        MedicationAdministration.patient_id == row.patient_id, MedicationAdministration.kind == "if_needed",
        MedicationAdministration.product_code == row.product_code,
        MedicationAdministration.outcome != str(Outcome.NOT_GIVEN), MedicationAdministration.at > now - DAY)))


def _refuse(s: Session, actor: Actor, row: MedicationOrder, checks: list[Check], now: datetime, action: str) -> None:
    """Trace the refusal (committed alone, with the door's trace) and raise it with the checks."""
    audit.record(s, actor, "medication:administration:refused", at=now, patient_id=row.patient_id,
                 target=str(row.id), details={"action": action, "refused": [
                     {"right": str(c.right), "message": c.message} for c in checks if c.blocking]})
    s.commit()
    raise AdministrationBlocked("the administration is refused: " + "; ".join(
        c.text() for c in checks if c.blocking), checks=[c.model_dump() for c in _public_checks(checks)])


_ALREADY = i18n.N_("This dose was already recorded ({at}, {who}).")
_OTHER_PATIENT = i18n.N_("This dose was dispensed for another patient: do not give it.")
_OTHER_ORDER = i18n.N_("This dose was dispensed for another order of this patient: check the label.")


def _labelled_for_another(s: Session, resolved: ResolvedDose | None, row: MedicationOrder) -> Check | None:
    """A nominative dose is given to the patient and for the order (this version or an earlier one
    it replaced) it was dispensed for, never another."""
    if resolved is None or resolved.patient_id is None:
        return None
    if resolved.patient_id != row.patient_id:
        return Check(Right.PATIENT, False, True, _OTHER_PATIENT)
    versions, previous = {row.id}, row.replaces_id
    while previous is not None and previous not in versions:
        versions.add(previous)
        previous = s.scalars(select(MedicationOrder.replaces_id).where(MedicationOrder.id == previous)).first()
    if resolved.order_id is not None and resolved.order_id not in versions:
        return Check(Right.DRUG, False, True, _OTHER_ORDER)
    return None


def _already_recorded(s: Session, order_id: uuid.UUID, sequence: int | None) -> Check | None:
    """A blocking check when this due dose (or this infusion's start) is already recorded."""
    if sequence is None:
        return None
    done = s.execute(select(MedicationAdministration.at, MedicationAdministration.recorded_by).where(
        MedicationAdministration.order_id == order_id, MedicationAdministration.due_sequence == sequence)).first()
    if done is None:
        return None
    return Check(Right.TIME, False, True, _ALREADY, (("at", i18n.local_datetime(done.at)), ("who", done.recorded_by)))


def _insert(s: Session, adm: MedicationAdministration) -> None:
    """Write one administration; the same due dose twice is a conflict (409, the door's trace kept)."""
    if _already_recorded(s, adm.order_id, adm.due_sequence) is not None:
        s.commit()
        raise AlreadyRecorded("this dose is already recorded")
    s.add(adm)
    try:
        s.flush()
    except IntegrityError:  # recorded meanwhile by someone else
        s.rollback()
        raise AlreadyRecorded("this dose is already recorded") from None


def record_administration(uow: UnitOfWork, actor: Actor, data: AdministrationCreate, port: CareRelationshipPort,
                          *, check_only: bool = False) -> AdministrationPublic:
    """Check the five rights for one dose and record it (nurses and physicians of the care team).
    A blocking check refuses it (422, checks listed, audited); a dose already recorded is 409.
    With `check_only` the checks are answered (`blocked` when one refuses) and nothing is written
    but the door's trace: the bedside dialog asks after each scan."""
    _require_giver(actor)
    with uow:
        s, now = uow.session, uow.clock.now()
        action = "medication:administration:check" if check_only else "medication:administration:record"
        row = service.open_order(s, actor, data.order_id, port, now, action)
        if row.frequency == rules.FrequencyKind.CONTINUOUS:
            raise AdministrationInvalid("a continuous infusion is started, changed and stopped as such",
                                        rule="UseInfusionEvents")
        if_needed = row.frequency == rules.FrequencyKind.IF_NEEDED
        due = None if if_needed else _due_of(row, data.due_at)
        catalogue = service.catalogue(s)
        person = identity.summaries(s, [row.patient_id])[row.patient_id]
        today = _today(now)
        ipp, patient_refusal = _read_patient(data.patient_scan, today)
        resolved, dose_refusal = _read_dose(s, data.dose_scan, today, catalogue)
        facts = bedside.OrderFacts(service.rule_order_of(row), catalogue.product(row.product_code), row.status,
                                   row.review_status, person.ipp, row.indication)
        attempt = bedside.Attempt(
            outcome=data.outcome, at=now, route=data.route, amount=data.amount, due_at=due.at if due else None,
            product=catalogue.product(resolved.product_code) if resolved else None, wristband_ipp=ipp,
            reason=data.reason, reason_code=data.reason_code,
            no_scan_reason=data.no_scan_reason if not (patient_refusal or dose_refusal) else None,
            earlier_doses=_earlier_if_needed(s, row, now) if if_needed else ())
        context = _patient_context(row, person.birth_date, now)
        checks = bedside.check_administration(facts, attempt, context)
        checks = _merge(checks, [c for c in (patient_refusal, dose_refusal, _labelled_for_another(s, resolved, row))
                                 if c is not None])
        if check_only and (done := _already_recorded(s, row.id, due.sequence if due else None)):
            checks.append(done)  # said at once to a second nurse scanning the same dose
        if bedside.blocked(checks) and not check_only:
            _refuse(s, actor, row, checks, now, "record")
        given = data.outcome is not Outcome.NOT_GIVEN
        adm = MedicationAdministration(
            id=uuid.uuid4(), patient_id=row.patient_id, order_id=row.id, order_version=row.version,
            kind="if_needed" if if_needed else "dose", outcome=str(data.outcome), due_at=due.at if due else None,
            due_sequence=due.sequence if due else None, at=now,
            product_code=(resolved.product_code if resolved else row.product_code) if given else None,
            lot=resolved.lot if resolved else None, expiry=resolved.expiry if resolved else None,
            amount=(data.amount or rules.presentations_per_dose(facts.order, attempt.product or facts.product,
                                                                context)) if given else None,
            route=(data.route or row.route) if given else None, reason_code=str(data.reason_code or "") or None,
            reason=(data.reason or "").strip() or None, patient_scan=(data.patient_scan or "").strip() or None,
            dose_scan=(data.dose_scan or "").strip() or None,
            no_scan_reason=(data.no_scan_reason or "").strip() or None,
            unreviewed=row.review_status == service.REVIEW_PENDING, checks=_stored_checks(checks),
            recorded_by_id=actor.account_id, recorded_by=actor.label)
        if check_only:
            public = _public(adm, checks, stored=False)
            uow.commit()
            return public
        _insert(s, adm)
        warnings = [c.message for c in checks if not c.passed]
        audit.record(s, actor, "medication:administration:recorded", at=now, patient_id=row.patient_id,
                     target=str(adm.id), reason=adm.reason or adm.no_scan_reason,
                     details={"order": str(row.id), "version": row.version, "due_sequence": adm.due_sequence,
                              "outcome": adm.outcome, "product": adm.product_code, "lot": adm.lot,
                              "unreviewed": adm.unreviewed, "warnings": warnings})
        public = _public(adm, checks)
        uow.commit()
        return public


def _public(adm: MedicationAdministration, checks: list[Check], *, stored: bool = True) -> AdministrationPublic:
    return AdministrationPublic(
        id=adm.id if stored else None, blocked=bedside.blocked(checks), order_id=adm.order_id,
        patient_id=adm.patient_id, kind=adm.kind,
        outcome=adm.outcome, at=adm.at, due_at=adm.due_at, due_sequence=adm.due_sequence,
        product_code=adm.product_code, lot=adm.lot, amount=adm.amount, route=adm.route, dose_rate=adm.dose_rate,
        rate_ml_h=adm.rate_ml_h, recorded_by=adm.recorded_by, unreviewed=adm.unreviewed,
        checks=_public_checks(checks))


# --- continuous infusions -------------------------------------------------------------------------


def _infusion_state(events: list[MedicationAdministration]) -> tuple[str, float | None, float | None]:
    """(not_started | running | stopped, current dose rate, current mL/h) from the events in order."""
    state, dose_rate, ml_h = "not_started", None, None
    for e in events:
        if e.kind == "infusion_stop":
            state = "stopped"
        elif e.kind in ("infusion_start", "rate_change"):
            state = "running"
            dose_rate, ml_h = e.dose_rate or dose_rate, e.rate_ml_h or ml_h
    return state, dose_rate, ml_h


_NEEDS = {"infusion_start": "not_started", "rate_change": "running", "bag_change": "running",
          "infusion_stop": "running"}
_STATE_REFUSALS = {"not_started": i18n.N_("The infusion is not started."),
                   "running": i18n.N_("The infusion is already running."),
                   "stopped": i18n.N_("The infusion is stopped.")}


def record_infusion_event(uow: UnitOfWork, actor: Actor, order_id: uuid.UUID, data: InfusionEventCreate,
                          port: CareRelationshipPort) -> AdministrationPublic:
    """Start, change the rate of, change the bag of, or stop a continuous infusion. The start and
    each bag are scanned (wristband, dose); the rate stays within the order's titration range, or
    is the rate ordered when the prescriber set none."""
    _require_giver(actor)
    with uow:
        s, now = uow.session, uow.clock.now()
        row = service.open_order(s, actor, order_id, port, now, "medication:infusion:record")
        if row.frequency != rules.FrequencyKind.CONTINUOUS:
            raise AdministrationInvalid("only a continuous infusion has a rate", rule="NotAnInfusion")
        events = list(s.scalars(select(MedicationAdministration).where(
            MedicationAdministration.order_id == row.id, MedicationAdministration.kind.in_(_INFUSION_EVENTS))
            .order_by(MedicationAdministration.at)))
        state, _rate, _ml_h = _infusion_state(events)
        catalogue = service.catalogue(s)
        person = identity.summaries(s, [row.patient_id])[row.patient_id]
        facts = bedside.OrderFacts(service.rule_order_of(row), catalogue.product(row.product_code), row.status,
                                   row.review_status, person.ipp, row.indication)
        checks = bedside.check_order_in_force(facts) if data.kind != "infusion_stop" else []
        if state != _NEEDS[data.kind]:
            checks.append(Check(Right.ORDER, False, True, _STATE_REFUSALS[state]))
        resolved = None
        if data.kind in ("infusion_start", "bag_change"):
            today = _today(now)
            ipp, patient_refusal = _read_patient(data.patient_scan, today)
            resolved, dose_refusal = _read_dose(s, data.dose_scan, today, catalogue)
            attempt = bedside.Attempt(outcome=Outcome.GIVEN, at=now, wristband_ipp=ipp,
                                      no_scan_reason=data.no_scan_reason)
            found = [bedside.check_patient(facts, attempt)]
            if resolved is not None:
                found.append(bedside.check_drug(facts, catalogue.product(resolved.product_code)))
            elif not (data.no_scan_reason or "").strip():
                found.append(Check(Right.DRUG, False, True, i18n.N_("Scan the dose's label.")))
            checks += _merge(found, [c for c in (patient_refusal, dose_refusal) if c is not None])
        dose_rate = data.dose_rate
        if data.kind in ("infusion_start", "rate_change"):
            if dose_rate is None and data.rate_ml_h is not None:
                dose_rate = bedside.dose_rate_from_pump(data.rate_ml_h, row.concentration_value,
                                                        row.concentration_unit, row.dose_unit, row.weight_kg)
            if dose_rate is None:
                checks.append(Check(Right.RATE, False, True, i18n.N_("State the dose rate ({unit})."),
                                    (("unit", row.dose_unit),)))
            else:
                checks.append(bedside.check_rate(dose_rate, row.dose_value, row.dose_unit,
                                                 (row.titration_min, row.titration_max)))
        if bedside.blocked(checks):
            _refuse(s, actor, row, checks, now, data.kind)
        adm = MedicationAdministration(
            id=uuid.uuid4(), patient_id=row.patient_id, order_id=row.id, order_version=row.version, kind=data.kind,
            outcome=str(Outcome.GIVEN), due_at=row.starts_at if data.kind == "infusion_start" else None,
            due_sequence=1 if data.kind == "infusion_start" else None, at=now,
            product_code=resolved.product_code if resolved else None, lot=resolved.lot if resolved else None,
            expiry=resolved.expiry if resolved else None, route=row.route, dose_rate=dose_rate,
            rate_ml_h=data.rate_ml_h, bag_volume_ml=data.bag_volume_ml, reason=(data.reason or "").strip() or None,
            patient_scan=(data.patient_scan or "").strip() or None, dose_scan=(data.dose_scan or "").strip() or None,
            no_scan_reason=(data.no_scan_reason or "").strip() or None,
            unreviewed=row.review_status == service.REVIEW_PENDING, checks=_stored_checks(checks),
            recorded_by_id=actor.account_id, recorded_by=actor.label)
        _insert(s, adm)
        audit.record(s, actor, f"medication:infusion:{data.kind.removeprefix('infusion_')}", at=now,
                     patient_id=row.patient_id, target=str(adm.id), reason=adm.reason or adm.no_scan_reason,
                     details={"order": str(row.id), "version": row.version, "dose_rate": dose_rate,
                              "rate_ml_h": data.rate_ml_h, "bag_volume_ml": data.bag_volume_ml, "lot": adm.lot})
        public = _public(adm, checks)
        uow.commit()
        return public


# --- the unit's timeline --------------------------------------------------------------------------


def _dose_text(row: MedicationOrder) -> str:
    return f"{row.dose_value:g} {row.dose_unit}"


def _order_line(row: MedicationOrder, catalogue: rules.Catalogue, adms: list[MedicationAdministration],
                start: datetime, end: datetime, now: datetime) -> OrderLine:
    """One order on the timeline: its due doses with their status, or its 'if needed' count, or
    its infusion's current rate."""
    product = catalogue.products.get(row.product_code)
    line = OrderLine(order_id=row.id, product_code=row.product_code,
                     product_name=product.name if product else row.product_code, dose=_dose_text(row),
                     route=row.route, frequency=row.frequency, indication=row.indication,
                     unreviewed=row.review_status == service.REVIEW_PENDING,
                     review_refused=row.review_status == "refused", order_status=row.status)
    kind = rules.FrequencyKind(row.frequency)
    if kind is rules.FrequencyKind.IF_NEEDED:
        line.given_24h = bedside.doses_in_24h([a.at for a in adms if a.outcome != str(Outcome.NOT_GIVEN)], now)
        line.max_per_24h = row.max_per_24h
        return line
    if kind is rules.FrequencyKind.CONTINUOUS:
        events = sorted((a for a in adms if a.kind in _INFUSION_EVENTS), key=lambda a: a.at)
        line.infusion, line.dose_rate, line.rate_ml_h = _infusion_state(events)
        return line
    recorded = {a.due_sequence: a for a in adms if a.due_sequence is not None}
    for due in due_between(_frequency(row), row.starts_at, row.ends_at, start, end):
        done = recorded.get(due.sequence)
        line.doses.append(DoseLine(due_at=due.at, sequence=due.sequence,
                                   status=str(bedside.dose_status(due.at, now, done.outcome if done else None)),
                                   administered_at=done.at if done else None,
                                   recorded_by=done.recorded_by if done else None))
    return line


def unit_timeline(uow: UnitOfWork, actor: Actor, unit_code: str, *, hours_before: int = HOURS_BEFORE,
                  hours_after: int = HOURS_AFTER) -> Timeline:
    """The plan of care of a unit (plan de soins) from `hours_before` ago to `hours_after` ahead:
    per patient in a bed (or in the unit without one), the due doses of the active orders with
    their status, the 'if needed' orders with their doses in 24 h, the infusions' current rate.
    For the unit's nurses and physicians; the patients shown are audited in one event."""
    if not 1 <= hours_before <= 24 or not 1 <= hours_after <= 48:
        raise AdministrationInvalid("the window spans 1 to 24 hours back and 1 to 48 hours ahead",
                                    rule="BadWindow")
    _require_giver(actor)
    with uow:
        s, now = uow.session, uow.clock.now()
        if unit_code not in {unit for _est, unit in staff.workplaces_of(s, actor.account_id)}:
            raise AdministrationNotAllowed("the plan of care is open to the unit's nurses and physicians")
        board = record.bed_board(s, unit_code, now)
        start, end = now - timedelta(hours=hours_before), now + timedelta(hours=hours_after)
        beds = [b for b in board.beds + board.without_bed if b.patient_id is not None]
        # active orders, and infusions whose order ended lately: their pump may still run
        orders = list(s.scalars(select(MedicationOrder).where(
            MedicationOrder.patient_id.in_([b.patient_id for b in beds]),
            or_(MedicationOrder.status == service.ACTIVE,
                and_(MedicationOrder.frequency == str(rules.FrequencyKind.CONTINUOUS),
                     MedicationOrder.status_changed_at > start - DAY)),
            MedicationOrder.starts_at < end,
            or_(MedicationOrder.ends_at.is_(None), MedicationOrder.ends_at > start - DAY))
            .order_by(MedicationOrder.created_at)))
        adms: dict[uuid.UUID, list[MedicationAdministration]] = {}
        for a in s.scalars(select(MedicationAdministration).where(
                MedicationAdministration.order_id.in_([o.id for o in orders]),
                or_(MedicationAdministration.at > start - DAY, MedicationAdministration.due_at >= start - DAY,
                    MedicationAdministration.kind.in_(_INFUSION_EVENTS)))):
            adms.setdefault(a.order_id, []).append(a)
        catalogue = service.catalogue(s)
        by_patient: dict[uuid.UUID, list[OrderLine]] = {}
        for o in orders:
            line = _order_line(o, catalogue, adms.get(o.id, []), start, end, now)
            if o.status == service.ACTIVE or line.infusion == "running":
                by_patient.setdefault(o.patient_id, []).append(line)
        patients = [PatientLine(patient_id=b.patient_id, name=b.patient_name or "", ipp=b.ipp or "",
                                birth_date=b.birth_date, bed=b.label, room=b.room,
                                orders=by_patient.get(b.patient_id, []))
                    for b in beds if b.patient_id is not None and b.birth_date is not None]
        audit.record(s, actor, "medication:timeline:view", at=now, target=unit_code,
                     details={"patients": [str(p.patient_id) for p in patients]})
        uow.commit()
        return Timeline(unit_code=board.unit_code, unit_name=board.unit_name, start=start, end=end, now=now,
                        patients=patients)


# --- a patient's administrations, the anaesthetist's record, the wristband -------------------------


def patient_administrations(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, port: CareRelationshipPort,
                            *, hours: int = 24) -> list[tuple[AdministrationPublic, str]]:
    """The patient's administrations of the last `hours`, latest first, with the product's name."""
    with uow:
        s, now = uow.session, uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port,
                       action="medication:administration:view")
        rows = list(s.scalars(select(MedicationAdministration).where(
            MedicationAdministration.patient_id == patient_id,
            MedicationAdministration.at > now - timedelta(hours=hours)).order_by(MedicationAdministration.at.desc())))
        catalogue = service.catalogue(s)
        orders = {o.id: o for o in s.scalars(select(MedicationOrder).where(
            MedicationOrder.id.in_({r.order_id for r in rows})))}
        found = []
        for r in rows:
            product = catalogue.products.get(r.product_code or orders[r.order_id].product_code)
            found.append((_public(r, []), product.name if product else (r.product_code or "")))
        uow.commit()
        return found


#: Why an anaesthetic order is stopped as soon as signed (its administration was refused).
ANAESTHESIA_NOT_GIVEN = "not given: the administration was refused at the bedside"


class AnaesthesiaDrug(BaseModel):
    """A drug the anaesthetist gives during surgery, prescribed and given at once: a bolus
    (`frequency` once, `amount` in units of the product) or an infusion started (`continuous`,
    `dose_rate`/`rate_ml_h`)."""

    order: OrderCreate
    amount: float | None = Field(default=None, gt=0)
    dose_rate: float | None = Field(default=None, gt=0)
    rate_ml_h: float | None = Field(default=None, gt=0)
    patient_scan: str | None = Field(default=None, max_length=120)
    dose_scan: str | None = Field(default=None, max_length=200)
    no_scan_reason: str | None = Field(default=None, max_length=500)


def record_anaesthesia_drug(make_uow: Callable[[], UnitOfWork], actor: Actor, patient_id: uuid.UUID,
                            data: AnaesthesiaDrug, port: CareRelationshipPort) -> tuple[OrderPublic,
                                                                                        AdministrationPublic]:
    """Prescription and administration at once in the operating room: the order is signed through
    `service.prescribe` (every check applies), then its dose is given or its infusion started with
    the bedside checks. When the administration is refused the order just signed is stopped (both
    traced), so that no dose of it is left due."""
    kind = data.order.frequency
    if kind not in (rules.FrequencyKind.ONCE, rules.FrequencyKind.CONTINUOUS):
        raise AdministrationInvalid("the anaesthetic record holds boluses and infusions", rule="BolusOrInfusion")
    order = service.prescribe(make_uow(), actor, patient_id, data.order.model_copy(update={"starts_at": None}), port)
    try:
        if kind is rules.FrequencyKind.CONTINUOUS:
            given = record_infusion_event(make_uow(), actor, order.id, InfusionEventCreate(
                kind="infusion_start", dose_rate=data.dose_rate, rate_ml_h=data.rate_ml_h,
                patient_scan=data.patient_scan, dose_scan=data.dose_scan, no_scan_reason=data.no_scan_reason), port)
        else:
            given = record_administration(make_uow(), actor, AdministrationCreate(
                order_id=order.id, amount=data.amount, patient_scan=data.patient_scan, dose_scan=data.dose_scan,
                no_scan_reason=data.no_scan_reason), port)
    except DomainError:
        service.stop(make_uow(), actor, order.id, StatusChange(reason=ANAESTHESIA_NOT_GIVEN), port)
        raise
    return order, given


def wristband(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, port: CareRelationshipPort) -> Wristband:
    """What the patient's wristband prints (identity, Code 128 of `P` + IPP): admission clerks
    and the care team, through the door (audited)."""
    with uow:
        s, now = uow.session, uow.clock.now()
        access_patient(s, actor, patient_id, reading_purpose(actor), now=now, port=port,
                       action="patient:wristband:print")
        person = identity.summaries(s, [patient_id])[patient_id]
        uow.commit()
        return Wristband(patient_id=patient_id, ipp=person.ipp, code=f"{ScanKind.WRISTBAND}{person.ipp}",
                         birth_name=person.birth_name, used_name=person.used_name, first_names=person.first_names,
                         birth_date=person.birth_date, sex=person.sex)
