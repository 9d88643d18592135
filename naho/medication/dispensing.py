"""Use cases of nominative dispensing: the list of what a unit's patients need over a period, the
batch a pharmacy prepares from it (each dose identified by its pack's DataMatrix, labelled and
taken out of stock), the pharmacy's stock (receipts, returns, a ledger), the handover for
transport (an event the robot fleet will consume) and the receipt on the ward.

Access: the list and the batches are the pharmacy's work, for its pharmacists and pharmacy
technicians (technicians are not clinicians, so not through the care door): each establishment's
pharmacy serves its own units, and every list, preparation and label print is audited with the
patients it shows. The ward's nurses receive the batches of their own unit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Update, select, update
from sqlalchemy.orm import Session

from naho.identity import service as identity
from naho.medication import barcodes, dispensing_rules, rules, schedule
from naho.medication import service as orders
from naho.medication.events import DosesHandedOver
from naho.medication.models import (
    DispensedDose,
    DispensingBatch,
    DispensingLine,
    FormularyProduct,
    MedicationOrder,
    NarcoticRegisterEntry,
    PharmacyStockLot,
    PharmacyStockMove,
)
from naho.platform import audit, counters
from naho.platform.errors import Conflict, DomainError, Forbidden, NotFound
from naho.platform.i18n import N_
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.record import service as record
from naho.sites import service as sites
from naho.staff import service as staff

PHARMACY_STAFF = frozenset({Role.PHARMACIST, Role.PHARMACY_TECHNICIAN})
OPEN, PREPARED, HANDED_OVER, RECEIVED = "open", "prepared", "handed_over", "received"
TO_PREPARE = "to_prepare"
#: Counter of the dose labels: `D` and 10 digits (a scan field tells it from a wristband).
LABEL_COUNTER, LABEL_PREFIX = "dispensing_label", "D"
LONGEST_PERIOD_HOURS = 7 * 24
MIN_REASON_LENGTH = 5


# --- errors, named after the broken rule ------------------------------------------------------------


class NotPharmacyStaff(Forbidden):
    """Only the pharmacists and technicians of this establishment's pharmacy dispense."""


class NotUnitNurse(Forbidden):
    """Only the nurses of the unit receive its batches."""


class BatchNotFound(NotFound):
    """No such dispensing batch."""


class BadPeriod(DomainError):
    """A dispensing period lasts 1 hour to 7 days and is given with its time zone."""


class UnitNotInEstablishment(DomainError):
    """The unit belongs to another establishment: its own pharmacy serves it."""


class NothingToDispense(Conflict):
    """No validated order has a dose due in the period that is not already in a batch."""


class BatchNotOpen(Conflict):
    """The batch is no longer being prepared."""


class BatchNotPrepared(Conflict):
    """A batch is handed over only once every line is prepared (and only once)."""


class BatchNotHandedOver(Conflict):
    """A batch is received only after being handed over (and only once)."""


class LineNotFound(NotFound):
    """No such line in this batch."""


class LineAlreadyPrepared(Conflict):
    """This line was already prepared."""


class OrderNoLongerDispensable(Conflict):
    """The order was stopped, suspended, replaced or is no longer validated since the batch opened."""


class WrongProduct(DomainError):
    """The pack is neither the ordered product nor an exact generic of it (or no line awaits it)."""


class UnknownPack(DomainError):
    """This pack's code was never received in this pharmacy's stock."""


class LotNotInStock(DomainError):
    """This lot of the product was never received in this pharmacy's stock."""


class StockInsufficient(Conflict):
    """The lot holds fewer units than the line takes."""


class ManualReasonRequired(DomainError):
    """A lot typed by hand instead of scanned states why."""


class BadStockEntry(DomainError):
    """A stock receipt or return is malformed (quantity, product, lot, CIP13, expiry)."""


class UnknownLabel(DomainError):
    """A label noted on receipt is not one of this batch's."""


# --- views --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NeedLine:
    """One thing to dispense for one order of one patient (units None: unknown, `unknown` says why)."""

    order_id: uuid.UUID
    product_code: str
    product_name: str
    dose_text: str
    kind: str
    due_at: datetime | None
    sequence: int
    units: int | None
    unknown: str | None
    narcotic: bool
    in_batch: bool


@dataclass(frozen=True)
class AwaitingOrder:
    """An active order not dispensed: the pharmacist has not validated it (pending or refused)."""

    order_id: uuid.UUID
    product_name: str
    dose_text: str
    review_status: str


@dataclass(frozen=True)
class PatientNeeds:
    patient_id: uuid.UUID
    name: str
    ipp: str
    room: str
    bed: str
    lines: list[NeedLine]
    awaiting: list[AwaitingOrder]


@dataclass(frozen=True)
class DispensingList:
    establishment_code: str
    pharmacy_code: str
    unit_code: str
    unit_name: str
    period_start: datetime
    period_end: datetime
    patients: list[PatientNeeds]

    @property
    def to_dispense(self) -> int:
        return sum(1 for p in self.patients for n in p.lines if n.units is not None and not n.in_batch)


