"""Pages of the patient record: the patient's file (identity, stays, movements) and the unit's
bed board. Every read goes through the one door and is audited."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from naho.identity import service as identity
from naho.identity.pages import PROOF_LABELS, REFUSAL_LABELS
from naho.identity.schemas import PatientPublic
from naho.platform import access, i18n
from naho.platform.access import Purpose, reading_purpose
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.errors import DomainError
from naho.platform.security.policy import STAFF, requires
from naho.platform.security.rules import Role
from naho.record import chart, crossref, rules, service
from naho.record.errors import (
    BedAlreadyOccupied,
    EncounterNotFound,
    LocationNotFound,
    MovementRefused,
    StayMoveRefused,
)
from naho.record.schemas import (
    AdmissionCreate,
    AllergyCreate,
    ArrivalCreate,
    ClassChange,
    ConditionCreate,
    NoteCreate,
    PreAdmissionCreate,
    TransferCreate,
    VitalsCreate,
)
from naho.sites import service as sites
from naho.staff import service as staff
from naho.web.templating import render

router = APIRouter(include_in_schema=False)
ADMITTERS = requires(Role.ADMISSION_CLERK, Role.IDENTITY_VIGILANCE)
MOVERS = requires(Role.ADMISSION_CLERK, Role.NURSE, Role.PHYSICIAN)
PARIS = ZoneInfo("Europe/Paris")

MOVEMENT_LABELS = {
    "pre_admission": i18n.N_("Pre-admission"),
    "admission": i18n.N_("Admission"),
    "registration": i18n.N_("Arrival"),
    "transfer": i18n.N_("Transfer"),
    "class_to_inpatient": i18n.N_("Change to inpatient"),
    "class_to_outpatient": i18n.N_("Change to outpatient"),
    "leave_start": i18n.N_("Leave"),
    "leave_end": i18n.N_("Return from leave"),
    "discharge": i18n.N_("Discharge"),
}
CLASS_LABELS = {
    "emergency": i18n.N_("Emergency"),
    "inpatient": i18n.N_("Full hospitalisation"),
    "day_hospital": i18n.N_("Day hospital"),
    "session": i18n.N_("Sessions"),
    "outpatient": i18n.N_("Outpatient"),
}
STAY_STATUS_LABELS = {
    "planned": i18n.N_("Planned"),
    "in_progress": i18n.N_("In progress"),
    "on_leave": i18n.N_("On leave"),
    "finished": i18n.N_("Finished"),
    "cancelled": i18n.N_("Cancelled"),
}
#: Why a movement was refused, by rule name (record.rules errors), shown translated.
MOVEMENT_REFUSALS = {
    "BedAlreadyOccupied": i18n.N_("This bed is already occupied over that period."),
    "BedOutsideUnit": i18n.N_("This bed does not belong to the chosen unit."),
    "MovementInTheFuture": i18n.N_("A movement cannot be dated in the future."),
    "MovementBeforePrevious": i18n.N_("A movement cannot be dated before the previous one."),
    "TransferToSameLocation": i18n.N_("The patient is already in this unit and bed."),
    "PatientOnLeave": i18n.N_("The patient is on leave: record the return first."),
    "AlreadyOnLeave": i18n.N_("The patient is already on leave."),
    "NotOnLeave": i18n.N_("The patient is not on leave."),
    "StayAlreadyFinished": i18n.N_("This stay is finished."),
    "OnlyLastMovementCanBeCancelled": i18n.N_("Only the last movement can be cancelled."),
    "NothingToCancel": i18n.N_("There is no movement to cancel."),
    "ImplausibleMeasure": i18n.N_("A measure is outside the possible range: check the value typed."),
    "UnknownVitalSign": i18n.N_("Enter at least one measure."),
    "DocumentRefused": i18n.N_("Only PDF and text documents of at most 10 MB are accepted."),
    "EmergencyIsNeverPlanned": i18n.N_("An emergency visit cannot be pre-admitted."),
    "StayAlreadyStarted": i18n.N_("This patient has already arrived."),
    "StayNotStarted": i18n.N_("This stay is only planned: record the arrival first."),
    "StayCancelled": i18n.N_("This stay is cancelled."),
    "ClassUnchanged": i18n.N_("The stay already has this kind (same patient class)."),
    "PlannedDateRequired": i18n.N_("Give the planned date of arrival."),
    "LocationNotFound": i18n.N_("This unit does not belong to the establishment."),
    "UnknownIpp": i18n.N_("No patient has this IPP."),
    "ReasonRequired": i18n.N_("State why the stay belongs to another patient."),
    "SamePatient": i18n.N_("The stay already belongs to this patient."),
    "MergedRecord": i18n.N_("This record was merged: choose the record it was merged into."),
    "BadCode": i18n.N_("The code does not have the expected form (ICD-10 such as I21.4; substance such as ATC:J01C)."),
}
VITAL_LABELS = {
    "heart_rate": i18n.N_("Heart rate"),
    "respiratory_rate": i18n.N_("Respiratory rate"),
    "spo2": i18n.N_("SpO2"),
    "temperature": i18n.N_("Temperature"),
    "systolic_bp": i18n.N_("Systolic pressure"),
    "diastolic_bp": i18n.N_("Diastolic pressure"),
    "weight": i18n.N_("Weight"),
    "height": i18n.N_("Height"),
}
TEMPLATE_FILTERS = {
    "movement_label": lambda value: i18n._(MOVEMENT_LABELS.get(str(value), str(value))),
    "class_label": lambda value: i18n._(CLASS_LABELS.get(str(value), str(value))),
    "stay_status": lambda value: i18n._(STAY_STATUS_LABELS.get(str(value), str(value))),
    "vital_label": lambda value: i18n._(VITAL_LABELS.get(str(value), str(value))),
}


def _local(value: str | None) -> datetime | None:
    """A `datetime-local` field, read as Paris time."""
    if not value:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=PARIS)


@router.get("/patients/{patient_id}", dependencies=[Depends(STAFF)])
def patient_file(request: Request, patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                 erreur: str | None = None) -> Response:
    care = container.ports["care"]
    with container.session_factory() as s:
        survivor = identity.merged_into(s, patient_id)
    if survivor is not None:  # a merged record only redirects (its data followed the survivor)
        return RedirectResponse(f"/patients/{survivor}", status_code=303)
    purpose = reading_purpose(actor)
    patient = identity.get_patient(container.uow(), actor, patient_id, purpose, care)
    with container.session_factory() as s:
        # The door above granted this purpose: clinical content only for the care purpose.
        clinical = chart.read_chart(s, patient_id, container.clock.now()) if purpose is Purpose.CARE else None
        files = chart.documents(s, patient_id) if purpose is Purpose.CARE else []
        stays = service.stays_of(s, patient_id)
        history = identity.history(s, patient_id)
        foreign_ids = crossref.identifiers_of_patient(s, patient_id)
        establishments = sites.establishment_choices(s)
        units = {e.code: sites.unit_choices(s, e.code) for e in establishments}
    current = next((st for st in stays if st.status in ("in_progress", "on_leave")), None)
    planned = [st for st in stays if st.status == "planned"]
    labels = {**REFUSAL_LABELS, **MOVEMENT_REFUSALS}
    error = i18n._(labels[erreur]) if erreur in labels else (i18n._("The action was refused.") if erreur else None)
    return render(request, "record/patient.html", {
        "patient": patient, "stays": stays, "current": current, "planned": planned, "history": history,
        "chart": clinical, "foreign_ids": foreign_ids,
        "documents": files,
        "can_write_chart": actor.has_any(Role.NURSE, Role.PHYSICIAN),
        "can_diagnose": actor.has_any(Role.PHYSICIAN),
        "establishments": establishments, "units": units, "proofs": PROOF_LABELS, "error": error,
        "can_admit": actor.has_any(Role.ADMISSION_CLERK, Role.IDENTITY_VIGILANCE),
        "can_move": actor.has_any(Role.ADMISSION_CLERK, Role.NURSE, Role.PHYSICIAN),
        "can_identify": actor.has_any(Role.ADMISSION_CLERK, Role.IDENTITY_VIGILANCE),
    })


def _after(patient_id: uuid.UUID, exc: DomainError | None = None) -> Response:
    if exc is None:
        return RedirectResponse(f"/patients/{patient_id}", status_code=303)
    code = ("BedAlreadyOccupied" if isinstance(exc, BedAlreadyOccupied) else "LocationNotFound"
            if isinstance(exc, LocationNotFound) else str(exc.extra.get("rule", "movement")))
    return RedirectResponse(f"/patients/{patient_id}?erreur={code}", status_code=303)


def _patient_of(container: ContainerDep, encounter_id: uuid.UUID) -> uuid.UUID:
    with container.session_factory() as s:
        return service.get_encounter(s, encounter_id).patient_id


@router.post("/patients/{patient_id}/admission", dependencies=[Depends(ADMITTERS)])
def admit(patient_id: uuid.UUID, request: Request, container: ContainerDep, actor: ActorDep,
          establishment: Annotated[str, Form(max_length=40)], unit: Annotated[str, Form(max_length=40)],
          encounter_class: Annotated[str, Form(max_length=20)], bed: Annotated[str, Form(max_length=80)] = "",
          at: Annotated[str, Form(max_length=20)] = "") -> Response:
    data = AdmissionCreate(patient_id=patient_id, establishment_code=establishment, unit_code=unit,
                           encounter_class=encounter_class, bed_code=bed or None, at=_local(at))
    try:
        service.admit_patient(container.uow(), actor, data)
    except (MovementRefused, BedAlreadyOccupied, LocationNotFound) as exc:
        return _after(patient_id, exc)
    return _after(patient_id)


@router.post("/sejours/{encounter_id}/mutation", dependencies=[Depends(MOVERS)])
def transfer(encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
             unit: Annotated[str, Form(max_length=40)], bed: Annotated[str, Form(max_length=80)] = "",
             at: Annotated[str, Form(max_length=20)] = "") -> Response:
    try:
        stay = service.transfer_patient(container.uow(), actor, encounter_id,
                                        TransferCreate(unit_code=unit, bed_code=bed or None, at=_local(at)))
    except (MovementRefused, BedAlreadyOccupied, LocationNotFound) as exc:
        return _after(_patient_of(container, encounter_id), exc)
    return _after(stay.patient_id)


@router.post("/patients/{patient_id}/preadmission", dependencies=[Depends(ADMITTERS)])
def pre_admit(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
              establishment: Annotated[str, Form(max_length=40)], unit: Annotated[str, Form(max_length=40)],
              encounter_class: Annotated[str, Form(max_length=20)],
              planned_at: Annotated[str, Form(max_length=20)] = "",
              bed: Annotated[str, Form(max_length=80)] = "") -> Response:
    try:
        planned = _local(planned_at)
    except ValueError:
        planned = None
    if planned is None:
        return RedirectResponse(f"/patients/{patient_id}?erreur=PlannedDateRequired", status_code=303)
    data = PreAdmissionCreate(patient_id=patient_id, establishment_code=establishment, unit_code=unit,
                              encounter_class=encounter_class if encounter_class in CLASS_LABELS else "inpatient",
                              bed_code=bed or None, planned_at=planned)
    try:
        service.pre_admit_patient(container.uow(), actor, data)
    except (MovementRefused, LocationNotFound) as exc:
        return _after(patient_id, exc)
    return _after(patient_id)


@router.post("/sejours/{encounter_id}/arrivee", dependencies=[Depends(ADMITTERS)])
def arrival(encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
            bed: Annotated[str, Form(max_length=80)] = "", at: Annotated[str, Form(max_length=20)] = "") -> Response:
    try:
        stay = service.admit_planned_patient(container.uow(), actor, encounter_id,
                                             ArrivalCreate(bed_code=bed or None, at=_local(at)))
    except (MovementRefused, BedAlreadyOccupied, LocationNotFound) as exc:
        return _after(_patient_of(container, encounter_id), exc)
    return _after(stay.patient_id)


@router.post("/sejours/{encounter_id}/annulation-preadmission", dependencies=[Depends(ADMITTERS)])
def cancel_pre_admission(encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    try:
        stay = service.cancel_pre_admission(container.uow(), actor, encounter_id)
    except MovementRefused as exc:
        return _after(_patient_of(container, encounter_id), exc)
    return _after(stay.patient_id)


@router.post("/sejours/{encounter_id}/bascule", dependencies=[Depends(MOVERS)])
def change_class(encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                 encounter_class: Annotated[str, Form(max_length=20)], unit: Annotated[str, Form(max_length=40)] = "",
                 bed: Annotated[str, Form(max_length=80)] = "") -> Response:
    if encounter_class not in CLASS_LABELS:
        return _after(_patient_of(container, encounter_id), MovementRefused("unknown class", rule="ClassUnchanged"))
    data = ClassChange(encounter_class=encounter_class, unit_code=unit or None, bed_code=bed or None)
    try:
        stay = service.change_encounter_class(container.uow(), actor, encounter_id, data)
    except (MovementRefused, BedAlreadyOccupied, LocationNotFound) as exc:
        return _after(_patient_of(container, encounter_id), exc)
    return _after(stay.patient_id)


@router.post("/sejours/{encounter_id}/reattribution", dependencies=[Depends(ADMITTERS)])
def move_stay(encounter_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
              ipp: Annotated[str, Form(max_length=20)] = "",
              reason: Annotated[str, Form(max_length=1000)] = "") -> Response:
    """A44: the stay was opened on the wrong patient; it goes to the patient of this IPP."""
    source = _patient_of(container, encounter_id)
    with container.session_factory() as s:
        target = identity.id_by_ipp(s, ipp) if ipp.strip().isdigit() else None
    if target is None:
        return RedirectResponse(f"/patients/{source}?erreur=UnknownIpp", status_code=303)
    try:
        stay = service.move_stay(container.uow(), actor, encounter_id, target, reason)
    except StayMoveRefused as exc:
        return _after(source, exc)
    return _after(stay.patient_id)


@router.post("/sejours/{encounter_id}/{action}", dependencies=[Depends(MOVERS)])
def movement(encounter_id: uuid.UUID, action: str, container: ContainerDep, actor: ActorDep,
             at: Annotated[str, Form(max_length=20)] = "", kind: Annotated[str, Form(max_length=30)] = "") -> Response:
    actions = {
        "sortie": lambda uow: service.discharge_patient(uow, actor, encounter_id, _local(at)),
        "permission": lambda uow: service.start_leave(uow, actor, encounter_id, _local(at)),
        "retour": lambda uow: service.end_leave(uow, actor, encounter_id, _local(at)),
        "annulation": lambda uow: service.cancel_last_movement(uow, actor, encounter_id, kind),
    }
    if action not in actions:
        raise EncounterNotFound("no such action")
    try:
        stay = actions[action](container.uow())
    except (MovementRefused, BedAlreadyOccupied) as exc:
        return _after(_patient_of(container, encounter_id), exc)
    return _after(stay.patient_id)


@router.get("/unites/{unit_code}/lits", dependencies=[Depends(STAFF)])
def bed_board(request: Request, unit_code: str, container: ContainerDep, actor: ActorDep) -> Response:
    board = service.view_bed_board(container.uow(), actor, unit_code)
    return render(request, "record/bedboard.html", {"board": board, "now": container.clock.now()})


CLINICIANS = requires(Role.PHYSICIAN, Role.NURSE, Role.PHARMACIST)
CARERS = requires(Role.PHYSICIAN, Role.NURSE)
PHYSICIANS = requires(Role.PHYSICIAN)


def _chart_entry(patient_id: uuid.UUID, write) -> Response:  # type: ignore[no-untyped-def]
    try:
        write()
    except chart.ChartEntryRefused as exc:
        return RedirectResponse(f"/patients/{patient_id}?erreur={exc.extra.get('rule', 'chart')}", status_code=303)
    return RedirectResponse(f"/patients/{patient_id}", status_code=303)


@router.post("/patients/{patient_id}/allergies", dependencies=[Depends(CARERS)])
def allergy(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
            substance_code: Annotated[str, Form(max_length=60)], substance_label: Annotated[str, Form(max_length=200)],
            criticality: Annotated[str, Form(max_length=10)] = "unknown",
            reaction: Annotated[str, Form(max_length=300)] = "") -> Response:
    data = AllergyCreate(substance_code=substance_code, substance_label=substance_label, criticality=criticality,
                         reaction=reaction or None)
    return _chart_entry(patient_id, lambda: chart.add_allergy(container.uow(), actor, patient_id, data,
                                                              container.ports["care"]))


@router.post("/patients/{patient_id}/problemes", dependencies=[Depends(PHYSICIANS)])
def condition(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
              icd10: Annotated[str, Form(max_length=10)], label: Annotated[str, Form(max_length=300)]) -> Response:
    data = ConditionCreate(icd10=icd10, label=label)
    return _chart_entry(patient_id, lambda: chart.add_condition(container.uow(), actor, patient_id, data,
                                                                container.ports["care"]))


@router.post("/patients/{patient_id}/constantes", dependencies=[Depends(CARERS)])
async def vitals(patient_id: uuid.UUID, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    form = await request.form()
    values = {}
    for key in ("heart_rate", "respiratory_rate", "spo2", "temperature", "systolic_bp", "diastolic_bp",
                "weight", "height"):
        raw = str(form.get(key) or "").strip().replace(",", ".")
        if raw:
            try:
                values[key] = float(raw)
            except ValueError:
                return RedirectResponse(f"/patients/{patient_id}?erreur=ImplausibleMeasure", status_code=303)
    data = VitalsCreate(**values)
    return _chart_entry(patient_id, lambda: chart.record_vitals(container.uow(), actor, patient_id, data,
                                                                container.ports["care"]))


@router.post("/patients/{patient_id}/documents", dependencies=[Depends(CARERS)])
async def document(patient_id: uuid.UUID, request: Request, container: ContainerDep, actor: ActorDep) -> Response:
    async with request.form() as form:  # closes the uploaded file's spool at the end
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return RedirectResponse(f"/patients/{patient_id}?erreur=DocumentRefused", status_code=303)
        content = await upload.read(rules.MAX_DOCUMENT_BYTES + 1)
        title = str(form.get("title") or upload.filename or "Document")
    return _chart_entry(patient_id, lambda: chart.add_document(container.uow(), actor, patient_id, title, content,
                                                               container.ports["care"]))


@router.get("/documents/{document_id}", dependencies=[Depends(CLINICIANS)])
def download(document_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    meta, content = chart.open_document(container.uow(), actor, document_id, container.ports["care"])
    ascii_name = "".join(c for c in meta.title if c.isascii() and (c.isalnum() or c in " ._-"))[:80] or "document"
    disposition = f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(meta.title[:80])}"  # RFC 6266
    return Response(content, media_type=meta.media_type, headers={
        "Content-Disposition": disposition, "Cache-Control": "no-store",
        "Content-Security-Policy": "sandbox; default-src 'none'"})


@router.post("/patients/{patient_id}/notes", dependencies=[Depends(CARERS)])
def note(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
         text: Annotated[str, Form(max_length=20_000)],
         kind: Annotated[str, Form(max_length=20)] = "medical") -> Response:
    data = NoteCreate(kind=kind if kind in ("medical", "nursing", "other") else "other", text=text)
    return _chart_entry(patient_id, lambda: chart.add_note(container.uow(), actor, patient_id, data,
                                                           container.ports["care"]))
REVIEWERS = requires(Role.MEDICAL_INFORMATION)


@router.get("/bris-de-glace", dependencies=[Depends(CLINICIANS)])
def break_glass_form(request: Request, ipp: str = "") -> Response:
    return render(request, "record/break_glass.html", {"ipp": ipp})


@router.post("/bris-de-glace", dependencies=[Depends(CLINICIANS)])
def break_glass(request: Request, container: ContainerDep, actor: ActorDep,
                ipp: Annotated[str, Form(max_length=20)], reason: Annotated[str, Form(max_length=1000)]) -> Response:
    """Emergency access outside the care team: a reason, four hours, reviewed by the DIM."""
    with container.uow() as uow:
        patient_id = identity.id_by_ipp(uow.session, ipp)
        error = None
        if patient_id is None:
            error = i18n._("No patient has this IPP.")
        else:
            try:
                access.break_the_glass(uow.session, actor, patient_id, reason, now=uow.clock.now(),
                                       port=container.ports["care"])
                uow.commit()
            except access.BreakTheGlassRefused as exc:
                uow.commit()  # the refusal stays in the audit trail
                error = (i18n._("The patient objected to sharing their record with the establishments of the group "
                                "that did not treat them: no emergency access from yours.")
                         if exc.extra.get("rule") == "SharingObjected"
                         else i18n._("State the reason for this emergency access (at least ten characters)."))
    if error:
        return render(request, "record/break_glass.html", {"ipp": ipp, "error": error}, status_code=422)
    return RedirectResponse(f"/patients/{patient_id}", status_code=303)


@router.get("/bris-de-glace/revue", dependencies=[Depends(REVIEWERS)])
def break_glass_review(request: Request, container: ContainerDep) -> Response:
    with container.session_factory() as s:
        rows = access.break_the_glass_to_review(s)
        people = identity.summaries(s, [r.patient_id for r in rows])
    return render(request, "record/break_glass_review.html", {"rows": rows, "people": people})


@router.post("/bris-de-glace/revue/{grant_id}", dependencies=[Depends(REVIEWERS)])
def review(grant_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
           note: Annotated[str, Form(max_length=1000)] = "") -> Response:
    with container.uow() as uow:
        access.review_break_the_glass(uow.session, actor, grant_id, note, now=uow.clock.now())
        uow.commit()
    return RedirectResponse("/bris-de-glace/revue", status_code=303)


_DAY = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")


def _search_patients(container: ContainerDep, actor: ActorDep, query: str) -> list[PatientPublic]:
    """The patients the shell's search box names: an NDA (the stay's patient), or IPP, INS, name,
    with a birth date written dd/mm/yyyy among the words (alone: everyone born that day)."""
    if service.NDA_PATTERN.match(query):
        with container.session_factory() as s:
            stay = service.stay_by_nda(s, query)
        among = [stay[1]] if stay else []
        return identity.search_patients(container.uow(), actor, query, container.ports["care"], among=among,
                                        limit=20)
    born = None
    words = []
    for word in query.split():
        day = _DAY.match(word)
        if day and born is None:
            try:
                born = date(int(day[3]), int(day[2]), int(day[1]))
                continue
            except ValueError:
                pass  # not a date: searched as a word
        words.append(word)
    return identity.search_patients(container.uow(), actor, " ".join(words), container.ports["care"],
                                    birth_date=born, limit=20)


@router.get("/recherche", dependencies=[Depends(STAFF)])
def search(request: Request, container: ContainerDep, actor: ActorDep,
           q: Annotated[str, Query(max_length=100)] = "") -> Response:
    """The shell's search box: patients (only those this person may see), units, colleagues."""
    query = q.strip()
    found_units, found_staff, found_patients = [], [], []
    if query:
        found_patients = _search_patients(container, actor, query)
        with container.session_factory() as s:
            needle = query.lower()
            for e in sites.establishment_choices(s):
                found_units += [u for u in sites.list_units(s, e.code)
                                if needle in u.name.lower() or needle in u.code.lower()]
            found_staff, _total = staff.list_staff(s, search=query, limit=50)
    return render(request, "staff/search.html", {"query": query, "units": found_units[:50],
                                                  "staff": found_staff, "patients": found_patients})
