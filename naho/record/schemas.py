"""API shapes of stays, movements and bed boards."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field


class AdmissionCreate(BaseModel):
    patient_id: uuid.UUID
    establishment_code: str
    encounter_class: str = Field(pattern=r"^(emergency|inpatient|day_hospital|session|outpatient)$")
    unit_code: str
    bed_code: str | None = None
    at: datetime | None = None
    expected_end_at: datetime | None = None


class TransferCreate(BaseModel):
    unit_code: str
    bed_code: str | None = None
    at: datetime | None = None


class MovementAt(BaseModel):
    at: datetime | None = None


class MovementPublic(BaseModel):
    id: uuid.UUID
    kind: str
    trigger: str
    at: datetime
    unit_code: str | None
    bed_code: str | None
    cancelled: bool
    actor_label: str


class EncounterPublic(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    nda: str
    establishment_code: str
    encounter_class: str
    status: str
    unit_code: str | None
    unit_name: str | None = None
    bed_code: str | None
    started_at: datetime
    ended_at: datetime | None
    expected_end_at: datetime | None
    movements: list[MovementPublic] = []


class BedLine(BaseModel):
    bed_code: str
    room: str
    label: str
    patient_id: uuid.UUID | None = None
    patient_name: str | None = None
    ipp: str | None = None
    birth_date: date | None = None
    encounter_id: uuid.UUID | None = None
    nda: str | None = None
    since: datetime | None = None
    expected_end_at: datetime | None = None
    on_leave: bool = False


class BedBoard(BaseModel):
    unit_code: str
    unit_name: str
    establishment_code: str
    beds: list[BedLine]
    #: Patients of the unit without a bed (emergency boxes, chairs, waiting a bed).
    without_bed: list[BedLine]

    @property
    def free(self) -> int:
        return sum(1 for b in self.beds if b.patient_id is None)
