"""Pages and JSON routes of the discharge letter (lettre de liaison) of a stay. Thin: the
services of naho.messaging.letters decide (the door, the physician, the lock) and audit."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from naho.messaging import correspondents, letters, sending
from naho.messaging import pages as messaging_pages
from naho.messaging.letter_rules import EDITABLE_SECTIONS, MAX_SECTION_CHARS, to_json
from naho.platform import i18n
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.errors import DomainError
from naho.platform.security.policy import requires
from naho.platform.security.rules import Role
from naho.web.templating import render

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["messaging"])
#: Physicians and nurses of the care team read the letter (the door checks the team).
READERS = requires(Role.PHYSICIAN, Role.NURSE)
#: Drafting, editing, signing and sending it are a physician's.
WRITERS = requires(Role.PHYSICIAN)
SECTION_LABELS = {
    "reasons": i18n.N_("Reasons for admission"),
    "procedures": i18n.N_("Procedures"),
    "synthesis": i18n.N_("Summary of the stay"),
    "follow_up": i18n.N_("Follow-up"),
}
#: Why a send was refused, by rule name (the same words as the correspondents page).
REFUSALS = {**messaging_pages.REFUSALS, "LetterNotSigned": i18n.N_("Sign the letter before sending it.")}


def _page(encounter_id: uuid.UUID, error: str | None = None) -> Response:
    query = f"?erreur={error}" if error else ""
    return RedirectResponse(f"/sejours/{encounter_id}/lettre-de-liaison{query}", status_code=303)


@router.get("/sejours/{encounter_id}/lettre-de-liaison", dependencies=[Depends(READERS)])
def letter_page(request: Request, encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                erreur: str | None = None) -> Response:
    view = letters.view_letter(container.uow(), actor, encounter_id, container.ports["care"])
    recipients = []
    if view.letter is not None and view.letter.signed:
        with container.session_factory() as s:  # the door above let the actor in
            recipients = [c for c in correspondents.current(s, view.patient.id) if c.professional.mss_address]
    error = (i18n._(REFUSALS[erreur]) if erreur in REFUSALS else i18n._("The action was refused.") if erreur
             else None)
    return render(request, "messaging/discharge_letter.html", {
        "view": view, "letter": view.letter, "error": error, "section_labels": SECTION_LABELS,
        "max_chars": MAX_SECTION_CHARS, "can_write": actor.has_any(Role.PHYSICIAN), "recipients": recipients,
        "patient_mailbox": messaging_pages.patient_mailbox_of(container, view.patient)})


@router.post("/sejours/{encounter_id}/lettre-de-liaison/brouillon", dependencies=[Depends(WRITERS)])
def draft(encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    letters.draft_letter(container.uow, actor, encounter_id, container.ports["care"])
    return _page(encounter_id)


@router.post("/sejours/{encounter_id}/lettre-de-liaison", dependencies=[Depends(WRITERS)])
def edit(encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
         reasons: Annotated[str, Form(max_length=MAX_SECTION_CHARS)] = "",
         procedures: Annotated[str, Form(max_length=MAX_SECTION_CHARS)] = "",
         synthesis: Annotated[str, Form(max_length=MAX_SECTION_CHARS)] = "",
         follow_up: Annotated[str, Form(max_length=MAX_SECTION_CHARS)] = "") -> Response:
    letters.edit_letter(container.uow(), actor, encounter_id, {
        "reasons": reasons, "procedures": procedures, "synthesis": synthesis, "follow_up": follow_up},
        container.ports["care"])
    return _page(encounter_id)


@router.post("/sejours/{encounter_id}/lettre-de-liaison/signature", dependencies=[Depends(WRITERS)])
def sign(encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    letters.sign_letter(container.uow(), actor, encounter_id, container.ports["care"],
                        institution=container.settings.messaging_institution)
    return _page(encounter_id)


@router.get("/sejours/{encounter_id}/lettre-de-liaison.pdf", dependencies=[Depends(READERS)])
def pdf(encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    name, content = letters.letter_pdf_bytes(container.uow, actor, encounter_id, container.ports["care"])
    return Response(content, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}"'})


@router.post("/sejours/{encounter_id}/lettre-de-liaison/envoi", dependencies=[Depends(WRITERS)])
def send(encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
         professional_id: Annotated[list[str] | None, Form()] = None,
         to_patient: Annotated[str, Form(max_length=5)] = "") -> Response:
    """Send the signed letter's PDF to the chosen correspondents, through the usual sending flow."""
    view = letters.view_letter(container.uow(), actor, encounter_id, container.ports["care"])
    if view.letter is None or view.letter.document_id is None:
        return _page(encounter_id, "LetterNotSigned")
    ids = []
    for value in professional_id or []:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            ids.append(uuid.UUID(int=0))  # no such professional: refused as not a correspondent
    try:
        sending.send_document(container.uow, actor, view.patient.id, view.letter.document_id, ids,
                              container.ports["care"], container.ports.get("messaging"),
                              to_patient=to_patient == "oui")
    except DomainError as exc:
        return _page(encounter_id, str(exc.extra.get("rule", "")) or "refused")
    return RedirectResponse(f"/patients/{view.patient.id}/correspondants?envoye=1", status_code=303)


# --- JSON ---------------------------------------------------------------------------------------


class LetterEdit(BaseModel):
    sections: dict[str, Annotated[str, Field(max_length=MAX_SECTION_CHARS)]] = Field(max_length=len(EDITABLE_SECTIONS))


def _json(view: letters.LetterView) -> dict[str, Any]:
    letter = view.letter
    if letter is None:
        return {"encounter_id": str(view.stay.id), "patient_id": str(view.patient.id), "letter": None}
    return {"encounter_id": str(view.stay.id), "patient_id": str(view.patient.id), "letter": {
        "id": str(letter.id), "status": letter.status, "content": to_json(letter.content),
        "created_by": letter.created_by, "signed_at": letter.signed_at.isoformat() if letter.signed_at else None,
        "signed_by": letter.signed_by, "document_id": str(letter.document_id) if letter.document_id else None,
        "structured_media_type": letter.structured_media_type}}


@api.get("/encounters/{encounter_id}/discharge-letter", dependencies=[Depends(READERS)])
def get_letter(encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> dict[str, Any]:
    return _json(letters.view_letter(container.uow(), actor, encounter_id, container.ports["care"]))


@api.post("/encounters/{encounter_id}/discharge-letter", dependencies=[Depends(WRITERS)])
def draft_json(encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> dict[str, Any]:
    return _json(letters.draft_letter(container.uow, actor, encounter_id, container.ports["care"]))


@api.patch("/encounters/{encounter_id}/discharge-letter", dependencies=[Depends(WRITERS)])
def edit_json(encounter_id: uuid.UUID, data: LetterEdit, container: ContainerDep, actor: ActorDep) -> dict[str, Any]:
    return _json(letters.edit_letter(container.uow(), actor, encounter_id, data.sections, container.ports["care"]))


@api.post("/encounters/{encounter_id}/discharge-letter/signature", dependencies=[Depends(WRITERS)])
def sign_json(encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> dict[str, Any]:
    return _json(letters.sign_letter(container.uow(), actor, encounter_id, container.ports["care"],
                                     institution=container.settings.messaging_institution))


@api.get("/encounters/{encounter_id}/discharge-letter/fhir", dependencies=[Depends(READERS)])
def structured(encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    media_type, content = letters.structured_of(container.uow(), actor, encounter_id, container.ports["care"])
    return Response(content, media_type=media_type)
