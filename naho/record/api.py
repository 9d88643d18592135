"""JSON routes of stays and bed boards (same rules, access and audit as the pages)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.security.policy import STAFF, requires
from naho.platform.security.rules import Role
from naho.record import service
from naho.record.schemas import (
    AdmissionCreate,
    ArrivalCreate,
    BedBoard,
    ClassChange,
    EncounterPublic,
    MovementAt,
    PreAdmissionCreate,
    TransferCreate,
)

router = APIRouter(prefix="/api", tags=["stays"])
ADMITTERS = requires(Role.ADMISSION_CLERK, Role.IDENTITY_VIGILANCE, Role.INTERFACE)
MOVERS = requires(Role.ADMISSION_CLERK, Role.NURSE, Role.PHYSICIAN, Role.INTERFACE)


class Cancellation(BaseModel):
    kind: str


class StayMove(BaseModel):
    """A44: the patient the stay belongs to, and why."""

    patient_id: uuid.UUID
    reason: str = Field(max_length=1000)


@router.post("/encounters", status_code=201, dependencies=[Depends(ADMITTERS)])
def admit(data: AdmissionCreate, container: ContainerDep, actor: ActorDep) -> EncounterPublic:
    return service.admit_patient(container.uow(), actor, data)


@router.post("/pre-admissions", status_code=201, dependencies=[Depends(ADMITTERS)])
def pre_admit(data: PreAdmissionCreate, container: ContainerDep, actor: ActorDep) -> EncounterPublic:
    return service.pre_admit_patient(container.uow(), actor, data)


@router.post("/encounters/{encounter_id}/arrival", dependencies=[Depends(ADMITTERS)])
def arrival(encounter_id: uuid.UUID, data: ArrivalCreate, container: ContainerDep,
            actor: ActorDep) -> EncounterPublic:
    return service.admit_planned_patient(container.uow(), actor, encounter_id, data)


@router.post("/encounters/{encounter_id}/cancel-pre-admission", dependencies=[Depends(ADMITTERS)])
def cancel_pre_admission(encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> EncounterPublic:
    return service.cancel_pre_admission(container.uow(), actor, encounter_id)


@router.post("/encounters/{encounter_id}/class", dependencies=[Depends(MOVERS)])
def change_class(encounter_id: uuid.UUID, data: ClassChange, container: ContainerDep,
                 actor: ActorDep) -> EncounterPublic:
    return service.change_encounter_class(container.uow(), actor, encounter_id, data)


@router.post("/encounters/{encounter_id}/move", dependencies=[Depends(ADMITTERS)])
def move(encounter_id: uuid.UUID, data: StayMove, container: ContainerDep, actor: ActorDep) -> EncounterPublic:
    return service.move_stay(container.uow(), actor, encounter_id, data.patient_id, data.reason)


@router.post("/encounters/{encounter_id}/transfer", dependencies=[Depends(MOVERS)])
def transfer(encounter_id: uuid.UUID, data: TransferCreate, container: ContainerDep,
             actor: ActorDep) -> EncounterPublic:
    return service.transfer_patient(container.uow(), actor, encounter_id, data)


@router.post("/encounters/{encounter_id}/leave", dependencies=[Depends(MOVERS)])
def leave(encounter_id: uuid.UUID, data: MovementAt, container: ContainerDep, actor: ActorDep) -> EncounterPublic:
    return service.start_leave(container.uow(), actor, encounter_id, data.at)


@router.post("/encounters/{encounter_id}/return", dependencies=[Depends(MOVERS)])
def back(encounter_id: uuid.UUID, data: MovementAt, container: ContainerDep, actor: ActorDep) -> EncounterPublic:
    return service.end_leave(container.uow(), actor, encounter_id, data.at)


@router.post("/encounters/{encounter_id}/discharge", dependencies=[Depends(MOVERS)])
def discharge(encounter_id: uuid.UUID, data: MovementAt, container: ContainerDep, actor: ActorDep) -> EncounterPublic:
    return service.discharge_patient(container.uow(), actor, encounter_id, data.at)


@router.post("/encounters/{encounter_id}/cancel", dependencies=[Depends(MOVERS)])
def cancel(encounter_id: uuid.UUID, data: Cancellation, container: ContainerDep, actor: ActorDep) -> EncounterPublic:
    return service.cancel_last_movement(container.uow(), actor, encounter_id, data.kind)


@router.get("/units/{unit_code}/bed-board", dependencies=[Depends(STAFF)])
def bed_board(unit_code: str, container: ContainerDep, actor: ActorDep) -> BedBoard:
    return service.view_bed_board(container.uow(), actor, unit_code)
