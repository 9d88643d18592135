"""Medication reconciliation (conciliation médicamenteuse, HAS 2018): the home treatment listed at
admission with its sources, the prescriber's decision on each line, and the list of treatments at
discharge with what changed.

Same shape as the order service: the one door (purpose care), write, audit, one transaction. A
continued or substituted line signs an order through the same checks as any order (`service._sign`)
in the same transaction: the decision and its order are saved together or not at all.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from naho.medication import rules, service
from naho.medication.models import FormularyProduct, HomeMedication, MedicationOrder
from naho.medication.schemas import (
    DischargeChange,
    HomeMedicationCreate,
    HomeMedicationDecision,
    HomeMedicationPublic,
)
from naho.platform import audit, i18n
from naho.platform.access import CareRelationshipPort, PatientNotFound, Purpose, access_patient
from naho.platform.errors import Conflict, DomainError, NotFound
from naho.platform.security.actor import Actor
from naho.platform.uow import UnitOfWork
from naho.record import chart
from naho.record import service as record
from naho.record.errors import EncounterNotFound

#: Where a home treatment was learnt (HAS: at least two sources, the patient being one).
SOURCES = {
    "patient": i18n.N_("Patient"),
    "family": i18n.N_("Family or carer"),
    "gp_letter": i18n.N_("GP's letter"),
    "prescription": i18n.N_("Prescription brought by the patient"),
    "pharmacy": i18n.N_("Community pharmacy"),
    "shared_record": i18n.N_("Shared medical record (DMP)"),
    "previous_stay": i18n.N_("Previous hospital record"),
    "other": i18n.N_("Other source"),
}
DECISIONS = {
    "continue": i18n.N_("Continue"),
    "substitute": i18n.N_("Substitute"),
    "stop": i18n.N_("Stop"),
}
#: Changes at discharge versus admission.
CHANGES = {
    "new": i18n.N_("New"),
    "continued": i18n.N_("Continued"),
    "modified": i18n.N_("Modified"),
    "stopped": i18n.N_("Stopped"),
    "not_reconciled": i18n.N_("Not reconciled"),
}


class ReconciliationInvalid(DomainError):
    """A home-treatment line or decision is malformed (unknown source, decision without its order
    or reason, continuation by another substance)."""

    title = "Invalid reconciliation"


class HomeMedicationNotFound(NotFound):
    """No such home-treatment line, or not one this person may open."""


class AlreadyDecided(Conflict):
    """The line was already decided; a decision is not changed, the order is."""


def _names(session: Session, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    return {code: name for code, name in session.execute(
        select(FormularyProduct.code, FormularyProduct.name).where(FormularyProduct.code.in_(codes)))}


def _public(session: Session, rows: list[HomeMedication]) -> list[HomeMedicationPublic]:
    names = _names(session, {r.product_code for r in rows if r.product_code})
    return [HomeMedicationPublic(
        id=r.id, patient_id=r.patient_id, encounter_id=r.encounter_id, drug=r.drug, product_code=r.product_code,
        product_name=names.get(r.product_code) if r.product_code else None, dose=r.dose, frequency=r.frequency,
        source=r.source, recorded_at=r.recorded_at, recorded_by=r.recorded_by, decision=r.decision,
        decision_reason=r.decision_reason, decided_at=r.decided_at, decided_by=r.decided_by, order_id=r.order_id)
        for r in rows]


def add_home_medication(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID, data: HomeMedicationCreate,
                        port: CareRelationshipPort) -> HomeMedicationPublic:
    """List one home treatment at admission (physicians, nurses and pharmacists collect them)."""
    if data.source not in SOURCES:
        raise ReconciliationInvalid(f"unknown source {data.source!r} ({', '.join(SOURCES)})", rule="UnknownSource")
    with uow:
        s, now = uow.session, uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port,
                       action="medication:reconciliation:add")
        code = (data.product_code or "").strip() or None
        if code is not None and code not in service.catalogue(s).products:
            raise ReconciliationInvalid(f"product {code!r} is not in the formulary", rule="UnknownProduct")
        row = HomeMedication(id=uuid.uuid4(), patient_id=patient_id,
                             encounter_id=chart.current_encounter(s, patient_id), drug=data.drug.strip(),
                             product_code=code, dose=(data.dose or "").strip() or None,
                             frequency=(data.frequency or "").strip() or None, source=data.source, recorded_at=now,
                             recorded_by=actor.label)
        s.add(row)
        s.flush()
        audit.record(s, actor, "medication:reconciliation:added", at=now, patient_id=patient_id, target=str(row.id),
                     details={"source": row.source, "product": code})
        public = _public(s, [row])[0]
        uow.commit()
        return public


def home_medications(uow: UnitOfWork, actor: Actor, patient_id: uuid.UUID,
                     port: CareRelationshipPort) -> list[HomeMedicationPublic]:
    """The patient's home-treatment lines, oldest first, with their decisions."""
    with uow:
        s, now = uow.session, uow.clock.now()
        access_patient(s, actor, patient_id, Purpose.CARE, now=now, port=port,
                       action="medication:reconciliation:view")
        rows = list(s.scalars(select(HomeMedication).where(HomeMedication.patient_id == patient_id)
                              .order_by(HomeMedication.recorded_at, HomeMedication.drug)))
        public = _public(s, rows)
        uow.commit()
        return public


