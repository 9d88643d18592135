"""The FHIR R4 facade of scheduling: read and search Schedule, Slot and Appointment, and book
through `POST Appointment` with the same rules as the pages and the JSON API (a slot taken by
someone else is a 409 OperationOutcome). Registered before fhir_api's router, whose last routes
catch every other type. Patient data (Appointment) goes through the door, as everywhere.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from naho.interop import fhir
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.errors import NotFound
from naho.platform.security.policy import Policy
from naho.platform.security.rules import STAFF_ROLES, Role
from naho.scheduling import fhir as scheduling_fhir
from naho.scheduling import service
from naho.scheduling.api import door

router = APIRouter(prefix=fhir.BASE_PATH, tags=["fhir"], dependencies=[Depends(fhir.negotiate)])
#: Staff, systems, and patients (who see their own appointments only: the door decides).
READERS = Policy("staff-interface-or-patient", STAFF_ROLES | {Role.INTERFACE, Role.PATIENT})
BOOKERS = Policy("booking", {Role.ADMISSION_CLERK, Role.PHYSICIAN, Role.INTERFACE, Role.PATIENT})

_P = fhir.SearchParam
SCHEDULE = fhir.ResourceSupport("Schedule", "Consultation schedules of the group's establishments.", (
    _P("specialty", "token", "The specialty (naho's code, e.g. cardiology)"),
))
SLOT = fhir.ResourceSupport("Slot", "Free slots of the schedules, soonest first (booked ones are not listed).", (
    _P("schedule", "reference", "Schedule/id"),
    _P("specialty", "token", "The specialty of the schedule"),
    _P("start", "date", "ge… : the first start wanted"),
))
APPOINTMENT = fhir.ResourceSupport(
    "Appointment", "Appointments of a patient the caller may open (live and to come). Create: POST with "
    "status booked, slot [Slot/id] and a participant Patient/id; a slot taken meanwhile answers 409.",
    (_P("patient", "reference", "Patient/id (required)"),), interactions=("read", "search-type", "create"))
SUPPORTED = {r.type: r for r in (SCHEDULE, SLOT, APPOINTMENT)}


def _id(value: str, kind: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise fhir.ResourceNotFound(f"{kind}/{value} is not known") from None


def _ref(value: str, kind: str, param: str) -> uuid.UUID:
    return _id(fhir.parse_reference(value, kind, param), kind)


@router.get("/Schedule/{resource_id}", dependencies=[Depends(READERS)])
def read_schedule(resource_id: str, request: Request, container: ContainerDep) -> Response:
    with container.session_factory() as s:
        try:
            view = service.get_schedule(s, _id(resource_id, "Schedule"))
        except service.ScheduleNotFound:
            raise fhir.ResourceNotFound(f"Schedule/{resource_id} is not known") from None
    return fhir.resource_response(scheduling_fhir.schedule_resource(view), pretty=fhir.read_options(request))


@router.get("/Schedule", dependencies=[Depends(READERS)])
def search_schedule(request: Request, container: ContainerDep) -> Response:
    search = fhir.parse_search(request, SCHEDULE)
    with container.session_factory() as s:
        found = service.list_schedules(s, specialty=search.get("specialty"))
    shown, more = fhir.page(found, search)
    return fhir.searchset_response(request, search, [scheduling_fhir.schedule_resource(v) for v in shown],
                                   has_next=more, total=len(found))


@router.get("/Slot/{resource_id}", dependencies=[Depends(READERS)])
def read_slot(resource_id: str, request: Request, container: ContainerDep) -> Response:
    with container.session_factory() as s:
        try:
            view = service.get_slot(s, _id(resource_id, "Slot"))
        except service.SlotNotFound:
            raise fhir.ResourceNotFound(f"Slot/{resource_id} is not known") from None
    return fhir.resource_response(scheduling_fhir.slot_resource(view), pretty=fhir.read_options(request))


@router.get("/Slot", dependencies=[Depends(READERS)])
def search_slot(request: Request, container: ContainerDep) -> Response:
    search = fhir.parse_search(request, SLOT)
    zone = fhir.local_zone(request)
    start = search.get("start")
    not_before = fhir.parse_date(start, zone, "start").start if start else None
    schedule = search.get("schedule")
    with container.session_factory() as s:
        found = service.search_slots(s, now=container.clock.now(), specialty=search.get("specialty"),
                                     schedule_id=_ref(schedule, "Schedule", "schedule") if schedule else None,
                                     not_before=not_before, limit=search.offset + search.count + 1)
    shown = found[search.offset:search.offset + search.count]
    return fhir.searchset_response(request, search, [scheduling_fhir.slot_resource(v) for v in shown],
                                   has_next=len(found) > search.offset + search.count)


@router.get("/Appointment/{resource_id}", dependencies=[Depends(READERS)])
def read_appointment(resource_id: str, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    try:
        view = service.get_appointment(container.uow(), actor, _id(resource_id, "Appointment"), door(container, actor))
    except service.AppointmentNotFound:
        raise fhir.ResourceNotFound(f"Appointment/{resource_id} is not known") from None
    return fhir.resource_response(scheduling_fhir.appointment_resource(view), pretty=fhir.read_options(request))


@router.get("/Appointment", dependencies=[Depends(READERS)])
def search_appointment(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    search = fhir.parse_search(request, APPOINTMENT)
    patient = search.get("patient")
    if not patient:
        raise fhir.InvalidRequest("an Appointment search needs patient=Patient/id")
    try:
        found = service.patient_appointments(container.uow(), actor, _ref(patient, "Patient", "patient"),
                                             door(container, actor))
    except NotFound:
        found = []  # a patient one may not open: no match, as for any search
    shown, more = fhir.page(found, search)
    return fhir.searchset_response(request, search, [scheduling_fhir.appointment_resource(v) for v in shown],
                                   has_next=more, total=len(found))


def _booking(body: Any) -> tuple[uuid.UUID, uuid.UUID]:
    """The slot and the patient of a posted Appointment, or a 400 saying what is missing."""
    if not isinstance(body, dict) or body.get("resourceType") != "Appointment":
        raise fhir.InvalidRequest("the body must be an Appointment resource")
    if body.get("status") not in ("booked", "proposed", "pending"):
        raise fhir.InvalidRequest("status must be booked (or proposed / pending)")
    slots = [s.get("reference", "") for s in body.get("slot") or [] if isinstance(s, dict)]
    patients = [p["actor"].get("reference", "") for p in body.get("participant") or []
                if isinstance(p, dict) and isinstance(p.get("actor"), dict)
                and str(p["actor"].get("reference", "")).startswith("Patient/")]
    if len(slots) != 1 or not slots[0].startswith("Slot/"):
        raise fhir.InvalidRequest("give exactly one slot: [{\"reference\": \"Slot/<id>\"}]")
    if len(patients) != 1:
        raise fhir.InvalidRequest("give exactly one participant whose actor is Patient/<id>")
    try:
        return uuid.UUID(slots[0][5:]), uuid.UUID(patients[0][8:])
    except ValueError:
        raise fhir.InvalidRequest("slot and patient references must be Slot/<id> and Patient/<id>") from None


@router.post("/Appointment", status_code=201, dependencies=[Depends(BOOKERS)])
async def create_appointment(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    try:
        body = await request.json()
    except ValueError:
        raise fhir.InvalidRequest("the body is not JSON") from None
    slot_id, patient_id = _booking(body)
    try:
        view = await run_in_threadpool(service.book, container.uow(), actor, slot_id, patient_id,
                                       door(container, actor))
    except NotFound:
        raise fhir.ResourceNotFound("no such slot, or no such patient for you") from None
    response = fhir.resource_response(scheduling_fhir.appointment_resource(view))
    response.status_code = 201
    response.headers["Location"] = f"{fhir.base_url(request)}/Appointment/{view.id}"
    return response
