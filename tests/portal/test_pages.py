"""Portal and scheduling pages and API through the app: the staff hand a code, the patient
activates, books, cancels; the API answers 409 to the loser of a slot; the reset page says the
same thing for any address."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from naho.app import create_app
from naho.config import Settings
from naho.platform.clock import FixedClock
from tests.personas import CLERK, PORTER, csrf_from, form_token, login
from tests.scheduling.world import PATIENT_PASSWORD, cardiology, new_patient, staff_actor


@pytest.fixture
def app(db_url: str, clock: FixedClock) -> Iterator[FastAPI]:
    application = create_app(Settings(mode="test", database_url=db_url, workers=False), clock=clock,
                             outbox_handlers={"mail.reminder": print, "mail.portal": print})  # type: ignore[dict-item]
    yield application
    application.state.container.engine.dispose()


def _code(staff: TestClient, patient_id: uuid.UUID) -> str:
    page = staff.get(f"/patients/{patient_id}/portail")
    assert page.status_code == 200
    issued = staff.post(f"/patients/{patient_id}/portail/code", data={"csrf_token": csrf_from(page.text)})
    assert issued.status_code == 200
    match = re.search(r'id="code-value">([A-Z0-9-]+)<', issued.text)
    assert match
    return match.group(1)


def _activate(client: TestClient, code: str, birth: str = "1980-02-02", email: str = "lucie@example.org"):  # type: ignore[no-untyped-def]
    form = client.get("/portail/activation")
    return client.post("/portail/activation", data={
        "code": code, "birth_date": birth, "email": email, "password": PATIENT_PASSWORD,
        "csrf_token": csrf_from(form.text)}, follow_redirects=False)


def test_a_patient_activates_books_and_cancels_on_the_portal(app: FastAPI) -> None:
    container = app.state.container
    cardiology(container, staff_actor(container, "admission"))
    patient = new_patient(container)
    with TestClient(app) as staff, TestClient(app) as phone:
        code = _code(login(staff, CLERK), patient)
        assert _activate(phone, code, birth="1980-02-03").status_code == 422
        activated = _activate(phone, code)
        assert activated.status_code == 303 and activated.headers["location"] == "/portail"
        home = phone.get("/portail")
        assert home.status_code == 200 and 'id="no-appointment"' in home.text
        search = phone.get(f"/portail/rendez-vous/nouveau?pour={patient}&specialite=cardiology")
        slot = re.search(r'name="slot_id" value="([0-9a-f-]+)"', search.text)
        assert slot, search.text
        booked = phone.post("/portail/rendez-vous", data={"slot_id": slot.group(1), "patient_id": str(patient),
                                                          "csrf_token": csrf_from(search.text)})
        assert booked.status_code == 200 and 'id="appointments"' in booked.text
        appointment = re.search(r'id="appointment-([0-9a-f-]+)"', booked.text)
        assert appointment
        cancelled = phone.post(f"/portail/rendez-vous/{appointment.group(1)}/annuler",
                               data={"patient_id": str(patient), "csrf_token": csrf_from(booked.text)})
        assert cancelled.status_code == 200 and 'id="no-appointment"' in cancelled.text
        # The portal is not a staff page, and the staff's portal page is not the patient's.
        assert phone.get(f"/patients/{patient}/portail").status_code == 403
        assert staff.get("/portail").status_code == 403


def test_a_porter_cannot_hand_an_activation_code(app: FastAPI) -> None:
    patient = new_patient(app.state.container)
    with TestClient(app) as porter:
        login(porter, PORTER)
        assert porter.get(f"/patients/{patient}/portail").status_code == 403


def test_the_api_gives_a_409_to_the_second_booking_of_a_slot(app: FastAPI) -> None:
    container = app.state.container
    cardiology(container, staff_actor(container, "admission"))
    first, second = new_patient(container), new_patient(container, "DURAND", "PAUL")
    with TestClient(app) as clerk:
        login(clerk, CLERK)
        headers = {"x-csrf-token": form_token(clerk), "accept": "application/json"}
        slots = clerk.get("/api/scheduling/slots?specialty=cardiology&limit=2", headers=headers).json()
        assert len(slots) == 2 and slots[0]["schedule"]["establishment_code"] == "LENS"
        ok = clerk.post("/api/scheduling/appointments", json={"slot_id": slots[0]["id"], "patient_id": str(first)},
                        headers=headers)
        assert ok.status_code == 201, ok.text
        taken = clerk.post("/api/scheduling/appointments", json={"slot_id": slots[0]["id"], "patient_id": str(second)},
                           headers=headers)
        assert taken.status_code == 409
        assert taken.headers["content-type"].startswith("application/problem+json")
        assert "someone else" in taken.json()["detail"]
        moved = clerk.post(f"/api/scheduling/appointments/{ok.json()['id']}/reschedule",
                           json={"slot_id": slots[1]["id"]}, headers=headers)
        assert moved.status_code == 200 and moved.json()["starts_at"] == slots[1]["starts_at"]
        mine = clerk.get(f"/api/scheduling/patients/{first}/appointments", headers=headers).json()
        assert [a["id"] for a in mine] == [moved.json()["id"]]


def test_the_staff_book_and_cancel_from_the_day_of_a_schedule(app: FastAPI) -> None:
    container = app.state.container
    schedule = cardiology(container, staff_actor(container, "admission"))
    patient = new_patient(container, "ZOLA", "EMILE")
    with container.uow() as uow:
        from naho.identity import service as identity
        ipp = identity.summaries(uow.session, [patient])[patient].ipp
    with TestClient(app) as clerk:
        login(clerk, CLERK)
        assert str(schedule) in clerk.get("/agendas").text
        day = clerk.get(f"/agendas/{schedule}?jour=2026-11-30")
        slot = re.search(r'name="slot_id" value="([0-9a-f-]+)"', day.text)
        assert slot
        booked = clerk.post(f"/agendas/{schedule}/reserver", data={"slot_id": slot.group(1), "ipp": ipp,
                                                                   "csrf_token": csrf_from(day.text)})
        assert booked.status_code == 200 and "ZOLA" in booked.text
        unknown = clerk.post(f"/agendas/{schedule}/reserver", data={"slot_id": slot.group(1), "ipp": "99999999",
                                                                    "csrf_token": csrf_from(day.text)})
        assert "erreur=UnknownIpp" in str(unknown.url)
        appointment = re.search(r'name="appointment_id" value="([0-9a-f-]+)"', booked.text)
        assert appointment
        cancelled = clerk.post(f"/agendas/{schedule}/annuler", data={
            "appointment_id": appointment.group(1), "jour": "2026-11-30", "csrf_token": csrf_from(booked.text)})
        assert "ZOLA" not in cancelled.text


def test_the_forgotten_password_page_says_the_same_for_any_address(app: FastAPI) -> None:
    with TestClient(app) as client:
        answers = []
        for email in ("nobody@example.org", "admission"):
            form = client.get("/portail/mot-de-passe-oublie")
            answers.append(client.post("/portail/mot-de-passe-oublie",
                                       data={"email": email, "csrf_token": csrf_from(form.text)}))
        assert {a.status_code for a in answers} == {200}
        strip = lambda html: re.sub(r'value="[0-9a-f]+"|content="[0-9a-f]+"', "", html)  # noqa: E731
        assert strip(answers[0].text) == strip(answers[1].text)


def test_an_unknown_reset_link_is_refused(app: FastAPI) -> None:
    with TestClient(app) as client:
        form = client.get("/portail/reinitialiser?jeton=nope")
        refused = client.post("/portail/reinitialiser", data={"token": "nope", "password": PATIENT_PASSWORD,
                                                              "csrf_token": csrf_from(form.text)})
        assert refused.status_code == 422
    assert date(1980, 2, 2)


def test_a_patient_turns_on_the_second_factor_and_is_asked_for_it_at_sign_in(app: FastAPI) -> None:
    import pyotp

    container = app.state.container
    patient = new_patient(container)
    with TestClient(app) as staff, TestClient(app) as phone:
        code = _code(login(staff, CLERK), patient)
        assert _activate(phone, code).status_code == 303
        page = phone.get("/portail/securite")
        secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text)
        assert secret
        wrong = phone.post("/portail/securite", data={"secret": secret.group(1), "code": "000000",
                                                      "csrf_token": csrf_from(page.text)})
        assert wrong.status_code == 422
        now = container.clock.now().timestamp()
        on = phone.post("/portail/securite", data={"secret": secret.group(1), "csrf_token": csrf_from(page.text),
                                                   "code": pyotp.TOTP(secret.group(1)).at(now)})
        assert on.status_code == 200 and 'id="second-factor-on"' in on.text
    with TestClient(app) as again:
        form = again.get("/portail/connexion")
        signed = again.post("/portail/connexion", data={"email": "lucie@example.org", "password": PATIENT_PASSWORD,
                                                        "csrf_token": csrf_from(form.text)}, follow_redirects=False)
        assert signed.headers["location"].startswith("/connexion/second-facteur")
        refused = again.get("/portail", follow_redirects=False)  # not in before the second factor
        assert refused.status_code == 303 and refused.headers["location"].startswith("/connexion")


def test_a_patient_joins_the_waiting_list_and_accepts_the_offered_slot_on_the_portal(app: FastAPI) -> None:
    from naho.scheduling import service as scheduling

    container = app.state.container
    clerk_actor = staff_actor(container, "admission")
    cardiology(container, clerk_actor)
    holder, patient = new_patient(container, "HOLDER", "ANNE"), new_patient(container)
    with container.uow() as uow:
        slot = scheduling.search_slots(uow.session, now=container.clock.now(), limit=1)[0]
    booked = scheduling.book(container.uow(), clerk_actor, slot.id, holder, container.ports["care"])
    with TestClient(app) as staff, TestClient(app) as phone:
        assert _activate(phone, _code(login(staff, CLERK), patient)).status_code == 303
        search = phone.get(f"/portail/rendez-vous/nouveau?pour={patient}&specialite=cardiology")
        joined = phone.post("/portail/liste-attente", data={"patient_id": str(patient), "specialty": "cardiology",
                                                            "csrf_token": csrf_from(search.text)})
        assert "fait=attente" in str(joined.url)
        again = phone.post("/portail/liste-attente", data={"patient_id": str(patient), "specialty": "cardiology",
                                                           "csrf_token": csrf_from(search.text)})
        assert "erreur=AlreadyWaiting" in str(again.url)
        scheduling.cancel(container.uow(), clerk_actor, booked.id, container.ports["care"])
        home = phone.get("/portail")
        offer = re.search(r'action="/portail/offres/([0-9a-f-]+)/accepter"', home.text)
        assert offer, home.text
        accepted = phone.post(f"/portail/offres/{offer.group(1)}/accepter",
                              data={"patient_id": str(patient), "csrf_token": csrf_from(home.text)})
        assert "fait=reserve" in str(accepted.url) and 'id="appointments"' in accepted.text
