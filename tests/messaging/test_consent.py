"""The consent registry as sending and the staff read it: the patient's word from the portal
stops the secure-messaging send and its withdrawal lets the same send through; the staff page
shows the three purposes and their history, and records a word on the patient's behalf."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from fastapi.testclient import TestClient

from naho.messaging import consent
from naho.portal import service as portal
from tests.messaging.test_sending import (
    GP,
    Setup,
    admit,
    attach,
    file_document,
    letters,
    post,
    send,
    setup_fixture,  # noqa: F401 - the fixtures "setup" and "web"
    web_fixture,  # noqa: F401
)
from tests.personas import PHYSICIAN, login
from tests.scheduling.world import portal_account, staff_actor

BORN = date(1937, 11, 8)  # admit()'s patient


@pytest.fixture
def chart(web: TestClient, setup: Setup) -> tuple[str, str]:
    """(patient, document): admitted, a PDF filed and the GP attached by the physician."""
    patient = admit(web)
    login(web, PHYSICIAN)
    document = file_document(web, patient)
    attach(web, patient, setup.ids[GP])
    return patient, document


def test_every_purpose_is_allowed_until_the_patient_objects_and_unknown_ones_are_errors(setup: Setup) -> None:
    with setup.uow() as uow:
        assert all(consent.sharing_allowed(uow.session, uuid.uuid4(), p) for p in consent.ORDER)
        with pytest.raises(ValueError):
            consent.sharing_allowed(uow.session, uuid.uuid4(), "marketing")


def test_the_patients_objection_on_the_portal_refuses_the_send_and_its_withdrawal_lets_it_through(
        web: TestClient, setup: Setup, chart: tuple[str, str]) -> None:
    patient, document = chart
    container = setup.app.state.container
    me = portal_account(container, staff_actor(container, "admission"), uuid.UUID(patient), "lucien@example.org",
                        birth=BORN)
    # Objecting to the other purposes does not stop a letter to the GP.
    for purpose in (consent.GROUP_ESTABLISHMENTS, consent.RESEARCH):
        portal.change_consent(container.uow(), me, uuid.UUID(patient), purpose, objects=True,
                              care=container.ports["care"])
    portal.change_consent(container.uow(), me, uuid.UUID(patient), consent.COMMUNITY_PROFESSIONALS, objects=True,
                          care=container.ports["care"])
    refused = send(web, patient, document, setup.ids[GP])
    assert refused.headers["location"].endswith("?erreur=SharingObjected")
    assert letters(setup.uow) == []

    portal.change_consent(container.uow(), me, uuid.UUID(patient), consent.COMMUNITY_PROFESSIONALS, objects=False,
                          care=container.ports["care"])
    accepted = send(web, patient, document, setup.ids[GP])
    assert accepted.headers["location"].endswith("?envoye=1")
    assert [letter.status for letter in letters(setup.uow)] == ["queued"]

    # The staff page shows the three purposes and who said what, when and how.
    page = web.get(f"/patients/{patient}/correspondants").text
    section = page.split('id="consent"')[1].split("</section>")[0]
    assert 'id="consent-community_professionals" data-allowed="yes"' in section
    assert 'id="consent-group_establishments" data-allowed="no"' in section
    assert 'id="consent-research" data-allowed="no"' in section
    history = section.split('id="consent-history"')[1]
    assert history.count(f'data-source="{consent.PATIENT}"') == 4 and me.label in history


def test_staff_record_a_research_objection_on_the_patients_word_with_the_reason(
        web: TestClient, setup: Setup, chart: tuple[str, str]) -> None:
    patient, document = chart
    post(web, f"/patients/{patient}/opposition",
         {"purpose": consent.RESEARCH, "objects": "oui", "reason": "dit à la consultation du 25/11"})
    with setup.uow() as uow:
        state = {s.purpose: s for s in consent.states(uow.session, uuid.UUID(patient))}
    assert state[consent.COMMUNITY_PROFESSIONALS].allowed and not state[consent.RESEARCH].allowed
    word = state[consent.RESEARCH].latest
    assert word is not None and (word.source, word.reason) == (consent.STAFF, "dit à la consultation du 25/11")
    assert send(web, patient, document, setup.ids[GP]).headers["location"].endswith("?envoye=1")
    section = web.get(f"/patients/{patient}/correspondants").text.split('id="consent"')[1]
    assert "dit à la consultation du 25/11" in section and f'data-source="{consent.STAFF}"' in section
    unknown = post(web, f"/patients/{patient}/opposition", {"purpose": "marketing", "objects": "oui"})
    assert unknown.status_code == 422