@dataclass(frozen=True)
class BatchLineView:
    id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    ipp: str
    room: str
    bed: str
    order_id: uuid.UUID
    product_code: str
    product_name: str
    dose_text: str
    kind: str
    due_at: datetime | None
    units: int
    narcotic: bool
    status: str
    label: str | None
    given_product: str | None
    lot: str | None
    expiry: date | None


@dataclass(frozen=True)
class BatchView:
    id: uuid.UUID
    establishment_code: str
    pharmacy_code: str
    unit_code: str
    unit_name: str
    period_start: datetime
    period_end: datetime
    status: str
    urgent: bool
    opened_at: datetime
    opened_by: str
    handed_over_at: datetime | None
    received_at: datetime | None
    receipt_issues: dict[str, object]
    lines: list[BatchLineView]

    @property
    def remaining(self) -> int:
        return sum(1 for line in self.lines if line.status == TO_PREPARE)


@dataclass(frozen=True)
class StockLotView:
    id: uuid.UUID
    product_code: str
    product_name: str
    cip13: str | None
    lot: str
    expiry: date
    balance: int
    ledger: int  # the sum of the lot's moves: equal to the balance


# --- access -------------------------------------------------------------------------------------------


def _pharmacy(s: Session, actor: Actor, establishment_code: str) -> str:
    """The code of the pharmacy unit of `establishment_code` where the actor works, or 403."""
    if actor.roles & PHARMACY_STAFF:
        kinds = {u.code: u.kind for u in sites.list_units(s, establishment_code)}
        for est, unit in staff.workplaces_of(s, actor.account_id):
            if est == establishment_code and kinds.get(unit) == "pharmacy":
                return unit
    raise NotPharmacyStaff("only the staff of this establishment's pharmacy dispense")


def _unit_nurse(s: Session, actor: Actor, unit_code: str) -> None:
    if Role.NURSE not in actor.roles or unit_code not in {u for _e, u in staff.workplaces_of(s, actor.account_id)}:
        raise NotUnitNurse("only the unit's nurses receive its batches")


def _batch(s: Session, batch_id: uuid.UUID) -> DispensingBatch:
    batch = s.get(DispensingBatch, batch_id)
    if batch is None:
        raise BatchNotFound("no such dispensing batch")
    return batch


# --- the list -----------------------------------------------------------------------------------------


def _period(start: datetime, hours: int) -> tuple[datetime, datetime]:
    if start.tzinfo is None or not 1 <= hours <= LONGEST_PERIOD_HOURS:
        raise BadPeriod(f"a dispensing period lasts 1 to {LONGEST_PERIOD_HOURS} hours from an aware time")
    return start, start + timedelta(hours=hours)


def _product_names(s: Session, codes: Iterable[str]) -> dict[str, str]:
    return {code: name for code, name in s.execute(
        select(FormularyProduct.code, FormularyProduct.name).where(FormularyProduct.code.in_(set(codes))))}


def _dose_text(row: MedicationOrder) -> str:
    amount = f"{row.dose_value:g}".replace(".", ",")
    return f"{amount} {row.dose_unit} {row.route}"


def _rule_order(row: MedicationOrder) -> rules.Order:
    frequency = rules.Frequency(rules.FrequencyKind(row.frequency), row.times_per_day, row.every_hours,
                                row.max_per_24h)
    return rules.Order(row.product_code, rules.Quantity(row.dose_value, row.dose_unit), row.route, frequency)


def _needs(row: MedicationOrder, catalogue: rules.Catalogue, birth: date, start: datetime,
           end: datetime) -> tuple[list[dispensing_rules.Need], bool, str | None]:
    """The order's needs, whether it is a narcotic, and why nothing could be computed (if so)."""
    product = catalogue.products.get(row.product_code)
    if product is None:
        return [], False, N_("Unknown quantity: the product is no longer in the formulary.")
    try:
        patient = rules.PatientContext(age_years=max(0.0, (start.date() - birth).days / 365.25),
                                       weight_kg=row.weight_kg, height_cm=row.height_cm)
        found = dispensing_rules.needs(_rule_order(row), product, patient, starts_at=row.starts_at,
                                       ends_at=row.ends_at, window_start=start, window_end=end)
    except rules.MedicationRuleError:
        return [], dispensing_rules.is_narcotic(product, catalogue), \
            N_("Unknown quantity: the order cannot be read (dose, unit or schedule).")
    return found, dispensing_rules.is_narcotic(product, catalogue), None


def _already(s: Session, order_ids: Iterable[uuid.UUID], start: datetime,
             end: datetime) -> set[tuple[uuid.UUID, str, int]]:
    """(order, kind, sequence) already in a batch: a due dose by its sequence; an infusion or an
    "if needed" reserve when a batch of overlapping period holds it (sequence 1)."""
    rows = s.execute(select(DispensingLine.order_id, DispensingLine.kind, DispensingLine.sequence,
                            DispensingBatch.period_start, DispensingBatch.period_end)
                     .join(DispensingBatch, DispensingLine.batch_id == DispensingBatch.id)
                     .where(DispensingLine.order_id.in_(list(order_ids))))
    taken = set()
    for order_id, kind, sequence, p_start, p_end in rows:
        if kind == dispensing_rules.NeedKind.DOSE or (p_start < end and start < p_end):
            taken.add((order_id, kind, sequence))
    return taken


