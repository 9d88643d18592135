"""Medication orders through the JSON API: the physician of the care team prescribes with the
safety checks applied; refusals save nothing and are traced; others are refused by role or door."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from naho.medication.models import MedicationOrder, MedicationOrderAlert
from naho.platform.audit import AuditEvent
from naho.platform.uow import UnitOfWork
from tests.personas import CLERK, NURSE, PHARMACIST, PHYSICIAN, form_token, login

UowFactory = Callable[[], UnitOfWork]

#: A legitimate order for an adult of 72 kg: paracetamol 1 g three times a day by mouth.
PARACETAMOL = {"product_code": "PARA1GCP", "dose_value": 1, "dose_unit": "g", "route": "PO",
               "frequency": "times_per_day", "times_per_day": 3}
AMOXICILLIN = {"product_code": "AMOX1GCP", "dose_value": 1, "dose_unit": "g", "route": "PO",
               "frequency": "times_per_day", "times_per_day": 3}


def _admit(client: TestClient, unit: str = "LENS-MED-MIN", bed: str | None = "LENS-MED-MIN-521-1",
           name: str = "Deprez", first_names: str = "Lucien") -> tuple[str, str]:
    """A patient admitted by the admission desk; (patient id, stay id)."""
    login(client, CLERK)
    token = form_token(client)
    patient = client.post("/api/patients", headers={"x-csrf-token": token}, json={
        "birth_name": name, "first_names": first_names, "sex": "M", "birth_date": "1957-11-08"}).json()["id"]
    stay = client.post("/api/encounters", headers={"x-csrf-token": token}, json={
        "patient_id": patient, "establishment_code": "LENS", "encounter_class": "inpatient",
        "unit_code": unit, "bed_code": bed})
    assert stay.status_code == 201, stay.text
    return str(patient), str(stay.json()["id"])


def _chart(client: TestClient, path: str, **data: str) -> None:
    response = client.post(path, data={**data, "csrf_token": form_token(client)}, follow_redirects=False)
    assert response.status_code == 303 and "erreur" not in response.headers["location"], response.headers


def _measure(client: TestClient, patient: str, *, weight: str | None = "72", height: str | None = "175") -> None:
    """The nurse weighs and measures the patient (chart form)."""
    login(client, NURSE)
    values = {k: v for k, v in (("weight", weight), ("height", height)) if v}
    _chart(client, f"/patients/{patient}/constantes", **values)


def _allergic_to_penicillins(client: TestClient, patient: str) -> None:
    login(client, NURSE)
    _chart(client, f"/patients/{patient}/allergies", substance_label="Pénicillines", substance_code="ATC:J01C",
           criticality="high", reaction="Oedème de Quincke")


def _post(client: TestClient, path: str, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    return client.post(path, headers={"x-csrf-token": form_token(client)}, json=body)


def _prescribe(client: TestClient, patient: str, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    login(client, PHYSICIAN)
    return _post(client, f"/api/patients/{patient}/medication-orders", body)


def _orders(uow_factory: UowFactory, patient: str | None = None) -> list[MedicationOrder]:
    with uow_factory() as uow:
        query = select(MedicationOrder).order_by(MedicationOrder.created_at, MedicationOrder.version)
        if patient:
            query = query.where(MedicationOrder.patient_id == uuid.UUID(patient))
        rows = list(uow.session.scalars(query))
        uow.session.expunge_all()
        return rows


def _events(uow_factory: UowFactory, action: str) -> list[AuditEvent]:
    with uow_factory() as uow:
        rows = list(uow.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                        .order_by(AuditEvent.seq)))
        uow.session.expunge_all()
        return rows


@pytest.fixture
def patient(client: TestClient) -> str:
    """A man of 69 in internal medicine (the demo physician's and nurse's unit), weighed and measured."""
    patient, _stay = _admit(client)
    _measure(client, patient)
    return patient


def test_a_legitimate_order_is_saved_pending_review(client: TestClient, patient: str,
                                                    uow_factory: UowFactory) -> None:
    response = _prescribe(client, patient, PARACETAMOL)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "active" and order["review_status"] == "pending" and order["version"] == 1
    assert order["weight_kg"] == 72 and order["height_cm"] == 175  # from the chart (arrêté du 6 avril 2011)
    assert order["product_name"] == "Paracétamol 1 g comprimé" and order["prescriber"].startswith("Claire")
    # no blocking or override alert; the unknown clearance of a renally adjusted drug is said
    assert {a["severity"] for a in order["alerts"]} <= {"info"}
    assert any(a["kind"] == "renal" for a in order["alerts"])
    assert order["encounter_id"] is not None
    login(client, NURSE)
    listed = client.get(f"/api/patients/{patient}/medication-orders").json()
    assert [o["id"] for o in listed] == [order["id"]]
    [signed] = _events(uow_factory, "medication:order:sign")
    assert signed.target == order["id"] and signed.reason is None


def test_the_allergic_patient_is_refused_amoxicillin_and_nothing_is_saved(
        client: TestClient, patient: str, uow_factory: UowFactory) -> None:
    _allergic_to_penicillins(client, patient)
    response = _prescribe(client, patient, AMOXICILLIN)
    assert response.status_code == 422, response.text
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [a["kind"] for a in body["alerts"]] == ["allergy"]
    assert body["alerts"][0]["severity"] == "blocking" and "J01C" in body["alerts"][0]["message"]
    assert _orders(uow_factory) == []
    # a reason does not lift a contraindication
    forced = _post(client, f"/api/patients/{patient}/medication-orders", {**AMOXICILLIN, "override_reason": "urgence"})
    assert forced.status_code == 422 and _orders(uow_factory) == []
    refused = _events(uow_factory, "medication:order:refused")
    assert len(refused) == 2 and refused[0].patient_id is not None
    assert {"kind": "allergy", "severity": "blocking"} in refused[0].details["alerts"]


def test_the_same_amoxicillin_order_is_saved_for_a_patient_without_allergy(
        client: TestClient, patient: str, uow_factory: UowFactory) -> None:
    response = _prescribe(client, patient, AMOXICILLIN)
    assert response.status_code == 201, response.text
    assert [o.product_code for o in _orders(uow_factory)] == ["AMOX1GCP"]


def test_an_alert_needing_a_reason_refuses_without_one_and_is_traced_with_it(
        client: TestClient, patient: str, uow_factory: UowFactory) -> None:
    too_much = {**PARACETAMOL, "times_per_day": 6}  # 6 g a day: above 4 g, below twice it
    refused = _prescribe(client, patient, too_much)
    assert refused.status_code == 409, refused.text
    assert [(a["kind"], a["severity"]) for a in refused.json()["alerts"]] == [("dose", "override_required")]
    blank = _post(client, f"/api/patients/{patient}/medication-orders", {**too_much, "override_reason": "  "})
    assert blank.status_code == 409
    assert _orders(uow_factory) == []
    reason = "Douleur néoplasique, avis de l'équipe douleur"
    saved = _post(client, f"/api/patients/{patient}/medication-orders", {**too_much, "override_reason": reason})
    assert saved.status_code == 201, saved.text
    order = saved.json()
    assert order["override_reason"] == reason
    [dose] = [a for a in order["alerts"] if a["kind"] == "dose"]
    assert dose["override_reason"] == reason and dose["severity"] == "override_required"
    [signed] = _events(uow_factory, "medication:order:sign")
    assert signed.reason == reason and signed.details["overridden"] == ["dose"]
    with uow_factory() as uow:
        stored = uow.session.scalars(select(MedicationOrderAlert).where(MedicationOrderAlert.kind == "dose")).one()
        assert stored.override_reason == reason


def test_without_a_weight_the_order_is_blocked(client: TestClient, uow_factory: UowFactory) -> None:
    patient, _ = _admit(client)
    _measure(client, patient, weight=None)
    response = _prescribe(client, patient, PARACETAMOL)
    assert response.status_code == 422
    assert "weight_required" in [a["kind"] for a in response.json()["alerts"]]
    assert _orders(uow_factory) == []
    stated = _post(client, f"/api/patients/{patient}/medication-orders", {**PARACETAMOL, "weight_kg": 64})
    assert stated.status_code == 201 and stated.json()["weight_kg"] == 64  # the weight the prescriber states


def test_a_nurse_cannot_prescribe(client: TestClient, patient: str, uow_factory: UowFactory) -> None:
    login(client, NURSE)
    response = _post(client, f"/api/patients/{patient}/medication-orders", PARACETAMOL)
    assert response.status_code == 403
    assert _orders(uow_factory) == []


def test_a_physician_outside_the_care_team_gets_not_found(client: TestClient, uow_factory: UowFactory) -> None:
    outside, _ = _admit(client, "LENS-MED-CARDIO", None, name="Hennebelle")
    response = _prescribe(client, outside, PARACETAMOL)
    assert response.status_code == 404
    unknown = _post(client, "/api/patients/00000000-0000-4000-8000-000000000000/medication-orders", PARACETAMOL)
    assert unknown.status_code == 404 and unknown.json()["detail"] == response.json()["detail"]
    assert client.get(f"/api/patients/{outside}/medication-orders").status_code == 404
    assert _orders(uow_factory) == []
    denied = _events(uow_factory, "patient:record:denied")
    assert any(e.details.get("action") == "medication:order:create" for e in denied)


def test_anonymous_requests_are_refused(client: TestClient, app, patient: str) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as anonymous:
        assert anonymous.get(f"/api/patients/{patient}/medication-orders").status_code == 401
        assert anonymous.post(f"/api/patients/{patient}/medication-orders", json=PARACETAMOL).status_code in {401, 403}
        assert anonymous.get("/api/medication/products?q=para").status_code == 401


def test_modify_keeps_the_old_version_replaced(client: TestClient, patient: str, uow_factory: UowFactory) -> None:
    first = _prescribe(client, patient, PARACETAMOL).json()
    changed = _post(client, f"/api/medication-orders/{first['id']}/modify", {**PARACETAMOL, "times_per_day": 4})
    assert changed.status_code == 201, changed.text
    second = changed.json()
    assert second["replaces_id"] == first["id"] and second["version"] == 2 and second["review_status"] == "pending"
    # the checks ran against the other orders only: the old version is not a duplicate of the new
    assert not [a for a in second["alerts"] if a["kind"] == "duplicate"]
    rows = {str(o.id): o for o in _orders(uow_factory)}
    assert rows[first["id"]].status == "replaced" and rows[second["id"]].status == "active"
    listed = client.get(f"/api/patients/{patient}/medication-orders").json()
    assert [o["id"] for o in listed] == [second["id"]]
    history = client.get(f"/api/patients/{patient}/medication-orders?history=true").json()
    assert [o["version"] for o in history] == [1, 2]
    again = _post(client, f"/api/medication-orders/{first['id']}/modify", PARACETAMOL)
    assert again.status_code == 409  # a replaced version is not modified twice


def test_a_modification_is_checked_like_a_new_order(client: TestClient, patient: str,
                                                    uow_factory: UowFactory) -> None:
    first = _prescribe(client, patient, PARACETAMOL).json()
    refused = _post(client, f"/api/medication-orders/{first['id']}/modify", {**PARACETAMOL, "times_per_day": 6})
    assert refused.status_code == 409
    assert [o.status for o in _orders(uow_factory)] == ["active"]  # nothing changed


def test_suspend_resume_and_stop(client: TestClient, patient: str, uow_factory: UowFactory) -> None:
    order = _prescribe(client, patient, PARACETAMOL).json()
    path = f"/api/medication-orders/{order['id']}"
    assert _post(client, f"{path}/resume", {}).status_code == 409  # not suspended
    suspended = _post(client, f"{path}/suspend", {"reason": "A jeun pour coloscopie"})
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    assert _post(client, f"{path}/resume", {}).json()["status"] == "active"
    stopped = _post(client, f"{path}/stop", {"reason": "Douleur résolue"})
    assert stopped.json()["status"] == "stopped" and stopped.json()["status_reason"] == "Douleur résolue"
    assert _post(client, f"{path}/stop", {}).status_code == 409
    assert client.get(f"/api/patients/{patient}/medication-orders").json() == []
    [event] = _events(uow_factory, "medication:order:stopped")
    assert event.reason == "Douleur résolue"
    login(client, NURSE)
    assert _post(client, f"{path}/suspend", {}).status_code == 403


def test_an_interacting_second_order_needs_a_reason(client: TestClient, patient: str) -> None:
    assert _prescribe(client, patient, PARACETAMOL).status_code == 201
    iv = {"product_code": "PARA1GINJ", "dose_value": 1, "dose_unit": "g", "route": "IV",
          "frequency": "times_per_day", "times_per_day": 1}
    duplicate = _post(client, f"/api/patients/{patient}/medication-orders", iv)
    assert duplicate.status_code == 409
    assert "duplicate" in [a["kind"] for a in duplicate.json()["alerts"]]


def test_the_pharmacist_outside_the_unit_does_not_see_the_orders(client: TestClient, patient: str) -> None:
    _prescribe(client, patient, PARACETAMOL)
    login(client, PHARMACIST)
    assert client.get(f"/api/patients/{patient}/medication-orders").status_code == 404


def test_products_are_searched_by_name_without_accents_and_by_atc(client: TestClient) -> None:
    login(client, NURSE)
    by_name = client.get("/api/medication/products", params={"q": "paracetamol 1 g"}).json()
    assert "PARA1GCP" in [p["code"] for p in by_name]
    assert all("aracétamol" in p["name"] for p in by_name)
    by_atc = client.get("/api/medication/products", params={"q": "J01CA04"}).json()
    assert {p["code"] for p in by_atc} >= {"AMOX1GCP", "AMOX500GEL"}
    assert client.get("/api/medication/products", params={"q": ""}).json() == []


def test_malformed_orders_are_refused_before_any_check(client: TestClient, patient: str,
                                                      uow_factory: UowFactory) -> None:
    unknown = _prescribe(client, patient, {**PARACETAMOL, "product_code": "NOPE"})
    assert unknown.status_code == 422 and unknown.json()["rule"] == "UnknownProduct"
    if_needed = {**PARACETAMOL, "frequency": "if_needed", "times_per_day": None, "max_per_24h": 4}
    assert _post(client, f"/api/patients/{patient}/medication-orders", if_needed).json()["rule"] == \
        "IndicationRequired"
    with_indication = _post(client, f"/api/patients/{patient}/medication-orders",
                            {**if_needed, "indication": "Douleur EVA > 3"})
    assert with_indication.status_code == 201, with_indication.text
    with uow_factory() as uow:
        assert uow.session.execute(select(func.count()).select_from(MedicationOrder)).scalar_one() == 1


def test_resuming_is_checked_against_the_orders_given_meanwhile(client: TestClient, patient: str,
                                                                uow_factory: UowFactory) -> None:
    oral = _prescribe(client, patient, PARACETAMOL).json()
    assert _post(client, f"/api/medication-orders/{oral['id']}/suspend", {}).status_code == 200
    iv = {"product_code": "PARA1GINJ", "dose_value": 1, "dose_unit": "g", "route": "IV",
          "frequency": "times_per_day", "times_per_day": 3}
    assert _post(client, f"/api/patients/{patient}/medication-orders", iv).status_code == 201  # no duplicate now
    refused = _post(client, f"/api/medication-orders/{oral['id']}/resume", {})
    assert refused.status_code == 409
    # both give 3 g a day: a duplicate, and 6 g of paracetamol a day in all
    assert {a["kind"] for a in refused.json()["alerts"]} == {"duplicate", "dose"}
    assert {str(o.id): o.status for o in _orders(uow_factory)}[oral["id"]] == "suspended"
    resumed = _post(client, f"/api/medication-orders/{oral['id']}/resume",
                    {"override_reason": "Relais per os le soir même"})
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    [override] = _events(uow_factory, "medication:order:override")
    assert override.reason == "Relais per os le soir même"
    assert set(override.details["overridden"]) == {"duplicate", "dose"}


# --- the prescriber's pages -------------------------------------------------------------------------

from tests.personas import PORTER  # noqa: E402

#: Paracetamol 1 g every 4 h: 6 g per 24 h, above the 4 g maximum (a reason), under twice it.
PARACETAMOL_Q4H_FORM = {"product_code": "PARA1GCP", "dose_value": "1", "dose_unit": "g", "route": "PO",
                        "frequency": "every_hours", "every_hours": "4"}


def _page_post(client: TestClient, path: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post(path, data={**data, "csrf_token": form_token(client)}, follow_redirects=False)


def test_the_care_team_reads_the_prescriptions_page_and_only_physicians_get_the_forms(
        client: TestClient, patient: str) -> None:
    assert _prescribe(client, patient, PARACETAMOL).status_code == 201
    login(client, NURSE)
    page = client.get(f"/patients/{patient}/prescriptions")
    assert page.status_code == 200 and "Paracétamol 1 g comprimé" in page.text
    assert 'id="order-entry"' not in page.text and 'id="protocols"' not in page.text and 'id="measures"' in page.text
    assert f'href="/patients/{patient}/prescriptions"' in client.get(f"/patients/{patient}").text
    login(client, PHARMACIST)  # not in this unit's care team
    assert client.get(f"/patients/{patient}/prescriptions").status_code == 404
    login(client, PORTER)
    assert client.get(f"/patients/{patient}/prescriptions").status_code == 403
    login(client, NURSE)
    assert _page_post(client, f"/patients/{patient}/prescriptions", PARACETAMOL_Q4H_FORM).status_code == 403


def test_a_physician_searches_prescribes_and_answers_an_alert_in_the_page(client: TestClient, patient: str,
                                                                         uow_factory: UowFactory) -> None:
    login(client, PHYSICIAN)
    found = client.get(f"/patients/{patient}/prescriptions", params={"q": "paracetamol 1 g"})
    assert 'id="products-found"' in found.text and "?produit=PARA1GCP" in found.text
    chosen = client.get(f"/patients/{patient}/prescriptions", params={"produit": "PARA1GCP"})
    assert 'id="order-form"' in chosen.text and 'id="override-reason"' not in chosen.text

    asked = _page_post(client, f"/patients/{patient}/prescriptions", PARACETAMOL_Q4H_FORM)
    assert asked.status_code == 409 and 'id="order-alerts"' in asked.text
    assert 'data-severity="override_required"' in asked.text and 'id="override-reason"' in asked.text
    assert 'value="4"' in asked.text  # the form keeps what was typed
    assert _orders(uow_factory, patient) == []

    signed = _page_post(client, f"/patients/{patient}/prescriptions",
                        {**PARACETAMOL_Q4H_FORM, "override_reason": "Douleur osseuse, avis antalgique"})
    assert signed.status_code == 303, signed.text
    [order] = _orders(uow_factory, patient)
    assert order.override_reason == "Douleur osseuse, avis antalgique" and order.every_hours == 4
    listed = client.get(f"/patients/{patient}/prescriptions").text
    assert f'id="order-{order.id}"' in listed and "Douleur osseuse, avis antalgique" in listed


def test_a_blocked_order_is_refused_in_the_page_without_a_reason_field(client: TestClient, patient: str,
                                                                       uow_factory: UowFactory) -> None:
    _allergic_to_penicillins(client, patient)
    login(client, PHYSICIAN)
    refused = _page_post(client, f"/patients/{patient}/prescriptions", {
        "product_code": "AMOX1GCP", "dose_value": "1", "dose_unit": "g", "route": "PO", "frequency": "times_per_day",
        "times_per_day": "3", "override_reason": "je sais"})
    assert refused.status_code == 422 and 'data-severity="blocking"' in refused.text
    assert 'id="override-reason"' not in refused.text and _orders(uow_factory, patient) == []
    malformed = _page_post(client, f"/patients/{patient}/prescriptions", {**PARACETAMOL_Q4H_FORM, "dose_value": "un"})
    assert malformed.status_code == 422 and 'class="alert alert-error"' in malformed.text


def test_suspend_resume_modify_and_stop_from_the_page(client: TestClient, patient: str,
                                                      uow_factory: UowFactory) -> None:
    order = _prescribe(client, patient, PARACETAMOL).json()
    base = f"/prescriptions/{order['id']}"
    assert _page_post(client, f"{base}/suspendre", {"patient_id": patient, "reason": "à jeun"}).status_code == 303
    assert _page_post(client, f"{base}/reprendre", {"patient_id": patient}).status_code == 303
    again = _page_post(client, f"{base}/reprendre", {"patient_id": patient})
    assert again.status_code == 303 and "erreur=OrderNotInForce" in again.headers["location"]
    prefilled = client.get(f"/patients/{patient}/prescriptions", params={"modifier": order["id"]}).text
    assert f'action="{base}/modifier"' in prefilled and 'value="3"' in prefilled
    modified = _page_post(client, f"{base}/modifier", {"patient_id": patient, **PARACETAMOL_Q4H_FORM,
                                                       "every_hours": "6"})
    assert modified.status_code == 303, modified.text
    rows = _orders(uow_factory, patient)
    assert [(r.version, r.status) for r in rows] == [(1, "replaced"), (2, "active")]
    assert _page_post(client, f"/prescriptions/{rows[1].id}/arreter",
                      {"patient_id": patient, "reason": "fin"}).status_code == 303
    assert _orders(uow_factory, patient)[1].status == "stopped"
    history = client.get(f"/patients/{patient}/prescriptions").text
    assert history.count("<td>v") == 2 and 'id="orders-table"' not in history


def test_a_protocol_is_applied_from_the_page_with_its_line_reasons(client: TestClient, patient: str,
                                                                   uow_factory: UowFactory) -> None:
    from tests.medication.test_service import _creatinine
    _creatinine(client, patient, "300")  # 21 mL/min: paracetamol 4 g per 24 h needs a reason
    login(client, PHYSICIAN)
    assert 'id="protocol-emergency_pain"' in client.get(f"/patients/{patient}/prescriptions").text
    asked = _page_post(client, f"/patients/{patient}/prescriptions/protocoles/emergency_pain", {})
    assert asked.status_code == 409 and 'id="protocol-line-alerts-0"' in asked.text
    assert 'name="reason_0"' in asked.text and 'name="reason_1"' not in asked.text
    applied = _page_post(client, f"/patients/{patient}/prescriptions/protocoles/emergency_pain",
                         {"reason_0": "Avis de l'équipe douleur"})
    assert applied.status_code == 303
    rows = _orders(uow_factory, patient)
    assert len(rows) == 3 and {r.protocol_code for r in rows} == {"emergency_pain"}
    assert 'class="protocol-ref"' in client.get(f"/patients/{patient}/prescriptions").text


def test_an_infusion_shows_its_concentration_pump_rate_and_titration(client: TestClient, patient: str) -> None:
    signed = _prescribe(client, patient, {"product_code": "NORA8INJ", "dose_value": 0.1, "dose_unit": "µg/kg/min",
                                          "route": "IV", "frequency": "continuous", "concentration_value": 0.16,
                                          "concentration_unit": "mg/mL", "titration_min": 0.05,
                                          "titration_max": 1})
    assert signed.status_code == 201, signed.text
    page = client.get(f"/patients/{patient}/prescriptions").text
    assert "0,16 mg/mL" in page and "<strong>2,7 mL/h</strong>" in page
    assert 'class="titration"' in page and "0,05–1 µg/kg/min" in page


def test_the_pharmacists_review_is_shown_on_the_order_when_given(client: TestClient, patient: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The review step fills `pharmacist_review`; the page shows its decision, coded labels and
    comment (and nothing when there is none)."""
    from datetime import UTC, datetime

    from naho.medication import service
    from naho.medication.schemas import PharmacistReviewPublic

    assert _prescribe(client, patient, PARACETAMOL).status_code == 201
    assert 'class="pharmacist-review"' not in client.get(f"/patients/{patient}/prescriptions").text
    review = PharmacistReviewPublic(decision="validated", prescriber_response="accepted", problem_code="4.2",
                                    problem_label="Surdosage", intervention_code="3.1",
                                    intervention_label="Adaptation posologique", comment="Espacer à 6 h",
                                    pharmacist="Paul Pharma", at=datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    real = service.prescription_sheet

    def reviewed(*args, **kwargs):  # type: ignore[no-untyped-def]
        sheet = real(*args, **kwargs)
        for order in sheet.orders:
            order.pharmacist_review = review
        return sheet
    monkeypatch.setattr(service, "prescription_sheet", reviewed)
    shown = client.get(f"/patients/{patient}/prescriptions").text
    assert 'class="pharmacist-review"' in shown
    assert "validated" not in shown.split('class="review-decision">')[1].split("<")[0]  # a label, not a code
    for text in ("Surdosage", "Adaptation posologique", "Espacer à 6 h", "Paul Pharma", "25/11/2026 11:00"):
        assert text in shown
