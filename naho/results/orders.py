"""Use cases of laboratory orders: a physician of the care team orders tests for the current
stay, the specimens' labels are printed, the nurse records the collection by scanning a label,
the order goes to the laboratory (HL7 OML^O21 through the outbox) and its status follows the
laboratory's acknowledgements and results (docs/adr/0015-lab-orders.md).

Every use case goes through the one door first (platform.access), then the pure rules
(results.order_rules), then writes and audit, in one transaction. The outbox message (topic
`hl7.lab-order`) is written in the order's transaction; naho.interop.lab_sender delivers it and
reports the laboratory's answer back here (`record_answer`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from naho.identity import service as identity
from naho.platform import audit, counters, outbox
from naho.platform.access import CareRelationshipPort, PatientNotFound, Purpose, access_patient
from naho.platform.errors import Conflict, DomainError, Forbidden, NotFound
from naho.platform.merge import TableMover
from naho.platform.security.actor import SYSTEM_ACTOR, Actor
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.record import chart
from naho.record import service as record
from naho.results import order_rules as rules
from naho.results.models import LabOrder

CATALOGUE_FILE = Path(__file__).parent / "data" / "lab_catalogue.yaml"
TOPIC = "hl7.lab-order"
#: Who orders (and cancels) laboratory tests; who records a collection.
ORDERERS = frozenset({Role.PHYSICIAN})
COLLECTORS = frozenset({Role.NURSE, Role.PHYSICIAN})
#: Audit actions (source:subject:action).
ORDERED = "patient:lab-order:create"
PLACED = "patient:lab-order:place"  # what was ordered, after the door's ORDERED
REFUSED = "patient:lab-order:refused"
VIEWED = "patient:lab-order:view"
CANCELLED = "patient:lab-order:cancel"
COLLECTED = "patient:lab-order:collect"
LABELS = "patient:lab-order:labels"
ANSWERED = "patient:lab-order:answer"
#: The message actions (ORC-1).
NEW, CANCEL = "NW", "CA"


class OrdererRequired(Forbidden):
    """Only a physician orders or cancels a laboratory test."""


class CollectorRequired(Forbidden):
    """Only a nurse or a physician records a specimen collection."""


class NoCurrentStay(DomainError):
    """Laboratory tests are ordered for the patient's current stay: there is none."""


class LabOrderNotFound(NotFound):
    """No such order, or not one this person may see."""


class SpecimenNotFound(NotFound):
    """No order of this patient carries this specimen number."""


class OrderRefused(Conflict):
    """An order rule refused the change (cancelled, already collected...): `rule` names it."""


