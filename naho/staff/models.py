"""Tables of the staff directory: professionals and their unit assignments."""

from __future__ import annotations

import uuid

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from naho.platform.db import Base, new_id


class StaffMember(Base):
    """A professional of the group. Signs in through its account (platform.security)."""

    __tablename__ = "staff_member"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    #: The main profession (a role); the account may hold more roles.
    profession: Mapped[str] = mapped_column(String(40))
    rpps: Mapped[str | None] = mapped_column(String(11), unique=True)

    assignments: Mapped[list[StaffAssignment]] = relationship(
        back_populates="staff", cascade="all, delete-orphan", lazy="selectin"
    )


class StaffAssignment(Base):
    """A professional works in a unit (possibly in several establishments)."""

    __tablename__ = "staff_assignment"
    __table_args__ = (UniqueConstraint("staff_id", "unit_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_member.id", ondelete="CASCADE"))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("unit.id"), index=True)
    primary: Mapped[bool] = mapped_column(Boolean, default=False)

    staff: Mapped[StaffMember] = relationship(back_populates="assignments")
