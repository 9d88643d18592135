"""Tables of the medication circuit: medication reconciliation (conciliation médicamenteuse).

At admission the patient's home treatment is listed line by line, each with its source (the
patient, the GP's letter, the community pharmacy...); the prescriber decides each line: continue
(an order is signed), substitute (an order of a formulary product is signed instead) or stop
(with a reason). The discharge list is computed from these lines and the stay's orders.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from naho.platform.db import Base, new_id

__all__ = ["HomeMedication"]


class HomeMedication(Base):
    """One line of the home treatment at admission and the prescriber's decision on it."""

    __tablename__ = "home_medication"
    __table_args__ = (
        CheckConstraint("decision IS NULL OR decision IN ('continue', 'stop', 'substitute')", name="decision"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    encounter_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    #: The drug as the source names it (free text), or a formulary product when identified.
    drug: Mapped[str] = mapped_column(String(300))
    product_code: Mapped[str | None] = mapped_column(ForeignKey("formulary_product.code"))
    dose: Mapped[str | None] = mapped_column(String(100))
    frequency: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(30))
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(300))
    decision: Mapped[str | None] = mapped_column(String(20))
    decision_reason: Mapped[str | None] = mapped_column(String(1000))
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(300))
    #: The order signed for a continued or substituted line (its first version).
    order_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("medication_order.id"))
