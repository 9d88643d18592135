"""JSON routes of secure messaging (same services, door and audit as the pages)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from naho.messaging import directory, sending, service
from naho.messaging.errors import MessagingError
from naho.messaging.pages import CARERS, DIRECTORY_READERS, SENDERS
from naho.messaging.rules import ReportUnreadable
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.errors import DomainError
from naho.platform.security.policy import requires
from naho.platform.security.rules import Role

router = APIRouter(prefix="/api", tags=["messaging"])
#: The mail gateway that receives the group mailbox's delivery and read reports.
REPORTERS = requires(Role.INTERFACE)
MAX_REPORT_BYTES = 2 * 1024 * 1024


class LetterCreate(BaseModel):
    document_id: uuid.UUID
    professional_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)
    #: Also to the patient's own secure mailbox (a qualified INS is needed).
    to_patient: bool = False


class ReportRefused(DomainError):
    """The body is not a delivery status or disposition notification naho can read."""


@router.get("/annuaire", dependencies=[Depends(DIRECTORY_READERS)])
def search_directory(container: ContainerDep, q: Annotated[str, Query(min_length=2, max_length=100)]) -> dict[str, Any]:
    with container.session_factory() as s:
        found = directory.search(s, q)
    return {"query": q, "professionals": [p.as_json() for p in found]}


@router.get("/patients/{patient_id}/letters", dependencies=[Depends(CARERS)])
def letters(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> dict[str, Any]:
    view = service.view_patient_messaging(container.uow(), actor, patient_id, container.ports["care"])
    return {"letters": [letter.as_json() for letter in view.letters]}


@router.post("/patients/{patient_id}/letters", status_code=202, dependencies=[Depends(SENDERS)])
def send_letter(patient_id: uuid.UUID, data: LetterCreate, container: ContainerDep, actor: ActorDep) -> dict[str, Any]:
    letter_id = sending.send_document(container.uow, actor, patient_id, data.document_id, data.professional_ids,
                                      container.ports["care"], container.ports.get("messaging"),
                                      to_patient=data.to_patient)
    return {"id": str(letter_id), "status": "queued"}


@router.post("/messaging/reports", dependencies=[Depends(REPORTERS)])
async def delivery_report(request: Request, container: ContainerDep) -> dict[str, Any]:
    """A DSN (RFC 3464) or MDN (RFC 8098) as received, raw (message/rfc822)."""
    raw = await request.body()
    if len(raw) > MAX_REPORT_BYTES:
        raise ReportRefused("the report is too large", rule="ReportTooLarge")
    try:
        letter_id = sending.apply_report(container.uow(), raw, container.ports.get("messaging"))
    except (ReportUnreadable, MessagingError, ValueError) as exc:
        raise ReportRefused(f"not a readable delivery report: {exc}", rule="ReportUnreadable") from exc
    return {"letter_id": str(letter_id) if letter_id else None}
