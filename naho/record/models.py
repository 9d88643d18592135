"""Tables of stays (encounters), their movements, bed occupancy and care teams."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from naho.platform.db import Base, new_id


class Encounter(Base):
    """A stay (venue) in one establishment, with its NDA."""

    __tablename__ = "encounter"
    __table_args__ = (Index("ix_encounter_patient_status", "patient_id", "status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"), index=True)
    nda: Mapped[str] = mapped_column(String(20), unique=True)
    establishment_code: Mapped[str] = mapped_column(ForeignKey("establishment.code"))
    encounter_class: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("unit.code"), index=True)
    bed_code: Mapped[str | None] = mapped_column(ForeignKey("bed.code"))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    expected_end_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Movement(Base):
    """One ADT movement (admission, transfer, leave, discharge…); cancellations keep the row."""

    __tablename__ = "movement"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    encounter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("encounter.id"), index=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    kind: Mapped[str] = mapped_column(String(30))
    #: The class in force from this movement on (PV1-2 travels with every movement).
    encounter_class: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("unit.code"))
    bed_code: Mapped[str | None] = mapped_column(ForeignKey("bed.code"))
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    cancelled_at: Mapped[datetime | None]
    recorded_at: Mapped[datetime]
    actor_label: Mapped[str] = mapped_column(String(300))


class BedOccupancy(Base):
    """Who lies in which bed from when to when. The database refuses two open occupancies of
    one bed (partial unique index), so no race can double-book it."""

    __tablename__ = "bed_occupancy"
    __table_args__ = (
        Index("ix_bed_occupancy_bed_started", "bed_code", "started_at"),
        Index("uq_bed_occupancy_open_bed", "bed_code", unique=True,
              sqlite_where=text("ended_at IS NULL"), postgresql_where=text("ended_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    bed_code: Mapped[str] = mapped_column(ForeignKey("bed.code"))
    encounter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("encounter.id"), index=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class ForeignIdentifier(Base):
    """An identifier another system gave to one of our patients (PI: its IPP) or stays (AN:
    account number, VN: visit number), so that its later HL7 messages naming them find them.

    One (assigning authority, type, value) names one thing: a foreign IPP points to a patient,
    an AN or VN to a stay. A merge or an A44 keeps the row and moves what it points to.
    """

    __tablename__ = "foreign_identifier"
    __table_args__ = (
        UniqueConstraint("authority", "kind", "value"),
        CheckConstraint(
            "(kind = 'PI' AND patient_id IS NOT NULL AND encounter_id IS NULL)"
            " OR (kind IN ('AN', 'VN') AND encounter_id IS NOT NULL AND patient_id IS NULL)",
            name="points_to_one",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    #: HD of the assigning authority (CX-4), namespace id or OID as the sender writes it.
    authority: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(2))  # PI | AN | VN
    value: Mapped[str] = mapped_column(String(100))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("patient.id"), index=True)
    encounter_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("encounter.id"), index=True)
    recorded_at: Mapped[datetime]
    #: The inbound message that taught it (sender application and control id), for the audit.
    source: Mapped[str] = mapped_column(String(300))


class CareTeamMember(Base):
    """A professional named in the care team of a stay (beyond the unit's own staff)."""

    __tablename__ = "care_team_member"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    encounter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("encounter.id"), index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id"), index=True)
    role: Mapped[str] = mapped_column(String(40))
    added_at: Mapped[datetime]


# --- the clinical chart ----------------------------------------------------------------------

class Allergy(Base):
    """An allergy or intolerance; the substance code is what medication checks will match on."""

    __tablename__ = "allergy"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"), index=True)
    #: e.g. "ATC:J01C" (penicillins), "ATC:N02BE01" (paracetamol), "FOOD:peanut"
    substance_code: Mapped[str] = mapped_column(String(60))
    substance_label: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # allergy | intolerance
    criticality: Mapped[str] = mapped_column(String(10))  # low | high | unknown
    reaction: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20))  # active | inactive | entered_in_error
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(300))


class Condition(Base):
    """A problem or diagnosis coded in ICD-10 (CIM-10)."""

    __tablename__ = "condition"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"), index=True)
    encounter_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("encounter.id"))
    icd10: Mapped[str] = mapped_column(String(10))
    label: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20))  # active | resolved | entered_in_error
    onset: Mapped[datetime | None]
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(300))


class Observation(Base):
    """A measurement (vital signs first) with its LOINC code and unit (UCUM)."""

    __tablename__ = "observation"
    __table_args__ = (Index("ix_observation_patient_code_at", "patient_id", "loinc", "effective_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    encounter_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("encounter.id"))
    loinc: Mapped[str] = mapped_column(String(20))
    value: Mapped[float]
    unit: Mapped[str] = mapped_column(String(20))
    effective_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default="final")  # final | entered_in_error


class ClinicalNote(Base):
    """A clinical note (observation médicale, transmission infirmière...)."""

    __tablename__ = "clinical_note"
    __table_args__ = (Index("ix_clinical_note_patient_at", "patient_id", "written_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    encounter_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("encounter.id"))
    kind: Mapped[str] = mapped_column(String(30))  # medical | nursing | other
    text: Mapped[str] = mapped_column(Text)
    written_at: Mapped[datetime]
    author: Mapped[str] = mapped_column(String(300))


class ClinicalDocument(Base):
    """A document of the chart (PDF or plain text): letters, reports, scanned forms."""

    __tablename__ = "clinical_document"
    __table_args__ = (Index("ix_clinical_document_patient_at", "patient_id", "added_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    encounter_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("encounter.id"))
    title: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    added_at: Mapped[datetime]
    added_by: Mapped[str] = mapped_column(String(300))
