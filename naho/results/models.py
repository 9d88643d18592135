"""Tables of laboratory results: reports (OBR), every received version of each result (OBX),
critical value alerts. Every row carries `patient_id` (DESIGN.md, *Scale*)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from naho.platform.db import Base, new_id


class LabReport(Base):
    """A laboratory report (one OBR): the order numbers that will match it to an order, the
    battery, when sampled and reported, its comments and its PDF in the chart."""

    __tablename__ = "lab_report"
    __table_args__ = (
        UniqueConstraint("sender", "report_key"),
        Index("ix_lab_report_patient_observed", "patient_id", "observed_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    encounter_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    #: MSH-3/MSH-4 of the laboratory system.
    sender: Mapped[str] = mapped_column(String(200))
    #: What names the report across messages: the filler number (OBR-3), else the placer's (OBR-2).
    report_key: Mapped[str] = mapped_column(String(200))
    placer_number: Mapped[str | None] = mapped_column(String(100), index=True)
    filler_number: Mapped[str | None] = mapped_column(String(100))
    service_code: Mapped[str] = mapped_column(String(60))  # OBR-4.1
    service_label: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(2))  # OBR-25
    observed_at: Mapped[datetime]  # OBR-7, the sampling time
    reported_at: Mapped[datetime | None]  # OBR-22
    comment: Mapped[str | None] = mapped_column(Text)  # NTE after OBR
    document_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the PDF (OBX ED) as a chart document
    updated_at: Mapped[datetime]


class LabResult(Base):
    """One received version of one result (OBX). A correction or a cancellation adds a row and
    makes the previous one not `current`: the history keeps every version."""

    __tablename__ = "lab_result"
    __table_args__ = (
        Index("ix_lab_result_patient_current", "patient_id", "current", "loinc", "observed_at"),
        Index("ix_lab_result_report_chain", "report_id", "chain"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lab_report.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    #: The test within its report across versions: LOINC and OBX-4 sub-id.
    chain: Mapped[str] = mapped_column(String(60))
    loinc: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(200))
    value_type: Mapped[str] = mapped_column(String(3))  # OBX-2
    number: Mapped[float | None] = mapped_column(Float)
    comparator: Mapped[str] = mapped_column(String(2), default="")
    text: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(String(40))  # UCUM
    reference: Mapped[str] = mapped_column(String(60))  # OBX-7 as sent
    reference_low: Mapped[float | None] = mapped_column(Float)
    reference_high: Mapped[float | None] = mapped_column(Float)
    flags: Mapped[str] = mapped_column(String(40))  # OBX-8, space separated
    status: Mapped[str] = mapped_column(String(1))  # OBX-11: P F C X D
    observed_at: Mapped[datetime]  # OBX-14, else OBR-7
    comment: Mapped[str | None] = mapped_column(Text)  # NTE after OBX
    version: Mapped[int] = mapped_column(Integer)
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    received_at: Mapped[datetime]
    #: The inbound message (sender MSH-10) that carried this version.
    source: Mapped[str] = mapped_column(String(300))
    #: The chart observation it fed (creatinine for the renal dose checks), if any.
    observation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class ResultAlert(Base):
    """A critical value: raised for the patient's physicians at once, acknowledged by one of
    them, escalated to the unit's senior physician when nobody did in time."""

    __tablename__ = "lab_result_alert"
    __table_args__ = (Index("ix_lab_result_alert_open", "acknowledged_at", "raised_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    result_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lab_result.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    encounter_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    unit_code: Mapped[str | None] = mapped_column(String(40))
    loinc: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(200))
    shown: Mapped[str] = mapped_column(String(60))  # value and unit as shown
    direction: Mapped[str] = mapped_column(String(4))  # low | high
    raised_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(300))
    escalated_at: Mapped[datetime | None]
    #: Usernames of the senior physicians it went to (space separated).
    escalated_to: Mapped[str | None] = mapped_column(String(300))


class LabOrder(Base):
    """One test or panel a physician ordered from the chart, followed to its final result.

    Tests ordered together share a group number (ORC-4); those drawn into the same kind of tube
    share a specimen number (the label). The placer number (ORC-2 / OBR-2) is what the
    laboratory's results come back with (docs/adr/0015-lab-orders.md)."""

    __tablename__ = "lab_order"
    __table_args__ = (
        Index("ix_lab_order_patient_ordered", "patient_id", "ordered_at"),
        Index("ix_lab_order_specimen", "specimen_number"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patient.id"))
    encounter_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    placer_number: Mapped[str] = mapped_column(String(20), unique=True)
    group_number: Mapped[str] = mapped_column(String(20))
    specimen_number: Mapped[str] = mapped_column(String(20))
    test_code: Mapped[str] = mapped_column(String(20))
    test_label: Mapped[str] = mapped_column(String(200))
    loinc: Mapped[str | None] = mapped_column(String(20))
    container_code: Mapped[str] = mapped_column(String(20))
    container_label: Mapped[str] = mapped_column(String(200))
    colour: Mapped[str] = mapped_column(String(20))
    specimen_type: Mapped[str] = mapped_column(String(10))  # HL7 table 0487
    urgency: Mapped[str] = mapped_column(String(10))
    clinical_info: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    ordered_at: Mapped[datetime]
    ordered_by: Mapped[str] = mapped_column(String(300))
    collected_at: Mapped[datetime | None]
    collected_by: Mapped[str | None] = mapped_column(String(300))
    cancelled_at: Mapped[datetime | None]
    cancelled_by: Mapped[str | None] = mapped_column(String(300))
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    #: The last message to the laboratory: pending, accepted, error (AE / AR) or not_sent.
    transmission: Mapped[str] = mapped_column(String(20))
    transmission_error: Mapped[str | None] = mapped_column(String(1000))
    accepted_at: Mapped[datetime | None]
    #: The laboratory's report of this order, once results came back.
    report_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    updated_at: Mapped[datetime]


from naho.results.release_models import ReportRelease  # noqa: E402,F401  (registers the release table)