@cache
def catalogue(path: Path = CATALOGUE_FILE) -> rules.Catalogue:
    """The catalogue file, read and checked once per process."""
    return rules.load_catalogue(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


@dataclass(frozen=True)
class LabOrderCreate:
    tests: list[str]
    urgency: rules.Urgency
    clinical_info: str = ""


@dataclass(frozen=True)
class LabOrderPublic:
    id: uuid.UUID
    patient_id: uuid.UUID
    encounter_id: uuid.UUID
    placer_number: str
    group_number: str
    specimen_number: str
    test_code: str
    test_label: str
    loinc: str | None
    container_label: str
    colour: str
    specimen_type: str
    urgency: str
    clinical_info: str | None
    status: str
    ordered_at: datetime
    ordered_by: str
    collected_at: datetime | None
    collected_by: str | None
    cancelled_at: datetime | None
    cancelled_by: str | None
    transmission: str
    transmission_error: str | None
    report_id: uuid.UUID | None

    @property
    def cancellable(self) -> bool:
        return self.status == rules.OrderStatus.ORDERED


def _public(row: LabOrder) -> LabOrderPublic:
    return LabOrderPublic(
        row.id, row.patient_id, row.encounter_id, row.placer_number, row.group_number, row.specimen_number,
        row.test_code, row.test_label, row.loinc, row.container_label, row.colour, row.specimen_type, row.urgency,
        row.clinical_info, row.status, row.ordered_at, row.ordered_by, row.collected_at, row.collected_by,
        row.cancelled_at, row.cancelled_by, row.transmission, row.transmission_error, row.report_id)


def _refuse_role(session: Session, actor: Actor, patient_id: uuid.UUID | None, action: str, now: datetime,
                 error: Forbidden) -> None:
    """A person without the role tried: the refusal is audited and committed alone, then raised."""
    audit.record(session, actor, REFUSED, at=now, patient_id=patient_id, details={"action": action,
                                                                                  "rule": type(error).__name__})
    session.commit()
    raise error


def _refused(exc: rules.OrderRuleError) -> OrderRefused:
    return OrderRefused(str(exc), rule=type(exc).__name__)


def _snapshot(session: Session, row: LabOrder, action: str) -> dict[str, Any]:
    """Everything the OML^O21 needs, as JSON values, read now (the outbox sends it later)."""
    person = identity.summaries(session, [row.patient_id])[row.patient_id]
    stay = record.get_encounter(session, row.encounter_id)
    return {
        "action": action, "order_id": str(row.id), "placer_number": row.placer_number,
        "group_number": row.group_number, "specimen_number": row.specimen_number, "test_code": row.test_code,
        "test_label": row.test_label, "loinc": row.loinc, "specimen_type": row.specimen_type,
        "container_label": row.container_label, "urgency": row.urgency, "clinical_info": row.clinical_info or "",
        "ordered_at": row.ordered_at.isoformat(), "ordered_by": row.ordered_by,
        "collected_at": row.collected_at.isoformat() if row.collected_at else None,
        "nda": stay.nda, "unit_code": stay.unit_code or "", "encounter_class": stay.encounter_class,
        "patient": identity.adt_patient(session, person),
    }


def _send(uow: UnitOfWork, row: LabOrder, action: str, now: datetime) -> None:
    """The message to the laboratory, in the change's transaction (FIFO per order: a CA never
    overtakes its NW). Without a laboratory interface nothing is queued."""
    if TOPIC not in uow.channels:
        row.transmission = rules.Transmission.NOT_SENT
        return
    row.transmission, row.transmission_error = rules.Transmission.PENDING, None
    outbox.enqueue(uow.session, TOPIC, _snapshot(uow.session, row, action), now=now,
                   ordering_key=f"{TOPIC}:{row.id}")


def place_orders(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, data: LabOrderCreate,
                 port: CareRelationshipPort) -> list[LabOrderPublic]:
    """A physician of the care team orders tests for the patient's current stay: one order per
    test, one specimen per kind of tube, one group; each order's NW goes to the outbox."""
    with uow:
        s, now = uow.session, uow.clock.now()
        if not actor.roles & ORDERERS:
            _refuse_role(s, actor, patient_id, ORDERED, now,
                         OrdererRequired("only a physician orders laboratory tests"))
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port, action=ORDERED)
        try:
            tests = rules.choose_tests(catalogue(), data.tests)
        except rules.OrderRuleError as exc:
            raise _refused(exc) from exc
        encounter_id = chart.current_encounter(s, patient_id)
        if encounter_id is None:
            raise NoCurrentStay("the patient has no current stay", rule="NoCurrentStay")
        group = rules.group_number(counters.next_number(s, "lab_order_group"))
        info = data.clinical_info.strip()[:2000] or None
        rows = []
        for container, grouped in rules.specimens_of(tests):
            specimen = rules.specimen_number(counters.next_number(s, "lab_specimen"))
            for test in grouped:
                row = LabOrder(
                    id=uuid.uuid4(), patient_id=patient_id, encounter_id=encounter_id,
                    placer_number=rules.placer_number(counters.next_number(s, "lab_order")), group_number=group,
                    specimen_number=specimen, test_code=test.code, test_label=test.label, loinc=test.loinc,
                    container_code=container.code, container_label=container.label, colour=container.colour,
                    specimen_type=container.specimen_type, urgency=str(data.urgency), clinical_info=info,
                    status=rules.OrderStatus.ORDERED, ordered_at=now, ordered_by=actor.label,
                    transmission=rules.Transmission.PENDING, updated_at=now)
                s.add(row)
                s.flush()
                _send(uow, row, NEW, now)
                rows.append(row)
        audit.record(s, actor, PLACED, at=now, patient_id=patient_id, target=group,
                     details={"tests": [t.code for t in tests], "urgency": str(data.urgency)})
        public = [_public(r) for r in rows]
        uow.commit()
        return public


