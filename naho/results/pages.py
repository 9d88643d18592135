"""Pages of laboratory results: the patient's cumulative table and trends, the critical values
worklist, the messages waiting to be matched by hand. Thin: the service decides and audits."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from naho.identity import service as identity
from naho.platform import i18n
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.errors import NotFound
from naho.platform.security.policy import requires
from naho.platform.security.rules import Role
from naho.results import release, service
from naho.results.release_pages import WAITING_LABELS
from naho.web.templating import render

router = APIRouter(include_in_schema=False)
CLINICIANS = requires(Role.PHYSICIAN, Role.NURSE, Role.PHARMACIST)
PHYSICIANS = requires(Role.PHYSICIAN)
MATCHERS = requires(*service.MATCHERS)

STATUS_LABELS = {
    "P": i18n.N_("preliminary"),
    "F": i18n.N_("final"),
    "C": i18n.N_("corrected"),
    "X": i18n.N_("cancelled"),
    "D": i18n.N_("withdrawn"),
}
DIRECTION_LABELS = {"low": i18n.N_("critically low"), "high": i18n.N_("critically high")}


def _labels() -> dict[str, object]:
    return {"status_labels": {k: i18n._(v) for k, v in STATUS_LABELS.items()},
            "direction_labels": {k: i18n._(v) for k, v in DIRECTION_LABELS.items()}}


@router.get("/patients/{patient_id}/resultats", dependencies=[Depends(CLINICIANS)])
def patient_results(request: Request, patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    care = container.ports["care"]
    view = service.view_results(container.uow(), actor, patient_id, care)
    with container.session_factory() as s:  # the door above let the actor in
        patient = identity.summaries(s, [patient_id])[patient_id]
        released = release.states_of(s, patient_id)
    return render(request, "results/patient.html", {
        "patient": patient, "view": view, "can_acknowledge": actor.has_any(Role.PHYSICIAN), "release": released,
        "waiting_labels": {k: i18n._(v) for k, v in WAITING_LABELS.items()}, **_labels()})


@router.get("/patients/{patient_id}/resultats/alertes", dependencies=[Depends(CLINICIANS)])
def patient_alert_banner(request: Request, patient_id: uuid.UUID, container: ContainerDep,
                         actor: ActorDep) -> Response:
    """The critical values banner of the patient's file (loaded by htmx into the page)."""
    alerts = service.open_alerts_of(container.uow(), actor, patient_id, container.ports["care"])
    return render(request, "results/_alerts.html", {
        "alerts": alerts, "back": f"/patients/{patient_id}", "show_patient": False,
        "can_acknowledge": actor.has_any(Role.PHYSICIAN), **_labels()})


@router.get("/resultats/alertes", dependencies=[Depends(PHYSICIANS)])
def alert_worklist(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    alerts = service.alerts_for(container.uow(), actor, container.ports["care"])
    return render(request, "results/alerts.html", {"alerts": alerts, **_labels()})


@router.post("/resultats/alertes/{alert_id}/acquittement", dependencies=[Depends(PHYSICIANS)])
def acknowledge(alert_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                suivant: Annotated[str, Form(max_length=200)] = "") -> Response:
    alert = service.acknowledge_alert(container.uow(), actor, alert_id, container.ports["care"])
    own = suivant.startswith("/") and not suivant.startswith("//")  # never a redirect off the site
    back = suivant if own else f"/patients/{alert.patient_id}/resultats"
    return RedirectResponse(back, status_code=303)


@router.get("/resultats/a-rapprocher", dependencies=[Depends(MATCHERS)])
def dead_letters(request: Request, container: ContainerDep, actor: ActorDep, erreur: str | None = None) -> Response:
    letters = service.dead_letters(container.uow(), actor)
    error = i18n._("No patient you may open has this IPP.") if erreur else None
    return render(request, "results/dead_letters.html", {"letters": letters, "error": error})


@router.post("/resultats/a-rapprocher/{message_id}", dependencies=[Depends(MATCHERS)])
def match(message_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
          ipp: Annotated[str, Form(max_length=20)]) -> Response:
    try:
        patient_id = service.match_dead_letter(container.uow(), actor, message_id, ipp,
                                               container.ports["results_settings"], container.ports["care"])
    except NotFound as exc:
        if isinstance(exc, service.DeadLetterNotFound):
            raise
        return RedirectResponse("/resultats/a-rapprocher?erreur=patient", status_code=303)
    return RedirectResponse(f"/patients/{patient_id}", status_code=303)
