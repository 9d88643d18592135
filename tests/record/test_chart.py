"""The clinical chart: allergies, problems, vital signs and notes, for the care team only."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from naho.record import rules
from naho.record.chart import polyline
from tests.personas import CLERK, NURSE, PHYSICIAN, form_token, login


@pytest.fixture
def patient(client: TestClient) -> str:
    """A patient in internal medicine, the unit of the demo nurse and physician."""
    login(client, CLERK)
    token = form_token(client)
    patient_id = client.post("/api/patients", headers={"x-csrf-token": token}, json={
        "birth_name": "Deprez", "first_names": "Lucien", "sex": "M", "birth_date": "1937-11-08"}).json()["id"]
    client.post("/api/encounters", headers={"x-csrf-token": token}, json={
        "patient_id": patient_id, "establishment_code": "LENS", "encounter_class": "inpatient",
        "unit_code": "LENS-MED-MIN", "bed_code": "LENS-MED-MIN-524-1"})
    return str(patient_id)


def _form(client: TestClient, path: str, **data: str):  # type: ignore[no-untyped-def]
    return client.post(path, data={**data, "csrf_token": form_token(client)}, follow_redirects=False)


def test_the_nurse_records_vitals_and_sees_them_plotted(client: TestClient, patient: str, clock) -> None:  # type: ignore[no-untyped-def]
    login(client, NURSE)
    for heart_rate in ("88", "96", "104"):
        response = _form(client, f"/patients/{patient}/constantes", heart_rate=heart_rate, spo2="94",
                         temperature="38,2")
        assert response.headers["location"] == f"/patients/{patient}"
        clock.advance(minutes=30)
    page = client.get(f"/patients/{patient}").text
    vitals = page.split('id="vitals"')[1]
    assert "<strong>104.0</strong> /min" in vitals and "<strong>38.2</strong> Cel" in vitals
    assert vitals.count("<polyline") >= 3


def test_an_implausible_measure_is_refused_whole(client: TestClient, patient: str) -> None:
    login(client, NURSE)
    response = _form(client, f"/patients/{patient}/constantes", heart_rate="80", spo2="940")
    assert response.headers["location"].endswith("erreur=ImplausibleMeasure")
    page = client.get(response.headers["location"]).text
    assert "hors des valeurs possibles" in page
    assert "<strong>80.0</strong>" not in page  # nothing of the round was kept


def test_allergies_show_in_the_banner(client: TestClient, patient: str) -> None:
    login(client, NURSE)
    _form(client, f"/patients/{patient}/allergies", substance_label="Amoxicilline", substance_code="ATC:J01CA04",
          criticality="high", reaction="Urticaire géante")
    banner = client.get(f"/patients/{patient}").text.split('id="allergy-banner"')[1][:300]
    assert "Amoxicilline ⚠" in banner
    refused = _form(client, f"/patients/{patient}/allergies", substance_label="X", substance_code="pénicilline")
    assert refused.headers["location"].endswith("erreur=BadCode")


def test_only_physicians_record_diagnoses(client: TestClient, app, patient: str) -> None:  # type: ignore[no-untyped-def]
    login(client, NURSE)
    refused = _form(client, f"/patients/{patient}/problemes", icd10="I50.0", label="Insuffisance cardiaque")
    assert refused.status_code == 403
    with TestClient(app) as doctor:
        login(doctor, PHYSICIAN)
        _form(doctor, f"/patients/{patient}/problemes", icd10="i500", label="Insuffisance cardiaque congestive")
        assert "<code>I50.0</code> Insuffisance cardiaque congestive" in doctor.get(f"/patients/{patient}").text
        _form(doctor, f"/patients/{patient}/notes", kind="medical",
              text="Dyspnée stade III, majoration des diurétiques.")
        assert "majoration des diurétiques" in doctor.get(f"/patients/{patient}").text


def test_the_clerk_sees_no_clinical_content(client: TestClient, app, patient: str) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        _form(nurse, f"/patients/{patient}/notes", kind="nursing", text="Patient algique, antalgiques donnés.")
    login(client, CLERK)
    page = client.get(f"/patients/{patient}").text
    assert "antalgiques" not in page and 'id="vitals"' not in page
    assert _form(client, f"/patients/{patient}/notes", text="x").status_code == 403


def test_a_nurse_of_another_unit_cannot_write_in_the_chart(client: TestClient, app, patient: str) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    token = form_token(client)
    other = client.post("/api/patients", headers={"x-csrf-token": token}, json={
        "birth_name": "Merlin", "first_names": "Agathe", "sex": "F", "birth_date": "1950-01-01"}).json()["id"]
    client.post("/api/encounters", headers={"x-csrf-token": token}, json={
        "patient_id": other, "establishment_code": "LENS", "encounter_class": "inpatient",
        "unit_code": "LENS-MED-CARDIO"})
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        assert _form(nurse, f"/patients/{other}/constantes", heart_rate="80").status_code == 404


@given(st.lists(st.floats(min_value=30, max_value=200), min_size=2, max_size=50))
def test_plot_points_stay_inside_the_box(values: list[float]) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    end = datetime(2026, 11, 8, tzinfo=UTC)
    step = (end - start) / len(values)
    points = polyline([(start + step * i, v) for i, v in enumerate(values)], start, end, min(values) - 1,
                      max(values) + 1)
    for pair in points.split():
        x, y = map(float, pair.split(","))
        assert 0 <= x <= 240 and 0 <= y <= 60


@pytest.mark.parametrize(("key", "value"), [("heart_rate", 0), ("spo2", 101), ("temperature", 4.5), ("weight", 0)])
def test_implausible_vitals(key: str, value: float) -> None:
    with pytest.raises(rules.ImplausibleMeasure):
        rules.check_vital(key, value)


@pytest.mark.parametrize(("code", "normal"), [("I21.4", "I21.4"), ("i214", "I21.4"), ("J18", "J18")])
def test_icd10_codes_are_normalised(code: str, normal: str) -> None:
    assert rules.check_icd10(code) == normal


@pytest.mark.parametrize("code", ["121.4", "I2", "INFARCTUS", ""])
def test_malformed_icd10_codes_are_refused(code: str) -> None:
    with pytest.raises(rules.BadCode):
        rules.check_icd10(code)


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _upload(client: TestClient, patient: str, name: str, content: bytes, media: str):  # type: ignore[no-untyped-def]
    return client.post(f"/patients/{patient}/documents", data={"title": name, "csrf_token": form_token(client)},
                       files={"file": (name, content, media)}, follow_redirects=False)


def test_documents_are_filed_and_read_by_the_care_team_only(client: TestClient, app, patient: str) -> None:  # type: ignore[no-untyped-def]
    login(client, NURSE)
    assert _upload(client, patient, "Courrier du médecin traitant", PDF, "application/pdf").status_code == 303
    assert _upload(client, patient, "Transmission", b"Pas de douleur.", "text/plain").status_code == 303
    page = client.get(f"/patients/{patient}").text.split('id="documents"')[1]
    links = re.findall(r'href="(/documents/[0-9a-f-]{36})"', page)
    assert len(links) == 2
    pdf = client.get(links[1])
    assert pdf.status_code == 200 and pdf.content == PDF and pdf.headers["content-type"] == "application/pdf"
    assert "sandbox" in pdf.headers["content-security-policy"]
    login(client, CLERK)
    assert client.get(links[1]).status_code == 403  # clerks have no clinical role
    with TestClient(app) as doctor:
        login(doctor, PHYSICIAN)
        assert doctor.get(links[0]).status_code == 200  # same unit: care team


def test_a_disguised_binary_is_refused(client: TestClient, patient: str) -> None:
    login(client, NURSE)
    response = _upload(client, patient, "scan.pdf", b"MZ\x90\x00\x03\x00binary", "application/pdf")
    assert response.headers["location"].endswith("erreur=DocumentRefused")
    assert "/documents/" not in client.get(f"/patients/{patient}").text
