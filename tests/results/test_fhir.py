"""Laboratory reports through the FHIR facade: DiagnosticReport with its results as contained
Observations (value, UCUM unit, reference range, interpretation, status), the PDF as
presentedForm; searched per patient, through the door, audited; others see nothing."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.platform.audit import AuditEvent
from naho.staff import service as staff
from tests.interop.test_fhir_api import _entries, _get
from tests.interop.test_mllp import ServerThread
from tests.personas import NURSE, PHYSICIAN, login
from tests.results.conftest import admit_inpatient, answer, obx, oru, pdf_obx

POTASSIUM, CULTURE = "2823-3", "600-7"


def test_a_report_reads_as_a_diagnostic_report_with_its_results(app: FastAPI, client: TestClient,
                                                                  lab: ServerThread) -> None:
    patient = admit_inpatient(app.state.container)
    assert answer(lab.send(oru("F1", [obx(1, POTASSIUM, "Potassium", "5.8", "mmol/L", "3.5-5.1", "H"),
                                      obx(2, CULTURE, "Hémoculture", "Stérile à 48 h", value_type="ST"),
                                      pdf_obx(3)], ipp=patient.ipp, placer="CMD-F1", filler="LAB-F1")))[0] == "AA"
    assert answer(lab.send(oru("F2", [obx(1, POTASSIUM, "Potassium", "4.2", "mmol/L", "3.5-5.1", "N", status="P")],
                               ipp=patient.ipp, placer="CMD-F2", filler="LAB-F2", report_status="P")))[0] == "AA"
    login(client, PHYSICIAN)
    bundle = _get(client, "/DiagnosticReport", patient=f"Patient/{patient.id}")
    reports = _entries(bundle)
    assert bundle["total"] == 2 and {r["status"] for r in reports} == {"final", "preliminary"}
    final = next(r for r in reports if r["status"] == "final")
    assert {"system": "https://naho.ght-artois.fr/fhir/sid/lab-placer-order", "value": "CMD-F1"} in final["identifier"]
    assert final["category"][0]["coding"][0]["code"] == "LAB"
    assert final["presentedForm"][0]["contentType"] == "application/pdf"
    assert final["presentedForm"][0]["url"].endswith("/Binary/" + final["presentedForm"][0]["url"].rsplit("/", 1)[1])
    by_code = {o["code"]["coding"][0]["code"]: o for o in final["contained"]}
    potassium = by_code[POTASSIUM]
    assert potassium["valueQuantity"] == {"value": 5.8, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                                          "code": "mmol/L"}
    assert potassium["interpretation"][0]["coding"][0]["code"] == "H"
    assert potassium["referenceRange"][0]["low"]["value"] == 3.5 and potassium["referenceRange"][0]["high"][
        "value"] == 5.1
    assert by_code[CULTURE]["valueString"] == "Stérile à 48 h"
    assert sorted(r["reference"] for r in final["result"]) == sorted(f"#{o['id']}" for o in final["contained"])

    assert _get(client, f"/DiagnosticReport/{final['id']}")["id"] == final["id"]
    assert [r["status"] for r in _entries(_get(client, "/DiagnosticReport", patient=f"Patient/{patient.id}",
                                               status="preliminary"))] == ["preliminary"]
    assert _get(client, "/DiagnosticReport", patient=f"Patient/{patient.id}", code=CULTURE)["total"] == 1
    assert _get(client, "/DiagnosticReport", patient=f"Patient/{patient.id}", category="LAB")["total"] == 2
    _get(client, "/DiagnosticReport", expect=400, patient=f"Patient/{patient.id}", status="done")
    _get(client, "/DiagnosticReport", expect=400)  # a patient is required
    with app.state.container.uow() as uow:
        actions = set(uow.session.scalars(select(AuditEvent.action).where(AuditEvent.patient_id == patient.id)))
    assert {"patient:lab-result:list", "patient:lab-result:view"} <= actions


def test_outside_the_care_team_a_search_finds_nothing_and_a_read_is_not_found(app: FastAPI, client: TestClient,
                                                                             lab: ServerThread) -> None:
    patient = admit_inpatient(app.state.container)
    lab.send(oru("G1", [obx(1, POTASSIUM, "Potassium", "4.0", "mmol/L", "3.5-5.1")], ipp=patient.ipp,
                 placer="CMD-G1", filler="LAB-G1"))
    login(client, PHYSICIAN)
    (report,) = _entries(_get(client, "/DiagnosticReport", patient=f"Patient/{patient.id}"))
    with app.state.container.uow() as uow:
        people, _total = staff.list_staff(uow.session, unit_code="LENS-MED-CARDIO")
    outsider = next(p.username for p in people if p.profession == "nurse")
    with TestClient(app) as other:
        login(other, outsider)
        assert _get(other, "/DiagnosticReport", patient=f"Patient/{patient.id}")["total"] == 0
        _get(other, f"/DiagnosticReport/{report['id']}", expect=404)
    with TestClient(app) as nurse:  # the unit's nurse is in the care team: she reads it
        login(nurse, NURSE)
        assert _get(nurse, f"/DiagnosticReport/{report['id']}")["status"] == "final"
