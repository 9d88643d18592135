"""The page of received letters waiting for a person to name their patient (identity vigilance,
physicians). Thin: the service decides, goes through the door and audits."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from naho.messaging import inbound
from naho.platform import i18n
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.errors import NotFound
from naho.platform.security.policy import requires
from naho.web.templating import render

router = APIRouter(include_in_schema=False)
MATCHERS = requires(*inbound.MATCHERS)
WORKLIST = "/messagerie/a-rapprocher"


@router.get(WORKLIST, dependencies=[Depends(MATCHERS)])
def letters_to_match(request: Request, container: ContainerDep, actor: ActorDep, erreur: str | None = None) -> Response:
    letters = inbound.letters_to_match(container.uow(), actor)
    error = i18n._("No patient you may open has this IPP.") if erreur else None
    return render(request, "messaging/inbound_worklist.html", {"letters": letters, "error": error})


@router.post(WORKLIST + "/{inbound_id}", dependencies=[Depends(MATCHERS)])
def match(inbound_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
          ipp: Annotated[str, Form(max_length=20)]) -> Response:
    try:
        patient_id = inbound.match_letter(container.uow(), actor, inbound_id, ipp,
                                          config=container.ports["messaging"], port=container.ports["care"])
    except NotFound as exc:
        if isinstance(exc, inbound.InboundLetterNotFound):
            raise
        return RedirectResponse(f"{WORKLIST}?erreur=patient", status_code=303)
    return RedirectResponse(f"/patients/{patient_id}", status_code=303)
