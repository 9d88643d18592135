"""Every route that shows or changes a patient's data refuses whoever has no basis to see it:
anonymous visitors, staff outside the care team, and other roles without the purpose."""

from __future__ import annotations

import re
import uuid

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from naho.platform.security.rules import Role
from naho.platform.security.service import create_account
from naho.record import service as record
from tests.personas import CLERK, NURSE, PASSWORD, PORTER, form_token, login


def _patient_routes(app: FastAPI) -> list[tuple[str, str]]:
    return sorted({(method, route.path) for route in app.routes if isinstance(route, APIRoute)
                   for method in route.methods
                   if "{patient_id}" in route.path or "{encounter_id}" in route.path})


def _setup(client: TestClient) -> tuple[str, str]:
    """A patient in cardiology (the demo nurse works in internal medicine)."""
    login(client, CLERK)
    token = form_token(client)
    patient = client.post("/api/patients", headers={"x-csrf-token": token}, json={
        "birth_name": "Hennebelle", "first_names": "Rose", "sex": "F", "birth_date": "1944-02-29"}).json()["id"]
    stay = client.post("/api/encounters", headers={"x-csrf-token": token}, json={
        "patient_id": patient, "establishment_code": "LENS", "encounter_class": "inpatient",
        "unit_code": "LENS-MED-CARDIO"}).json()["id"]
    return patient, stay


def _url(path: str, patient: str, stay: str) -> str:
    path = path.replace("{patient_id}", patient).replace("{encounter_id}", stay)
    path = re.sub(r"\{[a-z_]+_id\}", "00000000-0000-4000-8000-000000000000", path)  # another row: none
    return re.sub(r"\{[a-z_]+\}", "sortie", path)


def test_there_are_patient_routes_to_check(app: FastAPI) -> None:
    assert len(_patient_routes(app)) >= 12


def test_anonymous_requests_never_reach_patient_data(client: TestClient, app: FastAPI) -> None:
    patient, stay = _setup(client)
    with TestClient(app) as anonymous:
        for method, path in _patient_routes(app):
            response = anonymous.request(method, _url(path, patient, stay), follow_redirects=False)
            assert response.status_code in {303, 401, 403}, f"{method} {path}: {response.status_code}"
            assert "HENNEBELLE" not in response.text


def _another_patient(app: FastAPI) -> str:
    """A patient with an account (the portal, a later issue, links it): not Rose's."""
    with app.state.container.session_factory() as s:
        create_account(s, username="patient-voisin", display_name="Paul VOISIN", roles={Role.PATIENT},
                       password=PASSWORD, now_=app.state.container.clock.now(), kind="patient")
        s.commit()
    return "patient-voisin"


def test_staff_without_relationship_and_other_patients_are_refused_everywhere(client: TestClient,
                                                                              app: FastAPI) -> None:
    patient, stay = _setup(client)
    for who in (NURSE, PORTER, _another_patient(app)):
        with TestClient(app) as outsider:
            login(outsider, who)
            token = form_token(outsider)
            for method, path in _patient_routes(app):
                url = _url(path, patient, stay)
                if method == "GET":
                    response = outsider.get(url, follow_redirects=False)
                elif path.startswith("/api/"):
                    response = outsider.request(method, url, headers={"x-csrf-token": token}, json={
                        "unit_code": "LENS-MED-MIN", "kind": "admission", "proof": "passport",
                        "encounter_class": "outpatient", "drug": "Kardégic 75 mg", "source": "patient"})
                else:
                    # a complete, valid form: the refusal must come from access, not from validation
                    response = outsider.request(method, url, data={
                        "csrf_token": token, "unit": "LENS-MED-MIN", "reason": "curiosité mal placée",
                        "substance_code": "ATC:J01C", "substance_label": "Pénicillines", "icd10": "I10",
                        "label": "HTA", "text": "note", "heart_rate": "80", "proof": "passport",
                        "establishment": "LENS", "encounter_class": "outpatient", "planned_at": "2026-11-27T10:00",
                        "drug": "Kardégic 75 mg", "source": "patient", "creatinine": "80"},
                        files={"file": ("note.txt", b"texte", "text/plain")}, follow_redirects=False)
                assert response.status_code in {403, 404}, f"{who}: {method} {path} answered {response.status_code}"
                assert "HENNEBELLE" not in response.text
    # and nothing moved: the patient is still in cardiology
    login(client, CLERK)
    assert client.get(f"/api/patients/{patient}").status_code == 200
    board = client.get("/api/units/LENS-MED-CARDIO/bed-board").json()
    assert any(line["patient_id"] == patient for line in board["without_bed"])


def test_the_shell_search_finds_only_visible_patients(client: TestClient, app: FastAPI) -> None:
    _setup(client)
    page = client.get("/recherche", params={"q": "Hennebelle"})
    assert 'id="found-patients"' in page.text and "HENNEBELLE Rose" in page.text
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        assert "HENNEBELLE" not in nurse.get("/recherche", params={"q": "Hennebelle"}).text


def test_the_shell_search_finds_a_patient_by_stay_number_and_birth_date(client: TestClient, app: FastAPI) -> None:
    _patient, stay = _setup(client)
    with app.state.container.session_factory() as s:
        nda = record.get_encounter(s, uuid.UUID(stay)).nda
    assert "HENNEBELLE Rose" in client.get("/recherche", params={"q": nda}).text
    assert "HENNEBELLE Rose" in client.get("/recherche", params={"q": "29/02/1944"}).text
    assert "HENNEBELLE Rose" in client.get("/recherche", params={"q": "henne 29/02/1944"}).text
    assert "HENNEBELLE Rose" not in client.get("/recherche", params={"q": "henne 28/02/1944"}).text
    assert "HENNEBELLE Rose" not in client.get("/recherche", params={"q": "999999999"}).text  # no such stay
    with TestClient(app) as nurse:  # the stay number of a patient she may not see finds nothing
        login(nurse, NURSE)
        assert "HENNEBELLE" not in nurse.get("/recherche", params={"q": nda}).text
        assert "HENNEBELLE" not in nurse.get("/recherche", params={"q": "29/02/1944"}).text
