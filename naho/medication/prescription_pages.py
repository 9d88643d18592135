"""Pages of the prescriber: the patient's prescriptions (orders in force with their alerts, reviews
and versions), order entry with the safety checks' alerts answered in the page, suspend / resume /
stop / modify, protocols applied in one step, the latest creatinine; and the medication
reconciliation page. Thin: `service` and `reconciliation` decide, check and audit; a refusal
re-renders the form with the alerts (blocking ones refuse, the others ask for a reason).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from naho.medication import reconciliation, rules, service
from naho.medication.protocols import ProtocolError
from naho.medication.schemas import (
    HomeMedicationCreate,
    HomeMedicationDecision,
    OrderCreate,
    ProtocolApply,
    StatusChange,
)
from naho.platform import i18n
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.errors import DomainError
from naho.platform.security.actor import Actor
from naho.platform.security.policy import requires
from naho.platform.security.rules import Role
from naho.record import chart
from naho.web.templating import render

router = APIRouter(include_in_schema=False)
#: The care team reads; only physicians sign; nurses and physicians type a creatinine result.
VIEWERS = requires(Role.PHYSICIAN, Role.NURSE, Role.PHARMACIST)
PRESCRIBERS = requires(Role.PHYSICIAN)
LAB_WRITERS = requires(Role.PHYSICIAN, Role.NURSE)

_ = i18n.N_
FREQUENCIES = {"once": _("Once"), "times_per_day": _("Times a day"), "every_hours": _("Every N hours"),
               "continuous": _("Continuous infusion"), "if_needed": _("If needed")}
#: The prescriber's word on an order at discharge, as the page offers it.
AT_DISCHARGE = {"continue": _("Continue after discharge"), "stop": _("Stop at discharge")}
STATUSES = {"active": _("Active"), "suspended": _("Suspended"), "stopped": _("Stopped"), "replaced": _("Replaced")}
REVIEWS = {"pending": _("Awaiting pharmacist review"), "validated": _("Validated by the pharmacist"),
           "refused": _("Refused by the pharmacist")}
RESPONSES = {"accepted": _("accepted by the prescriber"), "declined": _("declined by the prescriber")}
SEVERITIES = {"blocking": _("Blocking"), "override_required": _("Reason required"), "info": _("Information")}
#: Why an action was refused, by rule name, shown translated after a redirect.
REFUSALS = {
    "OrderNotInForce": _("This order is no longer in force: the page has been refreshed."),
    "OverrideReasonRequired": _("Resuming this order raises alerts that need a reason: state it and resume again."),
    "OrderBlocked": _("A blocking alert stands: the order cannot be resumed."),
    "ChartEntryRefused": _("This creatinine value is not plausible or is dated in the future."),
    "BadNumber": _("Type a number (a comma or a point for decimals)."),
}
DOSE_UNITS = ("mg", "g", "µg", "UI", "mmol", "mL", "pres", "mg/kg", "µg/kg", "UI/kg", "mg/m²", "mg/h", "µg/h",
              "UI/h", "mmol/h", "mL/h", "mg/kg/h", "µg/kg/h", "µg/kg/min", "UI/kg/h")
CONCENTRATION_UNITS = ("mg/mL", "µg/mL", "UI/mL", "mmol/mL")
_ORDER_FIELDS = ("product_code", "dose_value", "dose_unit", "route", "frequency", "times_per_day", "every_hours",
                 "max_per_24h", "indication", "starts_at", "duration_days", "comment", "weight_kg", "height_cm",
                 "override_reason", "concentration_value", "concentration_unit", "titration_min", "titration_max")


class BadNumber(DomainError):
    """A number field of a form holds something else."""


def _number(form: Mapping[str, str], key: str, kind: Callable[[str], Any] = float) -> Any:
    raw = form.get(key, "").strip().replace(",", ".")
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise BadNumber(f"{key} is not a number", rule="BadNumber") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise BadNumber(f"{key} is not a number", rule="BadNumber")
    return value


def _local_time(form: Mapping[str, str], key: str) -> datetime | None:
    """A `datetime-local` field typed in Europe/Paris, in UTC."""
    raw = form.get(key, "").strip()
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw).replace(tzinfo=i18n.PARIS).astimezone(UTC)
    except ValueError:
        raise BadNumber(f"{key} is not a date and time", rule="BadNumber") from None


def _order_create(form: Mapping[str, str]) -> OrderCreate:
    """The order typed in the form (the same fields as the JSON API); bad input is BadNumber or
    pydantic's ValidationError."""
    return OrderCreate.model_validate(dict(
        product_code=form.get("product_code", "").strip(), dose_value=_number(form, "dose_value"),
        dose_unit=form.get("dose_unit", "").strip(), route=form.get("route", "").strip(),
        frequency=form.get("frequency", ""), times_per_day=_number(form, "times_per_day", int),
        every_hours=_number(form, "every_hours"), max_per_24h=_number(form, "max_per_24h", int),
        indication=form.get("indication") or None, starts_at=_local_time(form, "starts_at"),
        duration_days=_number(form, "duration_days"), comment=form.get("comment") or None,
        weight_kg=_number(form, "weight_kg"), height_cm=_number(form, "height_cm"),
        override_reason=form.get("override_reason") or None, concentration_value=_number(form, "concentration_value"),
        concentration_unit=form.get("concentration_unit") or None, titration_min=_number(form, "titration_min"),
        titration_max=_number(form, "titration_max")))


