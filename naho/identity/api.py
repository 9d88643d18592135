"""JSON routes of the patient index (same rules, access and audit as the pages)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from naho.identity import service
from naho.identity.schemas import PatientCreate, PatientPublic, TraitsUpdate
from naho.platform.access import reading_purpose
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.security.policy import STAFF, requires
from naho.platform.security.rules import Role

router = APIRouter(prefix="/api/patients", tags=["patients"])
REGISTRARS = requires(Role.ADMISSION_CLERK, Role.IDENTITY_VIGILANCE, Role.INTERFACE)


class Registration(PatientCreate):
    #: Required when possible duplicates exist: why this is somebody else.
    confirm_reason: str | None = None


class Validation(BaseModel):
    proof: str


@router.get("", dependencies=[Depends(STAFF)])
def search(container: ContainerDep, actor: ActorDep, q: Annotated[str, Query(max_length=100)] = "",
           birth_date: date | None = None) -> list[PatientPublic]:
    return service.search_patients(container.uow(), actor, q, container.ports["care"], birth_date=birth_date)


@router.post("", status_code=201, dependencies=[Depends(REGISTRARS)])
def register(data: Registration, container: ContainerDep, actor: ActorDep) -> PatientPublic:
    """Create a provisional identity; 409 with the candidates when it may already exist."""
    fields = data.model_dump(exclude={"confirm_reason"})
    return service.register_patient(container.uow(), actor, PatientCreate(**fields),
                                    confirm_reason=data.confirm_reason)


@router.get("/{patient_id}", dependencies=[Depends(STAFF)])
def read(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> PatientPublic:
    return service.get_patient(container.uow(), actor, patient_id, reading_purpose(actor), container.ports["care"])


@router.post("/{patient_id}/validation", dependencies=[Depends(REGISTRARS)])
def validate(patient_id: uuid.UUID, body: Validation, container: ContainerDep, actor: ActorDep) -> PatientPublic:
    return service.validate_identity(container.uow(), actor, patient_id, body.proof, container.ports["care"])


@router.patch("/{patient_id}", dependencies=[Depends(REGISTRARS)])
def update(patient_id: uuid.UUID, body: TraitsUpdate, container: ContainerDep, actor: ActorDep) -> PatientPublic:
    """Correct traits; 409 when strict traits come from INSi. A validated identity whose strict
    traits change goes back to provisional."""
    return service.update_traits(container.uow(), actor, patient_id, body, container.ports["care"])
