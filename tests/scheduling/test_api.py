"""The scheduling JSON API: the secretariat opens a schedule, generates its slots, closes a
morning, puts a patient on the waiting list; a physician opens only their own; bad input is a
clear 422."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.personas import CLERK, PHYSICIAN, PORTER, form_token, login
from tests.scheduling.world import new_patient, staff_actor

SCHEDULE = {"name": "Consultation de pneumologie", "specialty": "pneumology", "establishment_code": "BETHUNE",
            "place": "Bâtiment A", "openings": [{"weekday": 1, "start": "09:00", "end": "12:00",
                                                   "consultation_type": "follow_up"}]}


def _client(app: FastAPI, username: str) -> TestClient:
    client = TestClient(app)
    login(client, username)
    client.headers.update({"x-csrf-token": form_token(client), "accept": "application/json"})
    return client


def test_the_secretariat_opens_generates_and_closes_a_schedule(app: FastAPI) -> None:
    clerk = _client(app, CLERK)
    created = clerk.post("/api/scheduling/schedules", json=SCHEDULE)
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["establishment_code"] == "BETHUNE" and schedule["specialty"] == "pneumology"
    added = clerk.post(f"/api/scheduling/schedules/{schedule['id']}/slots",
                       json={"first_day": "2026-12-01", "last_day": "2026-12-15"})
    assert added.json() == {"added": 27}  # three Tuesdays of nine follow-ups (20 minutes)
    closed = clerk.post(f"/api/scheduling/schedules/{schedule['id']}/closures", json={
        "starts_at": "2026-12-08T08:00:00Z", "ends_at": "2026-12-08T11:00:00Z", "reason": "congrès"})
    assert closed.json() == {"blocked": 9}
    found = clerk.get(f"/api/scheduling/slots?schedule={schedule['id']}&limit=200").json()
    assert len(found) == 18 and all(not s["starts_at"].startswith("2026-12-08") for s in found)
    patient = new_patient(app.state.container)
    waiting = clerk.post("/api/scheduling/waiting-list", json={
        "patient_id": str(patient), "consultation_type": "follow_up", "specialty": "pneumology"})
    assert waiting.status_code == 201
    assert clerk.post("/api/scheduling/waiting-list", json={
        "patient_id": str(patient), "consultation_type": "follow_up", "specialty": "pneumology"}).status_code == 409


def test_bad_input_is_a_clear_422(app: FastAPI) -> None:
    clerk = _client(app, CLERK)
    backwards = {**SCHEDULE, "openings": [{**SCHEDULE["openings"][0], "start": "12:00", "end": "09:00"}]}  # type: ignore[dict-item]
    refused = clerk.post("/api/scheduling/schedules", json=backwards)
    assert refused.status_code == 422 and refused.json()["rule"] == "InvalidOpening"
    assert clerk.post("/api/scheduling/schedules", json={**SCHEDULE, "openings": []}).status_code == 422
    unknown = clerk.post("/api/scheduling/schedules", json={**SCHEDULE, "establishment_code": "NOWHERE"})
    assert unknown.status_code == 404


def test_a_physician_opens_their_own_schedule_only_and_a_porter_none(app: FastAPI) -> None:
    physician = _client(app, PHYSICIAN)
    me = staff_actor(app.state.container, "medecin").account_id
    other = staff_actor(app.state.container, "infirmier").account_id
    assert physician.post("/api/scheduling/schedules",
                          json={**SCHEDULE, "practitioner_account_id": str(me)}).status_code == 201
    assert physician.post("/api/scheduling/schedules",
                          json={**SCHEDULE, "practitioner_account_id": str(other)}).status_code == 403
    assert _client(app, PORTER).post("/api/scheduling/schedules", json=SCHEDULE).status_code == 403