def _compute(s: Session, establishment_code: str, unit_code: str, start: datetime, end: datetime,
             now: datetime) -> tuple[str, list[PatientNeeds], dict[uuid.UUID, MedicationOrder]]:
    unit = sites.get_unit(s, unit_code)
    if unit.establishment_code != establishment_code:
        raise UnitNotInEstablishment(f"unit {unit_code} is not in establishment {establishment_code}")
    board = record.bed_board(s, unit_code, now)
    present = [b for b in board.beds + board.without_bed if b.patient_id is not None]
    ids = [b.patient_id for b in present if b.patient_id is not None]
    active = list(s.scalars(select(MedicationOrder).where(
        MedicationOrder.patient_id.in_(ids), MedicationOrder.status == orders.ACTIVE)
        .order_by(MedicationOrder.created_at)))
    names = _product_names(s, {r.product_code for r in active})
    catalogue = orders.catalogue(s)
    taken = _already(s, [r.id for r in active], start, end)
    people = identity.summaries(s, ids)
    patients = []
    for b in present:
        assert b.patient_id is not None
        mine = [r for r in active if r.patient_id == b.patient_id]
        lines, awaiting = [], []
        for row in mine:
            name = names.get(row.product_code, row.product_code)
            if not dispensing_rules.dispensable(row.review_status):
                awaiting.append(AwaitingOrder(row.id, name, _dose_text(row), row.review_status))
                continue
            found, narcotic, problem = _needs(row, catalogue, people[b.patient_id].birth_date, start, end)
            if problem:
                lines.append(NeedLine(row.id, row.product_code, name, _dose_text(row), "unknown", None, 0, None,
                                      problem, narcotic, False))
            lines += [NeedLine(row.id, row.product_code, name, _dose_text(row), str(n.kind), n.due_at, n.sequence,
                               n.units, n.unknown, narcotic, (row.id, str(n.kind), n.sequence) in taken)
                      for n in found]
        lines.sort(key=lambda n: (n.due_at is None, n.due_at or start, n.product_name))
        patients.append(PatientNeeds(b.patient_id, b.patient_name or "", b.ipp or "", b.room, b.label, lines,
                                     awaiting))
    return unit.name, patients, {r.id: r for r in active}


def dispensing_list(uow: UnitOfWork, actor: Actor, establishment_code: str, unit_code: str, start: datetime,
                    hours: int = 24) -> DispensingList:
    """What the unit's patients need from the pharmacy over the period (pharmacy staff; audited
    with the patients shown)."""
    start, end = _period(start, hours)
    with uow:
        s, now = uow.session, uow.clock.now()
        pharmacy = _pharmacy(s, actor, establishment_code)
        unit_name, patients, _rows = _compute(s, establishment_code, unit_code, start, end, now)
        audit.record(s, actor, "medication:dispensing:view", at=now, target=unit_code,
                     details={"patients": [str(p.patient_id) for p in patients], "from": start.isoformat(),
                              "to": end.isoformat()})
        uow.commit()
        return DispensingList(establishment_code, pharmacy, unit_code, unit_name, start, end, patients)


def open_batch(uow: UnitOfWork, actor: Actor, establishment_code: str, unit_code: str, start: datetime,
               hours: int = 24) -> uuid.UUID:
    """Open a batch holding every known, validated need of the list not already in a batch."""
    start, end = _period(start, hours)
    with uow:
        s, now = uow.session, uow.clock.now()
        pharmacy = _pharmacy(s, actor, establishment_code)
        _name, patients, rows = _compute(s, establishment_code, unit_code, start, end, now)
        batch = DispensingBatch(id=uuid.uuid4(), establishment_code=establishment_code, pharmacy_code=pharmacy,
                                unit_code=unit_code, period_start=start, period_end=end, status=OPEN,
                                opened_at=now, opened_by=actor.label, urgent=False, receipt_issues={})
        lines = [DispensingLine(
            batch_id=batch.id, patient_id=p.patient_id, order_id=n.order_id, kind=n.kind, due_at=n.due_at,
            sequence=n.sequence, product_code=n.product_code, dose_text=n.dose_text, units=n.units,
            narcotic=n.narcotic, room=p.room, bed=p.bed, status=TO_PREPARE)
            for p in patients for n in p.lines if n.units is not None and not n.in_batch]
        if not lines:
            raise NothingToDispense("nothing left to dispense for this unit and period")
        s.add(batch)
        s.flush()
        s.add_all(lines)
        audit.record(s, actor, "medication:dispensing:open", at=now, target=str(batch.id),
                     details={"unit": unit_code, "lines": len(lines),
                              "patients": sorted({str(rows[n.order_id].patient_id) for n in lines})})
        uow.commit()
        return batch.id


# --- a batch ------------------------------------------------------------------------------------------


