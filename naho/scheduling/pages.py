"""Staff pages of scheduling: the schedules, a schedule's day with booking by IPP and
cancellation. Thin: scheduling.service decides, audits and refuses."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
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
from naho.scheduling import service
from naho.web.templating import render

router = APIRouter(include_in_schema=False)
#: The secretariat and the practitioners (their own schedules; the service checks).
SECRETARIAT = requires(Role.ADMISSION_CLERK, Role.PHYSICIAN)

REFUSALS = {
    "SlotTaken": i18n.N_("This slot has just been booked by someone else: choose another one."),
    "UnknownIpp": i18n.N_("No patient has this IPP."),
    "NotYourSchedule": i18n.N_("This schedule is not yours."),
    "SlotInThePast": i18n.N_("This slot has already started."),
    "AppointmentNotFound": i18n.N_("This appointment no longer exists or is already cancelled."),
    "PatientNotFound": i18n.N_("No patient has this IPP."),
}
CONSULTATION_LABELS = {
    "first_visit": i18n.N_("First visit"),
    "follow_up": i18n.N_("Follow-up"),
    "teleconsultation": i18n.N_("Teleconsultation"),
    "imaging": i18n.N_("Imaging"),
    "lab_draw": i18n.N_("Blood test"),
}


def refusal_name(exc: DomainError) -> str:
    return str(exc.extra.get("rule") or type(exc).__name__)


def _day(schedule_id: uuid.UUID, day: date, error: str | None = None) -> Response:
    suffix = f"&erreur={error}" if error else ""
    return RedirectResponse(f"/agendas/{schedule_id}?jour={day.isoformat()}{suffix}", status_code=303)


@router.get("/agendas", dependencies=[Depends(SECRETARIAT)])
def schedules(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    own = None if actor.has_any(Role.ADMISSION_CLERK) else actor.account_id
    with container.uow() as uow:
        found = service.list_schedules(uow.session, practitioner_account_id=own)
    return render(request, "scheduling/schedules.html", {"schedules": found})


@router.get("/agendas/{schedule_id}", dependencies=[Depends(SECRETARIAT)])
def day_view(request: Request, schedule_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
             jour: date | None = None, erreur: Annotated[str | None, Query(max_length=40)] = None) -> Response:
    day = jour or container.clock.now().astimezone(service.ZONE).date()
    schedule, slots, appointments = service.agenda(container.uow(), actor, schedule_id, day, container.ports["care"])
    by_slot = {a.starts_at: a for a in appointments}
    labels = {k: i18n._(v) for k, v in CONSULTATION_LABELS.items()}
    return render(request, "scheduling/day.html", {
        "schedule": schedule, "slots": slots, "by_slot": by_slot, "day": day, "labels": labels,
        "previous": day - timedelta(days=1), "next": day + timedelta(days=1),
        "error": i18n._(REFUSALS[erreur]) if erreur in REFUSALS else None})


@router.post("/agendas/{schedule_id}/reserver", dependencies=[Depends(SECRETARIAT)])
def book(schedule_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
         slot_id: Annotated[uuid.UUID, Form()], ipp: Annotated[str, Form(max_length=20)] = "") -> Response:
    with container.uow() as uow:
        slot = service.get_slot(uow.session, slot_id)
        patient_id = identity.id_by_ipp(uow.session, ipp.strip())
    day = slot.starts_at.astimezone(service.ZONE).date()
    if patient_id is None:
        return _day(schedule_id, day, "UnknownIpp")
    try:
        service.book(container.uow(), actor, slot_id, patient_id, container.ports["care"])
    except DomainError as exc:
        return _day(schedule_id, day, refusal_name(exc))
    return _day(schedule_id, day)


@router.post("/agendas/{schedule_id}/annuler", dependencies=[Depends(SECRETARIAT)])
def cancel(schedule_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
           appointment_id: Annotated[uuid.UUID, Form()], jour: Annotated[date, Form()]) -> Response:
    try:
        service.cancel(container.uow(), actor, appointment_id, container.ports["care"])
    except DomainError as exc:
        return _day(schedule_id, jour, refusal_name(exc))
    return _day(schedule_id, jour)
