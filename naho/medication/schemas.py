"""Shapes of medication orders and formulary products as the JSON API reads and answers them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from naho.medication.rules import FrequencyKind


class OrderCreate(BaseModel):
    """A medication order as the prescriber signs it (also the content of a new version).

    The dose is per administration (`1 g`, `15 mg/kg`, `2 pres`) or, for a continuous infusion, a
    rate (`2 mg/h`). Weight and height are the ones the prescriber states; when absent, the
    latest measured in the chart. `override_reason` justifies the alerts that need one.
    """

    product_code: str = Field(min_length=1, max_length=60)
    dose_value: float = Field(gt=0)
    dose_unit: str = Field(min_length=1, max_length=30)
    route: str = Field(min_length=1, max_length=10)
    frequency: FrequencyKind
    times_per_day: int | None = None
    every_hours: float | None = None
    max_per_24h: int | None = None
    indication: str | None = Field(default=None, max_length=500)
    starts_at: datetime | None = None
    duration_days: float | None = Field(default=None, gt=0, le=366)
    comment: str | None = Field(default=None, max_length=2000)
    weight_kg: float | None = None
    height_cm: float | None = None
    pregnant: bool | None = None
    override_reason: str | None = Field(default=None, max_length=1000)
    #: Continuous infusions: the concentration of the preparation (`1` `mg/mL`), and the titration
    #: range of the rate in the dose unit (both or neither).
    concentration_value: float | None = Field(default=None, gt=0)
    concentration_unit: str | None = Field(default=None, max_length=20)
    titration_min: float | None = Field(default=None, gt=0)
    titration_max: float | None = Field(default=None, gt=0)


class DischargeDecision(BaseModel):
    """Whether an order goes on after discharge: continue, stop, or null to withdraw the word."""

    at_discharge: str | None = Field(default=None, max_length=10)


class StatusChange(BaseModel):
    """Suspend, resume or stop: why (optional), and the reason overriding alerts on resuming."""

    reason: str | None = Field(default=None, max_length=1000)
    override_reason: str | None = Field(default=None, max_length=1000)


class AlertPublic(BaseModel):
    kind: str
    severity: str
    message: str  # in the reader's language
    params: dict[str, Any]
    substance: str | None
    override_reason: str | None = None


class PharmacistReviewPublic(BaseModel):
    """The pharmacist's latest analysis of an order version, as the prescriber and nurses see it:
    the decision, the coded intervention (SFPC) and the comment."""

    decision: str
    problem_code: str | None = None
    problem_label: str | None = None  # in the reader's language
    intervention_code: str | None = None
    intervention_label: str | None = None
    comment: str | None = None
    pharmacist: str
    at: datetime
    prescriber_response: str | None = None  # accepted | declined, once the prescriber answers


class OrderContent(BaseModel):
    """What is given: product, dose, route and schedule (an order's, or a protocol line's)."""

    product_code: str
    product_name: str
    dose_value: float
    dose_unit: str
    route: str
    frequency: str
    times_per_day: int | None
    every_hours: float | None
    max_per_24h: int | None
    indication: str | None


class OrderPublic(OrderContent):
    id: uuid.UUID
    patient_id: uuid.UUID
    encounter_id: uuid.UUID | None
    replaces_id: uuid.UUID | None
    version: int
    status: str
    review_status: str
    starts_at: datetime
    ends_at: datetime | None
    comment: str | None
    weight_kg: float | None
    height_cm: float | None
    override_reason: str | None
    prescriber: str
    created_at: datetime
    status_changed_at: datetime | None
    status_reason: str | None
    alerts: list[AlertPublic]
    #: The prescriber's word at discharge: continue | stop | None (not said yet).
    at_discharge: str | None = None
    #: Filled from the review step (review.latest_reviews) when the pharmacist has spoken.
    pharmacist_review: PharmacistReviewPublic | None = None
    concentration_value: float | None = None
    concentration_unit: str | None = None
    titration_min: float | None = None
    titration_max: float | None = None
    #: The pump rate of a continuous infusion whose concentration is known, in mL/h.
    rate_ml_h: float | None = None
    protocol_code: str | None = None
    protocol_run_id: uuid.UUID | None = None


class ProductPublic(BaseModel):
    code: str
    name: str
    atc: str
    form: str
    routes: list[str]
    active: bool


class ImportReport(BaseModel):
    import_id: uuid.UUID
    version: str
    sha256: str
    substances: int
    products: int
    interactions: int
    added: int
    updated: int
    withdrawn: int


class ProtocolLinePublic(OrderContent):
    duration_days: float | None
    comment: str | None


class ProtocolPublic(BaseModel):
    """A protocol (order set) of the group: lines applied together, all or nothing."""

    code: str
    name: str
    description: str
    source: str
    lines: list[ProtocolLinePublic]


class ProtocolApply(BaseModel):
    """Apply a protocol: the weight and height stated (else the chart's), and the reasons that
    override alerts, by line number (0 for the first line)."""

    weight_kg: float | None = None
    height_cm: float | None = None
    pregnant: bool | None = None
    override_reasons: dict[int, str] = Field(default_factory=dict)


class HomeMedicationCreate(BaseModel):
    """One line of the home treatment at admission, as its source gives it."""

    drug: str = Field(min_length=1, max_length=300)
    product_code: str | None = Field(default=None, max_length=60)
    dose: str | None = Field(default=None, max_length=100)
    frequency: str | None = Field(default=None, max_length=100)
    source: str = Field(min_length=1, max_length=30)


class HomeMedicationDecision(BaseModel):
    """The prescriber's decision on a home-treatment line: `continue` or `substitute` sign
    `order` (through the checks); `stop` states its reason."""

    decision: str = Field(min_length=1, max_length=20)
    reason: str | None = Field(default=None, max_length=1000)
    order: OrderCreate | None = None


class HomeMedicationPublic(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    encounter_id: uuid.UUID | None
    drug: str
    product_code: str | None
    product_name: str | None
    dose: str | None
    frequency: str | None
    source: str
    recorded_at: datetime
    recorded_by: str
    decision: str | None
    decision_reason: str | None
    decided_at: datetime | None
    decided_by: str | None
    order_id: uuid.UUID | None


class DischargeChange(BaseModel):
    """One treatment at discharge and its change versus admission: `new`, `continued`,
    `modified` or `stopped` (a home treatment stopped, with its reason)."""

    change: str
    drug: str
    dose: str | None
    #: As written on the home-treatment line, or the order's schedule kind (rules.FrequencyKind)
    #: detailed by `route`, `times_per_day`, `every_hours` and `max_per_24h`.
    frequency: str | None
    order_id: uuid.UUID | None
    home_medication_id: uuid.UUID | None
    reason: str | None
    route: str | None = None
    times_per_day: int | None = None
    every_hours: float | None = None
    max_per_24h: int | None = None
