from __future__ import annotations

import uuid

from pydantic import BaseModel, Field


class AssignmentPublic(BaseModel):
    unit_code: str
    unit_name: str
    establishment_code: str
    primary: bool


class StaffPublic(BaseModel):
    id: uuid.UUID
    username: str
    first_name: str
    last_name: str
    profession: str
    roles: list[str]
    rpps: str | None
    active: bool
    assignments: list[AssignmentPublic]


class StaffCreate(BaseModel):
    username: str = Field(min_length=2, max_length=80, pattern=r"^[a-z0-9._-]+$")
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    profession: str
    roles: list[str] = []
    rpps: str | None = None
    email: str | None = None
    password: str | None = None
    unit_codes: list[str] = []
