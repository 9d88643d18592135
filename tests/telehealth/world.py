"""A video appointment to build on: Dr "medecin"'s teleconsultation schedule in Lens, a patient
with a portal account, an appointment booked by the secretariat on Monday 30 November 2026."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time

from naho.platform.clock import FixedClock
from naho.platform.deps import Container
from naho.platform.security.actor import Actor
from naho.scheduling import rules
from naho.scheduling import service as scheduling
from tests.personas import PHYSICIAN
from tests.scheduling.world import new_patient, portal_account, staff_actor

PATIENT_EMAIL = "lucie@example.org"


@dataclass(frozen=True)
class World:
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    patient: Actor
    physician: Actor
    clerk: Actor
    starts_at: datetime
    ends_at: datetime


def video_appointment(container: Container, *, practitioner: str = PHYSICIAN) -> World:
    clerk = staff_actor(container, "admission")
    physician = staff_actor(container, practitioner)
    schedule = scheduling.create_schedule(
        container.uow(), clerk, name="Téléconsultation de cardiologie", specialty="cardiology",
        establishment_code="LENS", place="Vidéo", practitioner_account_id=physician.account_id,
        openings=[rules.Opening(d, time(9, 0), time(12, 0), rules.ConsultationType.TELECONSULTATION, 20)
                  for d in range(5)])
    scheduling.generate_slots(container.uow(), clerk, schedule, date(2026, 11, 30), date(2026, 11, 30))
    patient_id = new_patient(container)
    patient = portal_account(container, clerk, patient_id, PATIENT_EMAIL)
    with container.uow() as uow:
        slot = scheduling.search_slots(uow.session, now=container.clock.now(), schedule_id=schedule, limit=1)[0]
    booked = scheduling.book(container.uow(), clerk, slot.id, patient_id, container.ports["care"])
    return World(booked.id, patient_id, patient, physician, clerk, booked.starts_at, booked.ends_at)


def move_clock(clock: FixedClock, to: datetime) -> None:
    clock.advance(seconds=(to - clock.now()).total_seconds())
