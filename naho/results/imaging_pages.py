"""Pages of imaging: the patient's studies and imaging orders, the viewer of a study (series
thumbnails, a frame at a time, window presets), the report form; the JPEG frames the pages show,
fetched from the PACS by naho; a small JSON API. Thin: the service decides and audits."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from naho.identity import service as identity
from naho.platform import i18n
from naho.platform.deps import ActorDep, Container, ContainerDep
from naho.platform.security.policy import requires
from naho.results import imaging_rules as rules
from naho.results import imaging_service as service
from naho.results.imaging_ports import PacsUnavailable
from naho.web.templating import render

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["imaging"])
VIEWERS = requires(*rules.VIEWERS)
ORDERERS = requires(*rules.ORDERERS)
REPORTERS = requires(*rules.REPORTERS)
#: Pictures are the patient's data: kept by this browser only, a short while (scrolling back
#: and forth does not fetch and audit the same frame again and again).
IMAGE_CACHE = "private, max-age=300"

URGENCY_LABELS = {
    "routine": i18n.N_("Routine"),
    "urgent": i18n.N_("Urgent"),
    "stat": i18n.N_("Immediate"),
}
STATUS_LABELS = {
    "ordered": i18n.N_("Ordered"),
    "performed": i18n.N_("Images available"),
    "reported": i18n.N_("Reported"),
    "cancelled": i18n.N_("Cancelled"),
}
MODALITY_LABELS = {
    "CR": i18n.N_("Radiography"), "DX": i18n.N_("Radiography"), "CT": i18n.N_("CT scan"), "MR": i18n.N_("MRI"),
    "US": i18n.N_("Ultrasound"), "NM": i18n.N_("Nuclear medicine"), "PT": i18n.N_("PET"),
    "MG": i18n.N_("Mammography"), "XA": i18n.N_("Angiography"),
}
ERROR_MESSAGES = {
    "UnknownModality": i18n.N_("Choose the kind of exam."),
    "BodyPartRequired": i18n.N_("Say which part of the body to image."),
    "ClinicalQuestionRequired": i18n.N_("State the clinical question (at least 5 characters)."),
    "UnknownUrgency": i18n.N_("Choose the urgency."),
    "NoCurrentStay": i18n.N_("The patient has no current stay: an imaging exam is ordered for a stay."),
    "FindingsRequired": i18n.N_("Write the findings (at least 10 characters)."),
    "ConclusionRequired": i18n.N_("Write the conclusion."),
}
WINDOW_LABELS = {
    "soft-tissue": i18n.N_("Soft tissue"), "lung": i18n.N_("Lung"), "bone": i18n.N_("Bone"),
    "brain": i18n.N_("Brain"),
}


def _parts(container: Container) -> tuple[Any, Any, service.ImagingSettings]:
    return container.ports["care"], container.ports["images"], container.ports["imaging_settings"]


def _labels() -> dict[str, object]:
    return {"urgency_labels": {k: i18n._(v) for k, v in URGENCY_LABELS.items()},
            "status_labels": {k: i18n._(v) for k, v in STATUS_LABELS.items()},
            "modality_labels": {k: i18n._(v) for k, v in MODALITY_LABELS.items()},
            "window_labels": {k: i18n._(v) for k, v in WINDOW_LABELS.items()}}


def _error(rule: str | None) -> str | None:
    return i18n._(ERROR_MESSAGES.get(rule, ERROR_MESSAGES["ClinicalQuestionRequired"])) if rule else None


def _patient(container: Container, patient_id: uuid.UUID) -> Any:
    with container.session_factory() as s:
        return identity.summaries(s, [patient_id])[patient_id]


@router.get("/patients/{patient_id}/imagerie", dependencies=[Depends(VIEWERS)])
def patient_imaging(request: Request, patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                    erreur: str | None = None) -> Response:
    care, store, settings = _parts(container)
    view = service.view_imaging(container.uow(), actor, patient_id, care, store, settings)
    return render(request, "results/imaging.html", {
        "patient": _patient(container, patient_id), "view": view, "error": _error(erreur),
        "can_order": actor.has_any(*rules.ORDERERS), "orderable": sorted(rules.MODALITIES),
        "urgencies": [str(u) for u in rules.Urgency], **_labels()})


@router.post("/patients/{patient_id}/imagerie/demandes", dependencies=[Depends(ORDERERS)])
def order(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
          modality: Annotated[str, Form(max_length=4)], body_part: Annotated[str, Form(max_length=200)],
          question: Annotated[str, Form(max_length=4000)], urgency: Annotated[str, Form(max_length=10)]) -> Response:
    care, _store, settings = _parts(container)
    try:
        service.order_exam(container.uow(), actor, patient_id, modality=modality, body_part=body_part,
                           question=question, urgency=urgency, port=care, settings=settings)
    except (rules.ImagingOrderInvalid, service.NoCurrentStay) as exc:
        rule = str(exc.extra.get("rule", "invalid"))
        return RedirectResponse(f"/patients/{patient_id}/imagerie?erreur={rule}#order-form", status_code=303)
    return RedirectResponse(f"/patients/{patient_id}/imagerie#orders", status_code=303)


@router.get("/patients/{patient_id}/imagerie/etudes/{study_uid}", dependencies=[Depends(VIEWERS)])
def study_viewer(request: Request, patient_id: uuid.UUID, study_uid: str, container: ContainerDep, actor: ActorDep,
                 serie: str | None = None, image: int = 1, fenetre: str = "", erreur: str | None = None) -> Response:
    care, store, settings = _parts(container)
    view = service.view_study(container.uow(), actor, patient_id, study_uid, care, store, settings)
    current = next((s for s in view.series if s.series.uid == serie), view.series[0] if view.series else None)
    preset = fenetre if fenetre in rules.WINDOW_PRESETS else ""
    index = min(max(image, 1), len(current.frames)) if current and current.frames else 1
    return render(request, "results/imaging_viewer.html", {
        "patient": _patient(container, patient_id), "view": view, "current": current, "index": index,
        "frames": [[f.instance_uid, f.frame] for f in current.frames] if current else [],
        "window": preset, "error": _error(erreur), "can_report": actor.has_any(*rules.REPORTERS),
        "base": f"/patients/{patient_id}/imagerie/etudes/{view.study.uid}", **_labels()})


@router.get("/patients/{patient_id}/imagerie/etudes/{study_uid}/series/{series_uid}/images/{instance_uid}/{frame}",
            dependencies=[Depends(VIEWERS)])
def image(patient_id: uuid.UUID, study_uid: str, series_uid: str, instance_uid: str, frame: str,
          container: ContainerDep, actor: ActorDep, fenetre: Annotated[str, Query(max_length=20)] = "",
          vignette: bool = False) -> Response:
    """One frame as a JPEG: the viewer's size, or a thumbnail. The frame number is read after the
    door (a malformed one is no frame), so an outsider learns nothing from validation."""
    care, store, settings = _parts(container)
    number = int(frame) if frame.isdigit() and len(frame) <= 6 else 0
    try:
        data = service.render_image(container.uow(), actor, patient_id, study_uid, series_uid, instance_uid, number,
                                    care, store, settings, window=fenetre or None,
                                    size=rules.THUMBNAIL_SIZE if vignette else None)
    except PacsUnavailable:
        return Response(status_code=503, headers={"Retry-After": "5"})
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": IMAGE_CACHE})


@router.post("/patients/{patient_id}/imagerie/etudes/{study_uid}/compte-rendu", dependencies=[Depends(REPORTERS)])
def report(patient_id: uuid.UUID, study_uid: str, container: ContainerDep, actor: ActorDep,
           findings: Annotated[str, Form(max_length=rules.MAX_REPORT)],
           conclusion: Annotated[str, Form(max_length=rules.MAX_REPORT)]) -> Response:
    care, store, settings = _parts(container)
    back = f"/patients/{patient_id}/imagerie/etudes/{study_uid}"
    try:
        service.write_report(container.uow(), actor, patient_id, study_uid, findings=findings, conclusion=conclusion,
                             port=care, store=store, settings=settings)
    except rules.ReportInvalid as exc:
        return RedirectResponse(f"{back}?erreur={exc.extra.get('rule', 'invalid')}#report-form", status_code=303)
    return RedirectResponse(f"{back}#reports", status_code=303)


# --- JSON ------------------------------------------------------------------------------------------

def _study(study: rules.StudySummary) -> dict[str, Any]:
    return {"uid": study.uid, "accession_number": study.accession_number or None,
            "performed_at": study.performed_at.isoformat() if study.performed_at else None,
            "description": study.description, "modalities": list(study.modalities),
            "series_count": study.series_count, "instance_count": study.instance_count}


@api.get("/patients/{patient_id}/imaging", dependencies=[Depends(VIEWERS)])
def patient_imaging_json(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> dict[str, Any]:
    care, store, settings = _parts(container)
    view = service.view_imaging(container.uow(), actor, patient_id, care, store, settings)
    return {
        "patient_id": str(patient_id), "pacs_available": not view.pacs_error,
        "studies": [{**_study(s), "reports": [{"id": str(r.id), "conclusion": r.conclusion, "author": r.author,
                                               "signed_at": r.signed_at.isoformat()}
                                              for r in view.reports.get(s.uid, [])]} for s in view.studies],
        "orders": [{"id": str(o.id), "accession_number": o.accession_number, "modality": o.modality,
                    "body_part": o.body_part, "urgency": o.urgency, "status": str(o.status),
                    "ordered_at": o.ordered_at.isoformat(), "study_uid": o.study_uid} for o in view.orders],
    }
