"""Routes of the plan of care as given (eMAR): the unit's timeline with the bedside dialog, the
patient's wristband, the intra-operative drug record, and the same use cases as JSON. Thin: the
rules, the door and the audit are in `administration`."""

from __future__ import annotations

import base64
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from naho.medication import administration as emar
from naho.medication import service
from naho.medication.administration import (
    AdministrationCreate,
    AdministrationPublic,
    AnaesthesiaDrug,
    InfusionEventCreate,
    Timeline,
)
from naho.medication.bedside import DoseStatus, NotGivenReason
from naho.medication.rules import FrequencyKind
from naho.medication.schemas import OrderCreate, OrderPublic
from naho.platform import i18n
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.errors import DomainError
from naho.platform.i18n import N_
from naho.platform.security.policy import requires
from naho.platform.security.rules import Role
from naho.web.barcodes import code128_svg
from naho.web.templating import render

router = APIRouter()
GIVERS = requires(Role.NURSE, Role.PHYSICIAN)
WRISTBAND_PRINTERS = requires(Role.ADMISSION_CLERK, Role.NURSE)
ANAESTHETISTS = requires(Role.PHYSICIAN)

STATUS_LABELS = {
    DoseStatus.TO_GIVE: N_("To give"),
    DoseStatus.LATE: N_("Late"),
    DoseStatus.GIVEN: N_("Given"),
    DoseStatus.NOT_GIVEN: N_("Not given"),
    DoseStatus.PARTLY_GIVEN: N_("Partly given"),
}
REASON_LABELS = {
    NotGivenReason.PATIENT_REFUSED: N_("Patient refused"),
    NotGivenReason.ABSENT: N_("Patient absent"),
    NotGivenReason.FASTING: N_("Fasting"),
    NotGivenReason.VOMITING: N_("Vomiting"),
    NotGivenReason.PRODUCT_UNAVAILABLE: N_("Product unavailable"),
    NotGivenReason.CLINICAL_CONDITION: N_("Clinical condition"),
    NotGivenReason.OTHER: N_("Other"),
}
ANAESTHESIA_REFUSED = N_("The drug was refused.")
ANAESTHESIA_INCOMPLETE = N_("Fill in the product, the dose (a number), the unit and the route.")
INFUSION_LABELS = {"not_started": N_("Not started"), "running": N_("Running"), "stopped": N_("Stopped")}
KIND_LABELS = {"dose": N_("Dose"), "if_needed": N_("If needed"), "infusion_start": N_("Infusion started"),
               "rate_change": N_("Rate changed"), "bag_change": N_("Bag changed"),
               "infusion_stop": N_("Infusion stopped")}
WINDOWS_BEFORE, WINDOWS_AFTER = (2, 4, 8, 12, 24), (4, 8, 12, 24, 48)
Before = Annotated[int, Query(ge=1, le=24)]
After = Annotated[int, Query(ge=1, le=48)]


# --- pages ----------------------------------------------------------------------------------------


@router.get("/services/{unit_code}/plan-de-soins", dependencies=[Depends(GIVERS)], include_in_schema=False)
def timeline_page(request: Request, unit_code: str, container: ContainerDep, actor: ActorDep,
                  avant: Before = emar.HOURS_BEFORE, apres: After = emar.HOURS_AFTER) -> Response:
    timeline = emar.unit_timeline(container.uow(), actor, unit_code, hours_before=avant, hours_after=apres)
    return render(request, "medication/emar_timeline.html", {
        "timeline": timeline, "status_labels": STATUS_LABELS, "reason_labels": REASON_LABELS,
        "infusion_labels": INFUSION_LABELS, "before": avant, "after": apres,
        "windows_before": WINDOWS_BEFORE, "windows_after": WINDOWS_AFTER})


