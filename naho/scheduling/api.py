"""JSON routes of scheduling: search free slots, book, cancel, reschedule, list a patient's
appointments. Thin: the service decides; the door port comes from app.py's wiring (a patient's
account reaches its own record through the portal's knowledge of accounts)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, Field

from naho.platform.access import CareRelationshipPort
from naho.platform.deps import ActorDep, ContainerDep, UowDep
from naho.platform.security.actor import Actor
from naho.platform.security.policy import requires
from naho.platform.security.rules import STAFF_ROLES, Role
from naho.scheduling import rules, service

router = APIRouter(prefix="/api/scheduling", tags=["scheduling"])
#: Free slots hold no patient data: anyone signed in may search them.
SEARCHERS = requires(*STAFF_ROLES, Role.PATIENT, Role.INTERFACE)
#: Who may book: the secretariat, physicians (their own schedules), systems, patients (their own).
BOOKERS = requires(Role.ADMISSION_CLERK, Role.PHYSICIAN, Role.INTERFACE, Role.PATIENT)


#: Who opens and closes schedules: the secretariat; physicians their own (the service checks).
MANAGERS = requires(Role.ADMISSION_CLERK, Role.IT_ADMIN, Role.PHYSICIAN)


class OpeningIn(BaseModel):
    weekday: int = Field(ge=0, le=6, description="0 = Monday")
    start: time
    end: time
    consultation_type: rules.ConsultationType
    minutes: int | None = Field(default=None, ge=5, le=240)
    valid_from: date | None = None
    valid_until: date | None = None


class ScheduleCreate(BaseModel):
    name: str = Field(min_length=2, max_length=200)
    specialty: str = Field(min_length=2, max_length=80)
    establishment_code: str = Field(max_length=40)
    place: str = Field(min_length=2, max_length=300)
    practitioner_account_id: uuid.UUID | None = None
    openings: list[OpeningIn] = Field(min_length=1, max_length=50)


class SlotsCreate(BaseModel):
    first_day: date
    last_day: date


class ClosureCreate(BaseModel):
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str = Field(min_length=2, max_length=300)


class WaitingCreate(BaseModel):
    patient_id: uuid.UUID
    consultation_type: rules.ConsultationType
    specialty: str | None = Field(default=None, max_length=80)
    schedule_id: uuid.UUID | None = None
    establishment_code: str | None = Field(default=None, max_length=40)


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


@router.post("/schedules", status_code=201, dependencies=[Depends(MANAGERS)])
def create_schedule(data: ScheduleCreate, container: ContainerDep, actor: ActorDep) -> ScheduleOut:
    openings = [rules.Opening(o.weekday, o.start, o.end, o.consultation_type,
                              o.minutes or rules.DEFAULT_MINUTES[o.consultation_type], o.valid_from, o.valid_until)
                for o in data.openings]
    schedule_id = service.create_schedule(container.uow(), actor, name=data.name, specialty=data.specialty,
                                          establishment_code=data.establishment_code, place=data.place,
                                          openings=openings, practitioner_account_id=data.practitioner_account_id)
    with container.uow() as uow:
        return _schedule(service.get_schedule(uow.session, schedule_id))


@router.post("/schedules/{schedule_id}/slots", dependencies=[Depends(MANAGERS)])
def generate(schedule_id: uuid.UUID, data: SlotsCreate, container: ContainerDep, actor: ActorDep) -> dict[str, int]:
    if (data.last_day - data.first_day).days > 366:
        raise service.BookingRuleBroken("generate a year of slots at most", rule="PeriodTooLong")
    return {"added": service.generate_slots(container.uow(), actor, schedule_id, data.first_day, data.last_day)}


@router.post("/schedules/{schedule_id}/closures", dependencies=[Depends(MANAGERS)])
def close(schedule_id: uuid.UUID, data: ClosureCreate, container: ContainerDep, actor: ActorDep) -> dict[str, int]:
    blocked = service.close_schedule(container.uow(), actor, schedule_id, data.starts_at, data.ends_at, data.reason)
    return {"blocked": blocked}


@router.post("/waiting-list", status_code=201, dependencies=[Depends(BOOKERS)])
def wait(data: WaitingCreate, container: ContainerDep, actor: ActorDep) -> dict[str, uuid.UUID]:
    entry = service.join_waiting_list(container.uow(), actor, data.patient_id, door(container, actor),
                                      consultation_type=str(data.consultation_type), specialty=data.specialty,
                                      schedule_id=data.schedule_id, establishment_code=data.establishment_code)
    return {"id": entry}
