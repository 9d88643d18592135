"""IT-admin page listing the staff of the group."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from naho.platform.deps import ContainerDep
from naho.platform.security.policy import requires
from naho.platform.security.rules import Role
from naho.sites import service as sites
from naho.staff import service
from naho.web.templating import render

router = APIRouter(prefix="/admin/personnel", dependencies=[Depends(requires(Role.IT_ADMIN))],
                   include_in_schema=False)
PAGE = 50


@router.get("")
def staff_list(request: Request, container: ContainerDep,
               etablissement: Annotated[str, Query(max_length=40)] = "",
               q: Annotated[str, Query(max_length=100)] = "",
               page: Annotated[int, Query(ge=1, le=10_000)] = 1) -> Response:
    with container.session_factory() as s:
        establishments = sites.establishment_choices(s)
        items, total = service.list_staff(s, establishment_code=etablissement or None, search=q or None,
                                          limit=PAGE, offset=(page - 1) * PAGE)
    return render(request, "staff/list.html", {
        "items": items, "total": total, "page": page, "pages": max(1, -(-total // PAGE)),
        "establishments": establishments, "establishment": etablissement, "query": q,
    })
