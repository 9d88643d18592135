"""JSON routes of medication orders and the formulary search (same rules, access and audit as the
service: only physicians sign, the care team reads)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends

from naho.medication import reconciliation, service
from naho.medication.schemas import (
    DischargeChange,
    DischargeDecision,
    HomeMedicationCreate,
    HomeMedicationDecision,
    HomeMedicationPublic,
    OrderCreate,
    OrderPublic,
    ProductPublic,
    ProtocolApply,
    ProtocolPublic,
    StatusChange,
)
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.security.policy import requires
from naho.platform.security.rules import Role

router = APIRouter(prefix="/api", tags=["medication"])
PRESCRIBERS = requires(Role.PHYSICIAN)
CARERS = requires(Role.PHYSICIAN, Role.NURSE, Role.PHARMACIST)
FORMULARY_READERS = requires(Role.PHYSICIAN, Role.NURSE, Role.PHARMACIST, Role.PHARMACY_TECHNICIAN)


@router.get("/patients/{patient_id}/medication-orders", dependencies=[Depends(CARERS)])
def list_orders(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                history: bool = False) -> list[OrderPublic]:
    return service.active_orders(container.uow(), actor, patient_id, container.ports["care"], history=history)


@router.post("/patients/{patient_id}/medication-orders", status_code=201, dependencies=[Depends(PRESCRIBERS)])
def prescribe(patient_id: uuid.UUID, data: OrderCreate, container: ContainerDep, actor: ActorDep) -> OrderPublic:
    return service.prescribe(container.uow(), actor, patient_id, data, container.ports["care"])


@router.post("/medication-orders/{order_id}/modify", status_code=201, dependencies=[Depends(PRESCRIBERS)])
def modify(order_id: uuid.UUID, data: OrderCreate, container: ContainerDep, actor: ActorDep) -> OrderPublic:
    return service.modify(container.uow(), actor, order_id, data, container.ports["care"])


@router.post("/medication-orders/{order_id}/suspend", dependencies=[Depends(PRESCRIBERS)])
def suspend(order_id: uuid.UUID, data: StatusChange, container: ContainerDep, actor: ActorDep) -> OrderPublic:
    return service.suspend(container.uow(), actor, order_id, data, container.ports["care"])


@router.post("/medication-orders/{order_id}/resume", dependencies=[Depends(PRESCRIBERS)])
def resume(order_id: uuid.UUID, data: StatusChange, container: ContainerDep, actor: ActorDep) -> OrderPublic:
    return service.resume(container.uow(), actor, order_id, data, container.ports["care"])


@router.post("/medication-orders/{order_id}/at-discharge", dependencies=[Depends(PRESCRIBERS)])
def at_discharge(order_id: uuid.UUID, data: DischargeDecision, container: ContainerDep, actor: ActorDep) -> OrderPublic:
    return service.decide_at_discharge(container.uow(), actor, order_id, data.at_discharge, container.ports["care"])


@router.post("/medication-orders/{order_id}/stop", dependencies=[Depends(PRESCRIBERS)])
def stop(order_id: uuid.UUID, data: StatusChange, container: ContainerDep, actor: ActorDep) -> OrderPublic:
    return service.stop(container.uow(), actor, order_id, data, container.ports["care"])


@router.get("/medication/products", dependencies=[Depends(FORMULARY_READERS)])
def products(container: ContainerDep, q: str = "") -> list[ProductPublic]:
    return service.search_products(container.uow(), q)


@router.get("/medication/protocols", dependencies=[Depends(CARERS)])
def protocols(container: ContainerDep) -> list[ProtocolPublic]:
    return service.list_protocols(container.uow())


@router.post("/patients/{patient_id}/medication-protocols/{code}", status_code=201,
             dependencies=[Depends(PRESCRIBERS)])
def apply_protocol(patient_id: uuid.UUID, code: str, data: ProtocolApply, container: ContainerDep,
                   actor: ActorDep) -> list[OrderPublic]:
    return service.apply_protocol(container.uow(), actor, patient_id, code, data, container.ports["care"])


@router.get("/patients/{patient_id}/home-medications", dependencies=[Depends(CARERS)])
def home_medications(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> list[HomeMedicationPublic]:
    return reconciliation.home_medications(container.uow(), actor, patient_id, container.ports["care"])


@router.post("/patients/{patient_id}/home-medications", status_code=201, dependencies=[Depends(CARERS)])
def add_home_medication(patient_id: uuid.UUID, data: HomeMedicationCreate, container: ContainerDep,
                        actor: ActorDep) -> HomeMedicationPublic:
    return reconciliation.add_home_medication(container.uow(), actor, patient_id, data, container.ports["care"])


@router.post("/home-medications/{line_id}/decision", dependencies=[Depends(PRESCRIBERS)])
def decide_home_medication(line_id: uuid.UUID, data: HomeMedicationDecision, container: ContainerDep,
                           actor: ActorDep) -> HomeMedicationPublic:
    return reconciliation.decide(container.uow(), actor, line_id, data, container.ports["care"])


@router.get("/encounters/{encounter_id}/discharge-medications", dependencies=[Depends(CARERS)])
def discharge_medications(encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> list[DischargeChange]:
    return reconciliation.discharge_list(container.uow(), actor, encounter_id, container.ports["care"])
