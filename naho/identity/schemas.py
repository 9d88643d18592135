"""API shapes of the patient index."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field


class PatientCreate(BaseModel):
    birth_name: str = Field(min_length=1, max_length=100)
    used_name: str | None = Field(default=None, max_length=100)
    first_names: str = Field(min_length=1, max_length=200, description="birth first names, space separated")
    used_first_name: str | None = Field(default=None, max_length=100)
    sex: str = Field(pattern=r"^[MFI]$")
    birth_date: date
    birth_place: str | None = Field(default=None, pattern=r"^(\d{5}|2[AB]\d{3})$")
    phone: str | None = Field(default=None, max_length=30)
    email: str | None = Field(default=None, max_length=254)
    address: str | None = Field(default=None, max_length=300)
    postcode: str | None = Field(default=None, max_length=10)
    city: str | None = Field(default=None, max_length=120)


class PatientPublic(BaseModel):
    id: uuid.UUID
    ipp: str
    birth_name: str
    used_name: str | None
    first_names: str
    used_first_name: str | None
    sex: str
    birth_date: date
    birth_place: str | None
    #: Present only when the identity is qualified (RNIV: the INS is used only then).
    ins: str | None
    ins_oid: str | None
    status: str
    doubtful: bool
    fictitious: bool
    phone: str | None
    email: str | None
    address: str | None
    postcode: str | None
    city: str | None
    created_at: datetime

    @property
    def display_name(self) -> str:
        name = self.used_name or self.birth_name
        first = self.used_first_name or self.first_names.split(" ")[0]
        return f"{name} {first.title()}"


class Candidate(BaseModel):
    patient: PatientPublic
    score: float
    verdict: str
    reasons: list[str]
    twins_suspected: bool


class IdentityEventPublic(BaseModel):
    at: datetime
    actor_label: str
    kind: str
    status_before: str | None
    status_after: str | None
    proof: str | None


class TraitsUpdate(BaseModel):
    """Corrected traits; a field left out keeps its value."""

    birth_name: str | None = Field(default=None, min_length=1, max_length=100)
    used_name: str | None = Field(default=None, max_length=100)
    first_names: str | None = Field(default=None, min_length=1, max_length=200)
    used_first_name: str | None = Field(default=None, max_length=100)
    sex: str | None = Field(default=None, pattern=r"^[MFI]$")
    birth_date: date | None = None
    birth_place: str | None = Field(default=None, pattern=r"^(\d{5}|2[AB]\d{3})$")
    phone: str | None = Field(default=None, max_length=30)
    email: str | None = Field(default=None, max_length=254)
    address: str | None = Field(default=None, max_length=300)
    postcode: str | None = Field(default=None, max_length=10)
    city: str | None = Field(default=None, max_length=120)
    #: Why the traits change (typing error, judgement, marriage...): kept in the history.
    reason: str = Field(min_length=3, max_length=500)
