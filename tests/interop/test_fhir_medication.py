"""The medication circuit through the FHIR facade: the formulary as Medication, the orders as
MedicationRequest (one resource per version), under the same door and audit as the pages. Every
answer is checked with fhir.resources (R4B)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.medication.fhir import ATC_SYSTEM, PRODUCT_SYSTEM, ROUTE_SYSTEM
from naho.platform.audit import AuditEvent
from tests.interop.test_fhir_api import _admit, _entries, _get, _issue, _patient
from tests.personas import CLERK, NURSE, PHARMACIST, PHYSICIAN, PORTER, form_token, login

PARACETAMOL = {"product_code": "PARA1GCP", "dose_value": 1, "dose_unit": "g", "route": "PO",
               "frequency": "times_per_day", "times_per_day": 3, "comment": "Pendant les repas",
               "weight_kg": 64, "height_cm": 162}
MORPHINE_IF_NEEDED = {"product_code": "MORP10INJ", "dose_value": 2, "dose_unit": "mg", "route": "SC",
                      "frequency": "if_needed", "max_per_24h": 6, "every_hours": 4,
                      "indication": "Douleur EVA > 4", "weight_kg": 64, "height_cm": 162}


def _json(client: TestClient, path: str, body: dict[str, Any], expect: int = 201) -> dict[str, Any]:
    response = client.post(path, headers={"x-csrf-token": form_token(client)}, json=body)
    assert response.status_code == expect, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def orders(client: TestClient, app: Any) -> dict[str, Any]:
    """Jeanne admitted in the demo nurse's unit; the physician orders paracetamol (then changes it
    to twice a day) and morphine if needed."""
    with TestClient(app) as clerk:
        login(clerk, CLERK)
        patient = _patient(clerk)
        stay = _admit(clerk, patient["id"])
    login(client, PHYSICIAN)
    first = _json(client, f"/api/patients/{patient['id']}/medication-orders", PARACETAMOL)
    second = _json(client, f"/api/medication-orders/{first['id']}/modify", {**PARACETAMOL, "times_per_day": 2})
    products = {p["code"] for p in client.get("/api/medication/products", params={"q": "morphine"}).json()}
    assert MORPHINE_IF_NEEDED["product_code"] in products, products
    morphine = _json(client, f"/api/patients/{patient['id']}/medication-orders", MORPHINE_IF_NEEDED)
    return {"patient": patient["id"], "stay": stay["id"], "first": first["id"], "second": second["id"],
            "morphine": morphine["id"]}


def test_the_capability_statement_lists_medication_and_requests(client: TestClient) -> None:
    statement = _get(client, "/metadata")
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {p["name"] for p in resources["MedicationRequest"]["searchParam"]} == {
        "patient", "subject", "status", "encounter", "medication"}
    assert {p["name"] for p in resources["Medication"]["searchParam"]} == {"code", "ingredient-code", "status"}
    assert {p["name"] for p in resources["MedicationAdministration"]["searchParam"]} == {
        "patient", "subject", "status", "request"}
    assert "MedicationDispense" in resources


def test_a_product_reads_as_a_medication_with_its_substances_and_strengths(client: TestClient) -> None:
    login(client, NURSE)
    medication = _get(client, "/Medication/AUGM1GCP")
    assert medication["code"]["coding"][0] == {"system": PRODUCT_SYSTEM, "code": "AUGM1GCP",
                                               "display": "Amoxicilline/acide clavulanique 1 g/125 mg comprimé"}
    assert medication["status"] == "active" and medication["form"] == {"text": "comprimé"}
    assert [(i["itemCodeableConcept"]["coding"][0]["code"], i["strength"]["numerator"]["value"],
             i["strength"]["numerator"]["unit"]) for i in medication["ingredient"]] == [
        ("J01CA04", 1.0, "g"), ("J01CG", 125.0, "mg")]
    solution = _get(client, "/Medication/PARA1GINJ")
    assert solution["ingredient"][0]["strength"]["denominator"] == {
        "value": 100.0, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"}
    assert _issue(_get(client, "/Medication/NOPE", expect=404))[0] == "not-found"


def test_medications_are_searched_by_code_atc_class_and_status(client: TestClient) -> None:
    login(client, PHARMACIST)
    by_class = _entries(_get(client, "/Medication", **{"ingredient-code": f"{ATC_SYSTEM}|N02BE", "_count": "100"}))
    assert by_class and all(m["ingredient"][0]["itemCodeableConcept"]["coding"][0]["code"].startswith("N02BE")
                            for m in by_class)
    assert "PARA500CP" in {m["id"] for m in by_class}
    assert [m["id"] for m in _entries(_get(client, "/Medication", code="PARA500CP,PARA1GCP"))] == [
        "PARA1GCP", "PARA500CP"]  # in name order
    assert _entries(_get(client, "/Medication", code="PARA500CP", status="inactive")) == []
    assert _issue(_get(client, "/Medication", status="withdrawn", expect=400))[0] == "invalid"


def test_orders_read_as_requests_with_dosage_versions_and_statuses(client: TestClient,
                                                                  orders: dict[str, Any]) -> None:
    login(client, NURSE)
    current = _get(client, f"/MedicationRequest/{orders['second']}")
    assert current["status"] == "active" and current["intent"] == "order"
    assert current["subject"] == {"reference": f"Patient/{orders['patient']}"}
    assert current["encounter"] == {"reference": f"Encounter/{orders['stay']}"}
    assert current["medicationReference"]["reference"] == "Medication/PARA1GCP"
    assert current["priorPrescription"] == {"reference": f"MedicationRequest/{orders['first']}"}
    [dosage] = current["dosageInstruction"]
    assert dosage["doseAndRate"] == [{"doseQuantity": {"value": 1.0, "unit": "g"}}]
    assert dosage["route"]["coding"][0] == {"system": ROUTE_SYSTEM, "code": "PO", "display": "voie orale"}
    assert dosage["timing"]["repeat"]["frequency"] == 2 and dosage["timing"]["repeat"]["periodUnit"] == "d"
    assert dosage["timing"]["repeat"]["timeOfDay"] == ["08:00:00", "20:00:00"]
    assert dosage["text"] == "Pendant les repas"
    replaced = _get(client, f"/MedicationRequest/{orders['first']}")
    assert replaced["status"] == "stopped" and replaced["statusReason"] == {"text": "replaced by a new version"}
    morphine = _get(client, f"/MedicationRequest/{orders['morphine']}")
    [as_needed] = morphine["dosageInstruction"]
    assert as_needed["asNeededCodeableConcept"] == {"text": "Douleur EVA > 4"}
    assert as_needed["maxDosePerPeriod"]["numerator"]["value"] == 6
    assert as_needed["timing"]["repeat"]["period"] == 4 and as_needed["timing"]["repeat"]["periodUnit"] == "h"


def test_requests_are_searched_per_patient_by_status_stay_and_product(client: TestClient, app: Any,
                                                                      orders: dict[str, Any]) -> None:
    login(client, PHYSICIAN)
    everything = _entries(_get(client, "/MedicationRequest", patient=orders["patient"]))
    assert {r["id"] for r in everything} == {orders["first"], orders["second"], orders["morphine"]}
    active = _entries(_get(client, "/MedicationRequest", patient=orders["patient"], status="active"))
    assert {r["id"] for r in active} == {orders["second"], orders["morphine"]}
    stopped = _entries(_get(client, "/MedicationRequest", subject=f"Patient/{orders['patient']}", status="stopped"))
    assert [r["id"] for r in stopped] == [orders["first"]]
    by_product = _entries(_get(client, "/MedicationRequest", patient=orders["patient"],
                               medication="Medication/MORP10INJ"))
    assert [r["id"] for r in by_product] == [orders["morphine"]]
    assert len(_entries(_get(client, "/MedicationRequest", patient=orders["patient"],
                             encounter=f"Encounter/{orders['stay']}"))) == 3
    with_patient = _get(client, "/MedicationRequest", patient=orders["patient"], _include="MedicationRequest:patient")
    assert [e["resource"]["resourceType"] for e in with_patient["entry"]].count("Patient") == 1
    assert _issue(_get(client, "/MedicationRequest", expect=400))[1].startswith("a MedicationRequest search needs")
    assert _issue(_get(client, "/MedicationRequest", patient=orders["patient"], status="done", expect=400))[0] == \
        "invalid"
    everything_op = _entries(_get(client, f"/Patient/{orders['patient']}/$everything"))
    assert {r["id"] for r in everything_op if r["resourceType"] == "MedicationRequest"} == {
        orders["first"], orders["second"], orders["morphine"]}
    with app.state.container.session_factory() as s:
        viewed = s.scalars(select(AuditEvent).where(AuditEvent.action == "medication:order:view")).all()
    assert viewed and all(str(e.patient_id) == orders["patient"] for e in viewed)


def test_who_may_not_open_the_record_sees_no_order(client: TestClient, app: Any, orders: dict[str, Any]) -> None:
    with TestClient(app) as porter:
        login(porter, PORTER)
        assert _entries(_get(porter, "/MedicationRequest", patient=orders["patient"])) == []
        assert _issue(_get(porter, f"/MedicationRequest/{orders['second']}", expect=404))[0] == "not-found"
        assert _get(porter, "/Medication/PARA1GCP")["id"] == "PARA1GCP"  # the formulary is not patient data
    with TestClient(app) as clerk:
        login(clerk, CLERK)  # works in the patient's unit, reads identities and stays, not orders
        assert _entries(_get(clerk, "/MedicationRequest", patient=orders["patient"])) == []
    with app.state.container.session_factory() as s:
        denied = s.scalars(select(AuditEvent).where(AuditEvent.action == "patient:record:denied")).all()
    assert {e.details["action"] for e in denied} >= {"medication:order:view"}
    anonymous = TestClient(app)
    assert anonymous.get("/fhir/R4/MedicationRequest", params={"patient": orders["patient"]}).status_code == 401
    assert anonymous.get("/fhir/R4/Medication/PARA1GCP").status_code == 401


def test_dispensed_doses_and_bedside_events_read_as_dispense_and_administration(
        client: TestClient, app: Any, orders: dict[str, Any], uow_factory: Any) -> None:  # type: ignore[misc]
    from tests.medication.test_administration import _give, _ipp
    from tests.medication.test_barcodes import datamatrix, with_check_digit
    from tests.medication.test_dispensing import _open, _receive, _scan, _validate

    tablet = with_check_digit("340093000199")
    _validate(uow_factory, orders["second"])
    assert _receive(client, "PARA1GCP", tablet, "LOT9", 10).status_code == 201
    batch = _open(client)
    assert [line["order_id"] for line in batch["lines"]] == [orders["second"]] * 2
    for line in batch["lines"]:
        assert _scan(client, batch["id"], datamatrix(tablet, lot="LOT9"), line["id"]).status_code == 200
    wristband = "P" + _ipp(uow_factory, orders["patient"])
    given = _give(client, orders["morphine"], patient_scan=wristband, dose_scan="MMORP10INJ", route="SC",
                  reason="Douleur EVA 6")
    assert given.status_code == 201, given.text

    login(client, NURSE)
    dispenses = _entries(_get(client, "/MedicationDispense", patient=orders["patient"]))
    assert len(dispenses) == 2 and {d["status"] for d in dispenses} == {"preparation"}
    dispense = dispenses[0]
    assert dispense["authorizingPrescription"] == [{"reference": f"MedicationRequest/{orders['second']}"}]
    assert dispense["contained"][0]["batch"] == {"lotNumber": "LOT9", "expirationDate": "2028-01-31"}
    assert dispense["medicationReference"]["reference"] == "#given" and dispense["quantity"]["value"] == 1
    assert dispense["identifier"][0]["value"].startswith("D")
    assert _get(client, f"/MedicationDispense/{dispense['id']}")["id"] == dispense["id"]
    assert _entries(_get(client, "/MedicationDispense", patient=orders["patient"], status="completed")) == []
    assert len(_entries(_get(client, "/MedicationDispense", patient=orders["patient"],
                             prescription=f"MedicationRequest/{orders['second']}"))) == 2

    [administration] = _entries(_get(client, "/MedicationAdministration", patient=orders["patient"]))
    assert administration["status"] == "completed"
    assert administration["request"] == {"reference": f"MedicationRequest/{orders['morphine']}"}
    assert administration["contained"][0]["code"]["coding"][0]["code"] == "MORP10INJ"
    assert administration["dosage"]["route"]["coding"][0]["code"] == "SC"
    assert administration["dosage"]["dose"]["value"] == 0.2  # 2 mg of a 10 mg/1 mL ampoule
    assert administration["note"] == [{"text": "Douleur EVA 6"}]
    assert _entries(_get(client, "/MedicationAdministration", patient=orders["patient"], status="not-done")) == []
    assert _get(client, f"/MedicationAdministration/{administration['id']}")["id"] == administration["id"]
    everything = _entries(_get(client, f"/Patient/{orders['patient']}/$everything"))
    kinds = [r["resourceType"] for r in everything]
    assert kinds.count("MedicationDispense") == 2 and kinds.count("MedicationAdministration") == 1

    with TestClient(app) as porter:
        login(porter, PORTER)
        assert _entries(_get(porter, "/MedicationAdministration", patient=orders["patient"])) == []
        assert _get(porter, f"/MedicationDispense/{dispense['id']}", expect=404)
