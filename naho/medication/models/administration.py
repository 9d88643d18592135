"""Tables of the medication circuit: administration — the plan of care as given.

One row per event at the bedside, written as it happens and never changed: a dose given, partly
given or not given (with its reason), an 'if needed' dose, and a continuous infusion's start,
rate changes, bag changes and stop. A scheduled dose is recorded once: (order version, due
sequence) is unique, so a second nurse scanning the same dose is refused.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from naho.platform.db import Base, new_id

__all__ = ["MedicationAdministration"]


class MedicationAdministration(Base):
    """One administration event. `kind`: dose | if_needed | infusion_start | rate_change |
    bag_change | infusion_stop; `outcome`: given | partly_given | not_given. `amount` is in units
    of the product (tablets, ampoules); rates in the order's dose unit (`dose_rate`) and mL/h."""

    __tablename__ = "medication_administration"
    __table_args__ = (
        UniqueConstraint("order_id", "due_sequence"),
        Index("ix_medication_administration_patient_at", "patient_id", "at"),
        CheckConstraint("outcome IN ('given', 'partly_given', 'not_given')", name="outcome"),
        CheckConstraint("kind IN ('dose', 'if_needed', 'infusion_start', 'rate_change', 'bag_change', "
                        "'infusion_stop')", name="kind"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("medication_order.id"), index=True)
    order_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(20))
    #: The scheduled dose this is (schedule.Due): None for 'if needed' doses and infusion changes.
    due_at: Mapped[datetime | None]
    due_sequence: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime]
    product_code: Mapped[str | None] = mapped_column(String(60))
    lot: Mapped[str | None] = mapped_column(String(40))
    expiry: Mapped[date | None]
    amount: Mapped[float | None]
    route: Mapped[str | None] = mapped_column(String(10))
    dose_rate: Mapped[float | None]
    rate_ml_h: Mapped[float | None]
    bag_volume_ml: Mapped[float | None]
    reason_code: Mapped[str | None] = mapped_column(String(30))
    reason: Mapped[str | None] = mapped_column(String(1000))
    patient_scan: Mapped[str | None] = mapped_column(String(120))
    dose_scan: Mapped[str | None] = mapped_column(String(200))
    #: Why a scan was skipped (wristband unreadable, product without label...): traced.
    no_scan_reason: Mapped[str | None] = mapped_column(String(500))
    #: The order was not yet reviewed by the pharmacist when given (allowed, traced).
    unreviewed: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The checks as shown (right, passed, blocking, message id, params).
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    recorded_by_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    recorded_by: Mapped[str] = mapped_column(String(300))