def _open_order(s: Session, actor: Actor, order_id: uuid.UUID, port: CareRelationshipPort, now: datetime,
                action: str) -> LabOrder:
    """An order through the door of its patient: the same 404 for absent and forbidden."""
    row = s.get(LabOrder, order_id, with_for_update=True)  # two physicians at once: one wins, one is told
    if row is None:
        raise LabOrderNotFound("no such laboratory order")
    try:
        access_patient(s, actor, row.patient_id, Purpose.CARE, now=now, port=port, action=action,
                       target=row.placer_number)
    except PatientNotFound:
        raise LabOrderNotFound("no such laboratory order") from None
    return row


def cancel_order(uow: UnitOfWork, actor: Actor, order_id: uuid.UUID, reason: str,
                 port: CareRelationshipPort) -> LabOrderPublic:
    """A physician withdraws an order before its specimen is collected; the CA follows its NW."""
    with uow:
        s, now = uow.session, uow.clock.now()
        if not actor.roles & ORDERERS:
            _refuse_role(s, actor, None, CANCELLED, now, OrdererRequired("only a physician cancels laboratory tests"))
        row = _open_order(s, actor, order_id, port, now, CANCELLED)
        try:
            row.status = rules.cancel(rules.OrderStatus(row.status))
        except rules.OrderRuleError as exc:
            raise _refused(exc) from exc
        row.cancelled_at, row.cancelled_by = now, actor.label
        row.cancel_reason, row.updated_at = reason.strip()[:500] or None, now
        _send(uow, row, CANCEL, now)
        public = _public(row)
        uow.commit()
        return public


def record_collection(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, label: str,
                      port: CareRelationshipPort) -> list[LabOrderPublic]:
    """The nurse scanned (or typed) a specimen label of this patient after drawing it: every
    order of that specimen is collected, by whom and when. A cancelled or already collected
    order refuses the whole scan."""
    with uow:
        s, now = uow.session, uow.clock.now()
        if not actor.roles & COLLECTORS:
            _refuse_role(s, actor, patient_id, COLLECTED, now,
                         CollectorRequired("only a nurse or a physician records a collection"))
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port, action=COLLECTED, target=label[:60])
        try:
            number = rules.read_specimen_label(label)
        except rules.OrderRuleError as exc:
            raise _refused(exc) from exc
        rows = list(s.scalars(select(LabOrder).where(LabOrder.patient_id == patient_id,
                                                     LabOrder.specimen_number == number)
                              .order_by(LabOrder.placer_number).with_for_update()))
        if not rows:
            raise SpecimenNotFound("no order of this patient has this specimen label", rule="SpecimenNotFound")
        # A test of the tube cancelled alone leaves the others to collect.
        live = [r for r in rows if r.status != rules.OrderStatus.CANCELLED]
        try:
            for row in live or rows:
                row.status = rules.collect(rules.OrderStatus(row.status))
                if row.accepted_at is not None:
                    row.status = rules.acknowledged(rules.OrderStatus(row.status))
        except rules.OrderRuleError as exc:
            raise _refused(exc) from exc
        rows = live
        for row in rows:
            row.collected_at, row.collected_by, row.updated_at = now, actor.label, now
        audit.record(s, actor, COLLECTED, at=now, patient_id=patient_id, target=number,
                     details={"orders": [r.placer_number for r in rows]})
        public = [_public(r) for r in rows]
        uow.commit()
        return public