def _view(s: Session, batch: DispensingBatch) -> BatchView:
    lines = list(s.scalars(select(DispensingLine).where(DispensingLine.batch_id == batch.id)))
    doses = {d.line_id: d for d in s.scalars(select(DispensedDose).where(DispensedDose.batch_id == batch.id))}
    codes = {line.product_code for line in lines} | {d.product_code for d in doses.values()}
    names = _product_names(s, codes)
    people = identity.summaries(s, {line.patient_id for line in lines})
    unit = sites.get_unit(s, batch.unit_code)
    views = []
    for line in lines:
        dose = doses.get(line.id)
        who = people[line.patient_id]
        views.append(BatchLineView(
            line.id, line.patient_id, who.display_name, who.ipp, line.room, line.bed, line.order_id,
            line.product_code, names.get(line.product_code, line.product_code), line.dose_text, line.kind,
            line.due_at, line.units, line.narcotic, line.status, dose.label if dose else None,
            names.get(dose.product_code, dose.product_code) if dose else None, dose.lot if dose else None,
            dose.expiry if dose else None))
    views.sort(key=lambda v: (v.room, v.bed, v.patient_name, v.due_at is None, v.due_at or batch.period_start))
    return BatchView(batch.id, batch.establishment_code, batch.pharmacy_code, batch.unit_code, unit.name,
                     batch.period_start, batch.period_end, batch.status, batch.urgent, batch.opened_at,
                     batch.opened_by, batch.handed_over_at, batch.received_at, dict(batch.receipt_issues or {}),
                     views)


def _may_see(s: Session, actor: Actor, batch: DispensingBatch) -> None:
    """The pharmacy that prepares it, or the nurses of the unit it goes to."""
    if actor.roles & PHARMACY_STAFF:
        _pharmacy(s, actor, batch.establishment_code)
    else:
        _unit_nurse(s, actor, batch.unit_code)


def get_batch(uow: UnitOfWork, actor: Actor, batch_id: uuid.UUID) -> BatchView:
    """A batch with its lines (pharmacy staff, or the unit's nurses); audited."""
    with uow:
        s, now = uow.session, uow.clock.now()
        batch = _batch(s, batch_id)
        _may_see(s, actor, batch)
        view = _view(s, batch)
        audit.record(s, actor, "medication:dispensing:batch-view", at=now, target=str(batch_id),
                     details={"patients": sorted({str(line.patient_id) for line in view.lines})})
        uow.commit()
        return view


def _local_today(now: datetime) -> date:
    return now.astimezone(schedule.WARD_TZ).date()


def _changed(s: Session, statement: Update) -> bool:
    """Run a conditional UPDATE: whether it changed its one row (of two racing requests, one wins)."""
    done = s.execute(statement.execution_options(synchronize_session=False))
    return getattr(done, "rowcount", 0) == 1


def _advance(s: Session, batch: DispensingBatch, from_status: str, refusal: DomainError, **values: object) -> None:
    """Move the batch on if it is still `from_status`, else refuse."""
    if not _changed(s, update(DispensingBatch).where(DispensingBatch.id == batch.id,
                                                     DispensingBatch.status == from_status).values(**values)):
        raise refusal
    s.refresh(batch)


def _take_from_stock(s: Session, lot: PharmacyStockLot, units: int) -> int:
    """Take `units` out of the lot unless it holds fewer (one conditional UPDATE: two preparations
    on the last units cannot both pass); the balance after."""
    if not _changed(s, update(PharmacyStockLot).where(PharmacyStockLot.id == lot.id, PharmacyStockLot.balance >= units)
                    .values(balance=PharmacyStockLot.balance - units)):
        raise StockInsufficient(f"lot {lot.lot} holds fewer than {units} units", lot=lot.lot, units=units)
    s.refresh(lot)
    return lot.balance