def _invalid_text(exc: ValidationError) -> str:
    fields = sorted({str(e["loc"][0]) for e in exc.errors() if e.get("loc")})
    return i18n._("Check these fields: {fields}.").format(fields=", ".join(fields))


def frequency_text(order: Any) -> str:
    """An order's schedule in words (order: OrderPublic or ProtocolLinePublic)."""
    match order.frequency:
        case "times_per_day":
            return i18n._("{n} times a day").format(n=order.times_per_day)
        case "every_hours":
            return i18n._("every {h} h").format(h=rules._num(order.every_hours or 0))
        case "if_needed":
            text = i18n._("if needed, at most {n} per 24 h").format(n=order.max_per_24h)
            if order.every_hours:
                text += " " + i18n._("(at least {h} h apart)").format(h=rules._num(order.every_hours))
            return text
        case _:
            return i18n._(FREQUENCIES.get(order.frequency, order.frequency))


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _sheet_page(request: Request, container: Any, actor: Actor, patient_id: uuid.UUID, *,
                values: Mapping[str, Any] | None = None, modify: uuid.UUID | None = None,
                refusal: dict[str, Any] | None = None, protocol_refusal: dict[str, Any] | None = None,
                error: str | None = None, search: str = "", product_code: str = "", status_code: int = 200) -> Response:
    """The prescriptions page; `values` refill the order form, `refusal` lists the alerts of a
    refused signature (with `needs_reason` when a reason would let it through)."""
    uow, port = container.uow, container.ports["care"]
    sheet = service.prescription_sheet(uow(), actor, patient_id, port)
    values = dict(values or {})
    if modify is not None and not values:
        current = next((o for o in sheet.orders if o.id == modify), None)
        if current is not None:
            values = current.model_dump(include=set(_ORDER_FIELDS))
            values["starts_at"] = ""
    code = str(values.get("product_code") or product_code)
    is_prescriber = actor.has_any(Role.PHYSICIAN)
    protocols, protocols_error = [], None
    try:
        protocols = service.list_protocols(uow()) if is_prescriber else []
    except ProtocolError as exc:  # a protocol names a withdrawn product: order entry still works
        protocols_error = i18n._("The protocols cannot be used until their file is corrected: {detail}").format(
            detail=str(exc))
    return render(request, "medication/orders_prescriptions.html", {
        "sheet": sheet, "patient": sheet.patient, "values": values, "modify": modify, "refusal": refusal,
        "protocol_refusal": protocol_refusal, "error": error, "search": search,
        "found": service.search_products(uow(), search) if search and is_prescriber else [],
        "product": service.product(uow(), code) if code and is_prescriber else None,
        "protocols": protocols, "protocols_error": protocols_error,
        "can_prescribe": is_prescriber, "can_record_lab": actor.has_any(Role.PHYSICIAN, Role.NURSE),
        "frequencies": {k: i18n._(v) for k, v in FREQUENCIES.items()},
        "statuses": {k: i18n._(v) for k, v in STATUSES.items()},
        "at_discharge_choices": {k: i18n._(v) for k, v in AT_DISCHARGE.items()},
        "reviews": {k: i18n._(v) for k, v in REVIEWS.items()},
        "responses": {k: i18n._(v) for k, v in RESPONSES.items()},
        "severities": {k: i18n._(v) for k, v in SEVERITIES.items()}, "routes": rules.ROUTES,
        "dose_units": DOSE_UNITS, "concentration_units": CONCENTRATION_UNITS, "frequency_text": frequency_text,
        "num": rules._num,
    }, status_code=status_code)


