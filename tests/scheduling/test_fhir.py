"""Schedule, Slot and Appointment on the FHIR facade: listed in the CapabilityStatement, read and
searched, booked by POST Appointment with the same rules (409 OperationOutcome to the loser), and
a patient's appointments shown only to whom the door lets in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from naho.platform.security.actor import SYSTEM_ACTOR
from naho.platform.security.service import create_api_token
from tests.personas import CLERK, PORTER, form_token, login
from tests.scheduling.world import cardiology, new_patient, staff_actor

FHIR = "/fhir/R4"
JSON = {"accept": "application/fhir+json"}


@pytest.fixture
def clerk(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        login(client, CLERK)
        client.headers.update({**JSON, "x-csrf-token": form_token(client)})
        yield client


def _booking(slot: str, patient: object) -> dict[str, object]:
    return {"resourceType": "Appointment", "status": "booked", "slot": [{"reference": f"Slot/{slot}"}],
            "participant": [{"actor": {"reference": f"Patient/{patient}"}, "status": "accepted"}]}


def test_the_capability_statement_lists_schedule_slot_and_appointment(client: TestClient) -> None:
    statement = client.get(f"{FHIR}/metadata", headers=JSON).json()
    types = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {"Schedule", "Slot", "Appointment", "Patient"} <= set(types)
    assert {"code": "create"} in types["Appointment"]["interaction"]


def test_slots_are_searched_and_booked_through_fhir_with_a_409_to_the_loser(app: FastAPI, clerk: TestClient) -> None:
    container = app.state.container
    schedule = cardiology(container, staff_actor(container, "admission"))
    first, second = new_patient(container), new_patient(container, "DURAND", "PAUL")
    found = clerk.get(f"{FHIR}/Slot?specialty=cardiology&_count=2").json()
    assert found["resourceType"] == "Bundle" and len(found["entry"]) == 2
    slot = found["entry"][0]["resource"]
    assert slot["status"] == "free" and slot["schedule"]["reference"] == f"Schedule/{schedule}"
    assert clerk.get(f"{FHIR}/Schedule/{schedule}").json()["specialty"][0]["text"] == "cardiology"
    assert clerk.get(f"{FHIR}/Slot?schedule=Schedule/{schedule}&start=ge2026-12-04").json()["entry"][0][
        "resource"]["start"].startswith("2026-12-04")
    created = clerk.post(f"{FHIR}/Appointment", json=_booking(slot["id"], first))
    assert created.status_code == 201, created.text
    appointment = created.json()
    assert created.headers["location"].endswith(f"/Appointment/{appointment['id']}")
    assert appointment["status"] == "booked" and appointment["slot"] == [{"reference": f"Slot/{slot['id']}"}]
    lost = clerk.post(f"{FHIR}/Appointment", json=_booking(slot["id"], second))
    assert lost.status_code == 409 and lost.json()["resourceType"] == "OperationOutcome"
    assert clerk.get(f"{FHIR}/Slot/{slot['id']}").json()["status"] == "busy"
    read = clerk.get(f"{FHIR}/Appointment/{appointment['id']}").json()
    assert read["participant"][0]["actor"]["reference"] == f"Patient/{first}"
    listed = clerk.get(f"{FHIR}/Appointment?patient=Patient/{first}").json()
    assert [e["resource"]["id"] for e in listed["entry"]] == [appointment["id"]]
    bad = clerk.post(f"{FHIR}/Appointment", json={"resourceType": "Appointment", "status": "booked"})
    assert bad.status_code == 400 and "slot" in bad.json()["issue"][0]["diagnostics"]


def test_an_appointment_is_not_known_to_whom_the_door_refuses(app: FastAPI, clerk: TestClient) -> None:
    container = app.state.container
    cardiology(container, staff_actor(container, "admission"))
    patient = new_patient(container)
    slot = clerk.get(f"{FHIR}/Slot?specialty=cardiology&_count=1").json()["entry"][0]["resource"]["id"]
    appointment = clerk.post(f"{FHIR}/Appointment", json=_booking(slot, patient)).json()["id"]
    token = create_api_token(container.uow(), SYSTEM_ACTOR, username=PORTER, name="test")
    with TestClient(app) as porter:
        porter.headers.update({**JSON, "authorization": f"Bearer {token}"})
        assert porter.get(f"{FHIR}/Appointment/{appointment}").status_code == 404
        assert porter.get(f"{FHIR}/Appointment?patient=Patient/{patient}").json().get("entry") is None
        assert porter.post(f"{FHIR}/Appointment", json=_booking(slot, patient)).status_code == 403
