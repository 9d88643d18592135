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


class PreAdmissionCreate(BaseModel):
    """A planned stay (A05): the class the patient will have, where and when they are expected."""

    patient_id: uuid.UUID
    establishment_code: str
    #: Emergency is accepted here and refused by the rule (EmergencyIsNeverPlanned), by name.
    encounter_class: str = Field(pattern=r"^(emergency|inpatient|day_hospital|session|outpatient)$")
    unit_code: str
    bed_code: str | None = None
    planned_at: datetime
    expected_end_at: datetime | None = None


class ArrivalCreate(BaseModel):
    """The arrival of a pre-admitted patient (A01/A04): the planned unit unless another is given."""

    unit_code: str | None = None
    bed_code: str | None = None
    at: datetime | None = None


class ClassChange(BaseModel):
    """A class change (bascule A06/A07), optionally into another unit and bed."""

    encounter_class: str = Field(pattern=r"^(emergency|inpatient|day_hospital|session|outpatient)$")
    unit_code: str | None = None
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
    #: Pre-admitted stays planned in the unit (A05), soonest first: `since` is the planned date.
    expected: list[BedLine] = []

    @property
    def free(self) -> int:
        return sum(1 for b in self.beds if b.patient_id is None)


# --- the clinical chart ------------------------------------------------------------------------------

class AllergyCreate(BaseModel):
    substance_code: str = Field(max_length=60)
    substance_label: str = Field(min_length=1, max_length=200)
    kind: str = Field(default="allergy", pattern=r"^(allergy|intolerance)$")
    criticality: str = Field(default="unknown", pattern=r"^(low|high|unknown)$")
    reaction: str | None = Field(default=None, max_length=300)


class AllergyPublic(AllergyCreate):
    id: uuid.UUID
    status: str
    recorded_at: datetime
    recorded_by: str


class ConditionCreate(BaseModel):
    icd10: str = Field(max_length=10)
    label: str = Field(min_length=1, max_length=300)
    onset: datetime | None = None


class ConditionPublic(ConditionCreate):
    id: uuid.UUID
    status: str
    recorded_at: datetime
    recorded_by: str


class VitalsCreate(BaseModel):
    """One round of vital signs; only the measured ones are given."""

    effective_at: datetime | None = None
    heart_rate: float | None = None
    respiratory_rate: float | None = None
    spo2: float | None = None
    temperature: float | None = None
    systolic_bp: float | None = None
    diastolic_bp: float | None = None
    weight: float | None = None
    height: float | None = None


class ObservationPublic(BaseModel):
    id: uuid.UUID
    loinc: str
    key: str
    value: float
    unit: str
    effective_at: datetime
    recorded_by: str


class NoteCreate(BaseModel):
    kind: str = Field(default="medical", pattern=r"^(medical|nursing|other)$")
    text: str = Field(min_length=1, max_length=20_000)


class NotePublic(NoteCreate):
    id: uuid.UUID
    written_at: datetime
    author: str


class VitalSeries(BaseModel):
    key: str
    unit: str
    latest: ObservationPublic | None
    #: SVG polyline points of the last days' values, ready to draw (empty when fewer than two)
    points: str
    low: float
    high: float


class ChartView(BaseModel):
    patient_id: uuid.UUID
    allergies: list[AllergyPublic]
    conditions: list[ConditionPublic]
    vitals: list[VitalSeries]
    notes: list[NotePublic]
    notes_total: int


class DocumentPublic(BaseModel):
    id: uuid.UUID
    title: str
    media_type: str
    size: int
    added_at: datetime
    added_by: str
