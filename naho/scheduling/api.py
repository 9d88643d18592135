"""JSON routes of scheduling: search free slots, book, cancel, reschedule, list a patient's
appointments. Thin: the service decides; the door port comes from app.py's wiring (a patient's
account reaches its own record through the portal's knowledge of accounts)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from naho.platform.access import CareRelationshipPort
from naho.platform.deps import ActorDep, ContainerDep, UowDep
from naho.platform.security.actor import Actor
from naho.platform.security.policy import requires
from naho.platform.security.rules import STAFF_ROLES, Role
from naho.scheduling import service

router = APIRouter(prefix="/api/scheduling", tags=["scheduling"])
#: Free slots hold no patient data: anyone signed in may search them.
SEARCHERS = requires(*STAFF_ROLES, Role.PATIENT, Role.INTERFACE)
#: Who may book: the secretariat, physicians (their own schedules), systems, patients (their own).
BOOKERS = requires(Role.ADMISSION_CLERK, Role.PHYSICIAN, Role.INTERFACE, Role.PATIENT)


class BookingCreate(BaseModel):
    slot_id: uuid.UUID
    patient_id: uuid.UUID


class Reschedule(BaseModel):
    slot_id: uuid.UUID


class ScheduleOut(BaseModel):
    id: uuid.UUID
    name: str
    specialty: str
    establishment_code: str
    establishment_name: str
    place: str


class SlotOut(BaseModel):
    id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    consultation_type: str
    status: str
    schedule: ScheduleOut


class AppointmentOut(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    consultation_type: str
    status: str
    booked_via: str
    schedule: ScheduleOut


def door(container: Any, actor: Actor) -> CareRelationshipPort:
    """The care-relationship port for this actor (app.py wires `door_for`; the record's otherwise)."""
    door_for = container.ports.get("door_for")
    port: CareRelationshipPort = door_for(actor) if door_for else container.ports["care"]
    return port


def _schedule(view: service.ScheduleView) -> ScheduleOut:
    return ScheduleOut(id=view.id, name=view.name, specialty=view.specialty, establishment_code=view.establishment_code,
                       establishment_name=view.establishment_name, place=view.place)


def _appointment(view: service.AppointmentView) -> AppointmentOut:
    return AppointmentOut(id=view.id, patient_id=view.patient_id, starts_at=view.starts_at, ends_at=view.ends_at,
                          consultation_type=view.consultation_type, status=view.status, booked_via=view.booked_via,
                          schedule=_schedule(view.schedule))


@router.get("/slots", dependencies=[Depends(SEARCHERS)])
def search(uow: UowDep, specialty: Annotated[str | None, Query(max_length=80)] = None,
           establishment: Annotated[str | None, Query(max_length=40)] = None, schedule: uuid.UUID | None = None,
           consultation_type: Annotated[str | None, Query(max_length=30)] = None,
           limit: Annotated[int, Query(ge=1, le=200)] = 20) -> list[SlotOut]:
    with uow:
        found = service.search_slots(uow.session, now=uow.clock.now(), specialty=specialty, schedule_id=schedule,
                                     establishment_code=establishment, consultation_type=consultation_type, limit=limit)
    return [SlotOut(id=s.id, starts_at=s.starts_at, ends_at=s.ends_at, consultation_type=s.consultation_type,
                    status=s.status, schedule=_schedule(s.schedule)) for s in found]


@router.post("/appointments", status_code=201, dependencies=[Depends(BOOKERS)])
def book(data: BookingCreate, container: ContainerDep, actor: ActorDep) -> AppointmentOut:
    return _appointment(service.book(container.uow(), actor, data.slot_id, data.patient_id, door(container, actor)))


@router.post("/appointments/{appointment_id}/cancel", status_code=204, dependencies=[Depends(BOOKERS)])
def cancel(appointment_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> None:
    service.cancel(container.uow(), actor, appointment_id, door(container, actor))


@router.post("/appointments/{appointment_id}/reschedule", dependencies=[Depends(BOOKERS)])
def reschedule(appointment_id: uuid.UUID, data: Reschedule, container: ContainerDep, actor: ActorDep) -> AppointmentOut:
    view = service.reschedule(container.uow(), actor, appointment_id, data.slot_id, door(container, actor))
    return _appointment(view)


@router.get("/patients/{patient_id}/appointments", dependencies=[Depends(BOOKERS)])
def appointments(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> list[AppointmentOut]:
    views = service.patient_appointments(container.uow(), actor, patient_id, door(container, actor))
    return [_appointment(v) for v in views]