def _prepare(s: Session, actor: Actor, batch: DispensingBatch, line: DispensingLine, given: rules.Product,
             stock_lot: PharmacyStockLot, *, entry: str, reason: str | None, serial: str | None,
             now: datetime) -> DispensedDose:
    row = s.get(MedicationOrder, line.order_id)
    assert row is not None
    if row.status != orders.ACTIVE or not dispensing_rules.dispensable(row.review_status):
        raise OrderNoLongerDispensable("the order is no longer active and validated: do not dispense it")
    catalogue = orders.catalogue(s)
    ordered = catalogue.products.get(line.product_code)
    if ordered is None or not dispensing_rules.may_substitute(ordered, given, row.route):
        raise WrongProduct(f"{given.name} is neither the ordered product nor an exact generic of it")
    balance = _take_from_stock(s, stock_lot, line.units)
    if not _changed(s, update(DispensingLine).where(DispensingLine.id == line.id, DispensingLine.status == TO_PREPARE)
                    .values(status=PREPARED)):
        raise LineAlreadyPrepared("this line was already prepared")
    s.refresh(line)
    label = f"{LABEL_PREFIX}{counters.next_number(s, LABEL_COUNTER):010d}"
    dose = DispensedDose(
        id=uuid.uuid4(), label=label, line_id=line.id, batch_id=batch.id, patient_id=line.patient_id,
        order_id=line.order_id, product_code=given.code, stock_lot_id=stock_lot.id, lot=stock_lot.lot,
        expiry=stock_lot.expiry, units=line.units, due_at=line.due_at, entry=entry, manual_reason=reason,
        serial=serial, prepared_at=now, prepared_by_id=actor.account_id, prepared_by=actor.label)
    s.add(dose)
    s.flush()
    s.add(PharmacyStockMove(lot_id=stock_lot.id, kind="dispensing", quantity=-line.units, balance_after=balance,
                            at=now, by_id=actor.account_id, by_label=actor.label, dose_id=dose.id))
    if line.narcotic or dispensing_rules.is_narcotic(given, catalogue):
        s.add(NarcoticRegisterEntry(
            establishment_code=batch.establishment_code, product_code=given.code, lot=stock_lot.lot,
            units=line.units, patient_id=line.patient_id, unit_code=batch.unit_code, order_id=line.order_id,
            dose_id=dose.id, at=now, by_id=actor.account_id, by_label=actor.label))
    s.flush()
    # The batch row is locked before counting what is left: of two preparations of its last lines
    # running at once, the second counts after the first committed, and closes the batch.
    s.execute(select(DispensingBatch.id).where(DispensingBatch.id == batch.id).with_for_update())
    left = s.scalars(select(DispensingLine.id).where(DispensingLine.batch_id == batch.id,
                                                     DispensingLine.status == TO_PREPARE).limit(1)).first()
    if left is None:
        _advance(s, batch, OPEN, BatchNotOpen("the batch is no longer being prepared"), status=PREPARED,
                 prepared_at=now)
    audit.record(s, actor, "medication:dispensing:prepare", at=now, patient_id=line.patient_id, target=str(dose.id),
                 reason=reason, details={"label": label, "batch": str(batch.id), "order": str(line.order_id),
                                         "product": given.code, "lot": stock_lot.lot, "units": line.units,
                                         "entry": entry})
    return dose


def _open_for_preparation(s: Session, actor: Actor, batch_id: uuid.UUID) -> DispensingBatch:
    batch = _batch(s, batch_id)
    _pharmacy(s, actor, batch.establishment_code)
    if batch.status != OPEN:
        raise BatchNotOpen(f"the batch is {batch.status}")
    return batch


def _pack_product(s: Session, scan: barcodes.PackScan, establishment_code: str,
                  catalogue: rules.Catalogue) -> rules.Product:
    """The product of a scanned pack: from the formulary's CIP13 codes, else as received in stock."""
    try:
        return barcodes.product_for(scan, catalogue)
    except rules.UnknownProduct:
        pass
    code = s.scalars(select(PharmacyStockLot.product_code).where(
        PharmacyStockLot.establishment_code == establishment_code, PharmacyStockLot.cip13 == scan.cip13)).first()
    if code is None or code not in catalogue.products:
        raise UnknownPack(f"the pack {scan.cip13} was never received in this pharmacy's stock")
    return catalogue.products[code]


def _stock_lot(s: Session, establishment_code: str, product_code: str, lot: str) -> PharmacyStockLot:
    found = s.scalars(select(PharmacyStockLot).where(
        PharmacyStockLot.establishment_code == establishment_code, PharmacyStockLot.product_code == product_code,
        PharmacyStockLot.lot == lot)).first()
    if found is None:
        raise LotNotInStock(f"lot {lot} of {product_code} was never received in this pharmacy's stock")
    return found


def prepare_by_scan(uow: UnitOfWork, actor: Actor, batch_id: uuid.UUID, code: str,
                    line_id: uuid.UUID | None = None) -> BatchLineView:
    """Prepare a line from a scanned pack (GS1 DataMatrix): the given line, or the first line still
    to prepare for which this pack may be given (same product or exact generic). An expired lot,
    another product, a pack never received or a lot short of units is refused."""
    with uow:
        s, now = uow.session, uow.clock.now()
        batch = _open_for_preparation(s, actor, batch_id)
        scan = barcodes.read_pack(code, _local_today(now))
        catalogue = orders.catalogue(s)
        given = _pack_product(s, scan, batch.establishment_code, catalogue)
        stock_lot = _stock_lot(s, batch.establishment_code, given.code, scan.lot or "")
        line = _line_for(s, batch, given, catalogue, line_id)
        dose = _prepare(s, actor, batch, line, given, stock_lot, entry="scan", reason=None, serial=scan.serial,
                        now=now)
        view = next(v for v in _view(s, batch).lines if v.id == dose.line_id)
        uow.commit()
        return view


def _line_for(s: Session, batch: DispensingBatch, given: rules.Product, catalogue: rules.Catalogue,
              line_id: uuid.UUID | None) -> DispensingLine:
    if line_id is not None:
        line = s.get(DispensingLine, line_id)
        if line is None or line.batch_id != batch.id:
            raise LineNotFound("no such line in this batch")
        if line.status != TO_PREPARE:
            raise LineAlreadyPrepared("this line was already prepared")
        return line
    waiting = sorted(s.execute(select(DispensingLine, MedicationOrder.route)
                               .join(MedicationOrder, DispensingLine.order_id == MedicationOrder.id)
                               .where(DispensingLine.batch_id == batch.id, DispensingLine.status == TO_PREPARE)),
                     key=lambda r: (r[0].due_at is None, r[0].due_at or batch.period_start, r[0].room, r[0].bed))
    for line, route in waiting:
        ordered = catalogue.products.get(line.product_code)
        if ordered is not None and dispensing_rules.may_substitute(ordered, given, route):
            return line
    raise WrongProduct(f"no line of this batch awaits {given.name} (nor a product it may replace)")