@router.get("/patients/{patient_id}/bracelet", dependencies=[Depends(WRISTBAND_PRINTERS)], include_in_schema=False)
def wristband_page(request: Request, patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    band = emar.wristband(container.uow(), actor, patient_id, container.ports["care"])
    # as an image: the drawing's style attributes are refused inline by the pages' CSP (style-src 'self')
    drawing = base64.b64encode(code128_svg(band.code).encode("utf-8")).decode("ascii")
    return render(request, "medication/wristband.html", {"band": band, "barcode_b64": drawing})


def _anaesthesia(request: Request, patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                 error: list[str] | None = None, status_code: int = 200) -> Response:
    given = emar.patient_administrations(container.uow(), actor, patient_id, container.ports["care"])
    with container.session_factory() as s:
        products = sorted(service.catalogue(s).products.values(), key=lambda p: p.name)
    return render(request, "medication/emar_anaesthesia.html", {
        "patient_id": patient_id, "given": given, "kind_labels": KIND_LABELS, "status_labels": STATUS_LABELS,
        "products": products, "can_prescribe": actor.has_any(Role.PHYSICIAN), "error": error},
        status_code=status_code)


@router.get("/patients/{patient_id}/anesthesie", dependencies=[Depends(GIVERS)], include_in_schema=False)
def anaesthesia_page(request: Request, patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    return _anaesthesia(request, patient_id, container, actor)


def _number(text: str) -> float | None:
    return float(text.replace(",", ".")) if text.strip() else None


def _refusal(exc: DomainError | ValidationError | ValueError) -> list[str]:
    """What the anaesthetist reads when the drug is refused: the alerts or the checks, translated."""
    if isinstance(exc, DomainError):
        listed = exc.extra.get("checks") or exc.extra.get("alerts") or []
        return [str(item["message"]) for item in listed] or [i18n._(ANAESTHESIA_REFUSED)]
    return [i18n._(ANAESTHESIA_INCOMPLETE)]


@router.post("/patients/{patient_id}/anesthesie", dependencies=[Depends(ANAESTHETISTS)], include_in_schema=False)
def anaesthesia_drug_form(
        request: Request, patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
        product_code: Annotated[str, Form(max_length=60)], dose_value: Annotated[str, Form(max_length=20)],
        dose_unit: Annotated[str, Form(max_length=30)], route: Annotated[str, Form(max_length=10)],
        kind: Annotated[str, Form(pattern=r"^(once|continuous)$")] = "once",
        amount: Annotated[str, Form(max_length=20)] = "", dose_rate: Annotated[str, Form(max_length=20)] = "",
        rate_ml_h: Annotated[str, Form(max_length=20)] = "", patient_scan: Annotated[str, Form(max_length=120)] = "",
        dose_scan: Annotated[str, Form(max_length=200)] = "", no_scan_reason: Annotated[str, Form(max_length=500)] = "",
        override_reason: Annotated[str, Form(max_length=1000)] = "") -> Response:
    """The anaesthetist's bolus or infusion, prescribed and given at once (a page without script)."""
    try:
        data = AnaesthesiaDrug(
            order=OrderCreate(product_code=product_code.strip(), dose_value=_number(dose_value) or 0,
                              dose_unit=dose_unit.strip(), route=route.strip(), frequency=FrequencyKind(kind),
                              override_reason=override_reason.strip() or None),
            amount=_number(amount), dose_rate=_number(dose_rate), rate_ml_h=_number(rate_ml_h),
            patient_scan=patient_scan.strip() or None, dose_scan=dose_scan.strip() or None,
            no_scan_reason=no_scan_reason.strip() or None)
        emar.record_anaesthesia_drug(container.uow, actor, patient_id, data, container.ports["care"])
    except (DomainError, ValidationError, ValueError) as exc:
        if isinstance(exc, DomainError) and exc.status == 404:
            raise
        return _anaesthesia(request, patient_id, container, actor, _refusal(exc), status_code=422)
    return RedirectResponse(f"/patients/{patient_id}/anesthesie", status_code=303)


# --- JSON -----------------------------------------------------------------------------------------


@router.get("/api/units/{unit_code}/medication-timeline", dependencies=[Depends(GIVERS)], tags=["medication"])
def timeline(unit_code: str, container: ContainerDep, actor: ActorDep, hours_before: Before = emar.HOURS_BEFORE,
             hours_after: After = emar.HOURS_AFTER) -> Timeline:
    return emar.unit_timeline(container.uow(), actor, unit_code, hours_before=hours_before, hours_after=hours_after)


@router.post("/api/medication-administrations", status_code=201, dependencies=[Depends(GIVERS)],
             tags=["medication"])
def record(data: AdministrationCreate, container: ContainerDep, actor: ActorDep) -> AdministrationPublic:
    return emar.record_administration(container.uow(), actor, data, container.ports["care"])


@router.post("/api/medication-administrations/checks", dependencies=[Depends(GIVERS)], tags=["medication"])
def check(data: AdministrationCreate, container: ContainerDep, actor: ActorDep) -> AdministrationPublic:
    """The five rights of a dose about to be given, nothing recorded (the bedside dialog)."""
    return emar.record_administration(container.uow(), actor, data, container.ports["care"], check_only=True)


@router.post("/api/medication-orders/{order_id}/infusion-events", status_code=201, dependencies=[Depends(GIVERS)],
             tags=["medication"])
def infusion_event(order_id: uuid.UUID, data: InfusionEventCreate, container: ContainerDep,
                   actor: ActorDep) -> AdministrationPublic:
    return emar.record_infusion_event(container.uow(), actor, order_id, data, container.ports["care"])


@router.get("/api/patients/{patient_id}/medication-administrations", dependencies=[Depends(GIVERS)],
            tags=["medication"])
def administrations(patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                    hours: Annotated[int, Query(ge=1, le=24 * 31)] = 24) -> list[AdministrationPublic]:
    found = emar.patient_administrations(container.uow(), actor, patient_id, container.ports["care"], hours=hours)
    return [a for a, _name in found]


@router.post("/api/patients/{patient_id}/anaesthesia-drugs", status_code=201, dependencies=[Depends(ANAESTHETISTS)],
             tags=["medication"])
def anaesthesia_drug(patient_id: uuid.UUID, data: AnaesthesiaDrug, container: ContainerDep,
                     actor: ActorDep) -> dict[str, OrderPublic | AdministrationPublic]:
    order, given = emar.record_anaesthesia_drug(container.uow, actor, patient_id, data, container.ports["care"])
    return {"order": order, "administration": given}
