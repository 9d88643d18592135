"""Use cases of the pharmacist's review (analyse pharmaceutique, arrêté du 6 avril 2011, art. 13):
the queue of each establishment's pharmacy, the order with what the pharmacist needs to judge
it, the decision (validated, or refused with an SFPC-coded intervention), the prescriber's
answer to the intervention, and what the prescriber and the ward read of it.

Same shape as medication.service: the one door first (purpose care), the pure rules
(`review_rules`), write, audit, one transaction. The pharmacists of an establishment's pharmacy
analyse the orders of every patient staying there, not only of the units they are assigned to:
`PharmacyCareRelationship` adds that relationship to the record's care team, for these use
cases only. The decision moves `review_status` from pending by a conditional update, so a
second decision on the same version (or one on a replaced or stopped version) gets 409.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import NoReturn

from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from naho.identity import service as identity
from naho.identity.schemas import PatientPublic
from naho.medication import review_rules as rules
from naho.medication import service as orders
from naho.medication.models import MedicationOrder, PharmacistReview
from naho.medication.schemas import OrderPublic, PharmacistReviewPublic
from naho.platform import audit
from naho.platform.access import CareRelationshipPort, PatientNotFound, Purpose, access_patient
from naho.platform.errors import Conflict, DomainError, Forbidden, NotFound
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.record import chart
from naho.record import service as record
from naho.record.schemas import AllergyPublic, ConditionPublic, EncounterPublic
from naho.sites import service as sites
from naho.staff import service as staff

REVIEWERS = frozenset({Role.PHARMACIST})
RESPONDERS = frozenset({Role.PHYSICIAN})
#: The queue shows at most this many order versions, oldest first.
QUEUE_LIMIT = 300
#: Audit actions: the door's check names what was asked; the decision and answer what was done.
ACCESS_VIEW, ACCESS_DECIDE, ACCESS_ANSWER = ("medication:review:view", "medication:review:decide",
                                             "medication:review:answer")
DONE = {rules.Decision.VALIDATED: "medication:review:validated", rules.Decision.REFUSED: "medication:review:refused"}
ANSWERED = "medication:review:answered"
ROLE_REFUSED = "medication:review:role-refused"
QUEUE_VIEWED = "medication:review:queue"


# --- errors ------------------------------------------------------------------------------------------

class ReviewerRequired(Forbidden):
    """Only a pharmacist analyses an order."""


class ResponderRequired(Forbidden):
    """Only a physician answers a pharmacist's intervention."""


class NotYourPharmacy(Forbidden):
    """A pharmacist sees the queues of the establishments they work in."""


class ReviewInvalid(DomainError):
    """The decision or answer breaks a rule of the SFPC grid; `rule` names it."""

    title = "Invalid pharmacist review"


class ReviewNotPending(Conflict):
    """This order version was already analysed."""


class OrderNotReviewable(Conflict):
    """The order version was replaced or stopped: the current version is the one analysed."""


class InterventionAlreadyAnswered(Conflict):
    """The prescriber answers an intervention once."""


class ReviewNotFound(NotFound):
    """No review of this order version, or not one this person may open."""


# --- shapes --------------------------------------------------------------------------------------------

class ReviewCreate(BaseModel):
    """The pharmacist's decision: validated (optionally with a comment or a whole intervention),
    or refused with an SFPC problem code, an intervention code and a comment."""

    decision: str = Field(max_length=20)
    problem_code: str | None = Field(default=None, max_length=5)
    intervention_code: str | None = Field(default=None, max_length=5)
    comment: str | None = Field(default=None, max_length=rules.COMMENT_MAX)


class AnswerCreate(BaseModel):
    """The prescriber's answer to an intervention: accepted or declined, with an optional comment."""

    response: str = Field(max_length=20)
    comment: str | None = Field(default=None, max_length=rules.COMMENT_MAX)


