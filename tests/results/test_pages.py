"""What clinicians see of laboratory results (pages and JSON), critical values from alert to
acknowledgement and escalation, the dead letters matched by hand, and who is refused."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.platform.audit import AuditEvent
from naho.platform.clock import FixedClock
from naho.platform.deps import Container
from naho.results import rules, service
from naho.results.models import LabResult, ResultAlert
from tests.interop.test_mllp import ServerThread
from tests.personas import NURSE, PHYSICIAN, PORTER, VIGILANCE, form_token, login
from tests.results.conftest import admit_inpatient, answer, obx, oru

POTASSIUM = "2823-3"


def _signed_in(app: FastAPI, who: str) -> TestClient:
    return login(TestClient(app), who)


def _alerts(container: Container) -> list[ResultAlert]:
    with container.uow() as uow:
        rows = list(uow.session.scalars(select(ResultAlert).order_by(ResultAlert.raised_at)))
        uow.session.expunge_all()
        return rows


def _actions(container: Container, patient_id) -> list[str]:  # type: ignore[no-untyped-def]
    with container.uow() as uow:
        return list(uow.session.scalars(select(AuditEvent.action).where(AuditEvent.patient_id == patient_id)
                                        .order_by(AuditEvent.seq)))


def test_the_cumulative_table_shows_tests_by_date_abnormal_values_and_corrections(
        client: TestClient, container: Container, lab: ServerThread, clock: FixedClock) -> None:
    patient = admit_inpatient(container)
    lab.send(oru("T1", [obx(1, POTASSIUM, "Potassium", "5.6", "mmol/L", "3.5-5.1", "H")], ipp=patient.ipp,
                 filler="R1", sampled="20261124080000"))
    lab.send(oru("T2", [obx(1, POTASSIUM, "Potassium", "4.6", "mmol/L", "3.5-5.1")], ipp=patient.ipp,
                 filler="R2", sampled="20261125080000"))
    lab.send(oru("T3", [obx(1, POTASSIUM, "Potassium", "4.2", "mmol/L", "3.5-5.1", status="C")], ipp=patient.ipp,
                 filler="R2", sampled="20261125080000"))
    login(client, PHYSICIAN)
    page = client.get(f"/patients/{patient.id}/resultats")
    assert page.status_code == 200
    html = page.text
    assert "24/11/2026 08:00" in html and "25/11/2026 08:00" in html  # sent in Paris time, shown so
    assert html.index("25/11/2026 08:00") < html.index("24/11/2026 08:00")  # newest first
    assert "<strong>5.6</strong>" in html and 'class="result abnormal"' in html
    assert "<strong>4.2</strong>" in html and "4.6" in html  # the corrected value, and what it replaced
    assert '<rect class="reference-band"' in html and html.count('<circle class="point') == 2
    assert f'href="/patients/{patient.id}/resultats"' in client.get(f"/patients/{patient.id}").text

    data = client.get(f"/api/patients/{patient.id}/results").json()
    [test] = data["tests"]
    assert test["loinc"] == POTASSIUM and test["unit"] == "mmol/L"
    assert [(r["shown"], r["status"], r["corrected"], r["previous"]) for r in test["results"]] == [
        ("4.2", "C", True, ["4.6"]), ("5.6", "F", False, [])]
    assert "patient:lab-result:view" in _actions(container, patient.id)


def test_a_critical_value_alerts_the_patients_physician_who_acknowledges_it(
        client: TestClient, container: Container, lab: ServerThread, clock: FixedClock) -> None:
    patient = admit_inpatient(container)
    assert answer(lab.send(oru("K1", [obx(1, POTASSIUM, "Potassium", "7.1", "mmol/L", "3.5-5.1", "HH")],
                               ipp=patient.ipp)))[0] == "AA"
    [alert] = _alerts(container)
    assert (alert.direction, alert.shown, alert.unit_code, alert.acknowledged_at) == (
        "high", "7.1 mmol/L", "LENS-MED-MIN", None)

    login(client, PHYSICIAN)
    worklist = client.get("/resultats/alertes").text
    assert 'id="critical-alerts"' in worklist and "7.1 mmol/L" in worklist and "DURAND" in worklist
    assert 'id="critical-alerts"' in client.get(f"/patients/{patient.id}/resultats").text
    # The patient's file loads the same banner (htmx) from the patient's alerts fragment.
    assert f'hx-get="/patients/{patient.id}/resultats/alertes"' in client.get(f"/patients/{patient.id}").text
    banner = client.get(f"/patients/{patient.id}/resultats/alertes").text
    assert "7.1 mmol/L" in banner and f'value="/patients/{patient.id}"' in banner
    clock.advance(minutes=3)
    token = form_token(client, "/resultats/alertes")
    response = client.post(f"/resultats/alertes/{alert.id}/acquittement",
                           data={"csrf_token": token, "suivant": "/resultats/alertes"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/resultats/alertes"
    [alert] = _alerts(container)
    assert alert.acknowledged_by is not None and "medecin" in alert.acknowledged_by
    assert (alert.acknowledged_at - alert.raised_at).total_seconds() == 180  # type: ignore[operator]
    assert "No critical value" in client.get("/resultats/alertes").text or 'id="no-alert"' in \
        client.get("/resultats/alertes").text
    # Acknowledged in time: never escalated.
    clock.advance(minutes=30)
    assert service.escalate_overdue(container.uow(), service.load_critical_rules()) == 0
    assert "patient:lab-alert:acknowledge" in _actions(container, patient.id)


def test_an_alert_nobody_acknowledges_goes_to_the_units_senior_physician(
        client: TestClient, container: Container, lab: ServerThread, clock: FixedClock) -> None:
    patient = admit_inpatient(container)
    lab.send(oru("E1", [obx(1, POTASSIUM, "Potassium", "2.1", "mmol/L", "3.5-5.1")], ipp=patient.ipp))
    [alert] = _alerts(container)
    assert alert.direction == "low"  # below the configured threshold (2.8 mmol/L), no flag sent
    configured = service.load_critical_rules()
    clock.advance(minutes=14)
    assert service.escalate_overdue(container.uow(), configured) == 0
    clock.advance(minutes=1)
    # No senior named for the unit in the file: every physician assigned to the unit.
    assert service.escalate_overdue(container.uow(), configured) == 1
    [alert] = _alerts(container)
    assert alert.escalated_at == clock.now() and "medecin" in (alert.escalated_to or "").split()
    assert service.escalate_overdue(container.uow(), configured) == 0  # once
    login(client, PHYSICIAN)
    assert 'class="escalated"' in client.get("/resultats/alertes").text

    named = rules.CriticalRules(configured.thresholds, 15, {"LENS-MED-MIN": ("chef.medecine",)})
    lab.send(oru("E2", [obx(1, POTASSIUM, "Potassium", "2.0", "mmol/L")], ipp=patient.ipp, filler="LAB-2"))
    clock.advance(minutes=20)
    assert service.escalate_overdue(container.uow(), named) == 1
    assert _alerts(container)[-1].escalated_to == "chef.medecine"
    assert "patient:lab-alert:escalate" in _actions(container, patient.id)


def test_a_message_for_an_unknown_patient_waits_and_is_matched_by_hand(
        client: TestClient, container: Container, lab: ServerThread, app: FastAPI) -> None:
    patient = admit_inpatient(container, "LEGRAND")
    message = oru("U1", [obx(1, POTASSIUM, "Potassium", "4.3", "mmol/L")], foreign="GAM-INCONNU")
    ack = lab.send(message)
    assert answer(ack) == ("AR", "U1", "UnknownPatient")

    vigilance = _signed_in(app, VIGILANCE)
    page = vigilance.get("/resultats/a-rapprocher")
    assert page.status_code == 200 and "GAM-INCONNU" in page.text and "UnknownPatient" in page.text
    letter_id = page.text.split('id="letter-')[1].split('"')[0]
    token = form_token(vigilance, "/resultats/a-rapprocher")
    wrong = vigilance.post(f"/resultats/a-rapprocher/{letter_id}", data={"csrf_token": token, "ipp": "99999999"},
                           follow_redirects=False)
    assert wrong.headers["location"] == "/resultats/a-rapprocher?erreur=patient"
    done = vigilance.post(f"/resultats/a-rapprocher/{letter_id}", data={"csrf_token": token, "ipp": patient.ipp},
                          follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/patients/{patient.id}"
    with container.uow() as uow:
        assert [r.number for r in uow.session.scalars(
            select(LabResult).where(LabResult.patient_id == patient.id))] == [4.3]
    assert 'id="no-letter"' in vigilance.get("/resultats/a-rapprocher").text
    assert "patient:lab-result:match" in _actions(container, patient.id)
    # The laboratory sends it again: acknowledged, applied once; its IPP is now known.
    assert answer(lab.send(message))[0] == "AA"
    assert answer(lab.send(oru("U2", [obx(1, POTASSIUM, "Potassium", "4.4", "mmol/L")], foreign="GAM-INCONNU",
                               filler="LAB-U2")))[0] == "AA"
    with container.uow() as uow:
        assert sorted(r.number for r in uow.session.scalars(
            select(LabResult).where(LabResult.patient_id == patient.id))) == [4.3, 4.4]


def test_a_porter_and_a_nurse_of_another_unit_see_no_results(app: FastAPI, container: Container,
                                                             lab: ServerThread) -> None:
    patient = admit_inpatient(container, unit="LENS-MED-CARDIO")  # the demo nurse works in internal medicine
    lab.send(oru("A1", [obx(1, POTASSIUM, "Potassium", "7.4", "mmol/L")], ipp=patient.ipp))
    for who in (PORTER, NURSE):
        outsider = _signed_in(app, who)
        assert outsider.get(f"/patients/{patient.id}/resultats").status_code in (403, 404)
        banner = outsider.get(f"/patients/{patient.id}/resultats/alertes")
        assert banner.status_code in (403, 404) and "7.4" not in banner.text
        response = outsider.get(f"/api/patients/{patient.id}/results")
        assert response.status_code in (403, 404) and "7.4" not in response.text
        assert outsider.get("/resultats/a-rapprocher").status_code == 403
    assert "patient:record:denied" in _actions(container, patient.id)
