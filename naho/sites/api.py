"""JSON routes of the group's structure (read by any staff; rollout moves by IT admins)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.security.policy import STAFF, requires
from naho.platform.security.rules import Role
from naho.sites import service
from naho.sites.schemas import BedPublic, EstablishmentPublic, RolloutChange, UnitPublic

router = APIRouter(prefix="/api/sites", tags=["sites"])


@router.get("/establishments", dependencies=[Depends(STAFF)])
def establishments(container: ContainerDep) -> list[EstablishmentPublic]:
    with container.session_factory() as s:
        return service.list_establishments(s)


@router.get("/establishments/{code}", dependencies=[Depends(STAFF)])
def establishment(code: str, container: ContainerDep) -> EstablishmentPublic:
    with container.session_factory() as s:
        return service.get_establishment(s, code)


@router.get("/establishments/{code}/units", dependencies=[Depends(STAFF)])
def units(code: str, container: ContainerDep) -> list[UnitPublic]:
    with container.session_factory() as s:
        return service.list_units(s, code)


@router.get("/units/{code}/beds", dependencies=[Depends(STAFF)])
def beds(code: str, container: ContainerDep) -> list[BedPublic]:
    with container.session_factory() as s:
        return service.list_beds(s, code)


@router.put("/establishments/{code}/rollout", dependencies=[Depends(requires(Role.IT_ADMIN))])
def change_rollout(code: str, change: RolloutChange, container: ContainerDep, actor: ActorDep) -> EstablishmentPublic:
    return service.change_rollout(container.uow(), actor, code, change.state, change.reason)
