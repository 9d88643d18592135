"""JSON routes of medication orders and the formulary search (same rules, access and audit as the
service: only physicians sign, the care team reads)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends

from naho.medication import service
from naho.medication.schemas import OrderCreate, OrderPublic, ProductPublic, StatusChange
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


@router.post("/medication-orders/{order_id}/stop", dependencies=[Depends(PRESCRIBERS)])
def stop(order_id: uuid.UUID, data: StatusChange, container: ContainerDep, actor: ActorDep) -> OrderPublic:
    return service.stop(container.uow(), actor, order_id, data, container.ports["care"])


@router.get("/medication/products", dependencies=[Depends(FORMULARY_READERS)])
def products(container: ContainerDep, q: str = "") -> list[ProductPublic]:
    return service.search_products(container.uow(), q)