def prepare_by_hand(uow: UnitOfWork, actor: Actor, batch_id: uuid.UUID, line_id: uuid.UUID, *, product_code: str,
                    lot: str, expiry: date, reason: str) -> BatchLineView:
    """Prepare a line from a lot typed by hand (the pack's code cannot be read), with the reason."""
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise ManualReasonRequired(f"state why the pack is not scanned (at least {MIN_REASON_LENGTH} characters)")
    with uow:
        s, now = uow.session, uow.clock.now()
        batch = _open_for_preparation(s, actor, batch_id)
        barcodes.check_expiry(barcodes.PackScan("", None, lot, expiry, None), _local_today(now))
        catalogue = orders.catalogue(s)
        given = catalogue.product(product_code)
        stock_lot = _stock_lot(s, batch.establishment_code, given.code, lot.strip())
        if stock_lot.expiry != expiry:
            raise BadStockEntry(f"lot {lot} was received with expiry {stock_lot.expiry.isoformat()}")
        line = _line_for(s, batch, given, catalogue, line_id)
        dose = _prepare(s, actor, batch, line, given, stock_lot, entry="manual", reason=reason.strip(), serial=None,
                        now=now)
        view = next(v for v in _view(s, batch).lines if v.id == dose.line_id)
        uow.commit()
        return view


@dataclass(frozen=True)
class Label:
    """What a dose label prints (the barcode holds `number`)."""

    number: str
    patient_name: str
    ipp: str
    birth_date: date
    unit_name: str
    room: str
    bed: str
    product_name: str
    dose_text: str
    units: int
    due_at: datetime | None
    lot: str
    expiry: date
    narcotic: bool


def labels(uow: UnitOfWork, actor: Actor, batch_id: uuid.UUID) -> list[Label]:
    """The labels of a batch's prepared doses, to print (pharmacy staff); audited."""
    with uow:
        s, now = uow.session, uow.clock.now()
        batch = _batch(s, batch_id)
        _pharmacy(s, actor, batch.establishment_code)
        view = _view(s, batch)
        people = identity.summaries(s, {line.patient_id for line in view.lines})
        printed = [Label(line.label, line.patient_name, line.ipp, people[line.patient_id].birth_date, view.unit_name,
                         line.room, line.bed, line.given_product or line.product_name, line.dose_text, line.units,
                         line.due_at, line.lot or "", line.expiry or date.min, line.narcotic)
                   for line in view.lines if line.label is not None]
        audit.record(s, actor, "medication:dispensing:labels", at=now, target=str(batch_id),
                     details={"labels": [label.number for label in printed]})
        uow.commit()
        return printed


def dose_of_label(session: Session, text: str) -> DispensedDose | None:
    """The dispensed dose a scanned label names (`D` + 10 digits), or None: the bedside scan reads
    from it the order, patient, product, lot, expiry and units. The caller checks access."""
    value = text.strip()
    if len(value) != 11 or not value.startswith(LABEL_PREFIX) or not value[1:].isdigit():
        return None
    return session.scalars(select(DispensedDose).where(DispensedDose.label == value)).first()


# --- handover and receipt -----------------------------------------------------------------------------


def hand_over(uow: UnitOfWork, actor: Actor, batch_id: uuid.UUID, *, urgent: bool = False) -> BatchView:
    """Hand a fully prepared batch over for transport to its unit; publishes `DosesHandedOver`
    after commit (the robot fleet will make a mission of it)."""
    with uow:
        s, now = uow.session, uow.clock.now()
        batch = _batch(s, batch_id)
        _pharmacy(s, actor, batch.establishment_code)
        _advance(s, batch, PREPARED, BatchNotPrepared(
            f"the batch is {batch.status}: only a fully prepared batch is handed over"),
            status=HANDED_OVER, handed_over_at=now, handed_over_by=actor.label, urgent=urgent)
        view = _view(s, batch)
        audit.record(s, actor, "medication:dispensing:handover", at=now, target=str(batch_id),
                     details={"unit": batch.unit_code, "items": len(view.lines), "urgent": urgent})
        uow.emit(DosesHandedOver(batch.id, batch.establishment_code, batch.pharmacy_code, batch.unit_code,
                                 len(view.lines), urgent, now))
        uow.commit()
        return view


def batches_to_receive(uow: UnitOfWork, actor: Actor, unit_code: str) -> list[BatchView]:
    """The unit's batches handed over and not yet received, then those received today (its nurses)."""
    with uow:
        s, now = uow.session, uow.clock.now()
        _unit_nurse(s, actor, unit_code)
        rows = s.scalars(select(DispensingBatch).where(
            DispensingBatch.unit_code == unit_code,
            (DispensingBatch.status == HANDED_OVER)
            | ((DispensingBatch.status == RECEIVED) & (DispensingBatch.received_at > now - timedelta(days=1))))
            .order_by(DispensingBatch.urgent.desc(), DispensingBatch.handed_over_at))
        views = [_view(s, b) for b in rows]
        audit.record(s, actor, "medication:dispensing:receptions-view", at=now, target=unit_code,
                     details={"batches": [str(v.id) for v in views]})
        uow.commit()
        return views


