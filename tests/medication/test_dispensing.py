"""Nominative dispensing through the API and the real database: the list of a unit's needs, the
batch prepared by scanning packs (expired lots, other products and short stock refused; exact
generics accepted), labels resolving to their dose, the stock ledger, the narcotics register,
the handover event for the robots, the ward's receipt; roles and order of steps enforced."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from naho.medication import dispensing, dispensing_pages
from naho.medication.events import DosesHandedOver
from naho.medication.models import (
    DispensedDose,
    MedicationOrder,
    NarcoticRegisterEntry,
    PharmacyStockLot,
    PharmacyStockMove,
)
from naho.platform import i18n
from naho.platform.security.actor import Actor
from naho.platform.security.models import Account
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from tests.conftest import IS_POSTGRES
from tests.medication.test_api import _admit, _events, _measure, _post, _prescribe
from tests.medication.test_barcodes import datamatrix, with_check_digit
from tests.personas import NURSE, PHARMACIST, PHYSICIAN, PORTER, login

UowFactory = Callable[[], UnitOfWork]
TECHNICIAN = "preparateur"
#: 25/11/2026 11:00 in Paris (the test clock is 09:30 UTC), for 24 hours: doses at 12 h, 18 h, 8 h.
START = "2026-11-25T10:00:00+00:00"
TABLET_CIP = with_check_digit("340093000101")  # paracétamol 500 mg comprimé
CAPSULE_CIP = with_check_digit("340093000102")  # paracétamol 500 mg gélule: its exact generic
STRONG_CIP = with_check_digit("340093000103")  # paracétamol 1 g comprimé: another strength
MORPHINE_CIP = with_check_digit("340093000104")
PARACETAMOL = {"product_code": "PARA500CP", "dose_value": 1, "dose_unit": "g", "route": "PO",
               "frequency": "times_per_day", "times_per_day": 3}
MORPHINE = {"product_code": "MORP10LI", "dose_value": 10, "dose_unit": "mg", "route": "PO",
            "frequency": "times_per_day", "times_per_day": 2}
AMOXICILLIN = {"product_code": "AMOX1GCP", "dose_value": 1, "dose_unit": "g", "route": "PO",
               "frequency": "times_per_day", "times_per_day": 3}


def _validate(uow_factory: UowFactory, order_id: str) -> None:
    """The pharmacist's analysis (another step) validated the order."""
    with uow_factory() as uow:
        uow.session.execute(update(MedicationOrder).where(MedicationOrder.id == uuid.UUID(order_id))
                            .values(review_status="validated"))
        uow.commit()