def _first_substance(session: Session, product_code: str) -> str:
    return service.catalogue(session).product(product_code).components[0].substance


def decide(uow: UnitOfWork, actor: Actor, line_id: uuid.UUID, data: HomeMedicationDecision,
           port: CareRelationshipPort) -> HomeMedicationPublic:
    """The prescriber's decision on a line: `continue` (the order given is of the line's substance
    when the line names a product) or `substitute` (any formulary product) sign the order through
    the checks; `stop` states why. Once decided, a line stays so (the order is changed instead)."""
    service._require_prescriber(actor)
    if data.decision not in DECISIONS:
        raise ReconciliationInvalid(f"unknown decision {data.decision!r}", rule="UnknownDecision")
    reason = (data.reason or "").strip() or None
    if data.decision == "stop" and (reason is None or data.order is not None):
        raise ReconciliationInvalid("stopping a home treatment states its reason and signs no order",
                                    rule="StopReasonRequired")
    if data.decision != "stop" and data.order is None:
        raise ReconciliationInvalid("continuing or substituting signs an order", rule="OrderRequired")
    orders = service._orders_of(data.order) if data.order is not None else []
    with uow:
        s, now = uow.session, uow.clock.now()
        row = s.get(HomeMedication, line_id)
        if row is None:
            raise HomeMedicationNotFound("no such home-treatment line")
        try:
            access_patient(s, actor, row.patient_id, Purpose.CARE, now=now, port=port,
                           action="medication:reconciliation:decide", target=str(line_id))
        except PatientNotFound:
            raise HomeMedicationNotFound("no such home-treatment line") from None
        if row.decision is not None:
            raise AlreadyDecided(f"the line was already decided ({row.decision})")
        if data.order is not None and data.decision == "continue" and row.product_code and \
                _first_substance(s, data.order.product_code) != _first_substance(s, row.product_code):
            raise ReconciliationInvalid("continuing gives the same substance; another one is a substitution",
                                        rule="NotTheSameSubstance")
        if data.order is not None:
            order = service._sign(s, actor, row.patient_id, data.order, orders, now=now,
                                  action="medication:reconciliation:decide")
            row.order_id = order.id
        row.decision, row.decision_reason, row.decided_at, row.decided_by = data.decision, reason, now, actor.label
        audit.record(s, actor, "medication:reconciliation:decided", at=now, patient_id=row.patient_id,
                     target=str(row.id), reason=reason,
                     details={"decision": row.decision, "order": str(row.order_id) if row.order_id else None})
        public = _public(s, [row])[0]
        uow.commit()
        return public