def receive_batch(uow: UnitOfWork, actor: Actor, batch_id: uuid.UUID, *, missing: Iterable[str] = (),
                  damaged: Iterable[str] = (), note: str = "") -> BatchView:
    """A nurse of the unit receives a handed-over batch, noting the labels missing or damaged."""
    with uow:
        s, now = uow.session, uow.clock.now()
        batch = _batch(s, batch_id)
        _unit_nurse(s, actor, batch.unit_code)
        known = set(s.scalars(select(DispensedDose.label).where(DispensedDose.batch_id == batch_id)))
        lost = sorted({m.strip().upper() for m in missing if m.strip()})
        broken = sorted({d.strip().upper() for d in damaged if d.strip()})
        issues = {"missing": lost, "damaged": broken, "note": note.strip()}
        strangers = [x for x in lost + broken if x not in known]
        if strangers:
            raise UnknownLabel(f"not labels of this batch: {', '.join(strangers)}")
        _advance(s, batch, HANDED_OVER, BatchNotHandedOver(
            f"the batch is {batch.status}: only a handed-over batch is received"),
            status=RECEIVED, received_at=now, received_by=actor.label, receipt_issues=issues)
        audit.record(s, actor, "medication:dispensing:receive", at=now, target=str(batch_id), details=issues)
        view = _view(s, batch)
        uow.commit()
        return view


# --- stock ------------------------------------------------------------------------------------------------


def _move(s: Session, actor: Actor, lot: PharmacyStockLot, kind: str, quantity: int, now: datetime,
          reason: str | None) -> None:
    s.execute(update(PharmacyStockLot).where(PharmacyStockLot.id == lot.id)
              .values(balance=PharmacyStockLot.balance + quantity).execution_options(synchronize_session=False))
    s.refresh(lot)
    s.add(PharmacyStockMove(lot_id=lot.id, kind=kind, quantity=quantity, balance_after=lot.balance, at=now,
                            by_id=actor.account_id, by_label=actor.label, reason=reason))


def receive_stock(uow: UnitOfWork, actor: Actor, establishment_code: str, *, quantity: int,
                  product_code: str, code: str | None = None, lot: str | None = None,
                  expiry: date | None = None, cip13: str | None = None) -> StockLotView:
    """Enter a delivery into the pharmacy's stock: the product, and its pack's DataMatrix
    (`code`: CIP13, lot, expiry) or the lot and expiry typed. An expired lot is refused; a CIP13
    belongs to one product."""
    if not 1 <= quantity <= 100_000:
        raise BadStockEntry("a delivery holds 1 to 100,000 units")
    with uow:
        s, now = uow.session, uow.clock.now()
        _pharmacy(s, actor, establishment_code)
        catalogue = orders.catalogue(s)
        product = catalogue.product(product_code)
        if code:
            scan = barcodes.read_pack(code, _local_today(now))
            cip13, lot, expiry = scan.cip13, scan.lot, scan.expiry
        elif expiry is not None:
            barcodes.check_expiry(barcodes.PackScan("", None, lot, expiry, None), _local_today(now))
        lot = (lot or "").strip()
        if not lot or expiry is None:
            raise BadStockEntry("a delivery states its lot and expiry")
        if cip13 is not None and (not rules.is_valid_gtin13(cip13) or (product.cip13 and cip13 not in product.cip13)):
            raise BadStockEntry(f"{cip13} is not a CIP13 of {product.name}")
        if cip13 is not None:
            other = s.scalars(select(PharmacyStockLot.product_code).where(
                PharmacyStockLot.establishment_code == establishment_code, PharmacyStockLot.cip13 == cip13,
                PharmacyStockLot.product_code != product.code)).first()
            if other is not None:
                raise BadStockEntry(f"CIP13 {cip13} was received as {other}, not {product.code}")
        row = s.scalars(select(PharmacyStockLot).where(
            PharmacyStockLot.establishment_code == establishment_code, PharmacyStockLot.product_code == product.code,
            PharmacyStockLot.lot == lot)).first()
        if row is None:
            row = PharmacyStockLot(id=uuid.uuid4(), establishment_code=establishment_code, product_code=product.code,
                                   cip13=cip13, lot=lot, expiry=expiry, balance=0)
            s.add(row)
            s.flush()
        elif row.expiry != expiry:
            raise BadStockEntry(f"lot {lot} was received with expiry {row.expiry.isoformat()}")
        elif row.cip13 is None and cip13 is not None:
            row.cip13 = cip13
        _move(s, actor, row, "receipt", quantity, now, None)
        audit.record(s, actor, "medication:stock:receipt", at=now, target=str(row.id),
                     details={"establishment": establishment_code, "product": product.code, "lot": lot,
                              "quantity": quantity})
        view = _lot_views(s, [row])[0]
        uow.commit()
        return view


