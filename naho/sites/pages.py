"""IT-admin pages of the group's structure: establishments, units, beds, rollout."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from naho.platform import i18n
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.security.policy import requires
from naho.platform.security.rules import Role
from naho.sites import service
from naho.sites.errors import RolloutTransitionRefused
from naho.web.templating import render

router = APIRouter(prefix="/admin/etablissements", dependencies=[Depends(requires(Role.IT_ADMIN))],
                   include_in_schema=False)


@router.get("")
def establishments(request: Request, container: ContainerDep) -> Response:
    with container.session_factory() as s:
        rows = service.list_establishments(s)
    return render(request, "sites/establishments.html", {"establishments": rows})


@router.get("/{code}")
def establishment(request: Request, code: str, container: ContainerDep) -> Response:
    with container.session_factory() as s:
        est = service.get_establishment(s, code)
        units = service.list_units(s, code)
    return render(request, "sites/establishment.html", {"establishment": est, "units": units})


@router.post("/{code}/deploiement")
def change_rollout(request: Request, code: str, container: ContainerDep, actor: ActorDep,
                   state: Annotated[str, Form(max_length=20)],
                   reason: Annotated[str, Form(max_length=1000)] = "") -> Response:
    try:
        service.change_rollout(container.uow(), actor, code, state, reason)
    except RolloutTransitionRefused:
        with container.session_factory() as s:
            est = service.get_establishment(s, code)
            units = service.list_units(s, code)
        error = i18n._("This change is not allowed: an establishment goes from not started to sandbox, "
                       "then live; taking a live establishment back needs a reason.")
        return render(request, "sites/establishment.html",
                      {"establishment": est, "units": units, "error": error}, status_code=409)
    return RedirectResponse(f"/admin/etablissements/{code}", status_code=303)


@router.get("/{code}/unites/{unit_code}")
def unit(request: Request, code: str, unit_code: str, container: ContainerDep) -> Response:
    with container.session_factory() as s:
        est = service.get_establishment(s, code)
        unit = service.get_unit(s, unit_code)
        beds = service.list_beds(s, unit_code)
    if unit.establishment_code != code:
        from naho.sites.errors import UnitNotFound

        raise UnitNotFound(f"no unit {unit_code} in {code}")
    return render(request, "sites/unit.html", {"establishment": est, "unit": unit, "beds": beds})
