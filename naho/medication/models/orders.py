"""Tables of the medication circuit: the imported formulary and the medication orders with their alerts.

The formulary is stored as imported, one row per substance and per product holding its definition
as JSON (enough to rebuild `rules.Catalogue` without the YAML) beside the columns searched at
order entry; products and substances are never deleted, since past orders name them: one that
leaves the file becomes inactive. Orders are versioned: a modification writes a new row that
`replaces_id` the old one, which is kept as `replaced`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from naho.platform.db import Base, new_id

__all__ = [
    "FormularyImport", "FormularyInteraction", "FormularyProduct", "FormularySubstance", "MedicationOrder",
    "MedicationOrderAlert",
]


class FormularyImport(Base):
    """One import of the formulary file: when, by whom, which file (its SHA-256) and what changed."""

    __tablename__ = "formulary_import"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    #: 1, 2, 3...: the latest import is the one in force (two may share a timestamp).
    number: Mapped[int] = mapped_column(Integer, unique=True)
    imported_at: Mapped[datetime] = mapped_column(index=True)
    imported_by: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(40))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class FormularySubstance(Base):
    """An active substance (DCI) as imported; `definition` is `rules.Substance` as JSON."""

    __tablename__ = "formulary_substance"

    code: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    atc: Mapped[str] = mapped_column(String(7), index=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    import_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("formulary_import.id"))


class FormularyProduct(Base):
    """A product (UCD) as imported; `definition` is `rules.Product` as JSON. `atc` is its first
    substance's, for the search at order entry."""

    __tablename__ = "formulary_product"

    code: Mapped[str] = mapped_column(String(60), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), index=True)
    atc: Mapped[str] = mapped_column(String(7), index=True)
    form: Mapped[str] = mapped_column(String(100))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    import_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("formulary_import.id"))


class FormularyInteraction(Base):
    """An interaction as imported (ANSM thesaurus or the pharmacy's own), in the file's order.
    Orders do not refer to them, so each import replaces the whole set."""

    __tablename__ = "formulary_interaction"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    import_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("formulary_import.id"))
    position: Mapped[int] = mapped_column(Integer)
    left: Mapped[str] = mapped_column(String(300))
    right: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(40))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)


class MedicationOrder(Base):
    """One version of a medication order. `status`: active | suspended | stopped | replaced;
    `review_status` (the pharmacist's analysis, arrêté du 6 avril 2011): pending at each new
    version, then validated | refused."""

    __tablename__ = "medication_order"
    __table_args__ = (
        Index("ix_medication_order_patient_status", "patient_id", "status"),
        CheckConstraint("status IN ('active', 'suspended', 'stopped', 'replaced')", name="status"),
        CheckConstraint("review_status IN ('pending', 'validated', 'refused')", name="review_status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    encounter_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    replaces_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("medication_order.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(20))
    review_status: Mapped[str] = mapped_column(String(20))
    product_code: Mapped[str] = mapped_column(ForeignKey("formulary_product.code"))
    dose_value: Mapped[float]
    dose_unit: Mapped[str] = mapped_column(String(30))
    route: Mapped[str] = mapped_column(String(10))
    frequency: Mapped[str] = mapped_column(String(20))  # rules.FrequencyKind
    times_per_day: Mapped[int | None] = mapped_column(Integer)
    every_hours: Mapped[float | None]
    max_per_24h: Mapped[int | None] = mapped_column(Integer)
    #: Why an "if needed" order is given (douleur EVA > 3...).
    indication: Mapped[str | None] = mapped_column(String(500))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    comment: Mapped[str | None] = mapped_column(Text)
    #: What the checks used (arrêté du 6 avril 2011: weight and height on the prescription).
    weight_kg: Mapped[float | None]
    height_cm: Mapped[float | None]
    pregnant: Mapped[bool | None] = mapped_column(Boolean)
    override_reason: Mapped[str | None] = mapped_column(String(1000))
    prescriber_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    prescriber_label: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]
    status_changed_at: Mapped[datetime | None]
    status_changed_by: Mapped[str | None] = mapped_column(String(300))
    status_reason: Mapped[str | None] = mapped_column(String(1000))
    #: Continuous infusions: the concentration of the preparation (1 mg/mL) and the titration
    #: range of the rate, in the order's dose unit (ICU drips: min and max the nurse may run).
    concentration_value: Mapped[float | None]
    concentration_unit: Mapped[str | None] = mapped_column(String(20))
    titration_min: Mapped[float | None]
    titration_max: Mapped[float | None]
    #: The protocol (order set) the order was applied from, and the application it was part of.
    protocol_code: Mapped[str | None] = mapped_column(String(60))
    protocol_run_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    #: The prescriber's word on the order at discharge (medication reconciliation): continue |
    #: stop; None until said. A new version keeps it.
    at_discharge: Mapped[str | None] = mapped_column(String(10))


class MedicationOrderAlert(Base):
    """An alert the checks raised when the order (this version) was signed, with the reason the
    prescriber gave to override it."""

    __tablename__ = "medication_order_alert"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("medication_order.id"), index=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    kind: Mapped[str] = mapped_column(String(30))
    severity: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    substance: Mapped[str | None] = mapped_column(String(60))
    override_reason: Mapped[str | None] = mapped_column(String(1000))
