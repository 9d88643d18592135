"""A stay opened on the wrong patient moves to the right one (A44): with its movements, bed and
the chart entries recorded in it; admission clerks and identity vigilance only, audited, sent."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import hl7
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.app import create_app
from naho.config import Settings
from naho.platform.audit import AuditEvent
from naho.platform.clock import FixedClock
from naho.platform.outbox import OutboxMessage
from naho.record import hl7 as adt
from naho.record.models import Observation
from tests.personas import CLERK, NURSE, VIGILANCE, form_token, login

UNIT = "LENS-MED-MIN"
BED = "LENS-MED-MIN-521-1"


def _post(client: TestClient, path: str, body: dict):  # type: ignore[no-untyped-def, type-arg]
    return client.post(path, json=body, headers={"x-csrf-token": form_token(client)})


def _patient(client: TestClient, name: str, first: str) -> dict:  # type: ignore[type-arg]
    response = _post(client, "/api/patients", {"birth_name": name, "first_names": first, "sex": "M",
                                               "birth_date": "1951-07-02", "birth_place": "62498"})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _admit(client: TestClient, patient_id: str) -> dict:  # type: ignore[type-arg]
    response = _post(client, "/api/encounters", {"patient_id": patient_id, "establishment_code": "LENS",
                                                 "encounter_class": "inpatient", "unit_code": UNIT, "bed_code": BED})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _stays(client: TestClient, patient_id: str) -> list[str]:
    page = client.get(f"/patients/{patient_id}").text
    return re.findall(r"/sejours/([0-9a-f-]{36})/reattribution", page)


def test_a_stay_moves_to_the_right_patient_with_its_bed_and_chart(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    wrong, right = _patient(client, "Dufour", "Paul"), _patient(client, "Dupont", "Pierre")
    stay = _admit(client, wrong["id"])
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        recorded = nurse.post(f"/patients/{wrong['id']}/constantes", data={"heart_rate": "80", "csrf_token": form_token(
            nurse, f"/patients/{wrong['id']}")}, follow_redirects=False)
        assert recorded.status_code == 303 and "erreur" not in recorded.headers["location"]
        refused = _post(nurse, f"/api/encounters/{stay['id']}/move", {"patient_id": right["id"], "reason": "erreur"})
        assert refused.status_code == 403  # not a nurse's decision
    short = _post(client, f"/api/encounters/{stay['id']}/move", {"patient_id": right["id"], "reason": "x"})
    assert short.status_code == 409 and short.json()["rule"] == "ReasonRequired"
    same = _post(client, f"/api/encounters/{stay['id']}/move", {"patient_id": wrong["id"], "reason": "erreur"})
    assert same.status_code == 409 and same.json()["rule"] == "SamePatient"
    moved = _post(client, f"/api/encounters/{stay['id']}/move",
                  {"patient_id": right["id"], "reason": "ouvert sur l'homonyme à l'accueil"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["patient_id"] == right["id"] and moved.json()["nda"] == stay["nda"]
    board = client.get(f"/api/units/{UNIT}/bed-board").json()
    assert {b["bed_code"]: b["patient_id"] for b in board["beds"]}[BED] == right["id"]
    container = app.state.container
    with container.session_factory() as s:
        vitals = s.scalars(select(Observation).where(Observation.encounter_id == uuid.UUID(stay["id"]))).all()
        assert vitals and {str(v.patient_id) for v in vitals} == {right["id"]}  # the chart of the stay follows
        trail = s.scalars(select(AuditEvent).where(AuditEvent.action == "patient:stay:moved")).all()
        assert {str(e.patient_id) for e in trail} == {wrong["id"], right["id"]}
        assert all(e.reason == "ouvert sur l'homonyme à l'accueil" for e in trail)
    assert _stays(client, wrong["id"]) == [] and _stays(client, right["id"]) == [stay["id"]]


def test_identity_vigilance_moves_a_stay_from_the_page_by_ipp(client: TestClient) -> None:
    login(client, VIGILANCE)
    wrong, right = _patient(client, "Caron", "Lucie"), _patient(client, "Bernard", "Jules")
    login(client, CLERK)
    stay = _admit(client, wrong["id"])
    login(client, VIGILANCE)
    page = f"/patients/{wrong['id']}"
    assert _stays(client, wrong["id"]) == [stay["id"]]

    def move(ipp: str, reason: str = "mauvais dossier choisi"):  # type: ignore[no-untyped-def]
        return client.post(f"/sejours/{stay['id']}/reattribution",
                           data={"ipp": ipp, "reason": reason, "csrf_token": form_token(client, page)},
                           follow_redirects=False)

    assert "erreur=UnknownIpp" in move("99999999").headers["location"]
    assert "erreur=ReasonRequired" in move(right["ipp"], "x").headers["location"]
    done = move(right["ipp"])
    assert done.status_code == 303 and done.headers["location"] == f"/patients/{right['id']}"
    assert _stays(client, right["id"]) == [stay["id"]]


@pytest.fixture
def sending_client(db_url: str, clock: FixedClock) -> Iterator[TestClient]:
    app = create_app(Settings(mode="test", database_url=db_url, workers=False,
                              hl7_adt_destination="127.0.0.1:9"), clock=clock)
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client
    app.state.container.engine.dispose()


def test_the_move_goes_out_as_an_a44(sending_client: TestClient, clock: FixedClock) -> None:
    client = sending_client
    login(client, CLERK)
    wrong, right = _patient(client, "Dufour", "Paul"), _patient(client, "Dupont", "Pierre")
    stay = _admit(client, wrong["id"])
    _post(client, f"/api/encounters/{stay['id']}/move", {"patient_id": right["id"], "reason": "mauvais patient"})
    with client.app.state.container.session_factory() as s:  # type: ignore[attr-defined]
        [a44] = s.scalars(select(OutboxMessage).where(OutboxMessage.ordering_key == f"hl7.adt:{right['id']}")
                          .order_by(OutboxMessage.ordering_seq)).all()[1:]
    text = adt.build_adt(a44.payload, control_id="C44", sending_application="NAHO", sending_facility="GHT",
                         now=clock.now())
    message = hl7.parse(text.strip())
    assert str(message.segment("MSH")(9)) == "ADT^A44^ADT_A43"
    assert str(message.segment("PID")(3)) == f"{right['ipp']}^^^NAHO^PI"
    assert str(message.segment("PID")(18)) == f"{stay['nda']}^^^NAHO^AN"
    mrg = message.segment("MRG")
    assert str(mrg(1)) == f"{wrong['ipp']}^^^NAHO^PI" and str(mrg(3)) == f"{stay['nda']}^^^NAHO^AN"
    # naho reads what naho sends.
    command = adt.parse_adt(text, zone=clock.now().tzinfo)  # type: ignore[arg-type]
    assert isinstance(command, adt.MoveAccount) and command.prior_account == adt.Identifier(stay["nda"], "NAHO", "AN")
