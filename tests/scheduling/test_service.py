"""Scheduling on the real database: book, cancel, reschedule, the waiting list's offer, who may
do what, reminders through the outbox with no health data."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from naho.platform.access import PatientNotFound
from naho.platform.clock import FixedClock
from naho.platform.deps import Container
from naho.platform.outbox import OutboxMessage
from naho.scheduling import service as scheduling
from naho.scheduling.models import Appointment, Slot
from tests.scheduling.world import cardiology, door, new_patient, portal_account, staff_actor


def _slots(container: Container, n: int = 30) -> list[scheduling.SlotView]:
    with container.uow() as uow:
        return scheduling.search_slots(uow.session, now=container.clock.now(), specialty="cardiology", limit=n)


def test_slots_are_generated_from_the_weekly_rules_and_searched_soonest_first(container: Container) -> None:
    clerk = staff_actor(container, "admission")
    schedule = cardiology(container, clerk)
    # Five weekdays of 08:30-12:00 in 30 minutes: 7 slots a day.
    found = _slots(container, 200)
    assert len(found) == 35
    assert found[0].starts_at == datetime(2026, 11, 30, 7, 30, tzinfo=UTC)  # 08:30 Paris
    assert [s.starts_at for s in found] == sorted(s.starts_at for s in found)
    assert found[0].schedule.establishment_code == "LENS" and found[0].schedule.place == "Bâtiment B, 2e étage"
    # Generating again adds nothing.
    assert scheduling.generate_slots(container.uow(), clerk, schedule, date(2026, 11, 30), date(2026, 12, 4)) == 0


def test_a_clerk_books_and_a_second_booking_of_the_slot_is_a_conflict(container: Container) -> None:
    clerk = staff_actor(container, "admission")
    cardiology(container, clerk)
    first, second = new_patient(container), new_patient(container, "DURAND", "PAUL")
    slot = _slots(container)[0]
    booked = scheduling.book(container.uow(), clerk, slot.id, first, container.ports["care"])
    assert booked.status == "booked" and booked.booked_via == "staff"
    with pytest.raises(scheduling.SlotTaken) as refused:
        scheduling.book(container.uow(), clerk, slot.id, second, container.ports["care"])
    assert refused.value.status == 409
    with container.uow() as uow:
        assert uow.session.get(Slot, slot.id).status == "booked"  # type: ignore[union-attr]
        assert len(uow.session.scalars(select(Appointment).where(Appointment.slot_id == slot.id)).all()) == 1
    assert slot.id not in {s.id for s in _slots(container)}


def test_the_database_refuses_a_second_live_appointment_on_a_slot(container: Container) -> None:
    clerk = staff_actor(container, "admission")
    cardiology(container, clerk)
    patient = new_patient(container)
    slot = _slots(container)[0]
    booked = scheduling.book(container.uow(), clerk, slot.id, patient, container.ports["care"])
    from sqlalchemy.exc import IntegrityError
    with container.uow() as uow, pytest.raises(IntegrityError):
        row = uow.session.get(Appointment, booked.id)
        assert row is not None
        uow.session.add(Appointment(slot_id=slot.id, schedule_id=row.schedule_id, patient_id=patient,
                                    starts_at=row.starts_at, ends_at=row.ends_at, consultation_type="first_visit",
                                    status="booked", booked_via="staff", booked_by="x", booked_at=row.booked_at))
        uow.session.flush()


def test_a_patient_books_cancels_and_reschedules_within_the_online_rules(container: Container,
                                                                         clock: FixedClock) -> None:
    clerk = staff_actor(container, "admission")
    cardiology(container, clerk)
    patient_id = new_patient(container)
    me = portal_account(container, clerk, patient_id, "lucie.martin@example.org")
    slots = _slots(container)
    booked = scheduling.book(container.uow(), me, slots[0].id, patient_id, door(container, me))
    assert booked.booked_via == "portal"
    moved = scheduling.reschedule(container.uow(), me, booked.id, slots[3].id, door(container, me))
    mine = scheduling.patient_appointments(container.uow(), me, patient_id, door(container, me))
    assert [a.id for a in mine] == [moved.id] and mine[0].starts_at == slots[3].starts_at
    assert slots[0].id in {s.id for s in _slots(container)}  # the old slot is free again
    # Less than 24 hours before (the new one is on 30/11 at 09:00 UTC), the patient must call.
    clock.advance(days=4)  # 29/11 09:30 UTC
    with pytest.raises(scheduling.BookingRuleBroken) as refused:
        scheduling.cancel(container.uow(), me, moved.id, door(container, me))
    assert refused.value.extra["rule"] == "TooLateForPatient"
    # The secretariat still can.
    scheduling.cancel(container.uow(), clerk, moved.id, container.ports["care"])
    assert scheduling.patient_appointments(container.uow(), me, patient_id, door(container, me)) == []


def test_a_patient_cannot_see_or_book_for_another_patient(container: Container) -> None:
    clerk = staff_actor(container, "admission")
    cardiology(container, clerk)
    mine, theirs = new_patient(container), new_patient(container, "DURAND", "PAUL", date(1975, 5, 5))
    me = portal_account(container, clerk, mine, "lucie@example.org")
    slot = _slots(container)[0]
    with pytest.raises(PatientNotFound):
        scheduling.book(container.uow(), me, slot.id, theirs, door(container, me))
    with pytest.raises(PatientNotFound):
        scheduling.patient_appointments(container.uow(), me, theirs, door(container, me))
    theirs_booked = scheduling.book(container.uow(), clerk, slot.id, theirs, container.ports["care"])
    with pytest.raises(scheduling.AppointmentNotFound):
        scheduling.cancel(container.uow(), me, theirs_booked.id, door(container, me))
    # The record's own port knows no portal account: a patient gets nothing through it.
    with pytest.raises(PatientNotFound):
        scheduling.patient_appointments(container.uow(), me, mine, container.ports["care"])


def test_a_physician_manages_their_own_schedule_only(container: Container) -> None:
    clerk = staff_actor(container, "admission")
    physician = staff_actor(container, "medecin")
    theirs = cardiology(container, clerk)
    with pytest.raises(scheduling.NotYourSchedule):
        scheduling.generate_slots(container.uow(), physician, theirs, date(2026, 12, 7), date(2026, 12, 7))
    own = cardiology(container, physician, practitioner=physician.account_id,
                     first_day=date(2026, 12, 7), last_day=date(2026, 12, 7))
    assert scheduling.close_schedule(container.uow(), physician, own, datetime(2026, 12, 7, 7, 0, tzinfo=UTC),
                                     datetime(2026, 12, 7, 9, 0, tzinfo=UTC), "formation") == 3  # 08:30-09:30
    with pytest.raises(scheduling.NotYourSchedule):
        scheduling.close_schedule(container.uow(), physician, theirs, datetime(2026, 12, 1, 7, 0, tzinfo=UTC),
                                  datetime(2026, 12, 1, 9, 0, tzinfo=UTC), "formation")


def test_a_freed_slot_is_offered_to_the_first_waiting_patient_who_accepts_it(container: Container,
                                                                               clock: FixedClock) -> None:
    clerk = staff_actor(container, "admission")
    cardiology(container, clerk)
    holder, first, second = (new_patient(container, n, "A") for n in ("HOLDER", "FIRST", "SECOND"))
    first_actor = portal_account(container, clerk, first, "first@example.org")
    slot = _slots(container)[0]
    booked = scheduling.book(container.uow(), clerk, slot.id, holder, container.ports["care"])
    scheduling.join_waiting_list(container.uow(), clerk, first, container.ports["care"],
                                 consultation_type="first_visit", specialty="cardiology")
    clock.advance(minutes=5)
    scheduling.join_waiting_list(container.uow(), clerk, second, container.ports["care"],
                                 consultation_type="first_visit", specialty="cardiology")
    scheduling.cancel(container.uow(), clerk, booked.id, container.ports["care"])
    # Held for the first in line: nobody else may book it meanwhile.
    assert slot.id not in {s.id for s in _slots(container)}
    with pytest.raises(scheduling.SlotTaken):
        scheduling.book(container.uow(), clerk, slot.id, second, container.ports["care"])
    offers = scheduling.offers_for(container.uow(), first_actor, first, door(container, first_actor))
    assert [o.slot.id for o in offers] == [slot.id]
    taken = scheduling.accept_offer(container.uow(), first_actor, offers[0].entry_id, door(container, first_actor))
    assert taken.patient_id == first and taken.starts_at == slot.starts_at
    with container.uow() as uow:  # the offer mail says when and where, nothing medical
        query = select(OutboxMessage).where(OutboxMessage.topic == "mail.reminder")
        mails = [m.payload for m in uow.session.scalars(query)]
    assert [m["kind"] for m in mails] == ["offer"] and "cardio" not in str(mails).lower()


def test_an_offer_not_accepted_in_time_goes_to_the_next_patient(container: Container, clock: FixedClock) -> None:
    clerk = staff_actor(container, "admission")
    cardiology(container, clerk)
    holder, first, second = (new_patient(container, n, "B") for n in ("HOLDER", "FIRST", "SECOND"))
    slot = _slots(container)[-1]
    booked = scheduling.book(container.uow(), clerk, slot.id, holder, container.ports["care"])
    for patient in (first, second):
        scheduling.join_waiting_list(container.uow(), clerk, patient, container.ports["care"],
                                     consultation_type="first_visit", specialty="cardiology")
        clock.advance(minutes=1)
    scheduling.cancel(container.uow(), clerk, booked.id, container.ports["care"])
    clock.advance(hours=13)
    assert scheduling.expire_offers(container.uow()) == 1
    assert scheduling.offers_for(container.uow(), clerk, first, container.ports["care"]) == []
    offers = scheduling.offers_for(container.uow(), clerk, second, container.ports["care"])
    assert [o.slot.id for o in offers] == [slot.id]


def test_reminders_leave_48_hours_before_without_health_data(container: Container, clock: FixedClock) -> None:
    clerk = staff_actor(container, "admission")
    cardiology(container, clerk)
    patient = new_patient(container)
    slot = _slots(container)[0]
    scheduling.book(container.uow(), clerk, slot.id, patient, container.ports["care"])
    assert scheduling.queue_due_reminders(container.uow()) == 0  # five days ahead
    clock.advance(days=3, hours=12)
    assert scheduling.queue_due_reminders(container.uow()) == 1
    assert scheduling.queue_due_reminders(container.uow()) == 0  # once only
    with container.uow() as uow:
        payload = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "mail.reminder")).one().payload
    assert payload["kind"] == "reminder" and payload["starts_at"] == slot.starts_at.isoformat()
    assert "cardio" not in str(payload).lower() and "Consultation" not in str(payload)