def _of_order(change: str, order: MedicationOrder, names: dict[str, str], line: HomeMedication | None,
              reason: str | None) -> DischargeChange:
    return DischargeChange(change=change, drug=names.get(order.product_code, order.product_code),
                           dose=f"{rules._num(order.dose_value)} {order.dose_unit}", frequency=order.frequency,
                           order_id=order.id, home_medication_id=line.id if line else None, reason=reason,
                           route=order.route, times_per_day=order.times_per_day, every_hours=order.every_hours,
                           max_per_24h=order.max_per_24h)


#: Why a home treatment is listed as stopped when the prescriber ended it with the stay.
ENDED_WITH_THE_STAY = "arrêté à la sortie"


def discharge_changes(session: Session, encounter_id: uuid.UUID) -> list[DischargeChange]:
    """The treatments at the end of a stay and their change versus admission, for the discharge
    letter (the caller went through the door of the stay's patient).

    Each home-treatment line: `stopped` (with its reason) when the prescriber stopped it or its
    order was stopped during the stay, `modified` when substituted or its order has a later version,
    `continued` otherwise, `not_reconciled` when never decided. Each order of the stay not born of
    a home line and still given at the end (in force, or stopped by the discharge): `new`. Orders
    show their latest version. The prescriber's word at discharge decides first: an order said to
    `stop` at discharge ends with the stay (a hospital-only treatment is left out; a home treatment
    is `stopped`); one not said is counted as given at the end.
    """
    lines = list(session.scalars(select(HomeMedication).where(HomeMedication.encounter_id == encounter_id)
                                 .order_by(HomeMedication.recorded_at, HomeMedication.drug)))
    orders = list(session.scalars(select(MedicationOrder).where(MedicationOrder.encounter_id == encounter_id)
                                  .order_by(MedicationOrder.created_at, MedicationOrder.version)))
    by_id = {o.id: o for o in orders}
    replaced_by = {o.replaces_id: o for o in orders if o.replaces_id}

    def latest(order: MedicationOrder) -> MedicationOrder:
        while order.id in replaced_by:
            order = replaced_by[order.id]
        return order

    names = _names(session, {o.product_code for o in orders})
    changes: list[DischargeChange] = []
    linked: set[uuid.UUID] = set()
    for line in lines:
        first = by_id.get(line.order_id) if line.order_id else None
        if first is None:
            change = "stopped" if line.decision == "stop" else "not_reconciled"
            changes.append(DischargeChange(change=change, drug=line.drug, dose=line.dose, frequency=line.frequency,
                                           order_id=None, home_medication_id=line.id, reason=line.decision_reason))
            continue
        linked.add(first.id)
        last = latest(first)
        if last.status == service.STOPPED and last.status_reason != "discharge":
            change, reason = "stopped", last.status_reason
        elif last.at_discharge == "stop":
            change, reason = "stopped", ENDED_WITH_THE_STAY
        elif line.decision == "substitute" or last.id != first.id:
            change, reason = "modified", line.decision_reason
        else:
            change, reason = "continued", None
        changes.append(_of_order(change, last, names, line, reason))
    for order in orders:
        if order.replaces_id is not None or order.id in linked:
            continue
        last = latest(order)
        given_at_end = last.status in service.IN_FORCE or (
            last.status == service.STOPPED and last.status_reason == "discharge")
        if given_at_end and last.at_discharge != "stop":
            changes.append(_of_order("new", last, names, None, None))
    return changes


def discharge_list(uow: UnitOfWork, actor: Actor, encounter_id: uuid.UUID,
                   port: CareRelationshipPort) -> list[DischargeChange]:
    """`discharge_changes` through the door of the stay's patient."""
    with uow:
        s, now = uow.session, uow.clock.now()
        try:
            stay = record.get_encounter(s, encounter_id)
            access_patient(s, actor, stay.patient_id, Purpose.CARE, now=now, port=port,
                           action="medication:reconciliation:discharge", target=str(encounter_id))
        except (PatientNotFound, EncounterNotFound):
            raise HomeMedicationNotFound("no such stay") from None
        changes = discharge_changes(s, encounter_id)
        uow.commit()
        return changes
