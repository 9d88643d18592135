"""Tables of imaging: the exams physicians order and the radiologists' reports. The images stay
in the PACS (Orthanc): naho keeps no copy, and finds them by the patient's IPP and the order's
accession number. Every row carries `patient_id` (DESIGN.md, *Scale*)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from naho.platform.db import Base, new_id


class ImagingOrder(Base):
    """An imaging exam ordered for a stay: what, where, why, how soon; its accession number is
    what the modality writes in the study (0008,0050), so the study finds its order."""

    __tablename__ = "imaging_order"
    __table_args__ = (Index("ix_imaging_order_patient_ordered", "patient_id", "ordered_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    encounter_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    accession_number: Mapped[str] = mapped_column(String(16), unique=True)
    modality: Mapped[str] = mapped_column(String(4))  # DICOM modality code
    body_part: Mapped[str] = mapped_column(String(100))
    question: Mapped[str] = mapped_column(Text)  # the clinical question (justification)
    urgency: Mapped[str] = mapped_column(String(10))  # routine | urgent | stat
    ordered_at: Mapped[datetime]
    ordered_by: Mapped[str] = mapped_column(String(300))
    ordered_by_account: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    cancelled_at: Mapped[datetime | None]


class ImagingReport(Base):
    """A radiologist's report on a study (typed in naho, or received from the RIS): findings and
    conclusion, signed by a physician. A later report on the same study is an addendum: both stay."""

    __tablename__ = "imaging_report"
    __table_args__ = (Index("ix_imaging_report_patient_study", "patient_id", "study_uid"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    study_uid: Mapped[str] = mapped_column(String(64))
    accession_number: Mapped[str | None] = mapped_column(String(16))
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("imaging_order.id"))
    findings: Mapped[str] = mapped_column(Text)
    conclusion: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(300))
    author_account: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    signed_at: Mapped[datetime]
    #: The signed report as a PDF in the chart (what secure messaging sends).
    document_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
