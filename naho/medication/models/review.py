"""Tables of the medication circuit: the pharmacist's review (analyse pharmaceutique) of each order
version, with the SFPC-coded intervention and the prescriber's answer to it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from naho.platform.db import Base, new_id

__all__ = ["PharmacistReview"]


class PharmacistReview(Base):
    """One pharmacist's decision on one order version (unique: a version is decided once; a new
    version is a new order row, reviewed anew). `problem_code` and `intervention_code` follow the
    SFPC grid (review_rules); `response` is the prescriber's answer to the intervention."""

    __tablename__ = "pharmacist_review"
    __table_args__ = (
        CheckConstraint("decision IN ('validated', 'refused')", name="decision"),
        CheckConstraint("response IS NULL OR response IN ('accepted', 'declined')", name="response"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("medication_order.id"), unique=True)
    #: The distribution key of patient-owned rows (DESIGN.md, Scale); follows a merge.
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    #: The establishment whose pharmacy decided (activity statistics of the PUI).
    establishment_code: Mapped[str | None] = mapped_column(String(20))
    decision: Mapped[str] = mapped_column(String(20))
    problem_code: Mapped[str | None] = mapped_column(String(5))
    intervention_code: Mapped[str | None] = mapped_column(String(5))
    comment: Mapped[str | None] = mapped_column(Text)
    pharmacist_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    pharmacist_label: Mapped[str] = mapped_column(String(300))
    decided_at: Mapped[datetime]
    response: Mapped[str | None] = mapped_column(String(20))
    response_comment: Mapped[str | None] = mapped_column(Text)
    responded_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    responded_by: Mapped[str | None] = mapped_column(String(300))
    responded_at: Mapped[datetime | None]