class QueueLine(BaseModel):
    order: OrderPublic
    patient_name: str
    ipp: str
    birth_date: date
    age: int
    sex: str
    unit_code: str | None
    unit_name: str | None
    bed_code: str | None
    signs: list[str]
    signed_at: datetime


class ReviewQueue(BaseModel):
    establishment_code: str | None
    #: (code, name) of the establishments whose queue this pharmacist may open.
    establishments: list[tuple[str, str]]
    lines: list[QueueLine]


@dataclass(frozen=True)
class ReviewView:
    """What the pharmacist needs to judge one order version (and the prescriber to read the answer)."""

    order: OrderPublic
    patient: PatientPublic
    age: int
    stay: EncounterPublic | None
    weight_kg: float | None  # latest measured (the order shows the one it was checked with)
    height_cm: float | None
    allergies: list[AllergyPublic]
    conditions: list[ConditionPublic]
    other_orders: list[OrderPublic]
    review: PharmacistReviewPublic | None
    #: Reviews of the earlier versions of this order, newest first: (version, review).
    earlier: list[tuple[int, PharmacistReviewPublic]]
    signs: list[str]
    can_decide: bool
    can_answer: bool


# --- the pharmacy's care relationship ------------------------------------------------------------

def pharmacy_establishments(session: Session, actor: Actor) -> list[str]:
    """Codes of the establishments whose pharmacy this person analyses for: those of their unit
    assignments, primary first (pharmacists only)."""
    if not actor.roles & REVIEWERS:
        return []
    codes: list[str] = []
    for establishment, _unit in staff.workplaces_of(session, actor.account_id):
        if establishment not in codes:
            codes.append(establishment)
    return codes


class PharmacyCareRelationship:
    """The record's care team, plus the pharmacists of the establishment where the patient is
    staying now: the pharmacy analyses every order of the establishment (arrêté du 6 avril
    2011), wherever the patient lies."""

    def __init__(self, care: CareRelationshipPort) -> None:
        self.care = care

    def patient_exists(self, session: Session, patient_id: uuid.UUID) -> bool:
        return self.care.patient_exists(session, patient_id)

    def patient_account(self, session: Session, patient_id: uuid.UUID) -> uuid.UUID | None:
        return self.care.patient_account(session, patient_id)

    def in_care_team(self, session: Session, actor: Actor, patient_id: uuid.UUID, now: datetime) -> bool:
        if self.care.in_care_team(session, actor, patient_id, now):
            return True
        stay = record.current_stays(session, [patient_id]).get(patient_id)
        return stay is not None and stay.establishment_code in pharmacy_establishments(session, actor)


# --- reading ------------------------------------------------------------------------------------------

