"""Tables of the medication circuit: nominative dispensing, the pharmacy's stock and the narcotics
register.

A batch (one unit, one period) holds lines (one per due dose of a validated order); preparing a
line writes the dispensed dose with its label number, lot and expiry, and a stock move. The
stock of each establishment pharmacy is kept per product and lot: `pharmacy_stock_move` is the
ledger (rows are only appended) and `pharmacy_stock_lot.balance` its sum, changed by conditional
UPDATEs that never go below zero. Narcotics (stupéfiants) get their own append-only register.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from naho.platform.db import Base, new_id

__all__ = [
    "DispensedDose", "DispensingBatch", "DispensingLine", "NarcoticRegisterEntry", "PharmacyStockLot",
    "PharmacyStockMove",
]


class PharmacyStockLot(Base):
    """One lot of one product in an establishment's pharmacy; `balance` is the sum of its moves."""

    __tablename__ = "pharmacy_stock_lot"
    __table_args__ = (
        UniqueConstraint("establishment_code", "product_code", "lot"),
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        Index("ix_pharmacy_stock_lot_cip13", "establishment_code", "cip13"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    establishment_code: Mapped[str] = mapped_column(String(40))
    product_code: Mapped[str] = mapped_column(ForeignKey("formulary_product.code"))
    #: The pack's code as delivered (GTIN holding the CIP13), when known: a scan finds the lot by it.
    cip13: Mapped[str | None] = mapped_column(String(13))
    lot: Mapped[str] = mapped_column(String(40))
    expiry: Mapped[date]
    balance: Mapped[int] = mapped_column(Integer, default=0)


class PharmacyStockMove(Base):
    """A move of units in or out of a lot (receipt +, dispensing -, return +): the ledger."""

    __tablename__ = "pharmacy_stock_move"
    __table_args__ = (
        CheckConstraint("kind IN ('receipt', 'dispensing', 'return')", name="kind"),
        CheckConstraint("quantity <> 0", name="quantity_not_zero"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacy_stock_lot.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    quantity: Mapped[int] = mapped_column(Integer)  # signed
    balance_after: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(index=True)
    by_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    by_label: Mapped[str] = mapped_column(String(300))
    dose_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    reason: Mapped[str | None] = mapped_column(String(500))


class DispensingBatch(Base):
    """What a pharmacy prepares for one unit and period. `status`: open (being prepared) →
    prepared (every line done) → handed_over (for transport) → received (by the unit)."""

    __tablename__ = "dispensing_batch"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'prepared', 'handed_over', 'received')", name="status"),
        Index("ix_dispensing_batch_unit_status", "unit_code", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    establishment_code: Mapped[str] = mapped_column(String(40))
    pharmacy_code: Mapped[str] = mapped_column(String(40))
    unit_code: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20))
    opened_at: Mapped[datetime]
    opened_by: Mapped[str] = mapped_column(String(300))
    prepared_at: Mapped[datetime | None]
    handed_over_at: Mapped[datetime | None]
    handed_over_by: Mapped[str | None] = mapped_column(String(300))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime | None]
    received_by: Mapped[str | None] = mapped_column(String(300))
    #: Labels of the doses missing or damaged on receipt, and the nurse's note.
    receipt_issues: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DispensingLine(Base):
    """One due dose (or the infusion bags, or the "if needed" reserve) of one order in a batch."""

    __tablename__ = "dispensing_line"
    __table_args__ = (
        CheckConstraint("status IN ('to_prepare', 'prepared')", name="status"),
        CheckConstraint("units > 0", name="units_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dispensing_batch.id"), index=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("medication_order.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # dispensing_rules.NeedKind
    due_at: Mapped[datetime | None]
    sequence: Mapped[int] = mapped_column(Integer)
    product_code: Mapped[str] = mapped_column(ForeignKey("formulary_product.code"))
    dose_text: Mapped[str] = mapped_column(String(100))
    units: Mapped[int] = mapped_column(Integer)
    narcotic: Mapped[bool] = mapped_column(Boolean, default=False)
    room: Mapped[str] = mapped_column(String(40), default="")
    bed: Mapped[str] = mapped_column(String(40), default="")
    status: Mapped[str] = mapped_column(String(20))


class DispensedDose(Base):
    """A prepared line: the label printed on it (`D` + 10 digits), the pack given (product, lot,
    expiry), how it was identified (scan, or typed by hand with a reason), by whom."""

    __tablename__ = "dispensed_dose"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    label: Mapped[str] = mapped_column(String(11), unique=True)
    line_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dispensing_line.id"), unique=True)
    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dispensing_batch.id"), index=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("medication_order.id"), index=True)
    product_code: Mapped[str] = mapped_column(ForeignKey("formulary_product.code"))
    stock_lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("pharmacy_stock_lot.id"))
    lot: Mapped[str] = mapped_column(String(40))
    expiry: Mapped[date]
    units: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime | None]
    entry: Mapped[str] = mapped_column(String(10))  # scan | manual
    manual_reason: Mapped[str | None] = mapped_column(String(500))
    serial: Mapped[str | None] = mapped_column(String(40))
    prepared_at: Mapped[datetime]
    prepared_by_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    prepared_by: Mapped[str] = mapped_column(String(300))


class NarcoticRegisterEntry(Base):
    """The narcotics register (CSP R.5132-36): each unit of a stupéfiant dispensed, to whom, for
    which unit, which lot, by whom. Rows are only appended."""

    __tablename__ = "narcotic_register_entry"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    establishment_code: Mapped[str] = mapped_column(String(40), index=True)
    product_code: Mapped[str] = mapped_column(ForeignKey("formulary_product.code"), index=True)
    lot: Mapped[str] = mapped_column(String(40))
    units: Mapped[int] = mapped_column(Integer)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    unit_code: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    dose_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dispensed_dose.id"))
    at: Mapped[datetime]
    by_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    by_label: Mapped[str] = mapped_column(String(300))