def _back(patient_id: uuid.UUID, error: str | None = None, anchor: str = "orders") -> Response:
    suffix = f"?erreur={error}" if error else ""
    return RedirectResponse(f"/patients/{patient_id}/prescriptions{suffix}#{anchor}", status_code=303)


@router.get("/patients/{patient_id}/prescriptions", dependencies=[Depends(VIEWERS)])
def prescriptions(request: Request, patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                  q: str = "", produit: str = "", modifier: uuid.UUID | None = None,
                  erreur: str | None = None) -> Response:
    error = i18n._(REFUSALS[erreur]) if erreur in REFUSALS else None
    return _sheet_page(request, container, actor, patient_id, search=q[:100], product_code=produit[:60],
                       modify=modifier, error=error)


def _signed(request: Request, container: Any, actor: Actor, patient_id: uuid.UUID, form: dict[str, str],
            sign: Callable[[OrderCreate], Any], modify: uuid.UUID | None = None) -> Response:
    """Sign the order of the form, or show the form again with why it was not signed."""
    def again(status_code: int, error: str | None = None, refusal: dict[str, Any] | None = None) -> Response:
        return _sheet_page(request, container, actor, patient_id, values=form, modify=modify, error=error,
                           refusal=refusal, status_code=status_code)
    try:
        sign(_order_create(form))
    except ValidationError as exc:
        return again(422, _invalid_text(exc))
    except (BadNumber, service.OrderInvalid) as exc:
        return again(422, i18n._("The order is incomplete or malformed: {detail}").format(detail=exc.detail))
    except service.OrderBlocked as exc:
        return again(422, refusal={"alerts": exc.extra.get("alerts", []), "needs_reason": False})
    except service.OverrideReasonRequired as exc:
        return again(409, refusal={"alerts": exc.extra.get("alerts", []), "needs_reason": True})
    return _back(patient_id)