def _age(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def _narcotic(session: Session, product_code: str) -> bool:
    product = orders.catalogue(session).products.get(product_code)
    if product is None:
        return False
    substances = orders.catalogue(session).substances
    return product.narcotic or any(substances[c.substance].narcotic for c in product.components
                                   if c.substance in substances)


def _signs(session: Session, order: OrderPublic) -> list[str]:
    return [str(s) for s in rules.urgency_signs(order.frequency, (a.severity for a in order.alerts),
                                                _narcotic(session, order.product_code))]


#: The pharmacist's latest word on each order version (kept with the orders' views in service).
latest_reviews = orders.latest_reviews
_review_public = orders.review_public


def _pending_in(session: Session, establishment_code: str) -> list[tuple[MedicationOrder, EncounterPublic]]:
    """Order versions in force waiting for the analysis, of patients staying in the establishment
    now, oldest first."""
    rows = list(session.scalars(select(MedicationOrder).where(
        MedicationOrder.review_status == orders.REVIEW_PENDING, MedicationOrder.status.in_(orders.IN_FORCE))
        .order_by(MedicationOrder.created_at, MedicationOrder.id)))
    stays = record.current_stays(session, [r.patient_id for r in rows])
    return [(r, stays[r.patient_id]) for r in rows
            if r.patient_id in stays and stays[r.patient_id].establishment_code == establishment_code]


def pending_count_by_unit(session: Session, establishment_code: str) -> dict[str, int]:
    """How many order versions wait for the pharmacist, per unit where the patient lies now (ward
    boards; no patient is named)."""
    return dict(Counter(stay.unit_code for _row, stay in _pending_in(session, establishment_code)
                        if stay.unit_code))


def _refuse(session: Session, actor: Actor, now: datetime, action: str, error: Forbidden, *,
            order_id: uuid.UUID | None = None, target: str | None = None) -> NoReturn:
    """Refuse (403) and keep the refused attempt in the trail (committed alone)."""
    patient_id = None
    if order_id is not None:
        patient_id = session.execute(select(MedicationOrder.patient_id).where(MedicationOrder.id == order_id)
                                     ).scalar_one_or_none()
    audit.record(session, actor, ROLE_REFUSED, at=now, patient_id=patient_id,
                 target=str(order_id) if order_id else target,
                 details={"action": action, "roles": sorted(str(r) for r in actor.roles)})
    session.commit()
    raise error


def _require(session: Session, actor: Actor, roles: frozenset[Role], order_id: uuid.UUID | None, now: datetime,
             action: str, error: Forbidden) -> None:
    """Refuse whoever lacks the role, traced."""
    if not actor.roles & roles:
        _refuse(session, actor, now, action, error, order_id=order_id)


def review_queue(uow: UnitOfWork, actor: Actor, establishment_code: str | None) -> ReviewQueue:
    """The pharmacy queue of one establishment the pharmacist works in (the first one by default):
    the order versions pending analysis of the patients staying there, oldest first, with their
    urgency signs. Every patient shown is one the pharmacist may open (PharmacyCareRelationship);
    the listing is audited with what was shown."""
    with uow:
        s, now = uow.session, uow.clock.now()
        _require(s, actor, REVIEWERS, None, now, QUEUE_VIEWED,
                 ReviewerRequired("only a pharmacist opens the review queue"))
        mine = pharmacy_establishments(s, actor)
        names = {e.code: e.short_name for e in sites.establishment_choices(s)}
        chosen = establishment_code or (mine[0] if mine else None)
        if chosen is not None and chosen not in mine:
            _refuse(s, actor, now, QUEUE_VIEWED, target=chosen,
                    error=NotYourPharmacy("this establishment's queue belongs to its own pharmacists"))
        pending = _pending_in(s, chosen)[:QUEUE_LIMIT] if chosen else []
        public = {o.id: o for o in orders.public_orders(s, [row for row, _stay in pending])}
        people = identity.summaries(s, {row.patient_id for row, _stay in pending})
        lines = []
        for row, stay in pending:
            person = people[row.patient_id]
            lines.append(QueueLine(
                order=public[row.id], patient_name=person.display_name, ipp=person.ipp, birth_date=person.birth_date,
                age=_age(person.birth_date, now.date()), sex=person.sex, unit_code=stay.unit_code,
                unit_name=stay.unit_name, bed_code=stay.bed_code, signs=_signs(s, public[row.id]),
                signed_at=row.created_at))
        audit.record(s, actor, QUEUE_VIEWED, at=now, target=chosen,
                     details={"shown": [str(line.order.id) for line in lines],
                              "patients": sorted({str(line.order.patient_id) for line in lines})})
        uow.commit()
        return ReviewQueue(establishment_code=chosen, establishments=[(c, names.get(c, c)) for c in mine],
                           lines=lines)


def _open(s: Session, actor: Actor, order_id: uuid.UUID, port: CareRelationshipPort, now: datetime,
          action: str) -> MedicationOrder:
    """An order version through the door of its patient, the pharmacy's relationship included:
    the same 404 for absent and forbidden."""
    row = s.get(MedicationOrder, order_id)
    if row is None:
        raise ReviewNotFound("no such order")
    try:
        access_patient(s, actor, row.patient_id, Purpose.CARE, now=now, port=PharmacyCareRelationship(port),
                       action=action, target=str(order_id))
    except PatientNotFound:
        raise ReviewNotFound("no such order") from None  # the refusal is audited; the answer says no more
    return row


def review_view(uow: UnitOfWork, actor: Actor, order_id: uuid.UUID, port: CareRelationshipPort) -> ReviewView:
    """One order version with the patient's context: age, weight and height (used and latest),
    allergies, problems, the other orders in force, the alerts with their override reasons, the
    reviews of its earlier versions; for pharmacists, physicians and nurses of the patient."""
    with uow:
        s, now = uow.session, uow.clock.now()
        row = _open(s, actor, order_id, port, now, ACCESS_VIEW)
        patient = identity.summaries(s, [row.patient_id])[row.patient_id]
        order = orders.public_orders(s, [row])[0]
        others = list(s.scalars(select(MedicationOrder).where(
            MedicationOrder.patient_id == row.patient_id, MedicationOrder.status.in_(orders.IN_FORCE),
            MedicationOrder.id != row.id).order_by(MedicationOrder.created_at)))
        versions: list[MedicationOrder] = []
        previous = row.replaces_id
        while previous is not None:
            earlier_row = s.get(MedicationOrder, previous)
            if earlier_row is None:
                break
            versions.append(earlier_row)
            previous = earlier_row.replaces_id
        reviews = latest_reviews(s, [row.id, *(v.id for v in versions)])
        view_chart = chart.read_chart(s, row.patient_id, now)
        own = reviews.get(row.id)
        view = ReviewView(
            order=order, patient=patient, age=_age(patient.birth_date, now.date()),
            stay=record.current_stays(s, [row.patient_id]).get(row.patient_id),
            weight_kg=chart.latest_measure(s, row.patient_id, "weight"),
            height_cm=chart.latest_measure(s, row.patient_id, "height"),
            allergies=view_chart.allergies, conditions=[c for c in view_chart.conditions if c.status == "active"],
            other_orders=orders.public_orders(s, others), review=own,
            earlier=[(v.version, reviews[v.id]) for v in versions if v.id in reviews], signs=_signs(s, order),
            can_decide=bool(actor.roles & REVIEWERS) and row.review_status == orders.REVIEW_PENDING
            and row.status in orders.IN_FORCE,
            can_answer=bool(actor.roles & RESPONDERS) and own is not None and own.intervention_code is not None
            and own.prescriber_response is None)
        uow.commit()
        return view


def _invalid(exc: rules.ReviewRuleError) -> DomainError:
    if isinstance(exc, rules.AlreadyAnswered):
        return InterventionAlreadyAnswered(str(exc), rule=type(exc).__name__)
    return ReviewInvalid(str(exc), rule=type(exc).__name__)


def review_order(uow: UnitOfWork, actor: Actor, order_id: uuid.UUID, data: ReviewCreate,
                 port: CareRelationshipPort) -> PharmacistReviewPublic:
    """The pharmacist validates or refuses one order version (pharmacists only; audited)."""
    with uow:
        s, now = uow.session, uow.clock.now()
        _require(s, actor, REVIEWERS, order_id, now, ACCESS_DECIDE,
                 ReviewerRequired("only a pharmacist analyses a medication order"))
        try:
            decision = rules.decide(data.decision, data.problem_code, data.intervention_code, data.comment)
        except rules.ReviewRuleError as exc:
            raise _invalid(exc) from exc
        row = _open(s, actor, order_id, port, now, ACCESS_DECIDE)
        done = s.execute(update(MedicationOrder).where(
            MedicationOrder.id == row.id, MedicationOrder.review_status == orders.REVIEW_PENDING,
            MedicationOrder.status.in_(orders.IN_FORCE)).values(review_status=str(decision.decision))
            .execution_options(synchronize_session=False))
        if getattr(done, "rowcount", 0) != 1:
            s.refresh(row)
            if row.status not in orders.IN_FORCE:
                raise OrderNotReviewable(f"this version is {row.status}: analyse the order in force",
                                         rule="OrderNotReviewable")
            raise ReviewNotPending(f"this version was already {row.review_status}", rule="ReviewNotPending")
        stay = record.current_stays(s, [row.patient_id]).get(row.patient_id)
        review = PharmacistReview(
            order_id=row.id, patient_id=row.patient_id, establishment_code=stay.establishment_code if stay else None,
            decision=str(decision.decision), problem_code=decision.problem_code,
            intervention_code=decision.intervention_code, comment=decision.comment,
            pharmacist_id=actor.account_id, pharmacist_label=actor.label, decided_at=now)
        s.add(review)
        s.flush()
        audit.record(s, actor, DONE[decision.decision], at=now, patient_id=row.patient_id, target=str(row.id),
                     details={"review": str(review.id), "version": row.version, "problem": decision.problem_code,
                              "intervention": decision.intervention_code})
        public = _review_public(review)
        uow.commit()
        return public


def answer_intervention(uow: UnitOfWork, actor: Actor, order_id: uuid.UUID, data: AnswerCreate,
                        port: CareRelationshipPort) -> PharmacistReviewPublic:
    """The prescriber accepts or declines the pharmacist's intervention on this order version
    (physicians of the care team only; audited), once: the grid records what became of it."""
    with uow:
        s, now = uow.session, uow.clock.now()
        _require(s, actor, RESPONDERS, order_id, now, ACCESS_ANSWER,
                 ResponderRequired("only a physician answers a pharmacist's intervention"))
        row = _open(s, actor, order_id, port, now, ACCESS_ANSWER)
        review = s.execute(select(PharmacistReview).where(PharmacistReview.order_id == row.id)).scalar_one_or_none()
        if review is None:
            raise ReviewNotFound("this order version has not been analysed")
        try:
            answer = rules.answer(data.response, data.comment, has_intervention=review.intervention_code is not None,
                                  answered=review.response is not None)
        except rules.ReviewRuleError as exc:
            raise _invalid(exc) from exc
        done = s.execute(update(PharmacistReview).where(
            PharmacistReview.id == review.id, PharmacistReview.response.is_(None)).values(
            response=str(answer.response), response_comment=answer.comment, responded_by_id=actor.account_id,
            responded_by=actor.label, responded_at=now).execution_options(synchronize_session=False))
        if getattr(done, "rowcount", 0) != 1:
            raise InterventionAlreadyAnswered("this intervention was already answered", rule="AlreadyAnswered")
        s.refresh(review)
        audit.record(s, actor, ANSWERED, at=now, patient_id=row.patient_id, target=str(row.id),
                     reason=answer.comment, details={"review": str(review.id), "response": str(answer.response)})
        public = _review_public(review)
        uow.commit()
        return public


class ReviewDataMover:
    """Reviews follow a merged patient, and come back on undo (identity.service.PatientDataMover).
    Moved rows are named "pharmacist_review:<id>"."""

    name = "medication-review"

    def move(self, session: Session, from_id: uuid.UUID, to_id: uuid.UUID) -> list[str]:
        moved = session.scalars(update(PharmacistReview).where(PharmacistReview.patient_id == from_id)
                                .values(patient_id=to_id).returning(PharmacistReview.id))
        return [f"{PharmacistReview.__tablename__}:{i}" for i in moved]

    def move_back(self, session: Session, row_ids: list[str], to_id: uuid.UUID) -> None:
        ids = [uuid.UUID(r.partition(":")[2]) for r in row_ids if r.startswith(f"{PharmacistReview.__tablename__}:")]
        if ids:
            session.execute(update(PharmacistReview).where(PharmacistReview.id.in_(ids)).values(patient_id=to_id))


MOVER = ReviewDataMover()
