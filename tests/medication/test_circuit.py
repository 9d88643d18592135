"""The whole medication circuit through the API, as the ward lives it: the physician prescribes,
the pharmacist validates, the pharmacy prepares the doses nominatively (scanned packs, labels),
hands them over, the ward receives them, and the nurse gives each one at the bedside by scanning
the wristband and the dose's label. The label ties the dose to its patient and order: scanned at
another patient's bedside it is refused, whatever the drug."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from naho.platform.clock import FixedClock
from naho.platform.uow import UnitOfWork
from tests.medication.test_administration import _give, _ipp, _rows
from tests.medication.test_api import _admit, _measure, _post, _prescribe
from tests.medication.test_barcodes import datamatrix
from tests.medication.test_dispensing import TABLET_CIP, TECHNICIAN, _open, _receive, _scan
from tests.personas import NURSE, PHARMACIST, PHYSICIAN, login

UowFactory = Callable[[], UnitOfWork]
PARACETAMOL = {"product_code": "PARA500CP", "dose_value": 1, "dose_unit": "g", "route": "PO",
               "frequency": "times_per_day", "times_per_day": 3}
NOON = "2026-11-25T11:00:00Z"  # 12 h in Paris: the first dose of the batch's period


def _signed(client: TestClient, patient: str) -> str:
    response = _prescribe(client, patient, PARACETAMOL)
    assert response.status_code == 201, response.text
    assert response.json()["review_status"] == "pending"
    return str(response.json()["id"])


def _validated(client: TestClient, order: str) -> None:
    login(client, PHARMACIST)
    response = _post(client, f"/api/medication-orders/{order}/review", {"decision": "validated"})
    assert response.status_code in (200, 201), response.text


def test_prescribed_validated_dispensed_received_and_given_at_the_bedside(
        client: TestClient, clock: FixedClock, uow_factory: UowFactory) -> None:
    lucien, _ = _admit(client)
    odette, _ = _admit(client, bed="LENS-MED-MIN-522-1", name="Vasseur", first_names="Odette")
    for patient in (lucien, odette):
        _measure(client, patient)
    orders = {lucien: _signed(client, lucien), odette: _signed(client, odette)}

    # Not validated yet: nothing is dispensed.
    login(client, TECHNICIAN)
    assert _post(client, "/api/pharmacy/batches", {"establishment": "LENS", "unit": "LENS-MED-MIN",
                                                   "start": "2026-11-25T10:00:00+00:00",
                                                   "hours": 24}).status_code in (409, 422)
    for order in orders.values():
        _validated(client, order)
    login(client, PHYSICIAN)  # the prescriber sees the pharmacist's word on each order
    [listed] = client.get(f"/api/patients/{lucien}/medication-orders").json()
    assert listed["review_status"] == "validated"
    assert listed["pharmacist_review"]["decision"] == "validated"
    assert listed["pharmacist_review"]["pharmacist"].endswith("(pharmacien)")
    login(client, TECHNICIAN)

    assert _receive(client, "PARA500CP", TABLET_CIP, "LT7", 20).status_code == 201
    batch = _open(client)
    assert len(batch["lines"]) == 6  # 3 doses each over the 24 h
    labels: dict[tuple[str, str], str] = {}
    for line in batch["lines"]:
        prepared = _scan(client, batch["id"], datamatrix(TABLET_CIP, lot="LT7"), line["id"])
        assert prepared.status_code == 200, prepared.text
        labels[(line["patient_id"], line["due_at"][:16])] = prepared.json()["label"]
    assert _post(client, f"/api/pharmacy/batches/{batch['id']}/handover", {}).status_code == 200
    login(client, NURSE)
    assert _post(client, f"/api/pharmacy/batches/{batch['id']}/receipt", {}).json()["status"] == "received"

    clock.advance(minutes=90)  # 11:00 UTC, the noon round
    lucien_label = labels[(lucien, "2026-11-25T11:00")]
    odette_label = labels[(odette, "2026-11-25T11:00")]
    wristband = "P" + _ipp(uow_factory, lucien)

    swapped = _give(client, orders[lucien], due_at=NOON, patient_scan=wristband, dose_scan=odette_label)
    assert swapped.status_code == 422, swapped.text
    refused: list[dict[str, Any]] = [c for c in swapped.json()["checks"] if c["blocking"]]
    assert [c["right"] for c in refused] == ["patient"]
    assert "autre patient" in refused[0]["message"] or "another patient" in refused[0]["message"]

    given = _give(client, orders[lucien], due_at=NOON, patient_scan=wristband, dose_scan=lucien_label)
    assert given.status_code == 201, given.text
    [row] = _rows(uow_factory)
    assert (str(row.order_id), row.product_code, row.lot, row.outcome) == (orders[lucien], "PARA500CP", "LT7",
                                                                             "given")
    again = _give(client, orders[lucien], due_at=NOON, patient_scan=wristband, dose_scan=lucien_label)
    assert again.status_code == 409
    unknown = _give(client, orders[odette], due_at=NOON, patient_scan="P" + _ipp(uow_factory, odette),
                    dose_scan="D9999999999")
    assert unknown.status_code == 422
    assert [c["right"] for c in unknown.json()["checks"] if c["blocking"]] == ["drug"]