def _order(client: TestClient, patient: str, body: dict[str, Any]) -> str:
    response = _prescribe(client, patient, body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def ward(client: TestClient, uow_factory: UowFactory) -> dict[str, str]:
    """A patient in internal medicine (Lens) with paracetamol and morphine validated, amoxicillin
    awaiting the pharmacist's analysis."""
    patient, _stay = _admit(client)
    _measure(client, patient)
    para, morphine = _order(client, patient, PARACETAMOL), _order(client, patient, MORPHINE)
    amox = _order(client, patient, AMOXICILLIN)
    _validate(uow_factory, para)
    _validate(uow_factory, morphine)
    return {"patient": patient, "paracetamol": para, "morphine": morphine, "amoxicillin": amox}


def _receive(client: TestClient, product: str, cip: str, lot: str, quantity: int, expiry: str = "280131"):  # type: ignore[no-untyped-def]
    login(client, TECHNICIAN)
    return _post(client, "/api/pharmacy/stock/receipts", {
        "establishment": "LENS", "product_code": product, "quantity": quantity,
        "code": datamatrix(cip, expiry=expiry, lot=lot)})


def _open(client: TestClient) -> dict[str, Any]:
    login(client, TECHNICIAN)
    response = _post(client, "/api/pharmacy/batches", {"establishment": "LENS", "unit": "LENS-MED-MIN",
                                                        "start": START, "hours": 24})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _scan(client: TestClient, batch: str, code: str, line: str | None = None):  # type: ignore[no-untyped-def]
    return _post(client, f"/api/pharmacy/batches/{batch}/scan", {"code": code, "line_id": line})


def _lines(batch: dict[str, Any], product: str) -> list[dict[str, Any]]:
    return [line for line in batch["lines"] if line["product_code"] == product]


def _lot(uow_factory: UowFactory, product: str, lot: str) -> tuple[int, int]:
    """(balance, sum of the ledger) of a lot."""
    with uow_factory() as uow:
        row = uow.session.scalars(select(PharmacyStockLot).where(PharmacyStockLot.product_code == product,
                                                                 PharmacyStockLot.lot == lot)).one()
        ledger = uow.session.execute(select(func.sum(PharmacyStockMove.quantity))
                                     .where(PharmacyStockMove.lot_id == row.id)).scalar_one()
        return row.balance, int(ledger or 0)


def test_the_list_gives_validated_doses_with_units_and_keeps_the_others_apart(
        client: TestClient, ward: dict[str, str], uow_factory: UowFactory) -> None:
    login(client, TECHNICIAN)
    response = client.get("/api/pharmacy/dispensing", params={
        "establishment": "LENS", "unit": "LENS-MED-MIN", "start": START, "hours": 24})
    assert response.status_code == 200, response.text
    [patient] = [p for p in response.json()["patients"] if p["patient_id"] == ward["patient"]]
    assert patient["room"] and patient["bed"] and patient["ipp"]
    para = [n for n in patient["lines"] if n["product_code"] == "PARA500CP"]
    assert [n["units"] for n in para] == [2, 2, 2]  # 1 g of 500 mg tablets, at 12 h, 18 h and 8 h
    assert [n["due_at"][:16] for n in para] == ["2026-11-25T11:00", "2026-11-25T17:00", "2026-11-26T07:00"]
    morphine = [n for n in patient["lines"] if n["product_code"] == "MORP10LI"]
    assert len(morphine) == 2 and all(n["narcotic"] and n["units"] == 1 for n in morphine)
    assert not any(n["narcotic"] for n in para)
    assert [a["order_id"] for a in patient["awaiting"]] == [ward["amoxicillin"]]
    assert patient["awaiting"][0]["review_status"] == "pending"
    assert all(n["order_id"] != ward["amoxicillin"] for n in patient["lines"])
    [viewed] = _events(uow_factory, "medication:dispensing:view")
    assert ward["patient"] in viewed.details["patients"] and viewed.target == "LENS-MED-MIN"


def test_a_scanned_pack_prepares_a_line_labelled_out_of_stock_and_resolved_by_its_label(
        client: TestClient, ward: dict[str, str], uow_factory: UowFactory) -> None:
    received = _receive(client, "PARA500CP", TABLET_CIP, "LT1", 10)
    assert received.status_code == 201, received.text
    assert (received.json()["balance"], received.json()["cip13"]) == (10, TABLET_CIP)
    batch = _open(client)
    assert batch["status"] == "open" and len(batch["lines"]) == 5  # 3 paracetamol + 2 morphine
    first = _lines(batch, "PARA500CP")[0]
    response = _scan(client, batch["id"], datamatrix(TABLET_CIP, lot="LT1"))
    assert response.status_code == 200, response.text
    line = response.json()
    assert line["id"] == first["id"] and line["status"] == "prepared" and line["lot"] == "LT1"
    assert line["label"].startswith("D") and len(line["label"]) == 11 and line["label"][1:].isdigit()
    assert _lot(uow_factory, "PARA500CP", "LT1") == (8, 8)  # the balance is the ledger's sum

    with uow_factory() as uow:
        dose = dispensing.dose_of_label(uow.session, f" {line['label']}\r\n")
        assert dose is not None
        assert (str(dose.order_id), str(dose.patient_id), dose.product_code, dose.lot, dose.units) == \
            (ward["paracetamol"], ward["patient"], "PARA500CP", "LT1", 2)
        assert dose.expiry.isoformat() == "2028-01-31" and dose.entry == "scan"
        assert dispensing.dose_of_label(uow.session, "D9999999999") is None
        assert dispensing.dose_of_label(uow.session, "P12345678") is None
    [prepared] = _events(uow_factory, "medication:dispensing:prepare")
    assert str(prepared.patient_id) == ward["patient"] and prepared.details["label"] == line["label"]

    labels = client.get(f"/api/pharmacy/batches/{batch['id']}/labels").json()
    assert [label["number"] for label in labels] == [line["label"]]
    assert labels[0]["product_name"].startswith("Paracétamol 500 mg") and labels[0]["lot"] == "LT1"


def test_an_expired_lot_is_refused_and_a_valid_one_accepted(client: TestClient, ward: dict[str, str],
                                                            uow_factory: UowFactory) -> None:
    expired_receipt = _receive(client, "PARA500CP", TABLET_CIP, "OLD", 10, expiry="250131")
    assert expired_receipt.status_code == 422 and expired_receipt.json()["detail"].startswith("lot OLD expired")
    _receive(client, "PARA500CP", TABLET_CIP, "LT1", 10)
    batch = _open(client)
    refused = _scan(client, batch["id"], datamatrix(TABLET_CIP, lot="LT1", expiry="251031"))
    assert refused.status_code == 422 and "expired" in refused.json()["detail"]
    assert _lot(uow_factory, "PARA500CP", "LT1") == (10, 10)
    assert _scan(client, batch["id"], datamatrix(TABLET_CIP, lot="LT1")).status_code == 200


def test_another_product_is_refused_and_its_exact_generic_accepted(client: TestClient, ward: dict[str, str],
                                                                   uow_factory: UowFactory) -> None:
    _receive(client, "PARA1GCP", STRONG_CIP, "ST1", 10)
    _receive(client, "PARA500GEL", CAPSULE_CIP, "GL1", 10)
    batch = _open(client)
    para = _lines(batch, "PARA500CP")[0]
    wrong = _scan(client, batch["id"], datamatrix(STRONG_CIP, lot="ST1"), para["id"])
    assert wrong.status_code == 422 and "nor an exact generic" in wrong.json()["detail"]
    wrong_any = _scan(client, batch["id"], datamatrix(STRONG_CIP, lot="ST1"))
    assert wrong_any.status_code == 422 and "no line of this batch awaits" in wrong_any.json()["detail"]
    assert _lot(uow_factory, "PARA1GCP", "ST1") == (10, 10)
    generic = _scan(client, batch["id"], datamatrix(CAPSULE_CIP, lot="GL1"), para["id"])
    assert generic.status_code == 200, generic.text
    assert generic.json()["given_product"].startswith("Paracétamol 500 mg gélule")
    with uow_factory() as uow:
        dose = dispensing.dose_of_label(uow.session, generic.json()["label"])
        assert dose is not None and dose.product_code == "PARA500GEL"
    assert _lot(uow_factory, "PARA500GEL", "GL1") == (8, 8)


def test_a_pack_never_received_is_refused(client: TestClient, ward: dict[str, str]) -> None:
    batch = _open(client)
    unknown = _scan(client, batch["id"], datamatrix(TABLET_CIP, lot="LT1"))
    assert unknown.status_code == 422 and "never received" in unknown.json()["detail"]


def test_a_preparation_taking_more_than_the_stock_is_refused(client: TestClient, ward: dict[str, str],
                                                             uow_factory: UowFactory) -> None:
    _receive(client, "PARA500CP", TABLET_CIP, "LT1", 3)
    batch = _open(client)
    assert _scan(client, batch["id"], datamatrix(TABLET_CIP, lot="LT1")).status_code == 200
    short = _scan(client, batch["id"], datamatrix(TABLET_CIP, lot="LT1"))  # 1 left, 2 needed
    assert short.status_code == 409 and short.json()["title"] == "Conflict"
    assert _lot(uow_factory, "PARA500CP", "LT1") == (1, 1)
    _receive(client, "PARA500CP", TABLET_CIP, "LT1", 1)
    assert _scan(client, batch["id"], datamatrix(TABLET_CIP, lot="LT1")).status_code == 200
    assert _lot(uow_factory, "PARA500CP", "LT1") == (0, 0)
    with uow_factory() as uow:
        kinds = list(uow.session.scalars(select(PharmacyStockMove.kind).order_by(PharmacyStockMove.at)))
        assert sorted(kinds) == ["dispensing", "dispensing", "receipt", "receipt"]


def test_a_lot_typed_by_hand_needs_a_reason(client: TestClient, ward: dict[str, str],
                                            uow_factory: UowFactory) -> None:
    _receive(client, "PARA500CP", TABLET_CIP, "LT1", 10)
    batch = _open(client)
    line = _lines(batch, "PARA500CP")[0]
    path = f"/api/pharmacy/batches/{batch['id']}/lines/{line['id']}/manual"
    body = {"product_code": "PARA500CP", "lot": "LT1", "expiry": "2028-01-31", "reason": ""}
    assert _post(client, path, body).status_code == 422
    expired = _post(client, path, {**body, "expiry": "2025-01-31", "reason": "code illisible"})
    assert expired.status_code == 422
    done = _post(client, path, {**body, "reason": "code illisible"})
    assert done.status_code == 200, done.text
    with uow_factory() as uow:
        dose = dispensing.dose_of_label(uow.session, done.json()["label"])
        assert dose is not None and (dose.entry, dose.manual_reason) == ("manual", "code illisible")
    again = _post(client, path, {**body, "reason": "code illisible"})
    assert again.status_code == 409


def test_narcotics_go_to_their_register(client: TestClient, ward: dict[str, str], uow_factory: UowFactory) -> None:
    _receive(client, "MORP10LI", MORPHINE_CIP, "MO1", 5)
    batch = _open(client)
    response = _scan(client, batch["id"], datamatrix(MORPHINE_CIP, lot="MO1"))
    assert response.status_code == 200 and response.json()["narcotic"]
    with uow_factory() as uow:
        [entry] = uow.session.scalars(select(NarcoticRegisterEntry)).all()
        assert (entry.product_code, entry.lot, entry.units, str(entry.patient_id), entry.unit_code) == \
            ("MORP10LI", "MO1", 1, ward["patient"], "LENS-MED-MIN")
        assert entry.by_label.startswith("Kevin")
    period = {"establishment": "LENS", "since": "2026-11-25T00:00:00+00:00", "until": "2026-11-26T00:00:00+00:00"}
    assert client.get("/api/pharmacy/narcotics", params=period).status_code == 403  # a technician
    login(client, PHARMACIST)
    [read] = client.get("/api/pharmacy/narcotics", params=period).json()
    assert (read["product_code"], read["units"], read["patient_id"], read["label"]) == \
        ("MORP10LI", 1, ward["patient"], response.json()["label"])
    assert client.get("/api/pharmacy/narcotics", params={**period, "establishment": "BETHUNE"}).status_code == 403
    [viewed] = _events(uow_factory, "medication:narcotics:view")
    assert viewed.details["patients"] == [ward["patient"]]
    _receive(client, "PARA500CP", TABLET_CIP, "LT1", 10)
    assert _scan(client, batch["id"], datamatrix(TABLET_CIP, lot="LT1")).status_code == 200
    with uow_factory() as uow:  # paracetamol is not a narcotic: the register holds the morphine only
        assert uow.session.execute(select(func.count()).select_from(NarcoticRegisterEntry)).scalar_one() == 1


def _prepare_all(client: TestClient, batch: dict[str, Any]) -> None:
    _receive(client, "PARA500CP", TABLET_CIP, "LT1", 10)
    _receive(client, "MORP10LI", MORPHINE_CIP, "MO1", 5)
    for line in batch["lines"]:
        cip, lot = (MORPHINE_CIP, "MO1") if line["product_code"] == "MORP10LI" else (TABLET_CIP, "LT1")
        assert _scan(client, batch["id"], datamatrix(cip, lot=lot), line["id"]).status_code == 200


def test_handover_publishes_the_event_and_the_unit_nurse_receives(
        client: TestClient, app, ward: dict[str, str], uow_factory: UowFactory) -> None:  # type: ignore[no-untyped-def]
    seen: list[DosesHandedOver] = []
    app.state.container.bus.subscribe(DosesHandedOver, seen.append)
    batch = _open(client)
    handover = f"/api/pharmacy/batches/{batch['id']}/handover"
    early = _post(client, handover, {"urgent": True})
    assert early.status_code == 409 and seen == []  # not fully prepared
    login(client, NURSE)
    not_yet = _post(client, f"/api/pharmacy/batches/{batch['id']}/receipt", {})
    assert not_yet.status_code == 409  # not handed over
    _prepare_all(client, batch)
    login(client, TECHNICIAN)
    assert client.get(f"/api/pharmacy/batches/{batch['id']}").json()["status"] == "prepared"
    done = _post(client, handover, {"urgent": True})
    assert done.status_code == 200 and done.json()["status"] == "handed_over"
    [event] = seen
    assert (event.batch_id, event.establishment_code, event.from_pharmacy, event.to_unit, event.items,
            event.urgent) == (uuid.UUID(batch["id"]), "LENS", "LENS-PUI-PHARMA", "LENS-MED-MIN", 5, True)
    assert event.at == datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    assert _post(client, handover, {}).status_code == 409 and len(seen) == 1

    login(client, NURSE)
    waiting = client.get("/api/pharmacy/units/LENS-MED-MIN/receptions").json()
    assert [b["id"] for b in waiting] == [batch["id"]]
    labels = [line["label"] for line in waiting[0]["lines"]]
    stranger = _post(client, f"/api/pharmacy/batches/{batch['id']}/receipt", {"missing": ["D0000009999"]})
    assert stranger.status_code == 422
    received = _post(client, f"/api/pharmacy/batches/{batch['id']}/receipt",
                     {"missing": [labels[0]], "note": "un sachet manquant"})
    assert received.status_code == 200, received.text
    assert received.json()["status"] == "received"
    assert received.json()["receipt_issues"] == {"missing": [labels[0]], "damaged": [], "note": "un sachet manquant"}
    assert _post(client, f"/api/pharmacy/batches/{batch['id']}/receipt", {}).status_code == 409
    [receipt] = _events(uow_factory, "medication:dispensing:receive")
    assert receipt.actor_label.startswith("Julien")


def test_a_batch_holds_each_dose_once(client: TestClient, ward: dict[str, str]) -> None:
    _open(client)
    again = _post(client, "/api/pharmacy/batches", {"establishment": "LENS", "unit": "LENS-MED-MIN",
                                                    "start": START, "hours": 24})
    assert again.status_code == 409
    listed = client.get("/api/pharmacy/dispensing", params={
        "establishment": "LENS", "unit": "LENS-MED-MIN", "start": START, "hours": 24}).json()
    [patient] = [p for p in listed["patients"] if p["patient_id"] == ward["patient"]]
    assert all(n["in_batch"] for n in patient["lines"])


@pytest.mark.parametrize("who", [PORTER, PHYSICIAN])
def test_porters_and_physicians_cannot_prepare(client: TestClient, ward: dict[str, str], who: str) -> None:
    batch = _open(client)
    login(client, who)
    assert _scan(client, batch["id"], datamatrix(TABLET_CIP, lot="LT1")).status_code == 403
    assert _post(client, "/api/pharmacy/batches", {"establishment": "LENS", "unit": "LENS-MED-MIN",
                                                   "start": START}).status_code == 403
    assert client.get("/api/pharmacy/dispensing", params={
        "establishment": "LENS", "unit": "LENS-MED-MIN", "start": START}).status_code == 403
    assert _post(client, f"/api/pharmacy/batches/{batch['id']}/handover", {}).status_code == 403


def test_a_pharmacy_serves_its_own_establishment(client: TestClient, ward: dict[str, str]) -> None:
    login(client, PHARMACIST)
    params = {"unit": "LENS-MED-MIN", "start": START}
    assert client.get("/api/pharmacy/dispensing", params={"establishment": "BETHUNE", **params}).status_code == 403
    assert client.get("/api/pharmacy/dispensing", params={"establishment": "LENS", **params}).status_code == 200
    other_unit = client.get("/api/pharmacy/dispensing", params={
        "establishment": "LENS", "unit": "BETHUNE-MED-MIN", "start": START})
    assert other_unit.status_code == 422


def test_only_the_units_nurses_receive(client: TestClient, ward: dict[str, str], uow_factory: UowFactory) -> None:
    batch = _open(client)
    _prepare_all(client, batch)
    login(client, TECHNICIAN)
    assert _post(client, f"/api/pharmacy/batches/{batch['id']}/handover", {}).status_code == 200
    assert _post(client, f"/api/pharmacy/batches/{batch['id']}/receipt", {}).status_code == 403  # a technician
    nurse = _other_unit_nurse(uow_factory)
    refused = dispensing.receive_batch
    with pytest.raises(dispensing.NotUnitNurse):
        refused(uow_factory(), nurse, uuid.UUID(batch["id"]))
    login(client, NURSE)
    assert _post(client, f"/api/pharmacy/batches/{batch['id']}/receipt", {}).status_code == 200


def _actor(uow_factory: UowFactory, username: str | None = None, role: Role | None = None,
           not_in_unit: str | None = None) -> Actor:
    from naho.staff import service as staff

    with uow_factory() as uow:
        query = select(Account)
        if username:
            query = query.where(Account.username == username)
        for account in uow.session.scalars(query.order_by(Account.username)):
            roles = frozenset(Role(r) for r in account.role_names)
            if role is not None and role not in roles:
                continue
            if not_in_unit and not_in_unit in {u for _e, u in staff.workplaces_of(uow.session, account.id)}:
                continue
            return Actor(account.id, account.username, account.display_name, roles)
    raise AssertionError("no such account")


def _other_unit_nurse(uow_factory: UowFactory) -> Actor:
    return _actor(uow_factory, role=Role.NURSE, not_in_unit="LENS-MED-MIN")


@pytest.mark.skipif(not IS_POSTGRES, reason="concurrent transactions need PostgreSQL")
def test_two_concurrent_preparations_on_the_last_units_one_wins(
        client: TestClient, ward: dict[str, str], uow_factory: UowFactory) -> None:
    _receive(client, "PARA500CP", TABLET_CIP, "LT1", 2)  # one line's worth
    batch = _open(client)
    first, second = (line["id"] for line in _lines(batch, "PARA500CP")[:2])
    technician = _actor(uow_factory, TECHNICIAN)
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def prepare(line: str) -> None:
        barrier.wait()
        try:
            dispensing.prepare_by_scan(uow_factory(), technician, uuid.UUID(batch["id"]),
                                       datamatrix(TABLET_CIP, lot="LT1"), uuid.UUID(line))
            results[line] = "prepared"
        except dispensing.StockInsufficient:
            results[line] = "refused"

    threads = [threading.Thread(target=prepare, args=(line,)) for line in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results.values()) == ["prepared", "refused"]
    assert _lot(uow_factory, "PARA500CP", "LT1") == (0, 0)
    with uow_factory() as uow:
        assert uow.session.execute(select(func.count()).select_from(DispensedDose)).scalar_one() == 1


def test_an_unknown_quantity_is_said_and_kept_out_of_the_batch(client: TestClient, ward: dict[str, str],
                                                               uow_factory: UowFactory) -> None:
    syrup = _order(client, ward["patient"], {**PARACETAMOL, "product_code": "PARA1GCP", "dose_value": 5,
                                             "dose_unit": "mL", "times_per_day": 1,
                                             "override_reason": "relais"})  # millilitres of a tablet
    _validate(uow_factory, syrup)
    login(client, TECHNICIAN)
    listed = client.get("/api/pharmacy/dispensing", params={
        "establishment": "LENS", "unit": "LENS-MED-MIN", "start": START, "hours": 24}).json()
    [patient] = [p for p in listed["patients"] if p["patient_id"] == ward["patient"]]
    [unknown] = [n for n in patient["lines"] if n["order_id"] == syrup]
    assert unknown["units"] is None and unknown["unknown"].startswith("Unknown quantity")
    batch = _open(client)
    assert all(line["order_id"] != syrup for line in batch["lines"]) and len(batch["lines"]) == 5


def test_an_order_stopped_after_the_batch_opened_is_not_dispensed(client: TestClient, ward: dict[str, str],
                                                                  uow_factory: UowFactory) -> None:
    _receive(client, "PARA500CP", TABLET_CIP, "LT1", 10)
    batch = _open(client)
    login(client, PHYSICIAN)
    assert _post(client, f"/api/medication-orders/{ward['paracetamol']}/stop", {"reason": "relais"}).status_code == 200
    login(client, TECHNICIAN)
    refused = _scan(client, batch["id"], datamatrix(TABLET_CIP, lot="LT1"))
    assert refused.status_code == 409 and "no longer active" in refused.json()["detail"]
    assert _lot(uow_factory, "PARA500CP", "LT1") == (10, 10)


def test_units_come_back_to_stock_with_a_reason(client: TestClient, uow_factory: UowFactory) -> None:
    lot = _receive(client, "PARA500CP", TABLET_CIP, "LT1", 4).json()
    path = f"/api/pharmacy/stock/lots/{lot['id']}/returns"
    assert _post(client, path, {"quantity": 2, "reason": ""}).status_code == 422
    assert _post(client, path, {"quantity": 0, "reason": "non administré"}).status_code == 422
    back = _post(client, path, {"quantity": 2, "reason": "non administré"})
    assert back.status_code == 200 and back.json()["balance"] == back.json()["ledger"] == 6
    stock = client.get("/api/pharmacy/stock", params={"establishment": "LENS"}).json()
    assert [(s["lot"], s["balance"]) for s in stock] == [("LT1", 6)]
    other = _receive(client, "PARA1GCP", TABLET_CIP, "X1", 1)  # a CIP13 belongs to one product
    assert other.status_code == 422 and "was received as PARA500CP" in other.json()["detail"]


def test_the_pages_show_refusals_translated_and_the_ward_receives(client: TestClient, ward: dict[str, str]) -> None:
    from tests.personas import form_token

    _receive(client, "PARA500CP", TABLET_CIP, "LT1", 10)
    _receive(client, "MORP10LI", MORPHINE_CIP, "MO1", 5)
    login(client, TECHNICIAN)
    page = client.get("/pharmacie/dispensation", params={"etablissement": "LENS", "unite": "LENS-MED-MIN",
                                                        "debut": "2026-11-25T11:00"})
    assert page.status_code == 200 and i18n._("Awaiting pharmaceutical analysis") in page.text
    token = form_token(client, "/pharmacie/dispensation")
    opened = client.post("/pharmacie/dispensation/preparations", data={
        "etablissement": "LENS", "unite": "LENS-MED-MIN", "debut": "2026-11-25T11:00", "heures": "24",
        "csrf_token": token}, follow_redirects=False)
    assert opened.status_code == 303
    batch_page = opened.headers["location"]
    expired = client.post(f"{batch_page}/scan", data={"code": datamatrix(TABLET_CIP, lot="LT1", expiry="250131"),
                                                      "csrf_token": token}, follow_redirects=True)
    assert "erreur=ExpiredLot" in str(expired.url)
    assert i18n._(dispensing_pages.REFUSALS["ExpiredLot"]) in expired.text
    batch = client.get(f"/api/pharmacy/batches/{batch_page.rsplit('/', 1)[1]}").json()
    _prepare_all(client, batch)
    login(client, TECHNICIAN)
    token = form_token(client, "/pharmacie/dispensation")
    handed = client.post(f"{batch_page}/remise", data={"urgent": "1", "csrf_token": token}, follow_redirects=True)
    assert handed.status_code == 200 and 'id="handed-over"' in handed.text
    stock_page = client.get("/pharmacie/stock", params={"etablissement": "LENS"})
    assert stock_page.status_code == 200 and "LT1" in stock_page.text

    login(client, NURSE)
    receptions = client.get("/services/LENS-MED-MIN/receptions")
    assert receptions.status_code == 200 and i18n._("Mark as received") in receptions.text
    token = form_token(client, "/services/LENS-MED-MIN/receptions")
    done = client.post(f"/services/LENS-MED-MIN/receptions/{batch['id']}", data={
        "manquants": "", "abimes": "", "note": "", "csrf_token": token}, follow_redirects=True)
    assert done.status_code == 200 and i18n._("Mark as received") not in done.text
    assert i18n._("Received on") in done.text
    login(client, PORTER)
    assert client.get("/services/LENS-MED-MIN/receptions").status_code == 403
    assert client.get("/pharmacie/dispensation").status_code == 403


@pytest.mark.skipif(not IS_POSTGRES, reason="concurrent transactions need PostgreSQL")
def test_concurrent_preparations_of_the_last_lines_close_the_batch(
        client: TestClient, ward: dict[str, str], uow_factory: UowFactory) -> None:
    _receive(client, "PARA500CP", TABLET_CIP, "LT1", 10)
    _receive(client, "MORP10LI", MORPHINE_CIP, "MO1", 5)
    batch = _open(client)
    *first, last_para = _lines(batch, "PARA500CP")
    *earlier, last_morphine = _lines(batch, "MORP10LI")
    for line in first:
        assert _scan(client, batch["id"], datamatrix(TABLET_CIP, lot="LT1"), line["id"]).status_code == 200
    for line in earlier:
        assert _scan(client, batch["id"], datamatrix(MORPHINE_CIP, lot="MO1"), line["id"]).status_code == 200
    technician = _actor(uow_factory, TECHNICIAN)
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def prepare(code: str, line: str) -> None:
        barrier.wait()
        try:
            dispensing.prepare_by_scan(uow_factory(), technician, uuid.UUID(batch["id"]), code, uuid.UUID(line))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=prepare, args=(datamatrix(TABLET_CIP, lot="LT1"), last_para["id"])),
               threading.Thread(target=prepare, args=(datamatrix(MORPHINE_CIP, lot="MO1"), last_morphine["id"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    login(client, TECHNICIAN)
    assert client.get(f"/api/pharmacy/batches/{batch['id']}").json()["status"] == "prepared"
