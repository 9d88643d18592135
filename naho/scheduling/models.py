"""Tables of scheduling: schedules, their opening rules and closures, slots, appointments,
the waiting list.

No slot is ever booked twice, and the database says so, not only Python: a slot goes from
"free" to "booked" by one conditional UPDATE (`WHERE status = 'free'`), and a partial unique
index allows one live appointment per slot (`uq_appointment_live_slot`).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from naho.platform.db import Base, new_id

FREE = "free"
BOOKED = "booked"
#: Held for a waiting patient who was offered it, until the offer expires.
HELD = "held"
#: Removed by a closure entered after the slot was generated.
BLOCKED = "blocked"

LIVE = "booked"
CANCELLED = "cancelled"


class Schedule(Base):
    """A practitioner's (or an imaging room's, a lab draw's) agenda in one establishment."""

    __tablename__ = "schedule"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    #: The practitioner's account (None for a resource: an imaging room, the lab draw).
    practitioner_account_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    name: Mapped[str] = mapped_column(String(200))
    specialty: Mapped[str] = mapped_column(String(80), index=True)
    establishment_code: Mapped[str] = mapped_column(String(40), index=True)
    #: Where to go: building, floor, desk (shown to the patient and in the reminder).
    place: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class OpeningRule(Base):
    __tablename__ = "schedule_opening"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    schedule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("schedule.id", ondelete="CASCADE"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)
    #: Wall times of the establishment's zone, minutes after midnight.
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)
    consultation_type: Mapped[str] = mapped_column(String(30))
    minutes: Mapped[int] = mapped_column(Integer)
    valid_from: Mapped[date | None]
    valid_until: Mapped[date | None]


class ScheduleClosure(Base):
    __tablename__ = "schedule_closure"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    schedule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("schedule.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(300))


class Slot(Base):
    __tablename__ = "slot"
    __table_args__ = (
        UniqueConstraint("schedule_id", "starts_at"),
        Index("ix_slot_status_starts_at", "status", "starts_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    schedule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("schedule.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    consultation_type: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), default=FREE)
    #: The waiting-list entry the slot is held for while an offer runs.
    held_for: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    held_until: Mapped[datetime | None]


class Appointment(Base):
    __tablename__ = "appointment"
    __table_args__ = (
        # One live appointment per slot, whatever the code above does (the database's word).
        Index("uq_appointment_live_slot", "slot_id", unique=True,
              sqlite_where=text("status = 'booked'"), postgresql_where=text("status = 'booked'")),
        Index("ix_appointment_patient_starts_at", "patient_id", "starts_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("slot.id"))
    schedule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("schedule.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    consultation_type: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), default=LIVE)
    #: "staff", "portal" or "api"
    booked_via: Mapped[str] = mapped_column(String(20))
    booked_by: Mapped[str] = mapped_column(String(300))
    booked_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]
    cancelled_by: Mapped[str | None] = mapped_column(String(300))
    #: The appointment this one replaces (a reschedule is a cancel and a book in one transaction).
    replaces_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reminder_queued_at: Mapped[datetime | None]


class WaitingEntry(Base):
    __tablename__ = "waiting_entry"
    __table_args__ = (Index("ix_waiting_entry_status_since", "status", "since"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("schedule.id"))
    specialty: Mapped[str | None] = mapped_column(String(80))
    establishment_code: Mapped[str | None] = mapped_column(String(40))
    consultation_type: Mapped[str] = mapped_column(String(30))
    not_before: Mapped[datetime | None]
    not_after: Mapped[datetime | None]
    since: Mapped[datetime]
    #: waiting, offered, booked, withdrawn
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    offered_slot_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    offer_expires_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(300))
