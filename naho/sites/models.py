"""Tables of the group's structure: establishments, departments, units, rooms, beds."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from naho.platform.db import Base, new_id


class HospitalGroup(Base):
    __tablename__ = "hospital_group"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Establishment(Base):
    __tablename__ = "establishment"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    short_name: Mapped[str] = mapped_column(String(80))
    finess: Mapped[str] = mapped_column(String(9), unique=True)
    city: Mapped[str] = mapped_column(String(120))
    postcode: Mapped[str] = mapped_column(String(10))
    address: Mapped[str] = mapped_column(String(200))
    pivot: Mapped[bool] = mapped_column(Boolean, default=False)
    rollout_state: Mapped[str] = mapped_column(String(20))
    rollout_changed_at: Mapped[datetime | None]

    departments: Mapped[list[Department]] = relationship(
        back_populates="establishment", order_by="Department.code"
    )


class Department(Base):
    __tablename__ = "department"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    establishment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("establishment.id"))
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))

    establishment: Mapped[Establishment] = relationship(back_populates="departments")
    units: Mapped[list[Unit]] = relationship(back_populates="department", order_by="Unit.code")


class Unit(Base):
    __tablename__ = "unit"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    establishment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("establishment.id"), index=True)
    department_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("department.id"))
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    building: Mapped[str] = mapped_column(String(20), default="")
    floor: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    department: Mapped[Department] = relationship(back_populates="units")
    rooms: Mapped[list[Room]] = relationship(back_populates="unit", order_by="Room.label")


class Room(Base):
    __tablename__ = "room"
    __table_args__ = (UniqueConstraint("unit_id", "label"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("unit.id"))
    label: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    unit: Mapped[Unit] = relationship(back_populates="rooms")
    beds: Mapped[list[Bed]] = relationship(back_populates="room", order_by="Bed.label")


class Bed(Base):
    __tablename__ = "bed"
    __table_args__ = (UniqueConstraint("room_id", "label"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    room_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("room.id"))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("unit.id"), index=True)
    label: Mapped[str] = mapped_column(String(10))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    room: Mapped[Room] = relationship(back_populates="beds")
