"""The release of each laboratory report to the patient's portal: who saw it, who told the
patient, when it was released and the patient notified. One row per report, made on its first
result (DESIGN.md, *Scale*: it carries `patient_id`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from naho.platform.db import Base, new_id


class ReportRelease(Base):
    __tablename__ = "lab_report_release"
    __table_args__ = (Index("ix_lab_report_release_patient", "patient_id", "released_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lab_report.id"), unique=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    #: The policy applied and why it is held, as last decided (release_rules).
    policy: Mapped[str] = mapped_column(String(20))
    waiting: Mapped[str | None] = mapped_column(String(20))
    sensitive: Mapped[bool]
    validated_at: Mapped[datetime | None]
    seen_at: Mapped[datetime | None]
    seen_by: Mapped[str | None] = mapped_column(String(300))
    told_at: Mapped[datetime | None]
    told_by: Mapped[str | None] = mapped_column(String(300))
    released_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
