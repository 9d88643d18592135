"""Nominative dispensing: pages (the pharmacy's list and batches, labels, stock; the ward's
receptions) and the same as JSON under /api/pharmacy. Thin: medication.dispensing decides (who
may act, the rules, the stock) and audits.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from starlette.responses import Response

from naho.medication import dispensing
from naho.medication.schedule import WARD_TZ
from naho.platform import i18n
from naho.platform.deps import ActorDep, ContainerDep
from naho.platform.errors import DomainError
from naho.platform.security.policy import requires
from naho.platform.security.rules import Role
from naho.web.barcodes import code128_svg
from naho.web.templating import render

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/pharmacy", tags=["medication"])
#: Who prepares and hands over (the service then wants this establishment's pharmacy).
PREPARERS = requires(Role.PHARMACIST, Role.PHARMACY_TECHNICIAN)
#: Who receives on the ward (the service then wants a nurse of the batch's unit).
RECEIVERS = requires(Role.NURSE)
BATCH_READERS = requires(Role.PHARMACIST, Role.PHARMACY_TECHNICIAN, Role.NURSE)
LIST_PAGE = "/pharmacie/dispensation"

#: Why an action was refused, by rule name, shown translated.
REFUSALS = {
    "BadPeriod": i18n.N_("A period lasts 1 hour to 7 days."),
    "UnitNotInEstablishment": i18n.N_("This unit belongs to another establishment."),
    "NothingToDispense": i18n.N_("Nothing left to dispense for this unit and period."),
    "BatchNotOpen": i18n.N_("This batch is no longer being prepared."),
    "BatchNotPrepared": i18n.N_("Only a fully prepared batch is handed over."),
    "BatchNotHandedOver": i18n.N_("Only a handed-over batch is received."),
    "LineNotFound": i18n.N_("This line is not in the batch."),
    "LineAlreadyPrepared": i18n.N_("This line was already prepared."),
    "OrderNoLongerDispensable": i18n.N_("The order was changed or stopped since the batch opened: do not "
                                        "dispense it."),
    "WrongProduct": i18n.N_("This pack is neither the ordered product nor an exact generic of a line to "
                            "prepare."),
    "UnknownPack": i18n.N_("This pack was never received in the pharmacy's stock."),
    "LotNotInStock": i18n.N_("This lot was never received in the pharmacy's stock."),
    "StockInsufficient": i18n.N_("Not enough units of this lot in stock."),
    "ManualReasonRequired": i18n.N_("State why the pack is not scanned."),
    "BadStockEntry": i18n.N_("Check the product, lot, expiry and quantity."),
    "UnknownLabel": i18n.N_("A label noted is not one of this batch's."),
    "ExpiredLot": i18n.N_("Expired lot: do not dispense it."),
    "ExpiryUnknown": i18n.N_("The pack's code carries no expiry date: enter the lot by hand."),
    "UnreadableBarcode": i18n.N_("Unreadable code: scan again."),
    "NotAMedicinePack": i18n.N_("This code is not a medicine pack's."),
    "UnknownProduct": i18n.N_("This product is not in the formulary."),
    "BadDate": i18n.N_("Enter a valid date."),
}
KINDS = {"dose": i18n.N_("Dose"), "infusion": i18n.N_("Infusion bags"), "if_needed": i18n.N_("If needed (reserve)"),
         "unknown": i18n.N_("Unknown")}
STATUSES = {"open": i18n.N_("Being prepared"), "prepared": i18n.N_("Prepared"),
            "handed_over": i18n.N_("Handed over for transport"), "received": i18n.N_("Received"),
            "to_prepare": i18n.N_("To prepare"), "pending": i18n.N_("Pending analysis"),
            "refused": i18n.N_("Refused by the pharmacist")}


def _refusal(exc: DomainError) -> str:
    return i18n._(REFUSALS.get(type(exc).__name__, "Invalid request"))


def _back(path: str, **params: str) -> Response:
    query = urlencode({k: v for k, v in params.items() if v})
    return RedirectResponse(f"{path}?{query}" if query else path, status_code=303)


def _local(text: str) -> datetime:
    """A time typed in the page (Paris time, `YYYY-MM-DDTHH:MM`) as an aware UTC datetime."""
    try:
        return datetime.fromisoformat(text).replace(tzinfo=WARD_TZ).astimezone(UTC)
    except ValueError:
        raise dispensing.BadPeriod("enter the start as a date and time") from None


def _next_hour(now: datetime) -> datetime:
    local = now.astimezone(WARD_TZ).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return local.astimezone(UTC)


# --- pharmacy pages -----------------------------------------------------------------------------------


@router.get(LIST_PAGE, dependencies=[Depends(PREPARERS)])
def list_page(request: Request, container: ContainerDep, actor: ActorDep,
              etablissement: Annotated[str, Query(max_length=40)] = "",
              unite: Annotated[str, Query(max_length=40)] = "", debut: Annotated[str, Query(max_length=20)] = "",
              heures: Annotated[int, Query(ge=1, le=168)] = 24, erreur: str = "") -> Response:
    offer = dispensing.choices(container.uow(), actor, etablissement or None)
    start = _next_hour(container.clock.now())
    error = i18n._(REFUSALS[erreur]) if erreur in REFUSALS else None
    listing = None
    if unite:
        try:
            start = _local(debut) if debut else start
            listing = dispensing.dispensing_list(container.uow(), actor, offer.establishment_code, unite, start,
                                                 heures)
        except DomainError as exc:
            error = _refusal(exc)
    return render(request, "medication/dispensing_list.html", {
        "offer": offer, "unit": unite, "start": start, "hours": heures, "listing": listing, "error": error,
        "kinds": KINDS, "statuses": STATUSES})


@router.post(f"{LIST_PAGE}/preparations", dependencies=[Depends(PREPARERS)])
def open_page(container: ContainerDep, actor: ActorDep, etablissement: Annotated[str, Form(max_length=40)] = "",
              unite: Annotated[str, Form(max_length=40)] = "", debut: Annotated[str, Form(max_length=20)] = "",
              heures: Annotated[int, Form(ge=1, le=168)] = 24) -> Response:
    try:
        batch_id = dispensing.open_batch(container.uow(), actor, etablissement, unite, _local(debut), heures)
    except DomainError as exc:
        if exc.status == 403:
            raise
        return _back(LIST_PAGE, etablissement=etablissement, unite=unite, debut=debut, heures=str(heures),
                     erreur=type(exc).__name__)
    return _back(f"{LIST_PAGE}/preparations/{batch_id}")


@router.get(f"{LIST_PAGE}/preparations/{{batch_id}}", dependencies=[Depends(PREPARERS)])
def batch_page(request: Request, batch_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
               erreur: str = "", etiquette: Annotated[str, Query(max_length=11)] = "") -> Response:
    view = dispensing.get_batch(container.uow(), actor, batch_id)
    return render(request, "medication/dispensing_batch.html", {
        "batch": view, "error": i18n._(REFUSALS[erreur]) if erreur in REFUSALS else None, "prepared": etiquette,
        "kinds": KINDS, "statuses": STATUSES, "today": container.clock.now().astimezone(WARD_TZ).date()})


def _batch_page(batch_id: uuid.UUID, action: Callable[[], object]) -> Response:
    try:
        done = action()
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        return _back(f"{LIST_PAGE}/preparations/{batch_id}", erreur=type(exc).__name__)
    return _back(f"{LIST_PAGE}/preparations/{batch_id}", etiquette=getattr(done, "label", None) or "")


@router.post(f"{LIST_PAGE}/preparations/{{batch_id}}/scan", dependencies=[Depends(PREPARERS)])
def scan_page(batch_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
              code: Annotated[str, Form(max_length=200)] = "") -> Response:
    return _batch_page(batch_id, lambda: dispensing.prepare_by_scan(container.uow(), actor, batch_id, code))


@router.post(f"{LIST_PAGE}/preparations/{{batch_id}}/lignes/{{line_id}}/manuel", dependencies=[Depends(PREPARERS)])
def manual_page(batch_id: uuid.UUID, line_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                produit: Annotated[str, Form(max_length=60)] = "", lot: Annotated[str, Form(max_length=40)] = "",
                peremption: Annotated[str, Form(max_length=10)] = "",
                motif: Annotated[str, Form(max_length=500)] = "") -> Response:
    def prepare() -> dispensing.BatchLineView:
        try:
            expiry = date.fromisoformat(peremption)
        except ValueError:
            raise dispensing.BadStockEntry("enter the expiry date") from None
        return dispensing.prepare_by_hand(container.uow(), actor, batch_id, line_id, product_code=produit, lot=lot,
                                          expiry=expiry, reason=motif)
    return _batch_page(batch_id, prepare)


@router.post(f"{LIST_PAGE}/preparations/{{batch_id}}/remise", dependencies=[Depends(PREPARERS)])
def handover_page(batch_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                  urgent: Annotated[str, Form(max_length=5)] = "") -> Response:
    return _batch_page(batch_id, lambda: dispensing.hand_over(container.uow(), actor, batch_id, urgent=bool(urgent)))


#: The label sheet's own style (the pages' policy allows stylesheets from naho only, no inline style).
LABELS_CSS = """body { font-family: sans-serif; margin: 0; }
.label { width: 70mm; border: 1px dashed #999; padding: 3mm; margin: 2mm; display: inline-block;
  vertical-align: top; break-inside: avoid; }
