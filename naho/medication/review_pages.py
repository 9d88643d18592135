"""The pharmacist's review: JSON routes and pages (queue per establishment, one order with its
context and the decision form; the prescriber's answer). Thin: medication.review decides
(the one door, who may act, the SFPC rules) and audits.

Routes admit the clinical roles and the pharmacy technicians so that the service refuses
those who may not decide, and keeps their attempt in the trail.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from naho.medication import review
from naho.medication import review_rules as rules
from naho.medication.schemas import PharmacistReviewPublic
from naho.platform import i18n
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.errors import DomainError
from naho.platform.security.policy import requires
from naho.platform.security.rules import Role
from naho.web.templating import render

router = APIRouter(tags=["medication"])
#: Who reaches the service, which then wants a pharmacist to decide, a physician to answer.
CIRCUIT = requires(Role.PHARMACIST, Role.PHYSICIAN, Role.NURSE, Role.PHARMACY_TECHNICIAN)
#: Who may read an order's review (the door then decides on the patient).
READERS = requires(Role.PHARMACIST, Role.PHYSICIAN, Role.NURSE)
QUEUE_PAGE = "/pharmacie/analyse"

DECISION_LABELS = {"validated": i18n.N_("Validated"), "refused": i18n.N_("Refused"),
                   "pending": i18n.N_("Pending analysis")}
RESPONSE_LABELS = {"accepted": i18n.N_("Accepted"), "declined": i18n.N_("Declined")}
#: Why a form was refused, by rule name, shown translated.
REFUSALS = {
    "UnknownDecision": i18n.N_("Choose to validate or to refuse."),
    "InterventionRequired": i18n.N_("A refusal names the problem and the intervention (SFPC grid)."),
    "IncompleteIntervention": i18n.N_("An intervention names both the problem and what is proposed."),
    "UnknownProblemCode": i18n.N_("Choose a problem in the list."),
    "UnknownInterventionCode": i18n.N_("Choose an intervention in the list."),
    "CommentRequired": i18n.N_("Explain the intervention to the prescriber in a comment."),
    "CommentTooLong": i18n.N_("The comment is too long."),
    "ReviewNotPending": i18n.N_("This version was already analysed."),
    "OrderNotReviewable": i18n.N_("This version was replaced or stopped: analyse the order in force."),
    "UnknownResponse": i18n.N_("Choose to accept or to decline."),
    "NoInterventionToAnswer": i18n.N_("This review carries no intervention to answer."),
    "AlreadyAnswered": i18n.N_("This intervention was already answered."),
}
NOTICES = {"validated": i18n.N_("The order was validated."), "refused": i18n.N_("The order was refused.")}


def _labels() -> dict[str, dict[str, str]]:
    return {
        "problems": {code: i18n._(label) for code, label in rules.PROBLEMS.items()},
        "interventions": {code: i18n._(label) for code, label in rules.INTERVENTIONS.items()},
        "signs": {str(sign): i18n._(label) for sign, label in rules.SIGN_LABELS.items()},
        "decisions": {code: i18n._(label) for code, label in DECISION_LABELS.items()},
        "responses": {code: i18n._(label) for code, label in RESPONSE_LABELS.items()},
    }


# --- JSON ------------------------------------------------------------------------------------------------

@router.get("/api/pharmacy/review-queue", dependencies=[Depends(CIRCUIT)])
def queue_json(container: ContainerDep, actor: ActorDep,
               establishment: Annotated[str | None, Query(max_length=20)] = None) -> review.ReviewQueue:
    return review.review_queue(container.uow(), actor, establishment)


@router.post("/api/medication-orders/{order_id}/review", status_code=201, dependencies=[Depends(CIRCUIT)])
def decide_json(order_id: uuid.UUID, data: review.ReviewCreate, container: ContainerDep,
                actor: ActorDep) -> PharmacistReviewPublic:
    return review.review_order(container.uow(), actor, order_id, data, container.ports["care"])


@router.post("/api/medication-orders/{order_id}/review/response", dependencies=[Depends(CIRCUIT)])
def answer_json(order_id: uuid.UUID, data: review.AnswerCreate, container: ContainerDep,
                actor: ActorDep) -> PharmacistReviewPublic:
    return review.answer_intervention(container.uow(), actor, order_id, data, container.ports["care"])


# --- pages -----------------------------------------------------------------------------------------------

@router.get(QUEUE_PAGE, dependencies=[Depends(CIRCUIT)], include_in_schema=False)
def queue_page(request: Request, container: ContainerDep, actor: ActorDep,
               etablissement: Annotated[str | None, Query(max_length=20)] = None,
               fait: str | None = None) -> Response:
    queue = review.review_queue(container.uow(), actor, etablissement or None)
    notice = i18n._(NOTICES[fait]) if fait in NOTICES else None
    return render(request, "medication/review_queue.html", {"queue": queue, "notice": notice, **_labels()})


def _detail(order_id: uuid.UUID, error: str | None = None) -> Response:
    suffix = f"?erreur={error}" if error else ""
    return RedirectResponse(f"{QUEUE_PAGE}/{order_id}{suffix}", status_code=303)


@router.get(QUEUE_PAGE + "/{order_id}", dependencies=[Depends(READERS)], include_in_schema=False)
def order_page(request: Request, order_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
               erreur: str | None = None) -> Response:
    view = review.review_view(container.uow(), actor, order_id, container.ports["care"])
    error = i18n._(REFUSALS[erreur]) if erreur in REFUSALS else None
    return render(request, "medication/review_order.html", {"view": view, "error": error, **_labels()})


def _refused(order_id: uuid.UUID, exc: DomainError) -> Response:
    """The form's own refusals go back to the page with their message; others propagate."""
    rule = str(exc.extra.get("rule", ""))
    if rule not in REFUSALS:
        raise exc
    return _detail(order_id, rule)


@router.post(QUEUE_PAGE + "/{order_id}/decision", dependencies=[Depends(CIRCUIT)], include_in_schema=False)
def decide_form(order_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                decision: Annotated[str, Form(max_length=20)] = "",
                problem_code: Annotated[str, Form(max_length=5)] = "",
                intervention_code: Annotated[str, Form(max_length=5)] = "",
                comment: Annotated[str, Form(max_length=rules.COMMENT_MAX)] = "") -> Response:
    data = review.ReviewCreate(decision=decision, problem_code=problem_code, intervention_code=intervention_code,
                               comment=comment)
    try:
        done = review.review_order(container.uow(), actor, order_id, data, container.ports["care"])
    except (review.ReviewInvalid, review.ReviewNotPending, review.OrderNotReviewable) as exc:
        return _refused(order_id, exc)
    return RedirectResponse(f"{QUEUE_PAGE}?fait={done.decision}", status_code=303)


@router.post(QUEUE_PAGE + "/{order_id}/reponse", dependencies=[Depends(CIRCUIT)], include_in_schema=False)
def answer_form(order_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                response: Annotated[str, Form(max_length=20)] = "",
                comment: Annotated[str, Form(max_length=rules.COMMENT_MAX)] = "") -> Response:
    try:
        review.answer_intervention(container.uow(), actor, order_id, review.AnswerCreate(response=response,
                                                                                          comment=comment),
                                   container.ports["care"])
    except (review.ReviewInvalid, review.InterventionAlreadyAnswered) as exc:
        return _refused(order_id, exc)
    return _detail(order_id)
