"""JSON routes of the staff directory (IT administrators)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.security.policy import requires
from naho.platform.security.rules import Role
from naho.staff import service
from naho.staff.schemas import StaffCreate, StaffPublic

router = APIRouter(prefix="/api/staff", tags=["staff"], dependencies=[Depends(requires(Role.IT_ADMIN))])


class StaffPage(BaseModel):
    total: int
    items: list[StaffPublic]


@router.get("")
def list_staff(
    container: ContainerDep,
    actor: ActorDep,
    establishment: str | None = None,
    unit: str | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> StaffPage:
    items, total = service.browse_staff(container.uow(), actor, establishment_code=establishment,
                                        unit_code=unit, search=q, limit=limit, offset=offset)
    return StaffPage(total=total, items=items)


@router.post("", status_code=201)
def create_staff(data: StaffCreate, container: ContainerDep, actor: ActorDep) -> StaffPublic:
    return service.create_staff(container.uow(), actor, data)