.label img { width: 60mm; height: 12mm; }
.label p { margin: .5mm 0; font-size: 9pt; }
.number { font-family: monospace; font-size: 11pt; letter-spacing: 1px; }
@media print { .no-print { display: none; } .label { border: none; } }
"""


@router.get(f"{LIST_PAGE}/preparations/{{batch_id}}/etiquettes", dependencies=[Depends(PREPARERS)])
def labels_page(request: Request, batch_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> Response:
    printed = dispensing.labels(container.uow(), actor, batch_id)
    drawn = [(label, base64.b64encode(code128_svg(label.number).encode("utf-8")).decode("ascii"))
             for label in printed]
    return render(request, "medication/labels.html", {"batch_id": batch_id, "labels": drawn})


@router.get(f"{LIST_PAGE}/etiquettes.css", dependencies=[Depends(PREPARERS)])
def labels_css() -> Response:
    return Response(LABELS_CSS, media_type="text/css")


@router.get("/pharmacie/stock", dependencies=[Depends(PREPARERS)])
def stock_page(request: Request, container: ContainerDep, actor: ActorDep,
               etablissement: Annotated[str, Query(max_length=40)] = "", erreur: str = "") -> Response:
    offer = dispensing.choices(container.uow(), actor, etablissement or None)
    lots = dispensing.stock(container.uow(), actor, offer.establishment_code)
    return render(request, "medication/dispensing_stock.html", {
        "offer": offer, "lots": lots, "error": i18n._(REFUSALS[erreur]) if erreur in REFUSALS else None})


@router.post("/pharmacie/stock/receptions", dependencies=[Depends(PREPARERS)])
def stock_receipt_page(container: ContainerDep, actor: ActorDep,
                       etablissement: Annotated[str, Form(max_length=40)] = "",
                       produit: Annotated[str, Form(max_length=60)] = "",
                       quantite: Annotated[int, Form(ge=0, le=100_000)] = 0,
                       code: Annotated[str, Form(max_length=200)] = "", lot: Annotated[str, Form(max_length=40)] = "",
                       peremption: Annotated[str, Form(max_length=10)] = "") -> Response:
    try:
        expiry = date.fromisoformat(peremption) if peremption else None
        dispensing.receive_stock(container.uow(), actor, etablissement, quantity=quantite, product_code=produit,
                                 code=code or None, lot=lot or None, expiry=expiry)
    except ValueError:
        return _back("/pharmacie/stock", etablissement=etablissement, erreur="BadDate")
    except DomainError as exc:
        if exc.status == 403:
            raise
        return _back("/pharmacie/stock", etablissement=etablissement, erreur=type(exc).__name__)
    return _back("/pharmacie/stock", etablissement=etablissement)


# --- ward pages ---------------------------------------------------------------------------------------


@router.get("/services/{unit_code}/receptions", dependencies=[Depends(RECEIVERS)])
def receptions_page(request: Request, unit_code: str, container: ContainerDep, actor: ActorDep,
                    erreur: str = "") -> Response:
    batches = dispensing.batches_to_receive(container.uow(), actor, unit_code)
    return render(request, "medication/dispensing_receptions.html", {
        "unit_code": unit_code, "batches": batches, "statuses": STATUSES, "kinds": KINDS,
        "error": i18n._(REFUSALS[erreur]) if erreur in REFUSALS else None})


@router.post("/services/{unit_code}/receptions/{batch_id}", dependencies=[Depends(RECEIVERS)])
def receive_page(unit_code: str, batch_id: uuid.UUID, container: ContainerDep, actor: ActorDep,
                 manquants: Annotated[str, Form(max_length=2000)] = "",
                 abimes: Annotated[str, Form(max_length=2000)] = "",
                 note: Annotated[str, Form(max_length=1000)] = "") -> Response:
    try:
        dispensing.receive_batch(container.uow(), actor, batch_id, missing=manquants.replace(",", " ").split(),
                                 damaged=abimes.replace(",", " ").split(), note=note)
    except DomainError as exc:
        if exc.status in (403, 404):
            raise
        return _back(f"/services/{unit_code}/receptions", erreur=type(exc).__name__)
    return _back(f"/services/{unit_code}/receptions")


# --- JSON ---------------------------------------------------------------------------------------------


class BatchOpen(BaseModel):
    establishment: str = Field(min_length=1, max_length=40)
    unit: str = Field(min_length=1, max_length=40)
    start: datetime
    hours: int = Field(default=24, ge=1, le=168)


class PackScanned(BaseModel):
    code: str = Field(min_length=1, max_length=200)
    line_id: uuid.UUID | None = None


class ManualEntry(BaseModel):
    product_code: str = Field(min_length=1, max_length=60)
    lot: str = Field(min_length=1, max_length=40)
    expiry: date
    reason: str = Field(max_length=500)


class Handover(BaseModel):
    urgent: bool = False


class Receipt(BaseModel):
    missing: list[str] = Field(default_factory=list, max_length=500)
    damaged: list[str] = Field(default_factory=list, max_length=500)
    note: str = Field(default="", max_length=1000)


class StockReceipt(BaseModel):
    establishment: str = Field(min_length=1, max_length=40)
    product_code: str = Field(min_length=1, max_length=60)
    quantity: int
    code: str | None = Field(default=None, max_length=200)
    lot: str | None = Field(default=None, max_length=40)
    expiry: date | None = None
    cip13: str | None = Field(default=None, max_length=13)


class StockReturn(BaseModel):
    quantity: int
    reason: str = Field(max_length=500)


@api.get("/dispensing", dependencies=[Depends(PREPARERS)])
def list_json(container: ContainerDep, actor: ActorDep, establishment: str, unit: str, start: datetime,
              hours: int = 24) -> dispensing.DispensingList:
    return dispensing.dispensing_list(container.uow(), actor, establishment, unit, start, hours)


@api.post("/batches", status_code=201, dependencies=[Depends(PREPARERS)])
def open_json(data: BatchOpen, container: ContainerDep, actor: ActorDep) -> dispensing.BatchView:
    batch_id = dispensing.open_batch(container.uow(), actor, data.establishment, data.unit, data.start, data.hours)
    return dispensing.get_batch(container.uow(), actor, batch_id)


@api.get("/batches/{batch_id}", dependencies=[Depends(BATCH_READERS)])
def batch_json(batch_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> dispensing.BatchView:
    return dispensing.get_batch(container.uow(), actor, batch_id)


@api.post("/batches/{batch_id}/scan", dependencies=[Depends(PREPARERS)])
def scan_json(batch_id: uuid.UUID, data: PackScanned, container: ContainerDep,
              actor: ActorDep) -> dispensing.BatchLineView:
    return dispensing.prepare_by_scan(container.uow(), actor, batch_id, data.code, data.line_id)


@api.post("/batches/{batch_id}/lines/{line_id}/manual", dependencies=[Depends(PREPARERS)])
def manual_json(batch_id: uuid.UUID, line_id: uuid.UUID, data: ManualEntry, container: ContainerDep,
                actor: ActorDep) -> dispensing.BatchLineView:
    return dispensing.prepare_by_hand(container.uow(), actor, batch_id, line_id, product_code=data.product_code,
                                      lot=data.lot, expiry=data.expiry, reason=data.reason)


@api.get("/batches/{batch_id}/labels", dependencies=[Depends(PREPARERS)])
def labels_json(batch_id: uuid.UUID, container: ContainerDep, actor: ActorDep) -> list[dispensing.Label]:
    return dispensing.labels(container.uow(), actor, batch_id)


@api.post("/batches/{batch_id}/handover", dependencies=[Depends(PREPARERS)])
def handover_json(batch_id: uuid.UUID, data: Handover, container: ContainerDep,
                  actor: ActorDep) -> dispensing.BatchView:
    return dispensing.hand_over(container.uow(), actor, batch_id, urgent=data.urgent)


@api.post("/batches/{batch_id}/receipt", dependencies=[Depends(RECEIVERS)])
def receipt_json(batch_id: uuid.UUID, data: Receipt, container: ContainerDep,
                 actor: ActorDep) -> dispensing.BatchView:
    return dispensing.receive_batch(container.uow(), actor, batch_id, missing=data.missing, damaged=data.damaged,
                                    note=data.note)


@api.get("/units/{unit_code}/receptions", dependencies=[Depends(RECEIVERS)])
def receptions_json(unit_code: str, container: ContainerDep, actor: ActorDep) -> list[dispensing.BatchView]:
    return dispensing.batches_to_receive(container.uow(), actor, unit_code)


@api.get("/stock", dependencies=[Depends(PREPARERS)])
def stock_json(establishment: str, container: ContainerDep, actor: ActorDep) -> list[dispensing.StockLotView]:
    return dispensing.stock(container.uow(), actor, establishment)


@api.post("/stock/receipts", status_code=201, dependencies=[Depends(PREPARERS)])
def stock_receipt_json(data: StockReceipt, container: ContainerDep, actor: ActorDep) -> dispensing.StockLotView:
    return dispensing.receive_stock(container.uow(), actor, data.establishment, quantity=data.quantity,
                                    product_code=data.product_code, code=data.code, lot=data.lot,
                                    expiry=data.expiry, cip13=data.cip13)


@api.post("/stock/lots/{lot_id}/returns", dependencies=[Depends(PREPARERS)])
def stock_return_json(lot_id: uuid.UUID, data: StockReturn, container: ContainerDep,
                      actor: ActorDep) -> dispensing.StockLotView:
    return dispensing.return_to_stock(container.uow(), actor, lot_id, data.quantity, data.reason)


@api.get("/narcotics", dependencies=[Depends(requires(Role.PHARMACIST))])
def narcotics_json(establishment: str, since: datetime, until: datetime, container: ContainerDep,
                   actor: ActorDep) -> list[dispensing.NarcoticEntryView]:
    return dispensing.narcotics_register(container.uow(), actor, establishment, since, until)
