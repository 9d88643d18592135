"""200 concurrent booking attempts on the same five slots, each thread with its own session:
exactly one appointment per slot, and every loser gets a 409 (SlotTaken), nothing else.
Runs on SQLite and on PostgreSQL (NAHO_TEST_DATABASE_URL)."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

from sqlalchemy import func, select

from naho.platform.deps import Container
from naho.scheduling import service as scheduling
from naho.scheduling.models import Appointment, Slot
from tests.scheduling.world import cardiology, new_patient, staff_actor

ATTEMPTS = 200
SLOTS = 5


def test_200_concurrent_attempts_never_book_a_slot_twice(container: Container) -> None:
    clerk = staff_actor(container, "admission")
    cardiology(container, clerk)
    patients = [new_patient(container, f"PATIENT{i:02d}", "TEST") for i in range(20)]
    with container.uow() as uow:
        slots = [s.id for s in scheduling.search_slots(uow.session, now=container.clock.now(), limit=SLOTS)]
    barrier = threading.Barrier(ATTEMPTS)
    outcomes: list[tuple[uuid.UUID, str, int]] = []
    lock = threading.Lock()

    def attempt(k: int) -> None:
        slot = slots[k % SLOTS]
        barrier.wait()
        try:
            scheduling.book(container.uow(), clerk, slot, patients[k % len(patients)], container.ports["care"])
            outcome = ("booked", 201)
        except scheduling.SlotTaken as exc:
            outcome = (exc.detail, exc.status)
        except Exception as exc:
            outcome = (f"{type(exc).__name__}: {exc}", 500)
        with lock:
            outcomes.append((slot, *outcome))

    threads = [threading.Thread(target=attempt, args=(k,)) for k in range(ATTEMPTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(outcomes) == ATTEMPTS
    statuses = Counter(status for _, _, status in outcomes)
    assert statuses == {201: SLOTS, 409: ATTEMPTS - SLOTS}, statuses
    assert all("someone else" in detail for _, detail, status in outcomes if status == 409)
    assert Counter(slot for slot, _, status in outcomes if status == 201) == Counter(slots)
    with container.uow() as uow:
        per_slot = dict(uow.session.execute(select(Appointment.slot_id, func.count()).where(
            Appointment.status == "booked").group_by(Appointment.slot_id)).all())
        assert per_slot == {slot: 1 for slot in slots}
        assert set(uow.session.scalars(select(Slot.status).where(Slot.id.in_(slots)))) == {"booked"}
