"""Pages of the patient index: search, registration with duplicate check, identity actions,
and the identity-vigilance worklist."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from naho.identity import service
from naho.identity.errors import (
    IdentityTransitionRefused,
    InsAlreadyAssigned,
    InsNotRetrieved,
    InvalidIdentity,
    MergeRefused,
    PossibleDuplicates,
    StrictTraitsLocked,
)
from naho.identity.schemas import PatientCreate, TraitsUpdate
from naho.platform import i18n
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.security.policy import STAFF, requires
from naho.platform.security.rules import Role
from naho.web.templating import render

router = APIRouter(include_in_schema=False)
REGISTRARS = requires(Role.ADMISSION_CLERK, Role.IDENTITY_VIGILANCE)
VIGILANCE = requires(Role.IDENTITY_VIGILANCE)

#: Identification devices offered on the validation form, high trust first (RNIV §3.3.2).
PROOF_LABELS = {
    "national_id_card": i18n.N_("National identity card"),
    "passport": i18n.N_("Passport"),
    "residence_permit": i18n.N_("Residence permit"),
    "eidas_electronic_id": i18n.N_("Electronic identity (eIDAS)"),
    "minor_birth_record_with_parent_id": i18n.N_("Minor: birth record with a parent's identity document"),
    "family_record_book": i18n.N_("Family record book"),
    "birth_certificate": i18n.N_("Birth certificate"),
    "vitale_card": i18n.N_("Vitale card"),
    "driving_licence": i18n.N_("Driving licence"),
}


@router.get("/patients", dependencies=[Depends(STAFF)])
def search(request: Request, container: ContainerDep, actor: ActorDep,
           q: Annotated[str, Query(max_length=100)] = "", naissance: str = "") -> Response:
    birth_date = None
    if naissance:
        try:
            birth_date = date.fromisoformat(naissance)
        except ValueError:
            birth_date = None
    results = service.search_patients(container.uow(), actor, q, container.ports["care"], birth_date=birth_date) \
        if (q.strip() or birth_date) else []
    return render(request, "identity/search.html", {
        "query": q, "birth_date": naissance, "results": results, "searched": bool(q.strip() or birth_date),
        "can_register": actor.has_any(Role.ADMISSION_CLERK, Role.IDENTITY_VIGILANCE),
    })


@router.get("/patients/nouveau", dependencies=[Depends(REGISTRARS)])
def new_form(request: Request) -> Response:
    return render(request, "identity/new.html", {"form": {}})


@router.post("/patients/nouveau", dependencies=[Depends(REGISTRARS)])
async def register(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    fields = {k: (form.get(k) or "").strip() or None for k in (
        "birth_name", "used_name", "first_names", "used_first_name", "sex", "birth_date", "birth_place",
        "phone", "email", "address", "postcode", "city")}
    try:
        data = PatientCreate(**fields)  # type: ignore[arg-type]
    except ValidationError as exc:
        wrong = sorted({str(e["loc"][0]) for e in exc.errors()})
        return render(request, "identity/new.html", {
            "form": form, "error": i18n._("Check these fields:") + " " + ", ".join(wrong), "wrong": wrong},
            status_code=422)
    try:
        patient = service.register_patient(container.uow(), actor, data,
                                           confirm_reason=form.get("confirm_reason") or None)
    except PossibleDuplicates as exc:
        return render(request, "identity/new.html", {
            "form": form, "candidates": exc.extra["candidates"],
            "error": i18n._("This person may already have a record. Open it, or confirm that it is someone else.")},
            status_code=409)
    except InvalidIdentity as exc:
        return render(request, "identity/new.html", {"form": form, "error": exc.detail}, status_code=422)
    return RedirectResponse(f"/patients/{patient.id}", status_code=303)


def _back(patient_id: uuid.UUID, message: str | None = None) -> Response:
    suffix = f"?erreur={message}" if message else ""
    return RedirectResponse(f"/patients/{patient_id}{suffix}", status_code=303)


@router.post("/patients/{patient_id}/identite/valider", dependencies=[Depends(REGISTRARS)])
def validate(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
             proof: Annotated[str, Form(max_length=60)]) -> Response:
    try:
        service.validate_identity(container.uow(), actor, patient_id, proof, container.ports["care"])
    except (IdentityTransitionRefused, InvalidIdentity) as exc:
        code = exc.extra.get("rule", "refused") if isinstance(exc, IdentityTransitionRefused) else "proof"
        return _back(patient_id, code)
    return _back(patient_id)


@router.post("/patients/{patient_id}/identite/insi", dependencies=[Depends(REGISTRARS)])
def insi(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    teleservice = container.ports.get("insi")
    if teleservice is None:
        return _back(patient_id, "insi-unavailable")
    try:
        service.retrieve_ins(container.uow(), actor, patient_id, teleservice, container.ports["care"])
    except InsNotRetrieved:
        return _back(patient_id, "insi-miss")
    except InsAlreadyAssigned:
        return _back(patient_id, "ins-taken")
    except IdentityTransitionRefused as exc:
        return _back(patient_id, str(exc.extra.get("rule", "refused")))
    return _back(patient_id)


@router.post("/patients/{patient_id}/identite/traits", dependencies=[Depends(REGISTRARS)])
async def correct(patient_id: uuid.UUID, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str) and k != "csrf_token"}
    fields = {k: (v.strip() or None) for k, v in form.items() if k in TraitsUpdate.model_fields and k != "reason"}
    try:
        data = TraitsUpdate(reason=form.get("reason", ""), **fields)  # type: ignore[arg-type]
    except ValidationError:
        return _back(patient_id, "traits")
    try:
        service.update_traits(container.uow(), actor, patient_id, data, container.ports["care"])
    except StrictTraitsLocked:
        return _back(patient_id, "StrictTraitsLocked")
    except InvalidIdentity:
        return _back(patient_id, "traits")
    return _back(patient_id)


@router.post("/patients/{patient_id}/identite/doute", dependencies=[Depends(REGISTRARS)])
def doubt(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
          reason: Annotated[str, Form(max_length=500)]) -> Response:
    try:
        service.mark_doubtful(container.uow(), actor, patient_id, reason, container.ports["care"])
    except InvalidIdentity:
        return _back(patient_id, "reason")
    return _back(patient_id)


@router.get("/identitovigilance", dependencies=[Depends(VIGILANCE)])
def worklist(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    pairs = service.duplicate_worklist(container.uow(), actor)
    return render(request, "identity/worklist.html", {"pairs": pairs})


@router.post("/identitovigilance/fusion", dependencies=[Depends(VIGILANCE)])
def merge(request: Request, container: ContainerDep, actor: ActorDep, survivor: Annotated[uuid.UUID, Form()],
          merged: Annotated[uuid.UUID, Form()], reason: Annotated[str, Form(max_length=1000)] = "",
          not_twins: Annotated[str, Form()] = "") -> Response:
    """Merge two records of one person; the survivor keeps its IPP, the other redirects to it."""
    try:
        service.merge_patients(container.uow(), actor, survivor, merged, reason, container.ports["care"],
                               container.ports["patient_movers"], twins_ruled_out=not_twins == "yes")
    except MergeRefused as exc:
        pairs = service.duplicate_worklist(container.uow(), actor)
        message = i18n._(MERGE_REFUSALS.get(str(exc.extra.get("rule", "")), MERGE_REFUSALS["default"]))
        return render(request, "identity/worklist.html", {"pairs": pairs, "error": message}, status_code=409)
    return RedirectResponse(f"/patients/{survivor}", status_code=303)


@router.get("/identitovigilance/fusions", dependencies=[Depends(VIGILANCE)])
def merge_list(request: Request, container: ContainerDep) -> Response:
    with container.session_factory() as s:
        lines = service.merges(s)
    return render(request, "identity/merges.html", {"lines": lines})


@router.post("/identitovigilance/fusions/{merge_id}/annulation", dependencies=[Depends(VIGILANCE)])
def undo(merge_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    service.undo_merge(container.uow(), actor, merge_id, container.ports["care"], container.ports["patient_movers"])
    return RedirectResponse("/identitovigilance/fusions", status_code=303)


@router.post("/identitovigilance/distincts", dependencies=[Depends(VIGILANCE)])
def distinct(container: ContainerDep, actor: ActorDep, first: Annotated[uuid.UUID, Form()],
             second: Annotated[uuid.UUID, Form()]) -> Response:
    service.declare_distinct(container.uow(), actor, first, second, container.ports["care"])
    return RedirectResponse("/identitovigilance", status_code=303)


MERGE_REFUSALS = {
    "DifferentIns": i18n.N_("These records carry two different INS: they are two different people."),
    "DeclaredDistinct": i18n.N_("These records were declared two different people (twins?)."),
    "TwinsSuspected": i18n.N_("These records may be twins: check the identity documents, then tick "
                              "\"Not twins\" to merge them."),
    "default": i18n.N_("These records cannot be merged: state the reason, and check that neither was merged already."),
}
STATUS_LABELS = {
    "provisional": i18n.N_("Provisional identity"),
    "retrieved": i18n.N_("Retrieved identity"),
    "validated": i18n.N_("Validated identity"),
    "qualified": i18n.N_("Qualified identity"),
}
#: Why an identity action was refused, by the rule's name (shown translated on the patient page).
REFUSAL_LABELS = {
    "LowTrustProofError": i18n.N_("This document is not a high-trust identification device."),
    "RestrictedIdentityError": i18n.N_("A doubtful or fictitious identity stays provisional."),
    "proof": i18n.N_("Unknown identification device."),
    "insi-miss": i18n.N_("The INSi teleservice found no identity matching these traits."),
    "insi-unavailable": i18n.N_("The INSi teleservice is not configured on this server."),
    "ins-taken": i18n.N_("This INS already belongs to another record: a probable duplicate, tell identity vigilance."),
    "reason": i18n.N_("State why the identity is doubtful."),
    "StrictTraitsLocked": i18n.N_("These traits come from the INSi teleservice: they cannot be changed by hand."),
    "traits": i18n.N_("Check the corrected traits and state the reason for the correction."),
}

#: Filters the app registers on the template environment.
TEMPLATE_FILTERS = {
    "identity_status": lambda value: i18n._(STATUS_LABELS.get(str(value), str(value))),
    "proof_label": lambda value: i18n._(PROOF_LABELS.get(str(value), str(value))),
}
