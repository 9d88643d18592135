"""Tables of the patient index (MPI): patients, their identity history, search keys."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from naho.platform.db import Base, new_id


class Patient(Base):
    """One person, one IPP for the whole group, with the reference traits of the RNIV."""

    __tablename__ = "patient"
    __table_args__ = (
        Index("ix_patient_birth_name_birth_date", "birth_name", "birth_date"),
        Index("ix_patient_birth_date", "birth_date"),
        # Name searches read a page in order (name, first names): an ordered range scan that stops
        # at the page, whatever the size of the index (FHIR Patient search, bench/fhir_ingest.py).
        Index("ix_patient_birth_name_first_names", "birth_name", "first_names", "id"),
        Index("ix_patient_used_name_first_names", "used_name", "first_names", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    ipp: Mapped[str] = mapped_column(String(20), unique=True)
    birth_name: Mapped[str] = mapped_column(String(100))
    used_name: Mapped[str | None] = mapped_column(String(100))
    #: Birth first names, space separated, as on the identity document (RNIV).
    first_names: Mapped[str] = mapped_column(String(200))
    used_first_name: Mapped[str | None] = mapped_column(String(100))
    sex: Mapped[str] = mapped_column(String(1))  # M, F, I (undetermined)
    birth_date: Mapped[date] = mapped_column(Date)
    #: INSEE code of the birth commune (99xxx: country of birth abroad); None if unknown.
    birth_place: Mapped[str | None] = mapped_column(String(5))
    ins: Mapped[str | None] = mapped_column(String(15), unique=True)
    ins_oid: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))
    #: Identity attributes (RNIV §3.2.3): homonym, doubtful, fictitious.
    homonym: Mapped[bool] = mapped_column(Boolean, default=False)
    doubtful: Mapped[bool] = mapped_column(Boolean, default=False)
    fictitious: Mapped[bool] = mapped_column(Boolean, default=False)
    phone: Mapped[str | None] = mapped_column(String(30))
    email: Mapped[str | None] = mapped_column(String(254))
    address: Mapped[str | None] = mapped_column(String(300))
    postcode: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(120))
    #: Set when this record was merged into another one (it then only redirects).
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class IdentityEvent(Base):
    """Who changed an identity, how, and on which proof (RNIV: every status change traced)."""

    __tablename__ = "identity_event"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"), index=True)
    at: Mapped[datetime]
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_label: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(40))  # created, status, traits, merge, unmerge
    status_before: Mapped[str | None] = mapped_column(String(20))
    status_after: Mapped[str | None] = mapped_column(String(20))
    proof: Mapped[str | None] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class BlockingKey(Base):
    """Search keys of the duplicate detector: candidates are patients sharing a key."""

    __tablename__ = "identity_blocking_key"
    __table_args__ = (UniqueConstraint("patient_id", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(80), index=True)


class NotDuplicate(Base):
    """Two records that identity vigilance declared distinct people (e.g. twins)."""

    __tablename__ = "identity_not_duplicate"
    __table_args__ = (UniqueConstraint("first_id", "second_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    first_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    second_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    at: Mapped[datetime]
    actor_label: Mapped[str] = mapped_column(String(300))


class PatientMerge(Base):
    """Two records of one person made one (RNIV: a merge keeps its trace and can be undone).

    `moved` lists, per domain table, the rows that followed the merged record to the survivor,
    so that an undo sends exactly those rows back.
    """

    __tablename__ = "patient_merge"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    survivor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"), index=True)
    merged_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"), index=True)
    at: Mapped[datetime]
    actor_label: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(String(1000))
    moved: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    undone_at: Mapped[datetime | None]
    undone_by: Mapped[str | None] = mapped_column(String(300))
