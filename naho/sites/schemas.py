"""API shapes of the group's structure."""

from __future__ import annotations

import uuid

from pydantic import BaseModel


class EstablishmentPublic(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    short_name: str
    finess: str
    city: str
    postcode: str
    address: str
    pivot: bool
    rollout_state: str
    unit_count: int = 0
    bed_count: int = 0


class UnitPublic(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    kind: str
    establishment_code: str
    department_code: str
    department_name: str
    building: str
    floor: int
    room_count: int
    bed_count: int


class UnitChoice(BaseModel):
    code: str
    name: str
    department_name: str


class BedPublic(BaseModel):
    id: uuid.UUID
    code: str
    label: str
    room: str
    room_kind: str
    unit_code: str


class ImportReport(BaseModel):
    created: dict[str, int]
    updated: dict[str, int]
    deactivated: dict[str, int]

    @property
    def changed(self) -> bool:
        return any(self.created.values()) or any(self.updated.values()) or any(self.deactivated.values())


class RolloutChange(BaseModel):
    state: str
    reason: str = ""
