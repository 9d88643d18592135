"""Pages of laboratory orders: the patient's orders with their status and the order form, the
specimen labels to print, the collection recorded by scanning a label. Thin: results.orders
decides, checks roles and audits."""

from __future__ import annotations

import base64
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from naho.identity import service as identity
from naho.platform import i18n
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.errors import DomainError
from naho.platform.security.policy import requires
from naho.platform.security.rules import Role
from naho.results import order_rules as rules
from naho.results import orders
from naho.web.barcodes import code128_svg
from naho.web.templating import render

router = APIRouter(include_in_schema=False)
#: The route lets the ward's clinicians in; who may order or collect is the service's rule (audited).
WARD = requires(Role.PHYSICIAN, Role.NURSE)
PAGE = "/patients/{patient_id}/examens-biologiques"

STATUS_LABELS = {
    "ordered": i18n.N_("ordered"),
    "collected": i18n.N_("collected"),
    "received": i18n.N_("received by the laboratory"),
    "preliminary": i18n.N_("preliminary results"),
    "final": i18n.N_("final results"),
    "cancelled": i18n.N_("cancelled"),
}
TRANSMISSION_LABELS = {
    "pending": i18n.N_("waiting for the laboratory"),
    "accepted": i18n.N_("accepted by the laboratory"),
    "error": i18n.N_("refused by the laboratory"),
    "not_sent": i18n.N_("not sent (no laboratory interface)"),
}
URGENCY_LABELS = {"routine": i18n.N_("routine"), "urgent": i18n.N_("urgent"), "stat": i18n.N_("STAT")}
COLOUR_LABELS = {"lavender": i18n.N_("lavender cap"), "green": i18n.N_("green cap"),
                 "light-blue": i18n.N_("light blue cap"), "gold": i18n.N_("gold cap"), "red": i18n.N_("red cap"),
                 "grey": i18n.N_("grey cap"), "culture-bottle": i18n.N_("blood culture bottles")}
#: What a refusal (its rule) says on the page.
REFUSALS = {
    "NoTestOrdered": i18n.N_("Choose at least one test."),
    "UnknownTest": i18n.N_("This test is not in the catalogue."),
    "NoCurrentStay": i18n.N_("The patient has no current stay: tests are ordered for a stay."),
    "CollectedOrderNotCancellable": i18n.N_("The specimen is collected: ask the laboratory to cancel the test."),
    "OrderCancelled": i18n.N_("This order is cancelled."),
    "AlreadyCollected": i18n.N_("This specimen was already collected."),
    "NotASpecimenLabel": i18n.N_("This is not a specimen label."),
    "SpecimenNotFound": i18n.N_("No order of this patient has this specimen label."),
}


def _labels() -> dict[str, object]:
    return {name: {k: i18n._(v) for k, v in table.items()} for name, table in (
        ("status_labels", STATUS_LABELS), ("transmission_labels", TRANSMISSION_LABELS),
        ("urgency_labels", URGENCY_LABELS), ("colour_labels", COLOUR_LABELS))}


def _back(patient_id: uuid.UUID, error: DomainError | None = None, **query: str) -> RedirectResponse:
    if error is not None:
        query["erreur"] = str(error.extra.get("rule", ""))
    suffix = "&".join(f"{k}={v}" for k, v in query.items())
    return RedirectResponse(PAGE.format(patient_id=patient_id) + (f"?{suffix}" if suffix else ""), status_code=303)


@router.get(PAGE, dependencies=[Depends(WARD)])
def orders_page(request: Request, patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                erreur: Annotated[str, Query(max_length=60)] = "",
                preleve: Annotated[str, Query(max_length=20)] = "") -> Response:
    listed = orders.orders_of(container.uow(), actor, patient_id, container.ports["care"])
    with container.session_factory() as s:
        patient = identity.summaries(s, [patient_id])[patient_id]
    return render(request, "results/orders.html", {
        "patient": patient, "orders": listed, "catalogue": orders.catalogue().tests.values(),
        "urgencies": [str(u) for u in rules.Urgency], "can_order": actor.has_any(*orders.ORDERERS),
        "error": i18n._(REFUSALS[erreur]) if erreur in REFUSALS else None, "collected": preleve, **_labels()})


@router.post(PAGE, dependencies=[Depends(WARD)])
def order(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
          examens: Annotated[list[str] | None, Form()] = None,
          urgence: Annotated[rules.Urgency, Form()] = rules.Urgency.ROUTINE,
          renseignements: Annotated[str, Form(max_length=2000)] = "") -> Response:
    # The fields are optional here: the door and the rules refuse, so access is decided first.
    data = orders.LabOrderCreate(examens or [], urgence, renseignements)
    try:
        placed = orders.place_orders(container.uow(), actor, patient_id, data, container.ports["care"])
    except (orders.OrderRefused, orders.NoCurrentStay) as exc:
        return _back(patient_id, exc)
    target = PAGE.format(patient_id=patient_id) + f"/etiquettes?groupe={placed[0].group_number}"
    return RedirectResponse(target, status_code=303)


@router.post(PAGE + "/{order_id}/annulation", dependencies=[Depends(WARD)])
def cancel(patient_id: uuid.UUID, order_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
           motif: Annotated[str, Form(max_length=500)] = "") -> Response:
    try:
        orders.cancel_order(container.uow(), actor, order_id, motif, container.ports["care"])
    except orders.OrderRefused as exc:
        return _back(patient_id, exc)
    return _back(patient_id)


@router.post(PAGE + "/prelevement", dependencies=[Depends(WARD)])
def collect(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
            etiquette: Annotated[str, Form(max_length=60)] = "") -> Response:
    try:
        done = orders.record_collection(container.uow(), actor, patient_id, etiquette, container.ports["care"])
    except (orders.OrderRefused, orders.SpecimenNotFound) as exc:
        return _back(patient_id, exc)
    return _back(patient_id, preleve=done[0].specimen_number if done else "")


@router.get(PAGE + "/etiquettes", dependencies=[Depends(WARD)])
def labels_page(request: Request, patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                groupe: Annotated[str, Query(max_length=20)] = "") -> Response:
    printed = orders.labels(container.uow(), actor, patient_id, groupe or None, container.ports["care"])
    drawn = [(label, base64.b64encode(code128_svg(label.specimen_number).encode("utf-8")).decode("ascii"))
             for label in printed]
    return render(request, "results/specimen_labels.html", {
        "patient_id": patient_id, "labels": drawn, **_labels()})
