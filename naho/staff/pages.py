"""The staff workspace (home, search, account) and the IT-admin staff directory."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from naho.platform import i18n, outbox
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.errors import DomainError
from naho.platform.security import passwords
from naho.platform.security import service as security
from naho.platform.security.policy import STAFF, requires
from naho.platform.security.rules import Role
from naho.sites import service as sites
from naho.sites.errors import UnitNotFound
from naho.staff import service
from naho.web.pages import safe_next
from naho.web.templating import render

workspace = APIRouter(include_in_schema=False)

router = APIRouter(prefix="/admin/personnel", dependencies=[Depends(requires(Role.IT_ADMIN))],
                   include_in_schema=False)
PAGE = 50


@router.get("")
def staff_list(request: Request, container: ContainerDep, actor: ActorDep,
               etablissement: Annotated[str, Query(max_length=40)] = "",
               q: Annotated[str, Query(max_length=100)] = "",
               page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    with container.session_factory() as s:
        establishments = sites.establishment_choices(s)
    items, total = service.browse_staff(container.uow(), actor, establishment_code=etablissement or None,
                                        search=q or None, limit=PAGE, offset=(page - 1) * PAGE)
    return render(request, "staff/list.html", {
        "items": items, "total": total, "page": page, "pages": max(1, -(-total // PAGE)),
        "establishments": establishments, "establishment": etablissement, "query": q,
    })


@workspace.get("/accueil", dependencies=[Depends(STAFF)], include_in_schema=False)
def home(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    shell = container.ports["shell"](request, actor)
    with container.session_factory() as s:
        units = sites.list_units(s, shell.current.code)
        member = service.staff_of_account(s, actor.account_id)
    return render(request, "staff/home.html", {
        "units": units, "now": container.clock.now(),
        "my_units": member.assignments if member else [],
    })


@workspace.post("/contexte", dependencies=[Depends(STAFF)], include_in_schema=False)
def switch_context(
    container: ContainerDep, actor: ActorDep,
    establishment: Annotated[str, Form(max_length=40)],
    unit: Annotated[str, Form(max_length=40)] = "",
    suivant: Annotated[str, Form()] = "/accueil",
) -> Response:
    """Change the establishment (the unit then defaults to the person's own there) or the unit."""
    with container.session_factory() as s:
        sites.get_establishment(s, establishment)  # 404 for an unknown code
        if unit and unit not in {u.code for u in sites.unit_choices(s, establishment)}:
            raise UnitNotFound(f"no unit {unit} in {establishment}")
    security.set_work_context(container.uow(), actor, establishment, unit or None)
    return RedirectResponse(safe_next(suivant), status_code=303)


@workspace.get("/compte", dependencies=[Depends(STAFF)], include_in_schema=False)
def account(request: Request, container: ContainerDep, actor: ActorDep, totp: int = 0) -> Response:
    with container.session_factory() as s:
        member = service.staff_of_account(s, actor.account_id)
        totp_enabled = security.has_second_factor(s, actor.account_id)
    context: dict[str, object] = {"staff": member, "totp_enabled": totp_enabled}
    if totp and not context["totp_enabled"]:
        secret = passwords.new_totp_secret()
        context.update(pending_secret=secret, pending_uri=passwords.totp_uri(secret, actor.username))
    return render(request, "staff/account.html", context)


@workspace.post("/compte/totp", dependencies=[Depends(STAFF)], include_in_schema=False)
def enable_totp(request: Request, container: ContainerDep, actor: ActorDep,
                secret: Annotated[str, Form(max_length=64)], code: Annotated[str, Form(max_length=12)]) -> Response:
    try:
        security.enable_totp(container.uow(), actor, secret=secret, code=code)
    except DomainError:
        context = {"error": i18n._("Wrong code: the second factor was not enabled."), "pending_secret": secret,
                   "pending_uri": passwords.totp_uri(secret, actor.username)}
        return render(request, "staff/account.html", context, status_code=422)
    return RedirectResponse("/compte", status_code=303)


@workspace.get("/admin", dependencies=[Depends(requires(Role.IT_ADMIN))])
def overview(request: Request, container: ContainerDep) -> Response:
    with container.session_factory() as s:
        context = {
            "establishments": sites.list_establishments(s),
            "staff_count": service.count_staff(s),
            "outbox": outbox.counts(s),
        }
    return render(request, "staff/admin.html", context)