def orders_of(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, port: CareRelationshipPort) -> list[LabOrderPublic]:
    """The patient's laboratory orders, newest first (audited)."""
    with uow:
        s, now = uow.session, uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port, action=VIEWED)
        rows = list(s.scalars(select(LabOrder).where(LabOrder.patient_id == patient_id)
                              .order_by(LabOrder.ordered_at.desc(), LabOrder.placer_number)))
        public = [_public(r) for r in rows]
        uow.commit()
        return public


@dataclass(frozen=True)
class SpecimenLabel:
    """What a specimen's label shows: who, which tube, which tests, the number as a barcode."""

    specimen_number: str
    patient_name: str
    ipp: str
    birth_date: date
    sex: str
    container_label: str
    colour: str
    tests: list[str]
    urgency: str
    ordered_at: datetime


def labels(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, group_number: str | None,
           port: CareRelationshipPort) -> list[SpecimenLabel]:
    """The labels of the patient's specimens still to collect (of one order group if given)."""
    with uow:
        s, now = uow.session, uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port, action=LABELS, target=group_number)
        query = select(LabOrder).where(LabOrder.patient_id == patient_id,
                                       LabOrder.status == rules.OrderStatus.ORDERED)
        if group_number:
            query = query.where(LabOrder.group_number == group_number)
        rows = list(s.scalars(query.order_by(LabOrder.specimen_number, LabOrder.placer_number)))
        person = identity.summaries(s, [patient_id])[patient_id]
        printed: dict[str, SpecimenLabel] = {}
        for r in rows:
            if r.specimen_number not in printed:
                printed[r.specimen_number] = SpecimenLabel(
                    r.specimen_number, f"{(person.used_name or person.birth_name).upper()} {person.first_names}",
                    person.ipp, person.birth_date, person.sex, r.container_label, r.colour, [], r.urgency,
                    r.ordered_at)
            printed[r.specimen_number].tests.append(r.test_label)
        uow.commit()
        return list(printed.values())


# --- what the laboratory says --------------------------------------------------------------------------

def record_answer(uow: UnitOfWork, order_id: uuid.UUID, action: str, code: str, reason: str = "") -> None:
    """The laboratory's acknowledgement of an order's message (called by the outbox handler):
    AA/CA accepts it (after collection the order is then received); AE/AR puts the order in
    error, shown on the page, while the outbox tries again and finally gives up."""
    with uow:
        s, now = uow.session, uow.clock.now()
        row = s.get(LabOrder, order_id, with_for_update=True)
        if row is None:
            return
        if code in ("AA", "CA"):
            row.transmission, row.transmission_error = rules.Transmission.ACCEPTED, None
            if action == NEW:
                row.accepted_at = row.accepted_at or now
                row.status = rules.acknowledged(rules.OrderStatus(row.status))
        else:
            row.transmission = rules.Transmission.ERROR
            row.transmission_error = f"{code}: {reason}"[:1000]
        row.updated_at = now
        audit.record(s, SYSTEM_ACTOR, ANSWERED, at=now, patient_id=row.patient_id, target=row.placer_number,
                     details={"message": action, "ack": code, "reason": reason[:300]})
        uow.commit()


def match_results(session: Session, patient_id: uuid.UUID, placer_number: str, report_id: uuid.UUID,
                  result_statuses: list[str], now: datetime) -> bool:
    """Results came back for OBR-2 `placer_number` (in the ORU's transaction): the order of this
    patient with that number moves on. False when no order matches (results of tests ordered
    outside naho are filed all the same)."""
    if not rules.is_placer_number(placer_number):
        return False  # not a number naho gave: no order of ours (and no query for it)
    row = session.execute(select(LabOrder).where(LabOrder.placer_number == placer_number,
                                                 LabOrder.patient_id == patient_id)).scalar_one_or_none()
    if row is None:
        return False
    row.status = rules.after_results(rules.OrderStatus(row.status), result_statuses)
    row.report_id, row.updated_at = report_id, now
    return True


#: Laboratory orders follow a merged patient, and come back on undo. Moved rows: "lab_order:<id>".
MOVER = TableMover("lab-orders", (LabOrder,))
