"""Pre-admission (A05) and its arrival or cancellation (A38), class changes (A06/A07): through
the API, the patient page and the bed board, and the ADT messages they put in the outbox."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.app import create_app
from naho.config import Settings
from naho.platform.clock import FixedClock
from naho.platform.outbox import OutboxMessage
from naho.record import hl7 as adt
from tests.personas import CLERK, NURSE, PHYSICIAN, form_token, login

UNIT = "LENS-MED-MIN"  # the demo nurse and physician work here
BED = "LENS-MED-MIN-521-1"
PLANNED = "2026-11-27T08:00:00+00:00"  # the clock stands at 2026-11-25 09:30 UTC


def _post(client: TestClient, path: str, body: dict):  # type: ignore[no-untyped-def, type-arg]
    return client.post(path, json=body, headers={"x-csrf-token": form_token(client)})


def _patient(client: TestClient, name: str = "Dufour", first: str = "Paul") -> str:
    response = _post(client, "/api/patients", {"birth_name": name, "first_names": first, "sex": "M",
                                               "birth_date": "1951-07-02", "birth_place": "62498"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _pre_admit(client: TestClient, patient_id: str, *, encounter_class: str = "inpatient",
               bed: str | None = BED, at: str = PLANNED):  # type: ignore[no-untyped-def]
    return _post(client, "/api/pre-admissions", {
        "patient_id": patient_id, "establishment_code": "LENS", "encounter_class": encounter_class,
        "unit_code": UNIT, "bed_code": bed, "planned_at": at})


def _beds(client: TestClient) -> dict[str, str | None]:
    board = client.get(f"/api/units/{UNIT}/bed-board").json()
    return {b["bed_code"]: b["patient_id"] for b in board["beds"]}


def _expected(client: TestClient) -> list[str]:
    return [b["patient_id"] for b in client.get(f"/api/units/{UNIT}/bed-board").json()["expected"]]


def test_a_pre_admitted_patient_is_expected_then_arrives_in_the_same_stay(client: TestClient, clock) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    patient = _patient(client)
    planned = _pre_admit(client, patient)
    assert planned.status_code == 201, planned.text
    stay = planned.json()
    assert stay["status"] == "planned" and stay["nda"].isdigit() and stay["bed_code"] is None
    assert [(m["kind"], m["trigger"]) for m in stay["movements"]] == [("pre_admission", "A05")]
    assert _beds(client)[BED] is None  # a planned bed is a wish, not an occupancy
    assert _expected(client) == [patient]
    clock.advance(days=2)
    login(client, CLERK)
    arrived = _post(client, f"/api/encounters/{stay['id']}/arrival", {})
    assert arrived.status_code == 200, arrived.text
    body = arrived.json()
    assert body["id"] == stay["id"] and body["nda"] == stay["nda"]  # the NDA of the A05 is kept
    assert body["status"] == "in_progress" and body["bed_code"] == BED  # into the planned bed
    assert [m["trigger"] for m in body["movements"]] == ["A05", "A01"]
    assert _beds(client)[BED] == patient and _expected(client) == []
    again = _post(client, f"/api/encounters/{stay['id']}/arrival", {})
    assert again.status_code == 409 and again.json()["rule"] == "StayAlreadyStarted"


def test_an_outpatient_arrival_is_a_registration_and_another_bed_can_be_given(client: TestClient) -> None:
    login(client, CLERK)
    patient = _patient(client)
    stay = _pre_admit(client, patient, encounter_class="outpatient", bed=None).json()
    arrived = _post(client, f"/api/encounters/{stay['id']}/arrival", {"bed_code": "LENS-MED-MIN-522-1"}).json()
    assert [m["trigger"] for m in arrived["movements"]] == ["A05", "A04"]
    assert arrived["encounter_class"] == "outpatient" and arrived["bed_code"] == "LENS-MED-MIN-522-1"


def test_cancelled_pre_admission_cannot_arrive_and_its_cancel_is_a38(client: TestClient) -> None:
    login(client, CLERK)
    stay = _pre_admit(client, _patient(client)).json()
    cancelled = _post(client, f"/api/encounters/{stay['id']}/cancel-pre-admission", {})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert [(m["trigger"], m["cancelled"]) for m in cancelled.json()["movements"]] == [("A05", True)]
    refused = _post(client, f"/api/encounters/{stay['id']}/arrival", {})
    assert refused.status_code == 409 and refused.json()["rule"] == "StayCancelled"
    assert _expected(client) == []


def test_cancelling_the_arrival_leaves_the_stay_planned_and_a_pre_admission_cannot_be_cancelled_under_it(
        client: TestClient) -> None:
    login(client, CLERK)
    stay = _pre_admit(client, _patient(client)).json()
    _post(client, f"/api/encounters/{stay['id']}/arrival", {})
    under = _post(client, f"/api/encounters/{stay['id']}/cancel-pre-admission", {})
    assert under.status_code == 409 and under.json()["rule"] == "OnlyLastMovementCanBeCancelled"
    back = _post(client, f"/api/encounters/{stay['id']}/cancel", {"kind": "admission"}).json()
    assert back["status"] == "planned" and _beds(client)[BED] is None  # A11: planned again, bed freed
    assert _post(client, f"/api/encounters/{stay['id']}/cancel-pre-admission", {}).json()["status"] == "cancelled"


def test_an_emergency_is_never_pre_admitted_and_a_unit_of_another_establishment_is_refused(
        client: TestClient) -> None:
    login(client, CLERK)
    patient = _patient(client)
    refused = _pre_admit(client, patient, encounter_class="emergency", bed=None)
    assert refused.status_code == 409 and refused.json()["rule"] == "EmergencyIsNeverPlanned"
    elsewhere = _post(client, "/api/pre-admissions", {
        "patient_id": patient, "establishment_code": "ARRAS", "encounter_class": "inpatient",
        "unit_code": UNIT, "planned_at": PLANNED})
    assert elsewhere.status_code == 422
    missing = _post(client, "/api/pre-admissions", {
        "patient_id": patient, "establishment_code": "LENS", "encounter_class": "inpatient", "unit_code": UNIT})
    assert missing.status_code == 422  # no planned date


def test_an_emergency_visit_becomes_a_hospitalisation_and_back(client: TestClient, clock) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    patient = _patient(client)
    stay = _post(client, "/api/encounters", {"patient_id": patient, "establishment_code": "LENS",
                                             "encounter_class": "emergency", "unit_code": UNIT}).json()
    clock.advance(hours=3)
    login(client, CLERK)
    switched = _post(client, f"/api/encounters/{stay['id']}/class",
                     {"encounter_class": "inpatient", "unit_code": UNIT, "bed_code": BED})
    assert switched.status_code == 200, switched.text
    body = switched.json()
    assert body["encounter_class"] == "inpatient" and body["bed_code"] == BED and body["nda"] == stay["nda"]
    assert [m["trigger"] for m in body["movements"]] == ["A04", "A06"]
    assert _beds(client)[BED] == patient
    same = _post(client, f"/api/encounters/{stay['id']}/class", {"encounter_class": "day_hospital"})
    assert same.status_code == 409 and same.json()["rule"] == "ClassUnchanged"  # both PV1-2 = I
    # The cancel of an A06 is an A07 (PAM FR §5.3.5): back to the emergency visit, bed freed.
    undone = _post(client, f"/api/encounters/{stay['id']}/cancel", {"kind": "class_to_inpatient"}).json()
    assert undone["encounter_class"] == "emergency" and undone["bed_code"] is None
    assert _beds(client)[BED] is None
    lighter = _post(client, f"/api/encounters/{stay['id']}/class", {"encounter_class": "outpatient"}).json()
    assert [m["trigger"] for m in lighter["movements"]][-1] == "A07"


def test_a_planned_stay_cannot_change_class(client: TestClient) -> None:
    login(client, CLERK)
    stay = _pre_admit(client, _patient(client)).json()
    refused = _post(client, f"/api/encounters/{stay['id']}/class", {"encounter_class": "outpatient"})
    assert refused.status_code == 409 and refused.json()["rule"] == "StayNotStarted"


# --- pages ------------------------------------------------------------------------------------------

def _form(client: TestClient, path: str, page: str, **data: str):  # type: ignore[no-untyped-def]
    return client.post(path, data={**data, "csrf_token": form_token(client, page)}, follow_redirects=False)


def test_the_clerk_pre_admits_records_the_arrival_and_the_nurse_sees_it_coming(
        client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    patient = _patient(client)
    page = f"/patients/{patient}"
    assert f"/patients/{patient}/preadmission" in client.get(page).text
    missing = _form(client, f"/patients/{patient}/preadmission", page, establishment="LENS", unit=UNIT,
                    encounter_class="inpatient", planned_at="")
    assert missing.status_code == 303 and "erreur=PlannedDateRequired" in missing.headers["location"]
    done = _form(client, f"/patients/{patient}/preadmission", page, establishment="LENS", unit=UNIT,
                 encounter_class="inpatient", planned_at="2026-11-26T14:30", bed=BED)
    assert done.status_code == 303 and done.headers["location"] == page
    text = client.get(page).text
    stay_id = re.search(r'/sejours/([0-9a-f-]{36})/arrivee', text)
    assert stay_id and f"/sejours/{stay_id.group(1)}/annulation-preadmission" in text
    assert 'id="planned-stays"' in text and "26/11/2026 14:30" in text  # Paris time, as typed
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        board = nurse.get(f"/unites/{UNIT}/lits").text
        assert 'id="expected-arrivals"' in board and "DUFOUR" in board and BED in board  # the wished bed
        refused = nurse.post(f"/sejours/{stay_id.group(1)}/arrivee",
                             data={"csrf_token": form_token(nurse, f"/unites/{UNIT}/lits")}, follow_redirects=False)
        assert refused.status_code == 403  # the arrival is the admission office's
    arrived = _form(client, f"/sejours/{stay_id.group(1)}/arrivee", page, bed=BED)
    assert arrived.status_code == 303 and arrived.headers["location"] == page
    text = client.get(page).text
    assert 'id="planned-stays"' not in text and 'id="location"' in text
    assert _beds(client)[BED] == patient


def test_the_physician_switches_an_emergency_visit_to_a_hospitalisation_from_the_page(
        client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    patient = _patient(client)
    stay = _post(client, "/api/encounters", {"patient_id": patient, "establishment_code": "LENS",
                                             "encounter_class": "emergency", "unit_code": UNIT}).json()
    with TestClient(app) as doctor:
        login(doctor, PHYSICIAN)
        page = f"/patients/{patient}"
        assert f"/sejours/{stay['id']}/bascule" in doctor.get(page).text
        wrong_bed = _form(doctor, f"/sejours/{stay['id']}/bascule", page, encounter_class="inpatient", unit=UNIT,
                          bed="LENS-MED-CARDIO-201-1")
        assert "erreur=BedOutsideUnit" in wrong_bed.headers["location"]
        done = _form(doctor, f"/sejours/{stay['id']}/bascule", page, encounter_class="inpatient", unit=UNIT, bed=BED)
        assert done.status_code == 303 and done.headers["location"] == page
        assert "(A06)" in doctor.get(page).text
    assert _beds(client)[BED] == patient


# --- the messages --------------------------------------------------------------------------------

@pytest.fixture
def sending_client(db_url: str, clock: FixedClock) -> Iterator[TestClient]:
    """A naho with a receiver configured: movements are enqueued (nobody delivers them here)."""
    app = create_app(Settings(mode="test", database_url=db_url, workers=False,
                              hl7_adt_destination="127.0.0.1:9"), clock=clock)
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client
    app.state.container.engine.dispose()


def _sent(client: TestClient) -> list[tuple[str, str, str | None]]:
    with client.app.state.container.session_factory() as s:  # type: ignore[attr-defined]
        rows = s.scalars(select(OutboxMessage).order_by(OutboxMessage.ordering_seq)).all()
        return [(r.payload["trigger"], r.payload.get("action"), r.payload.get("original_trigger")) for r in rows]


def test_pre_admission_arrival_class_change_and_cancels_are_enqueued_as_pam_fr(
        sending_client: TestClient, clock: FixedClock) -> None:
    client = sending_client
    login(client, CLERK)
    patient = _patient(client)
    stay = _pre_admit(client, patient).json()
    _post(client, f"/api/encounters/{stay['id']}/arrival", {})
    clock.advance(hours=1)
    login(client, CLERK)
    _post(client, f"/api/encounters/{stay['id']}/class", {"encounter_class": "outpatient"})
    _post(client, f"/api/encounters/{stay['id']}/cancel", {"kind": "class_to_outpatient"})
    other = _pre_admit(client, patient, bed=None).json()
    _post(client, f"/api/encounters/{other['id']}/cancel-pre-admission", {})
    assert _sent(client) == [("A28", None, None), ("A05", "INSERT", None), ("A01", "INSERT", None),
                             ("A07", "INSERT", None), ("A06", "CANCEL", "A07"), ("A05", "INSERT", None),
                             ("A38", "CANCEL", "A05")]
    # naho reads what naho sends: the A05 carries its planned date (PV2-8) and the planned unit.
    with client.app.state.container.session_factory() as s:  # type: ignore[attr-defined]
        first = s.scalars(select(OutboxMessage).order_by(OutboxMessage.ordering_seq)).all()[1]
        text = adt.build_adt(first.payload, control_id="X1", sending_application="NAHO",
                             sending_facility="GHT", now=clock.now())
    command = adt.parse_adt(text, zone=UTC)
    assert isinstance(command, adt.PreAdmit) and command.visit is not None
    assert command.visit.expected_at == datetime.fromisoformat(PLANNED)
    assert command.visit.location == adt.Location(UNIT, "521", "1")
