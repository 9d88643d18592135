"""The rooms through the app: the pages of both participants, the signalling websocket that
refuses anyone else or any other token, the waiting room, and the note written at the end."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from naho.app import create_app
from naho.config import Settings
from naho.platform import i18n
from naho.platform.clock import FixedClock
from naho.record import chart
from naho.telehealth.models import TeleconsultationSession
from tests.personas import CLERK, PHYSICIAN, csrf_from, login
from tests.scheduling.world import PATIENT_PASSWORD, new_patient, portal_account
from tests.telehealth.world import PATIENT_EMAIL, World, move_clock, video_appointment


@pytest.fixture
def app(db_url: str, clock: FixedClock) -> Iterator[FastAPI]:
    application = create_app(Settings(mode="test", database_url=db_url, workers=False), clock=clock)
    yield application
    application.state.container.engine.dispose()


@pytest.fixture
def world(app: FastAPI, clock: FixedClock) -> World:
    built = video_appointment(app.state.container)
    move_clock(clock, built.starts_at - timedelta(minutes=5))
    return built


def portal_login(client: TestClient, email: str = PATIENT_EMAIL) -> TestClient:
    page = client.get("/portail/connexion")
    done = client.post("/portail/connexion", data={"email": email, "password": PATIENT_PASSWORD,
                                                    "csrf_token": csrf_from(page.text)}, follow_redirects=False)
    assert done.status_code == 303, done.text
    return client


def socket_path(client: TestClient, page: str) -> str:
    response = client.get(page)
    assert response.status_code == 200, response.text
    match = re.search(r'data-socket="([^"]+)"', response.text)
    assert match, "no socket in the room page"
    return match.group(1).replace("&amp;", "&")


def receive(ws: Any, kind: str, **expected: Any) -> dict[str, Any]:
    """The next message of this kind with these values (states and arrivals interleave)."""
    for _ in range(10):
        message: dict[str, Any] = ws.receive_json()
        if message["type"] == kind and all(message.get(k) == v for k, v in expected.items()):
            return message
    raise AssertionError(f"no {kind} message with {expected}")


def connect(line: TestClient, who: TestClient, path: str) -> Any:
    """Open `who`'s websocket through `line`: the sockets of one room must share one event loop
    (each TestClient runs its own; the hub relays between the room's two sockets, as in uvicorn)."""
    return line.websocket_connect(path, headers={"cookie": f"naho_session={who.cookies.get('naho_session')}"})


def refused(client: TestClient, path: str, **headers: str) -> int:
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(path, headers=headers) as ws:
        ws.receive_json()
    return closed.value.code


def test_the_portal_and_the_schedule_link_to_the_room(app: FastAPI, world: World) -> None:
    with TestClient(app) as patient, TestClient(app) as desk:
        home = portal_login(patient).get("/portail")
        assert f'href="/portail/teleconsultation/{world.appointment_id}"' in home.text
        # The schedule's day (seen here by the secretariat: a physician outside the patient's care
        # team is refused the day page by scheduling's door, whoever the practitioner is).
        login(desk, CLERK)
        schedules = desk.get("/agendas").text
        match = re.search(r'href="/agendas/([0-9a-f-]+)"[^>]*>Téléconsultation de cardiologie', schedules)
        assert match
        page = desk.get(f"/agendas/{match.group(1)}?jour={world.starts_at.date().isoformat()}")
        assert page.status_code == 200
        assert f'href="/teleconsultations/{world.appointment_id}"' in page.text


def test_the_room_page_refuses_before_its_window_in_plain_words(app: FastAPI, clock: FixedClock) -> None:
    w = video_appointment(app.state.container)
    move_clock(clock, w.starts_at - timedelta(hours=1))
    with TestClient(app) as patient:
        page = portal_login(patient).get(f"/portail/teleconsultation/{w.appointment_id}")
    assert page.status_code == 409
    assert i18n._("The room opens 15 minutes before the appointment. Come back then.") in page.text
    assert "data-socket" not in page.text


def test_anyone_else_or_any_other_token_is_refused_at_the_websocket(app: FastAPI, world: World) -> None:
    container = app.state.container
    portal_account(container, world.clerk, new_patient(container, name="DURAND", first="PAUL"), "paul@example.org")
    with TestClient(app) as patient, TestClient(app) as doctor, TestClient(app) as third, \
            TestClient(app) as anonymous:
        path = socket_path(portal_login(patient), f"/portail/teleconsultation/{world.appointment_id}")
        doctor_path = socket_path(login(doctor, PHYSICIAN), f"/teleconsultations/{world.appointment_id}")
        portal_login(third, "paul@example.org")
        assert refused(third, path) == 1008  # another patient with this patient's token
        assert refused(doctor, path) == 1008  # the practitioner with the patient's token
        assert refused(anonymous, path) == 1008  # no session
        assert refused(patient, path[:-3] + "abc") == 1008  # tampered token
        assert refused(patient, path.split("?")[0]) == 1008  # no token
        other = path.replace(str(world.appointment_id), "00000000-0000-0000-0000-000000000000")
        assert refused(patient, other) == 1008  # another appointment
        assert refused(patient, path, origin="http://evil.example") == 1008  # cross-site
        # The rightful owners get in.
        with patient.websocket_connect(path) as ws:
            assert receive(ws, "state")["patient"] is True
        with doctor.websocket_connect(doctor_path) as ws:
            assert receive(ws, "state")["practitioner"] is True


def test_the_patient_waits_until_admitted_then_the_call_and_the_note(app: FastAPI, clock: FixedClock,
                                                                       world: World) -> None:
    container = app.state.container
    with TestClient(app) as patient, TestClient(app) as doctor, TestClient(app) as line:
        path = socket_path(portal_login(patient), f"/portail/teleconsultation/{world.appointment_id}")
        doctor_path = socket_path(login(doctor, PHYSICIAN), f"/teleconsultations/{world.appointment_id}")
        with connect(line, patient, path) as p:
            assert receive(p, "state")["admitted"] is False
            p.send_json({"type": "signal", "data": {"description": {"type": "offer", "sdp": "v=0"}}})
            assert receive(p, "error")["rule"] == "NotAdmitted"
            p.send_json({"type": "admit"})  # the patient cannot let themselves in
            assert receive(p, "error")["rule"] == "UnknownMessage"
            with connect(line, doctor, doctor_path) as d:
                state = receive(d, "state")
                assert state["patient"] and state["practitioner"] and not state["admitted"]
                assert receive(p, "peer-joined")["role"] == "practitioner"
                assert receive(p, "state")["practitioner"] is True
                d.send_json({"type": "signal", "data": {"description": {"type": "offer", "sdp": "v=0"}}})
                assert receive(d, "error")["rule"] == "NotAdmitted"
                d.send_json({"type": "admit"})
                assert receive(d, "state")["admitted"] is True
                assert receive(p, "state")["admitted"] is True
                d.send_json({"type": "signal", "data": {"description": {"type": "offer", "sdp": "v=0"}}})
                assert receive(p, "signal")["data"]["description"]["type"] == "offer"
                p.send_json({"type": "signal", "data": {"candidate": {"candidate": "c", "sdpMid": "0"}}})
                assert receive(d, "signal")["data"]["candidate"]["candidate"] == "c"
                p.send_json({"type": "chat", "text": "Bonjour docteur"})
                assert receive(d, "chat") == {"type": "chat", "from": "patient", "text": "Bonjour docteur"}
                assert receive(p, "chat")["text"] == "Bonjour docteur"
                d.send_json({"type": "end", "note": "Examen normal."})
                assert receive(d, "error")["message"] == i18n._("Confirm the patient's identity first.")
                d.send_json({"type": "identity"})
                assert receive(d, "state")["identity"] is True
                d.send_json({"type": "consent"})
                assert receive(d, "state")["consent"] is True
                clock.advance(minutes=9)
                d.send_json({"type": "end", "note": "Examen normal, revoir dans 3 mois."})
                ended = receive(d, "state")
                assert ended["ended"] is True and ended["duration"] == 540
                assert receive(p, "state", ended=True)["duration"] == 540
            assert receive(p, "peer-left")["role"] == "practitioner"
    with container.uow() as uow:
        notes = chart.read_chart(uow.session, world.patient_id, clock.now()).notes
        session = uow.session.scalars(select(TeleconsultationSession)).one()
        assert (session.duration_seconds, session.note_id) == (540, notes[0].id)
        assert session.patient_arrived_at is not None
    assert len(notes) == 1 and "9 min" in notes[0].text and "revoir dans 3 mois" in notes[0].text