@router.post("/patients/{patient_id}/prescriptions", dependencies=[Depends(PRESCRIBERS)])
async def prescribe(request: Request, patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    form = await _form(request)
    return await run_in_threadpool(_signed, request, container, actor, patient_id, form, lambda data: service.prescribe(
        container.uow(), actor, patient_id, data, container.ports["care"]))


@router.post("/prescriptions/{order_id}/modifier", dependencies=[Depends(PRESCRIBERS)])
async def modify(request: Request, order_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    form = await _form(request)
    patient = form.get("patient_id", "")
    patient_id = uuid.UUID(patient) if _is_uuid(patient) else uuid.UUID(int=0)  # the door answers 404
    return await run_in_threadpool(_signed, request, container, actor, patient_id, form, lambda data: service.modify(
        container.uow(), actor, order_id, data, container.ports["care"]), order_id)


_CHANGES = {"suspendre": service.suspend, "reprendre": service.resume, "arreter": service.stop}


@router.post("/prescriptions/{order_id}/sortie", dependencies=[Depends(PRESCRIBERS)])
async def at_discharge(request: Request, order_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    form = await _form(request)
    decision = form.get("at_discharge", "") or None

    def run() -> Response:
        try:
            done = service.decide_at_discharge(container.uow(), actor, order_id, decision, container.ports["care"])
        except (service.OrderNotInForce, service.OrderInvalid) as exc:
            patient = form.get("patient_id", "")
            return _back(uuid.UUID(patient), type(exc).__name__) if _is_uuid(patient) else Response(status_code=409)
        return _back(done.patient_id)
    return await run_in_threadpool(run)


@router.post("/prescriptions/{order_id}/{action}", dependencies=[Depends(PRESCRIBERS)])
async def change(request: Request, order_id: uuid.UUID, action: str, container: ContainerDep,
                 actor: ActorDep) -> Response:
    form = await _form(request)
    use_case = _CHANGES.get(action)
    if use_case is None:
        return Response(status_code=404)
    data = StatusChange(reason=form.get("reason", "")[:1000] or None,
                        override_reason=form.get("override_reason", "")[:1000] or None)

    def run() -> Response:
        try:
            done = use_case(container.uow(), actor, order_id, data, container.ports["care"])
        except (service.OrderNotInForce, service.OverrideReasonRequired, service.OrderBlocked) as exc:
            patient = form.get("patient_id", "")
            return _back(uuid.UUID(patient), type(exc).__name__) if _is_uuid(patient) else Response(status_code=409)
        return _back(done.patient_id)
    return await run_in_threadpool(run)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


@router.post("/patients/{patient_id}/prescriptions/protocoles/{code}", dependencies=[Depends(PRESCRIBERS)])
async def apply_protocol(request: Request, patient_id: uuid.UUID, code: str, container: ContainerDep,
                         actor: ActorDep) -> Response:
    form = await _form(request)

    def run() -> Response:
        try:
            reasons = {int(k.removeprefix("reason_")): v for k, v in form.items()
                       if k.startswith("reason_") and k.removeprefix("reason_").isdigit() and v.strip()}
            data = ProtocolApply(weight_kg=_number(form, "weight_kg"), height_cm=_number(form, "height_cm"),
                                 override_reasons=reasons)
            service.apply_protocol(container.uow(), actor, patient_id, code, data, container.ports["care"])
        except (service.OrderBlocked, service.OverrideReasonRequired) as exc:
            refusal = {"code": code, "lines": {line["line"]: line for line in exc.extra.get("lines", [])},
                       "reasons": form, "blocked": isinstance(exc, service.OrderBlocked)}
            return _sheet_page(request, container, actor, patient_id, protocol_refusal=refusal,
                               status_code=exc.status)
        except (BadNumber, service.OrderInvalid, service.ProtocolNotFound) as exc:
            return _sheet_page(request, container, actor, patient_id, status_code=exc.status, error=i18n._(
                "The protocol could not be applied: {detail}").format(detail=exc.detail))
        return _back(patient_id)
    return await run_in_threadpool(run)


@router.post("/patients/{patient_id}/prescriptions/creatinine", dependencies=[Depends(LAB_WRITERS)])
async def creatinine(request: Request, patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    form = await _form(request)

    def run() -> Response:
        try:
            value, at = _number(form, "creatinine"), _local_time(form, "measured_at")
            if value is None:
                raise BadNumber("creatinine is required", rule="BadNumber")
            chart.record_lab_result(container.uow(), actor, patient_id, "creatinine", value, at,
                                    container.ports["care"])
        except BadNumber:
            return _back(patient_id, "BadNumber", "measures")
        except chart.ChartEntryRefused:
            return _back(patient_id, "ChartEntryRefused", "measures")
        return _back(patient_id, anchor="measures")
    return await run_in_threadpool(run)


# --- medication reconciliation ----------------------------------------------------------------------

RECONCILIATION_REFUSALS = {
    "ReconciliationInvalid": _("The line or the decision is incomplete: check the fields."),
    "AlreadyDecided": _("This line was already decided."),
    "NotTheSameSubstance": _("Continuing gives the same substance; choose Substitute for another one."),
    "StopReasonRequired": _("Stopping a home treatment states its reason."),
    "OrderRequired": _("Continuing or substituting signs an order: fill it in."),
    "UnknownProduct": _("This product is not in the formulary."),
    "BadNumber": _("Type a number (a comma or a point for decimals)."),
}


def _reconciliation_page(request: Request, container: Any, actor: Actor, patient_id: uuid.UUID, *,
                         error: str | None = None, refusal: dict[str, Any] | None = None,
                         status_code: int = 200) -> Response:
    port = container.ports["care"]
    lines = reconciliation.home_medications(container.uow(), actor, patient_id, port)
    sheet = service.prescription_sheet(container.uow(), actor, patient_id, port)
    encounter = next((o.encounter_id for o in sheet.orders if o.encounter_id), None) or \
        next((line.encounter_id for line in lines if line.encounter_id), None)
    changes = reconciliation.discharge_list(container.uow(), actor, encounter, port) if encounter else []
    return render(request, "medication/reconciliation_page.html", {
        "patient": sheet.patient, "lines": lines, "changes": changes, "error": error, "refusal": refusal,
        "sources": {k: i18n._(v) for k, v in reconciliation.SOURCES.items()},
        "decisions": {k: i18n._(v) for k, v in reconciliation.DECISIONS.items()},
        "change_labels": {k: i18n._(v) for k, v in reconciliation.CHANGES.items()},
        "frequencies": {k: i18n._(v) for k, v in FREQUENCIES.items()}, "routes": rules.ROUTES,
        "dose_units": DOSE_UNITS, "severities": {k: i18n._(v) for k, v in SEVERITIES.items()},
        "can_decide": actor.has_any(Role.PHYSICIAN), "num": rules._num,
    }, status_code=status_code)


def _to_reconciliation(patient_id: uuid.UUID, error: str | None = None) -> Response:
    suffix = f"?erreur={error}" if error else ""
    return RedirectResponse(f"/patients/{patient_id}/conciliation{suffix}", status_code=303)


@router.get("/patients/{patient_id}/conciliation", dependencies=[Depends(VIEWERS)])
def reconciliation_page(request: Request, patient_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                        erreur: str | None = None) -> Response:
    error = i18n._(RECONCILIATION_REFUSALS[erreur]) if erreur in RECONCILIATION_REFUSALS else None
    return _reconciliation_page(request, container, actor, patient_id, error=error)


@router.post("/patients/{patient_id}/conciliation", dependencies=[Depends(VIEWERS)])
async def add_home_medication(request: Request, patient_id: uuid.UUID, container: ContainerDep,
                              actor: ActorDep) -> Response:
    form = await _form(request)

    def run() -> Response:
        try:
            data = HomeMedicationCreate(drug=form.get("drug", "").strip(),
                                        product_code=form.get("product_code") or None, dose=form.get("dose") or None,
                                        frequency=form.get("frequency") or None,
                                        source=form.get("source", ""))
            reconciliation.add_home_medication(container.uow(), actor, patient_id, data, container.ports["care"])
        except ValidationError:
            return _to_reconciliation(patient_id, "ReconciliationInvalid")
        except reconciliation.ReconciliationInvalid as exc:
            return _to_reconciliation(patient_id, str(exc.extra.get("rule", "ReconciliationInvalid")))
        return _to_reconciliation(patient_id)
    return await run_in_threadpool(run)


@router.post("/conciliation/{line_id}/decision", dependencies=[Depends(PRESCRIBERS)])
async def decide(request: Request, line_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    form = await _form(request)
    patient = form.get("patient_id", "")
    if not _is_uuid(patient):
        return Response(status_code=422)
    patient_id = uuid.UUID(patient)

    def run() -> Response:
        try:
            decision = form.get("decision", "")
            order = _order_create(form) if decision in ("continue", "substitute") else None
            data = HomeMedicationDecision(decision=decision, reason=form.get("reason") or None, order=order)
            reconciliation.decide(container.uow(), actor, line_id, data, container.ports["care"])
        except (ValidationError, BadNumber, service.OrderInvalid):
            return _to_reconciliation(patient_id, "OrderRequired")
        except (reconciliation.ReconciliationInvalid, reconciliation.AlreadyDecided) as exc:
            return _to_reconciliation(patient_id, str(exc.extra.get("rule", type(exc).__name__)))
        except (service.OrderBlocked, service.OverrideReasonRequired) as exc:
            refusal = {"line_id": line_id, "alerts": exc.extra.get("alerts", []), "form": form,
                       "needs_reason": isinstance(exc, service.OverrideReasonRequired)}
            return _reconciliation_page(request, container, actor, patient_id, refusal=refusal,
                                        status_code=exc.status)
        return _to_reconciliation(patient_id)
    return await run_in_threadpool(run)
