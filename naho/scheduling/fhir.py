"""Schedules, slots and appointments as FHIR R4 Schedule, Slot and Appointment resources.

What a Schedule shows is public (a consultation, its specialty, its place); an Appointment names
its patient and is served only through the door. The consultation type travels as the
appointmentType's text and code (naho's own codes), the specialty as `specialty` text.
"""

from __future__ import annotations

from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.schedule import Schedule
from fhir.resources.R4B.slot import Slot

from naho.scheduling.service import AppointmentView, ScheduleView, SlotView

TYPE_SYSTEM = "https://naho.example/fhir/CodeSystem/consultation-type"
#: naho's slot statuses as FHIR's (slotstatus value set).
SLOT_STATUS = {"free": "free", "booked": "busy", "held": "busy-tentative", "blocked": "busy-unavailable"}


def schedule_resource(view: ScheduleView) -> Schedule:
    return Schedule(id=str(view.id), active=True, specialty=[{"text": view.specialty}],
                    actor=[{"display": f"{view.name} — {view.establishment_name}, {view.place}"}],
                    comment=view.establishment_code)


def slot_resource(view: SlotView) -> Slot:
    return Slot(id=str(view.id), schedule={"reference": f"Schedule/{view.schedule.id}"},
                status=SLOT_STATUS.get(view.status, "busy-unavailable"), start=view.starts_at, end=view.ends_at,
                appointmentType={"coding": [{"system": TYPE_SYSTEM, "code": view.consultation_type}]},
                specialty=[{"text": view.schedule.specialty}])


def appointment_resource(view: AppointmentView) -> Appointment:
    return Appointment(
        id=str(view.id), status="booked" if view.status == "booked" else "cancelled",
        start=view.starts_at, end=view.ends_at, specialty=[{"text": view.schedule.specialty}],
        appointmentType={"coding": [{"system": TYPE_SYSTEM, "code": view.consultation_type}]},
        slot=[{"reference": f"Slot/{view.slot_id}"}] if view.slot_id else None,
        participant=[{"actor": {"reference": f"Patient/{view.patient_id}"}, "status": "accepted"},
                     {"actor": {"display": f"{view.schedule.name} — {view.schedule.establishment_name}, "
                                           f"{view.schedule.place}"}, "status": "accepted"}])
