"""Bedside administration through the JSON API and the pages, on the real database: recorded
once (the second time is a conflict), refused and traced when a right is not met, the door for
nurses of another unit and porters, infusions, the unit's timeline, the fast paths, the wristband."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.identity import service as identity
from naho.medication.administration import DOSE_RESOLVERS
from naho.medication.catalogue import load_catalogue
from naho.medication.models import MedicationAdministration, MedicationOrder
from naho.medication.rules import Catalogue, UnknownProduct
from naho.medication.scan import ScanKind, read_dose
from naho.platform.audit import AuditTag
from naho.platform.clock import FixedClock
from tests.medication.test_api import (
    PARACETAMOL,
    UowFactory,
    _admit,
    _chart,
    _events,
    _measure,
    _orders,
    _post,
    _prescribe,
)
from tests.medication.test_barcodes import CIP, datamatrix
from tests.personas import CLERK, NURSE, PHYSICIAN, PORTER, form_token, login

#: Paracetamol 1 g every 6 hours from 9 h UTC (the test clock is 9 h 30 UTC): two 500 mg tablets.
EVERY_6H = {"product_code": "PARA500CP", "dose_value": 1, "dose_unit": "g", "route": "PO",
            "frequency": "every_hours", "every_hours": 6, "starts_at": "2026-11-25T09:00:00Z"}
DUE = "2026-11-25T09:00:00Z"
LABEL = "MPARA500CP/L2345/271231"


def _ipp(uow_factory: UowFactory, patient: str) -> str:
    with uow_factory() as uow:
        return identity.summaries(uow.session, [uuid.UUID(patient)])[uuid.UUID(patient)].ipp


def _order(client: TestClient, patient: str, body: dict[str, Any]) -> str:
    response = _prescribe(client, patient, body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _give(client: TestClient, order: str, **body: Any):  # type: ignore[no-untyped-def]
    login(client, NURSE)
    return _post(client, "/api/medication-administrations", {"order_id": order, **body})


def _rows(uow_factory: UowFactory) -> list[MedicationAdministration]:
    with uow_factory() as uow:
        rows = list(uow.session.scalars(select(MedicationAdministration).order_by(MedicationAdministration.at)))
        uow.session.expunge_all()
        return rows


def _admit_at_bethune(client: TestClient) -> str:
    """A patient in internal medicine at Béthune, where the demo physician works and the nurse does not."""
    login(client, CLERK)
    token = form_token(client)
    patient = client.post("/api/patients", headers={"x-csrf-token": token}, json={
        "birth_name": "Vasseur", "first_names": "Paul", "sex": "M", "birth_date": "1950-02-01"}).json()["id"]
    stay = client.post("/api/encounters", headers={"x-csrf-token": token}, json={
        "patient_id": patient, "establishment_code": "BETHUNE", "encounter_class": "inpatient",
        "unit_code": "BETHUNE-MED-MIN"})
    assert stay.status_code == 201, stay.text
    login(client, PHYSICIAN)  # the demo nurse is not of this unit
    _chart(client, f"/patients/{patient}/constantes", weight="72", height="175")
    return str(patient)


@pytest.fixture
def patient(client: TestClient) -> str:
    """A man of 69 in bed in internal medicine at Lens (the demo nurse's unit), weighed and measured."""
    patient, _stay = _admit(client)
    _measure(client, patient)
    return patient


def test_the_right_dose_is_recorded_once_and_the_second_time_is_a_conflict(
        client: TestClient, patient: str, uow_factory: UowFactory) -> None:
    order = _order(client, patient, EVERY_6H)
    wristband = "P" + _ipp(uow_factory, patient)
    given = _give(client, order, due_at=DUE, patient_scan=wristband, dose_scan=LABEL, amount=2)
    assert given.status_code == 201, given.text
    body = given.json()
    assert (body["outcome"], body["due_sequence"], body["product_code"], body["lot"]) == ("given", 1, "PARA500CP",
                                                                                         "L2345")
    assert body["unreviewed"] is True  # not yet reviewed: given, shown and traced
    assert {c["right"] for c in body["checks"] if not c["passed"]} == {"review"}
    [row] = _rows(uow_factory)
    assert (row.patient_scan, row.dose_scan, row.amount, row.route, row.recorded_by_id is not None) == (
        wristband, LABEL, 2, "PO", True)
    [event] = _events(uow_factory, "medication:administration:recorded")
    assert event.target == body["id"] and event.patient_id == uuid.UUID(patient) and event.details["unreviewed"]

    again = _give(client, order, due_at=DUE, patient_scan=wristband, dose_scan=LABEL, amount=2)
    assert again.status_code == 409, again.text
    assert len(_rows(uow_factory)) == 1
    checked = _post(client, "/api/medication-administrations/checks", {
        "order_id": order, "due_at": DUE, "patient_scan": wristband, "dose_scan": LABEL})
    assert checked.json()["blocked"] and "Julien DUPONT" in str(checked.json()["checks"])


def test_another_patients_wristband_is_refused_traced_and_nothing_is_saved(
        client: TestClient, patient: str, uow_factory: UowFactory) -> None:
    other, _ = _admit(client, bed=None, name="Hennebelle", first_names="Rose")
    order = _order(client, patient, EVERY_6H)
    refused = _give(client, order, due_at=DUE, patient_scan="P" + _ipp(uow_factory, other), dose_scan=LABEL)
    assert refused.status_code == 422, refused.text
    blocking = [c for c in refused.json()["checks"] if c["blocking"]]
    assert [c["right"] for c in blocking] == ["patient"]
    assert _rows(uow_factory) == []
    [trace] = _events(uow_factory, "medication:administration:refused")
    assert trace.details["refused"][0]["right"] == "patient" and trace.target == order


def test_ten_times_the_dose_is_refused_and_a_partial_dose_with_its_reason_is_recorded(
        client: TestClient, patient: str, uow_factory: UowFactory) -> None:
    order = _order(client, patient, EVERY_6H)
    wristband = "P" + _ipp(uow_factory, patient)
    assert _give(client, order, due_at=DUE, patient_scan=wristband, dose_scan=LABEL, amount=20).status_code == 422
    partial = _give(client, order, due_at=DUE, patient_scan=wristband, dose_scan=LABEL, amount=1,
                    outcome="partly_given", reason="a vomi après un comprimé")
    assert partial.status_code == 201, partial.text
    [row] = _rows(uow_factory)
    assert (row.outcome, row.amount, row.reason) == ("partly_given", 1, "a vomi après un comprimé")


def test_a_dose_not_given_is_recorded_with_its_coded_reason(client: TestClient, patient: str,
                                                            uow_factory: UowFactory) -> None:
    order = _order(client, patient, EVERY_6H)
    wristband = "P" + _ipp(uow_factory, patient)
    assert _give(client, order, due_at=DUE, patient_scan=wristband, outcome="not_given").status_code == 422
    done = _give(client, order, due_at=DUE, patient_scan=wristband, outcome="not_given", reason_code="fasting")
    assert done.status_code == 201, done.text
    [row] = _rows(uow_factory)
    assert (row.outcome, row.reason_code, row.product_code) == ("not_given", "fasting", None)


def test_the_checks_are_answered_without_recording(client: TestClient, patient: str,
                                                   uow_factory: UowFactory) -> None:
    order = _order(client, patient, EVERY_6H)
    login(client, NURSE)
    body = {"order_id": order, "due_at": DUE, "patient_scan": "P" + _ipp(uow_factory, patient), "dose_scan": LABEL}
    checked = _post(client, "/api/medication-administrations/checks", body)
    assert checked.status_code == 200, checked.text
    assert checked.json()["id"] is None and not checked.json()["blocked"]
    assert not any(c["blocking"] for c in checked.json()["checks"])
    expired = _post(client, "/api/medication-administrations/checks", {**body, "dose_scan": "MPARA500CP/L1/251231"})
    assert expired.status_code == 200 and expired.json()["blocked"]
    assert [c["right"] for c in expired.json()["checks"] if c["blocking"]] == ["drug"]
    unknown = _post(client, "/api/medication-administrations/checks", {**body, "dose_scan": "D0000004711"})
    assert unknown.json()["blocked"]
    assert [c["right"] for c in unknown.json()["checks"] if c["blocking"]] == ["drug"]
    garbage = _post(client, "/api/medication-administrations/checks", {**body, "patient_scan": "P0100"})
    assert [c["right"] for c in garbage.json()["checks"] if c["blocking"]] == ["patient"]
    assert _rows(uow_factory) == [] and _events(uow_factory, "medication:administration:refused") == []


def test_a_suspended_order_is_not_given(client: TestClient, patient: str, uow_factory: UowFactory) -> None:
    order = _order(client, patient, EVERY_6H)
    assert _post(client, f"/api/medication-orders/{order}/suspend", {"reason": "bilan"}).status_code == 200
    refused = _give(client, order, due_at=DUE, patient_scan="P" + _ipp(uow_factory, patient), dose_scan=LABEL)
    assert refused.status_code == 422
    assert [c["right"] for c in refused.json()["checks"] if c["blocking"]] == ["order"]


def test_a_nurse_of_another_unit_gets_not_found_and_a_porter_is_refused(
        client: TestClient, uow_factory: UowFactory) -> None:
    elsewhere = _admit_at_bethune(client)
    order = _order(client, elsewhere, EVERY_6H)
    wristband = "P" + _ipp(uow_factory, elsewhere)
    assert _give(client, order, due_at=DUE, patient_scan=wristband, dose_scan=LABEL).status_code == 404
    [denied] = [e for e in _events(uow_factory, str(AuditTag.ACCESS_DENIED)) if e.patient_id == uuid.UUID(elsewhere)]
    assert denied.details["action"] == "medication:administration:record"
    login(client, PORTER)
    assert _post(client, "/api/medication-administrations", {"order_id": order, "due_at": DUE}).status_code == 403
    assert client.get("/api/units/LENS-MED-MIN/medication-timeline").status_code == 403
    assert _rows(uow_factory) == []


def test_a_late_dose_needs_a_reason(client: TestClient, patient: str, clock: FixedClock,
                                    uow_factory: UowFactory) -> None:
    order = _order(client, patient, EVERY_6H)
    clock.advance(hours=2)
    body = {"due_at": DUE, "patient_scan": "P" + _ipp(uow_factory, patient), "dose_scan": LABEL}
    assert _give(client, order, **body).status_code == 422
    late = _give(client, order, **body, reason="patient en radiologie")
    assert late.status_code == 201, late.text
    assert any(c["right"] == "time" and not c["passed"] and not c["blocking"] for c in late.json()["checks"])


def test_an_if_needed_order_is_given_within_its_maximum(client: TestClient, patient: str, clock: FixedClock,
                                                        uow_factory: UowFactory) -> None:
    order = _order(client, patient, {"product_code": "PARA500CP", "dose_value": 1, "dose_unit": "g", "route": "PO",
                                     "frequency": "if_needed", "max_per_24h": 2, "indication": "douleur EVA > 3"})
    body = {"patient_scan": "P" + _ipp(uow_factory, patient), "dose_scan": LABEL, "reason": "EVA 6"}
    assert _give(client, order, **body).status_code == 201
    clock.advance(hours=6)
    assert _give(client, order, **body).status_code == 201
    clock.advance(hours=6)
    over = _give(client, order, **body)
    assert over.status_code == 422 and [c["right"] for c in over.json()["checks"] if c["blocking"]] == ["time"]
    timeline = client.get("/api/units/LENS-MED-MIN/medication-timeline").json()
    [line] = [o for p in timeline["patients"] for o in p["orders"] if o["order_id"] == order]
    assert (line["given_24h"], line["max_per_24h"]) == (2, 2)


def test_the_unit_timeline_shows_due_doses_with_their_status(client: TestClient, patient: str,
                                                            uow_factory: UowFactory) -> None:
    order = _order(client, patient, EVERY_6H)
    suspended = _order(client, patient, {**PARACETAMOL, "product_code": "AMOX1GCP"})
    assert _post(client, f"/api/medication-orders/{suspended}/suspend", {}).status_code == 200
    late = _order(client, patient, {"product_code": "PARA500CP", "dose_value": 1, "dose_unit": "g", "route": "PO",
                                    "frequency": "every_hours", "every_hours": 12,
                                    "starts_at": "2026-11-25T07:00:00Z", "override_reason": "relais"})
    assert _give(client, order, due_at=DUE, patient_scan="P" + _ipp(uow_factory, patient), dose_scan=LABEL,
                 amount=2).status_code == 201
    timeline = client.get("/api/units/LENS-MED-MIN/medication-timeline?hours_before=4&hours_after=12")
    assert timeline.status_code == 200, timeline.text
    [mine] = [p for p in timeline.json()["patients"] if p["patient_id"] == patient]
    lines = {o["order_id"]: o for o in mine["orders"]}
    assert suspended not in lines  # suspended orders are not due
    assert [(d["due_at"][11:16], d["status"]) for d in lines[order]["doses"]] == [
        ("09:00", "given"), ("15:00", "to_give"), ("21:00", "to_give")]
    assert [(d["due_at"][11:16], d["status"]) for d in lines[late]["doses"]] == [("07:00", "late"),
                                                                                ("19:00", "to_give")]
    assert lines[order]["unreviewed"] is True and lines[order]["review_refused"] is False
    with uow_factory() as uow:  # the pharmacist refuses the other one (the review step's decision)
        refused = uow.session.get(MedicationOrder, uuid.UUID(late))
        assert refused is not None
        refused.review_status = "refused"
        uow.commit()
    again = client.get("/api/units/LENS-MED-MIN/medication-timeline").json()
    [line] = [o for p in again["patients"] for o in p["orders"] if o["order_id"] == late]
    assert (line["review_refused"], line["unreviewed"]) == (True, False)
    [view, _again] = _events(uow_factory, "medication:timeline:view")
    assert patient in view.details["patients"] and view.target == "LENS-MED-MIN"
    page = client.get("/services/LENS-MED-MIN/plan-de-soins")
    assert page.status_code == 200 and "PARA500CP" not in page.text and "Paracétamol 500 mg comprimé" in page.text
    assert 'id="scan-input"' in page.text and "unreviewed" in page.text


def test_an_infusion_is_started_titrated_within_its_range_and_stopped(
        client: TestClient, patient: str, uow_factory: UowFactory) -> None:
    order = _order(client, patient, {"product_code": "MORP1MGINJ", "dose_value": 1, "dose_unit": "mg/h",
                                     "route": "IV", "frequency": "continuous", "override_reason": "douleur"})
    with uow_factory() as uow:
        row = uow.session.get(MedicationOrder, uuid.UUID(order))
        assert row is not None
        row.titration_min, row.titration_max, row.concentration_value, row.concentration_unit = 0.5, 3, 1, "mg/mL"
        uow.commit()
    login(client, NURSE)
    path = f"/api/medication-orders/{order}/infusion-events"
    start = {"kind": "infusion_start", "rate_ml_h": 1, "bag_volume_ml": 50, "patient_scan": "P" + _ipp(
        uow_factory, patient), "dose_scan": "MMORP1MGINJ/L77/271231"}
    assert _post(client, path, {"kind": "rate_change", "dose_rate": 2}).status_code == 422  # not started
    started = _post(client, path, start)
    assert started.status_code == 201, started.text
    assert started.json()["dose_rate"] == 1  # from 1 mL/h at 1 mg/mL
    assert _post(client, path, start).status_code == 422  # already running
    assert _post(client, path, {"kind": "rate_change", "dose_rate": 5}).status_code == 422  # above 3 mg/h
    assert _post(client, path, {"kind": "rate_change", "dose_rate": 2.5, "rate_ml_h": 2.5}).status_code == 201
    assert _post(client, path, {"kind": "bag_change", "bag_volume_ml": 50}).status_code == 422  # not scanned
    bag = _post(client, path, {**start, "kind": "bag_change", "rate_ml_h": None, "dose_scan": "MMORP1MGINJ/L78/271231"})
    assert bag.status_code == 201 and bag.json()["lot"] == "L78"
    timeline = client.get("/api/units/LENS-MED-MIN/medication-timeline").json()
    [line] = [o for p in timeline["patients"] for o in p["orders"] if o["order_id"] == order]
    assert (line["infusion"], line["dose_rate"], line["rate_ml_h"]) == ("running", 2.5, 2.5)
    login(client, PHYSICIAN)
    assert _post(client, f"/api/medication-orders/{order}/stop", {"reason": "relais per os"}).status_code == 200
    login(client, NURSE)  # the order ended, the pump still runs: shown until stopped
    timeline = client.get("/api/units/LENS-MED-MIN/medication-timeline").json()
    [line] = [o for p in timeline["patients"] for o in p["orders"] if o["order_id"] == order]
    assert (line["order_status"], line["infusion"]) == ("stopped", "running")
    assert _post(client, path, {"kind": "rate_change", "dose_rate": 2}).status_code == 422  # order not in force
    assert _post(client, path, {"kind": "infusion_stop"}).status_code == 201
    timeline = client.get("/api/units/LENS-MED-MIN/medication-timeline").json()
    assert order not in [o["order_id"] for p in timeline["patients"] for o in p["orders"]]
    assert [r.kind for r in _rows(uow_factory)] == ["infusion_start", "rate_change", "bag_change", "infusion_stop"]
    assert len(_events(uow_factory, "medication:infusion:start")) == 1


def test_an_immediate_order_is_given_in_one_step_after_the_scans(client: TestClient, patient: str,
                                                                 uow_factory: UowFactory) -> None:
    order = _order(client, patient, {"product_code": "PARA500CP", "dose_value": 1, "dose_unit": "g", "route": "PO",
                                     "frequency": "once"})
    given = _give(client, order, patient_scan="P" + _ipp(uow_factory, patient), dose_scan=LABEL)
    assert given.status_code == 201, given.text
    assert (given.json()["due_sequence"], given.json()["amount"]) == (1, 2)


def test_the_anaesthetist_prescribes_and_gives_a_bolus_at_once(client: TestClient, patient: str,
                                                               uow_factory: UowFactory) -> None:
    login(client, PHYSICIAN)
    response = _post(client, f"/api/patients/{patient}/anaesthesia-drugs", {
        "order": {"product_code": "PARA1GINJ", "dose_value": 1, "dose_unit": "g", "route": "IV", "frequency": "once"},
        "amount": 1, "patient_scan": "P" + _ipp(uow_factory, patient), "dose_scan": "MPARA1GINJ/L9/271231"})
    assert response.status_code == 201, response.text
    assert response.json()["administration"]["outcome"] == "given"
    assert response.json()["order"]["frequency"] == "once"
    page = client.get(f"/patients/{patient}/anesthesie")
    assert page.status_code == 200 and "Paracétamol 1 g/100 mL" in page.text and "L9" in page.text


def test_the_wristband_is_printed_for_clerks_and_nurses_with_the_ipp_barcode(
        client: TestClient, patient: str, uow_factory: UowFactory) -> None:
    ipp = _ipp(uow_factory, patient)
    for who in (CLERK, NURSE):
        login(client, who)
        page = client.get(f"/patients/{patient}/bracelet")
        assert page.status_code == 200, page.text
        assert f'id="wristband-ipp">{ipp}<' in page.text and "data:image/svg+xml;base64," in page.text
        assert "DEPREZ" in page.text and "08/11/1957" in page.text
    login(client, PORTER)
    assert client.get(f"/patients/{patient}/bracelet").status_code == 403
    assert len(_events(uow_factory, "patient:wristband:print")) == 2


def test_the_anaesthetist_gives_an_infusion_from_the_page_and_a_wrong_wristband_is_refused(
        client: TestClient, patient: str, uow_factory: UowFactory) -> None:
    other, _ = _admit(client, bed=None, name="Hennebelle", first_names="Rose")
    login(client, PHYSICIAN)
    path = f"/patients/{patient}/anesthesie"
    form = {"product_code": "PARA1GINJ", "kind": "once", "dose_value": "1", "dose_unit": "g", "route": "IV",
            "amount": "1", "patient_scan": "P" + _ipp(uow_factory, other), "dose_scan": "MPARA1GINJ/L9/271231",
            "csrf_token": form_token(client, path)}
    refused = client.post(path, data=form, follow_redirects=False)
    assert refused.status_code == 422 and 'id="anaesthesia-refused"' in refused.text
    assert _ipp(uow_factory, other) in refused.text  # the wrong-patient check, said on the page
    [signed] = [o for o in _orders(uow_factory, patient) if o.product_code == "PARA1GINJ"]
    assert signed.status == "stopped"  # signed then stopped: no dose of it left due
    infusion = {**form, "product_code": "MORP1MGINJ", "kind": "continuous", "dose_value": "1", "dose_unit": "mg/h",
                "amount": "", "dose_rate": "1", "rate_ml_h": "1", "patient_scan": "P" + _ipp(uow_factory, patient),
                "dose_scan": "MMORP1MGINJ/L77/271231", "override_reason": "analgésie peropératoire"}
    started = client.post(path, data=infusion, follow_redirects=False)
    assert started.status_code == 303, started.text
    assert [r.kind for r in _rows(uow_factory)] == ["infusion_start"]
    page = client.get(path)
    assert "Morphine chlorhydrate 1 mg/mL" in page.text and "L77" in page.text
    login(client, NURSE)
    assert client.get(path).status_code == 200
    assert client.post(path, data={**infusion, "csrf_token": form_token(client, path)},
                       follow_redirects=False).status_code == 403


def test_a_manufacturers_box_resolves_to_the_formulary_product_holding_its_cip13() -> None:
    catalogue = load_catalogue()
    boxed = replace(catalogue.product("PARA500CP"), cip13=(CIP,))
    with_box = Catalogue(catalogue.substances, {**catalogue.products, "PARA500CP": boxed})
    scan = read_dose(datamatrix(expiry="280131", lot="L2401A"), date(2026, 11, 25))
    resolved = DOSE_RESOLVERS[ScanKind.PACK](None, scan, with_box)  # type: ignore[arg-type]
    assert (resolved.product_code, resolved.lot, resolved.expiry) == ("PARA500CP", "L2401A", date(2028, 1, 31))
    with pytest.raises(UnknownProduct):
        DOSE_RESOLVERS[ScanKind.PACK](None, scan, catalogue)  # type: ignore[arg-type]


def test_the_timeline_is_the_units_own(client: TestClient, patient: str) -> None:
    login(client, NURSE)
    assert client.get("/api/units/LENS-MED-CARDIO/medication-timeline").status_code == 403
    assert client.get("/services/LENS-MED-CARDIO/plan-de-soins").status_code == 403
    login(client, PHYSICIAN)
    mine = client.get("/api/units/LENS-MED-MIN/medication-timeline")
    assert mine.status_code == 200 and patient in [p["patient_id"] for p in mine.json()["patients"]]
    assert client.get("/api/units/LENS-MED-MIN/medication-timeline?hours_before=30").status_code == 422
