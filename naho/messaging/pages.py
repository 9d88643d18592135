"""Pages of secure messaging: the directory, and the patient's correspondents and letters.
Thin: the services decide (the one door, consent, the rules) and audit."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from naho.messaging import consent, correspondents, directory, rules, sending, service
from naho.platform import i18n
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.errors import DomainError
from naho.platform.security.policy import requires
from naho.platform.security.rules import Role
from naho.web.templating import render

router = APIRouter(include_in_schema=False)
#: The national directory is public data: any professional of the hospital may search it.
DIRECTORY_READERS = requires(Role.PHYSICIAN, Role.NURSE, Role.PHARMACIST, Role.ADMISSION_CLERK)
#: The patient's page; the door then wants them in the care team.
CARERS = requires(Role.PHYSICIAN, Role.NURSE)
#: Sending a document of the chart outside the hospital is a physician's decision.
SENDERS = requires(Role.PHYSICIAN)
#: Who loads a new extract of the national directory.
IMPORTERS = requires(Role.IT_ADMIN)
#: The national extract is some 100 MB for France; a département's share is far less.
MAX_EXTRACT_BYTES = 200 * 1024 * 1024

STATUS_LABELS = {
    "queued": i18n.N_("Queued"),
    "sent": i18n.N_("Sent"),
    "delivered": i18n.N_("Delivered"),
    "read": i18n.N_("Read"),
    "failed": i18n.N_("Failed"),
}
#: The consent registry's purposes and how a word was given, as staff read them.
CONSENT_LABELS = {
    consent.COMMUNITY_PROFESSIONALS: i18n.N_("Sharing with community professionals"),
    consent.GROUP_ESTABLISHMENTS: i18n.N_("Sharing between the group's establishments, outside the care team"),
    consent.RESEARCH: i18n.N_("Reuse of the data for research"),
}
CONSENT_SOURCES = {
    consent.PATIENT: i18n.N_("the patient, on the portal"),
    consent.PARENT: i18n.N_("a parent, on the portal"),
    consent.STAFF: i18n.N_("staff, on the patient's word"),
}
ROLE_LABELS = {"gp": i18n.N_("General practitioner (médecin traitant)"), "other": i18n.N_("Other correspondent")}
#: Why an action was refused, by rule name, shown translated.
REFUSALS = {
    "SharingObjected": i18n.N_("The patient objected to sharing their data with community professionals: "
                               "nothing was sent."),
    "NoSecureMailbox": i18n.N_("A recipient has no secure mailbox or no known certificate: nothing was sent."),
    "NotACorrespondent": i18n.N_("Choose recipients among the patient's correspondents."),
    "NoRecipient": i18n.N_("Choose at least one recipient."),
    "SealRefused": i18n.N_("The letter could not be sealed for these recipients: nothing was sent."),
    "MessagingNotConfigured": i18n.N_("Secure messaging is not configured: nothing was sent."),
    "PatientMailboxRefused": i18n.N_("The patient's identity is not qualified: their INS, and so their own secure "
                                     "mailbox, cannot be used. Nothing was sent."),
    "NoPatientMailService": i18n.N_("The patients' secure mail service is not configured: nothing was sent."),
    "LetterDocumentNotFound": i18n.N_("Choose a document of the patient's chart."),
    "AlreadyCorrespondent": i18n.N_("This professional is already a correspondent of the patient."),
    "UnknownCorrespondentRole": i18n.N_("Choose the GP or another correspondent."),
    "CorrespondentNotFound": i18n.N_("This correspondent is no longer attached."),
    "ProfessionalNotFound": i18n.N_("Choose a professional found in the directory."),
}
def patient_mailbox_of(container: ContainerDep, patient: Any) -> str | None:
    """The patient's own secure mailbox when a letter can go there (qualified INS, the patients'
    mail service configured), else None: the send form then offers no such recipient."""
    config = container.ports.get("messaging")
    if config is None or config.patient_certificate is None:
        return None
    try:
        return rules.patient_mailbox(patient.ins, patient.status, doubtful=patient.doubtful,
                                     fictitious=patient.fictitious, domain=config.patient_domain)
    except rules.PatientMailboxRefused:
        return None


def _page(patient_id: uuid.UUID, error: str | None = None, notice: str | None = None) -> Response:
    query = f"?erreur={error}" if error else ("?envoye=1" if notice else "")
    return RedirectResponse(f"/patients/{patient_id}/correspondants{query}", status_code=303)


def _refused(patient_id: uuid.UUID, exc: DomainError) -> Response:
    return _page(patient_id, str(exc.extra.get("rule", "")) or "refused")


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.UUID(int=0)  # nothing has this id: the service answers after the door


@router.get("/annuaire", dependencies=[Depends(DIRECTORY_READERS)])
def directory_page(request: Request, container: ContainerDep,
                   q: Annotated[str, Query(max_length=100)] = "") -> Response:
    with container.session_factory() as s:
        found = directory.search(s, q) if q else []
    return render(request, "messaging/directory.html", {"found": found, "search": q})


@router.get("/admin/annuaire", dependencies=[Depends(IMPORTERS)])
def import_page(request: Request) -> Response:
    return render(request, "messaging/import.html", {"counts": None, "problems": None})


@router.post("/admin/annuaire", dependencies=[Depends(IMPORTERS)])
async def import_extract(request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    """Load an extract (PS_LibreAcces_Personne_activite, see docs/messaging.md): all or nothing."""
    async with request.form() as form:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return render(request, "messaging/import.html", {"counts": None, "problems": [
                {"line": 0, "reason": i18n._("Choose the extract file.")}]}, status_code=422)
        data = await upload.read(MAX_EXTRACT_BYTES + 1)
        source = upload.filename or "extract"
    try:
        if len(data) > MAX_EXTRACT_BYTES:
            raise directory.DirectoryImportRefused("too large", problems=[{"line": 0, "reason": "file too large"}])
        text = data.decode("utf-8-sig")
        counts = directory.import_extract(container.uow(), actor, text.splitlines(keepends=True), source=source)
    except UnicodeDecodeError:
        return render(request, "messaging/import.html", {"counts": None, "problems": [
            {"line": 0, "reason": i18n._("The file is not UTF-8 text.")}]}, status_code=422)
    except directory.DirectoryImportRefused as exc:
        return render(request, "messaging/import.html", {"counts": None, "problems": exc.extra["problems"]},
                      status_code=422)
    return render(request, "messaging/import.html", {"counts": counts, "problems": None})


@router.get("/patients/{patient_id}/correspondants", dependencies=[Depends(CARERS)])
def patient_page(request: Request, patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                 q: Annotated[str, Query(max_length=100)] = "", erreur: str | None = None,
                 envoye: str | None = None) -> Response:
    view = service.view_patient_messaging(container.uow(), actor, patient_id, container.ports["care"], search=q)
    consents = consent.view(container.uow(), actor, patient_id, container.ports["care"])
    error = (i18n._(REFUSALS[erreur]) if erreur in REFUSALS
             else i18n._("The action was refused.") if erreur else None)
    return render(request, "messaging/patient.html", {
        "view": view, "consents": consents, "consent_labels": CONSENT_LABELS, "consent_sources": CONSENT_SOURCES,
        "consent_history": sorted((e for c in consents for e in c.history), key=lambda e: e.recorded_at, reverse=True),
        "error": error, "sent_notice": bool(envoye), "roles": ROLE_LABELS, "statuses": STATUS_LABELS,
        "can_send": actor.has_any(Role.PHYSICIAN), "patient_mailbox": patient_mailbox_of(container, view.patient)})


@router.post("/patients/{patient_id}/correspondants", dependencies=[Depends(CARERS)])
def attach(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
           professional_id: Annotated[str, Form(max_length=40)] = "",
           role: Annotated[str, Form(max_length=20)] = "") -> Response:
    try:
        correspondents.attach(container.uow(), actor, patient_id, _uuid(professional_id), role,
                              container.ports["care"])
    except (correspondents.AlreadyCorrespondent, correspondents.UnknownCorrespondentRole) as exc:
        return _refused(patient_id, exc)
    except directory.ProfessionalNotFound:
        return _page(patient_id, "ProfessionalNotFound")
    return _page(patient_id)


@router.post("/patients/{patient_id}/correspondants/{correspondent_id}/fin", dependencies=[Depends(CARERS)])
def end(patient_id: uuid.UUID, correspondent_id: str, container: ContainerDep, actor: ActorDep) -> Response:
    try:
        correspondents.end(container.uow(), actor, patient_id, _uuid(correspondent_id), container.ports["care"])
    except correspondents.CorrespondentNotFound as exc:
        return _refused(patient_id, exc)
    return _page(patient_id)


@router.post("/patients/{patient_id}/courriers", dependencies=[Depends(SENDERS)])
async def send(patient_id: uuid.UUID, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    async with request.form() as form:
        document_id = _uuid(str(form.get("document_id") or ""))
        recipients = [_uuid(str(value)) for value in form.getlist("professional_id")][:20]
        to_patient = form.get("to_patient") == "oui"
    try:
        sending.send_document(container.uow, actor, patient_id, document_id, recipients, container.ports["care"],
                              container.ports.get("messaging"), to_patient=to_patient)
    except (sending.SharingObjected, sending.RecipientUnreachable, sending.MessagingNotConfigured,
            sending.LetterDocumentNotFound) as exc:
        return _refused(patient_id, exc)
    return _page(patient_id, notice="sent")


@router.post("/patients/{patient_id}/opposition", dependencies=[Depends(CARERS)])
def objection(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
              objects: Annotated[str, Form(max_length=5)] = "",
              reason: Annotated[str, Form(max_length=1000)] = "",
              purpose: Annotated[str, Form(max_length=40)] = consent.COMMUNITY_PROFESSIONALS) -> Response:
    """The patient's word on one purpose of the consent registry, recorded by the care team."""
    consent.record_objection(container.uow(), actor, patient_id, objects=objects == "oui", reason=reason,
                             port=container.ports["care"], purpose=purpose)
    return _page(patient_id)
