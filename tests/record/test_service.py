"""Stays and beds through the API and pages: admission, transfer, leave, discharge, cancellation,
the bed board, care-team access and double-booking under concurrency."""

from __future__ import annotations

import re
import threading
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.platform.audit import AuditEvent
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from naho.record import service
from naho.record.errors import BedAlreadyOccupied
from naho.record.schemas import AdmissionCreate
from tests.personas import CLERK, NURSE, PHYSICIAN, form_token, login

UNIT = "LENS-MED-MIN"  # the demo nurse and physician work here
BED = "LENS-MED-MIN-521-1"


def _post(client: TestClient, path: str, body: dict):  # type: ignore[no-untyped-def, type-arg]
    return client.post(path, json=body, headers={"x-csrf-token": form_token(client)})


def _patient(client: TestClient, name: str = "Dufour", first: str = "Paul") -> str:
    response = _post(client, "/api/patients", {"birth_name": name, "first_names": first, "sex": "M",
                                               "birth_date": "1951-07-02", "birth_place": "62498"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _admit(client: TestClient, patient_id: str, unit: str = UNIT, bed: str | None = BED):  # type: ignore[no-untyped-def]
    return _post(client, "/api/encounters", {"patient_id": patient_id, "establishment_code": "LENS",
                                             "encounter_class": "inpatient", "unit_code": unit, "bed_code": bed})


def _later(client: TestClient, clock, username: str = CLERK, **delta: float) -> None:  # type: ignore[no-untyped-def]
    """Time passes (sessions expire when idle): sign in again."""
    clock.advance(**delta)
    login(client, username)


def _beds(client: TestClient, unit: str = UNIT) -> dict[str, str | None]:
    board = client.get(f"/api/units/{unit}/bed-board").json()
    return {b["bed_code"]: b["patient_id"] for b in board["beds"]}


def test_admission_puts_the_patient_in_the_bed_with_an_nda(client: TestClient) -> None:
    login(client, CLERK)
    patient = _patient(client)
    stay = _admit(client, patient)
    assert stay.status_code == 201, stay.text
    body = stay.json()
    assert body["status"] == "in_progress" and body["nda"].isdigit()
    assert [(m["kind"], m["trigger"]) for m in body["movements"]] == [("admission", "A01")]
    assert _beds(client)[BED] == patient


def test_a_bed_cannot_be_given_twice(client: TestClient) -> None:
    login(client, CLERK)
    first, second = _patient(client), _patient(client, "Caron", "Lucie")
    assert _admit(client, first).status_code == 201
    refused = _admit(client, second)
    assert refused.status_code == 409
    assert _beds(client)[BED] == first
    assert _admit(client, second, bed="LENS-MED-MIN-522-1").status_code == 201  # the next bed is fine


def test_a_bed_outside_the_unit_is_refused(client: TestClient) -> None:
    login(client, CLERK)
    refused = _admit(client, _patient(client), bed="LENS-MED-CARDIO-201-1")
    assert refused.status_code == 409 and refused.json()["rule"] == "BedOutsideUnit"


def test_transfer_leave_discharge_and_cancellation(client: TestClient, app, clock) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    patient = _patient(client)
    stay = _admit(client, patient).json()
    _later(client, clock, hours=2)
    moved = _post(client, f"/api/encounters/{stay['id']}/transfer",
                  {"unit_code": UNIT, "bed_code": "LENS-MED-MIN-523-1"})
    assert moved.status_code == 200, moved.text
    beds = _beds(client)
    assert beds[BED] is None and beds["LENS-MED-MIN-523-1"] == patient
    _later(client, clock, hours=1)
    assert _post(client, f"/api/encounters/{stay['id']}/leave", {}).json()["status"] == "on_leave"
    assert _beds(client)["LENS-MED-MIN-523-1"] == patient  # the bed waits during a leave
    refused = _post(client, f"/api/encounters/{stay['id']}/leave", {})
    assert refused.status_code == 409 and refused.json()["rule"] == "AlreadyOnLeave"
    _later(client, clock, hours=5)
    assert _post(client, f"/api/encounters/{stay['id']}/return", {}).json()["status"] == "in_progress"
    _later(client, clock, days=2)
    done = _post(client, f"/api/encounters/{stay['id']}/discharge", {}).json()
    assert done["status"] == "finished" and done["ended_at"]
    assert _beds(client)["LENS-MED-MIN-523-1"] is None
    # Only the last movement can be cancelled; cancelling the discharge puts the patient back.
    wrong = _post(client, f"/api/encounters/{stay['id']}/cancel", {"kind": "transfer"})
    assert wrong.status_code == 409
    back = _post(client, f"/api/encounters/{stay['id']}/cancel", {"kind": "discharge"}).json()
    assert back["status"] == "in_progress" and back["ended_at"] is None
    assert _beds(client)["LENS-MED-MIN-523-1"] == patient
    triggers = [(m["trigger"], m["cancelled"]) for m in back["movements"]]
    assert triggers == [("A01", False), ("A02", False), ("A21", False), ("A22", False), ("A03", True)]


def test_the_unit_nurse_opens_the_patient_and_others_do_not(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    patient = _patient(client)
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        assert nurse.get(f"/patients/{patient}").status_code == 404  # not yet in her unit
        _admit(client, patient)
        page = nurse.get(f"/patients/{patient}")
        assert page.status_code == 200 and "DUFOUR" in page.text
        assert nurse.get(f"/unites/{UNIT}/lits").status_code == 200
        assert nurse.get("/unites/LENS-MED-CARDIO/lits").status_code == 403
    with app.state.container.session_factory() as s:
        views = s.scalars(select(AuditEvent).where(AuditEvent.patient_id == uuid.UUID(patient))
                          .order_by(AuditEvent.seq)).all()
    kinds = [(e.action, e.details.get("basis")) for e in views]
    assert ("patient:record:denied", None) in kinds
    assert ("patient:identity:view", "care_team") in kinds


def test_a_patient_transferred_away_stays_visible_for_a_while_then_not(client: TestClient, app, clock) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    patient = _patient(client)
    stay = _admit(client, patient).json()
    _later(client, clock, hours=3)
    _post(client, f"/api/encounters/{stay['id']}/discharge", {})
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        assert nurse.get(f"/api/patients/{patient}").status_code == 200  # discharged today: still her patient
        clock.advance(days=31)
        login(nurse, NURSE)
        assert nurse.get(f"/api/patients/{patient}").status_code == 404


def test_the_physician_discharges_through_the_page(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    patient = _patient(client)
    stay = _admit(client, patient).json()
    with TestClient(app) as doctor:
        login(doctor, PHYSICIAN)
        page = doctor.get(f"/patients/{patient}")
        assert f"/sejours/{stay['id']}/sortie" in page.text
        response = doctor.post(f"/sejours/{stay['id']}/sortie", data={"csrf_token": form_token(doctor)},
                               follow_redirects=False)
        assert response.status_code == 303
        assert "Terminé" in doctor.get(f"/patients/{patient}").text


def test_concurrent_admissions_into_one_bed_let_exactly_one_in(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    names = ["Boucher", "Lambert", "Girard", "Roussel", "Fontaine", "Chevalier"]
    patients = [uuid.UUID(_patient(client, name, "Jean")) for name in names]
    container = app.state.container
    clerk = Actor(uuid.uuid4(), "admission", "Sophie MARTIN", frozenset({Role.ADMISSION_CLERK}))
    start = threading.Barrier(len(patients))
    outcomes: list[str] = []

    def admit(patient_id: uuid.UUID) -> None:
        start.wait()
        try:
            service.admit_patient(container.uow(), clerk, AdmissionCreate(
                patient_id=patient_id, establishment_code="LENS", encounter_class="inpatient",
                unit_code=UNIT, bed_code=BED))
            outcomes.append("admitted")
        except BedAlreadyOccupied:
            outcomes.append("refused")

    threads = [threading.Thread(target=admit, args=(p,)) for p in patients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["admitted"] + ["refused"] * (len(patients) - 1)
    assert _beds(client)[BED] is not None


def test_break_the_glass_opens_the_record_and_goes_to_review(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    patient = _patient(client)
    _admit(client, patient, unit="LENS-MED-CARDIO", bed=None)
    ipp = client.get(f"/api/patients/{patient}").json()["ipp"]
    with TestClient(app) as doctor:
        login(doctor, PHYSICIAN)
        assert doctor.get(f"/patients/{patient}").status_code == 404
        token = form_token(doctor, "/bris-de-glace")
        short = doctor.post("/bris-de-glace", data={"ipp": ipp, "reason": "urgent", "csrf_token": token})
        assert short.status_code == 422
        assert doctor.get(f"/patients/{patient}").status_code == 404
        reason = "Malaise dans le couloir, patient inconscient"
        opened = doctor.post("/bris-de-glace", data={"ipp": ipp, "reason": reason, "csrf_token": token},
                             follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == f"/patients/{patient}"
        assert doctor.get(f"/patients/{patient}").status_code == 200
    with TestClient(app) as dim:
        login(dim, "dim")
        review = dim.get("/bris-de-glace/revue")
        assert "Malaise dans le couloir" in review.text and "Claire LEFEBVRE" in review.text
        grant = re.search(r'/bris-de-glace/revue/([0-9a-f-]{36})', review.text)
        assert grant
        dim.post(f"/bris-de-glace/revue/{grant.group(1)}", data={"note": "justifié", "csrf_token": form_token(
            dim, "/bris-de-glace/revue")})
        assert "Malaise dans le couloir" not in dim.get("/bris-de-glace/revue").text
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        assert nurse.get("/bris-de-glace/revue").status_code == 403