def return_to_stock(uow: UnitOfWork, actor: Actor, lot_id: uuid.UUID, quantity: int, reason: str) -> StockLotView:
    """Units coming back to the pharmacy (not given, batch cancelled), with the reason."""
    if not 1 <= quantity <= 100_000:
        raise BadStockEntry("a return holds 1 to 100,000 units")
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise BadStockEntry("a return states its reason")
    with uow:
        s, now = uow.session, uow.clock.now()
        row = s.get(PharmacyStockLot, lot_id)
        if row is None:
            raise NotFound("no such lot")
        _pharmacy(s, actor, row.establishment_code)
        _move(s, actor, row, "return", quantity, now, reason.strip())
        audit.record(s, actor, "medication:stock:return", at=now, target=str(row.id), reason=reason.strip(),
                     details={"quantity": quantity})
        view = _lot_views(s, [row])[0]
        uow.commit()
        return view


def _lot_views(s: Session, rows: list[PharmacyStockLot]) -> list[StockLotView]:
    names = _product_names(s, {r.product_code for r in rows})
    sums: dict[uuid.UUID, int] = {}
    for lot_id, quantity in s.execute(select(PharmacyStockMove.lot_id, PharmacyStockMove.quantity)
                                      .where(PharmacyStockMove.lot_id.in_([r.id for r in rows]))):
        sums[lot_id] = sums.get(lot_id, 0) + quantity
    return [StockLotView(r.id, r.product_code, names.get(r.product_code, r.product_code), r.cip13, r.lot, r.expiry,
                         r.balance, sums.get(r.id, 0)) for r in rows]


def stock(uow: UnitOfWork, actor: Actor, establishment_code: str) -> list[StockLotView]:
    """The establishment pharmacy's lots, by product and expiry (pharmacy staff)."""
    with uow:
        s = uow.session
        _pharmacy(s, actor, establishment_code)
        rows = list(s.scalars(select(PharmacyStockLot).where(PharmacyStockLot.establishment_code == establishment_code)
                              .order_by(PharmacyStockLot.product_code, PharmacyStockLot.expiry)))
        return _lot_views(s, rows)


@dataclass(frozen=True)
class Choices:
    """The establishments whose pharmacy the actor works in, the one chosen and its units."""

    establishments: list[str]
    establishment_code: str
    units: list[tuple[str, str]]  # (code, name), care units first


def choices(uow: UnitOfWork, actor: Actor, establishment_code: str | None) -> Choices:
    """What the dispensing page offers to choose: the actor's pharmacies and the units they serve."""
    with uow:
        s = uow.session
        mine = [est for est, _unit in staff.workplaces_of(s, actor.account_id)]
        served = [est for est in dict.fromkeys(mine) if _serves(s, actor, est)]
        if not served:
            raise NotPharmacyStaff("only pharmacy staff dispense")
        chosen = establishment_code if establishment_code in served else served[0]
        units = [(u.code, u.name) for u in sites.list_units(s, chosen) if u.kind != "pharmacy" and u.bed_count]
        return Choices(served, chosen, units)


def _serves(s: Session, actor: Actor, establishment_code: str) -> bool:
    try:
        _pharmacy(s, actor, establishment_code)
    except NotPharmacyStaff:
        return False
    return True


@dataclass(frozen=True)
class NarcoticEntryView:
    at: datetime
    product_code: str
    product_name: str
    lot: str
    units: int
    patient_id: uuid.UUID
    patient_name: str
    unit_code: str
    label: str
    by: str


def narcotics_register(uow: UnitOfWork, actor: Actor, establishment_code: str, since: datetime,
                       until: datetime) -> list[NarcoticEntryView]:
    """The narcotics register of an establishment's pharmacy over a period, oldest first (its
    pharmacists; audited with the patients shown)."""
    if Role.PHARMACIST not in actor.roles:
        raise NotPharmacyStaff("the narcotics register is read by the pharmacists")
    with uow:
        s, now = uow.session, uow.clock.now()
        _pharmacy(s, actor, establishment_code)
        rows = s.execute(select(NarcoticRegisterEntry, DispensedDose.label)
                         .join(DispensedDose, NarcoticRegisterEntry.dose_id == DispensedDose.id)
                         .where(NarcoticRegisterEntry.establishment_code == establishment_code,
                                NarcoticRegisterEntry.at >= since, NarcoticRegisterEntry.at < until)
                         .order_by(NarcoticRegisterEntry.at)).all()
        names = _product_names(s, {e.product_code for e, _label in rows})
        people = identity.summaries(s, {e.patient_id for e, _label in rows})
        entries = [NarcoticEntryView(e.at, e.product_code, names.get(e.product_code, e.product_code), e.lot, e.units,
                                     e.patient_id, people[e.patient_id].display_name, e.unit_code, label, e.by_label)
                   for e, label in rows]
        audit.record(s, actor, "medication:narcotics:view", at=now, target=establishment_code,
                     details={"patients": sorted({str(e.patient_id) for e in entries}), "from": since.isoformat(),
                              "to": until.isoformat()})
        uow.commit()
        return entries
