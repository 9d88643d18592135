"""Consents on the portal: the patient reads and changes each purpose of the registry, a parent
for a minor child until the proxy ends, another patient's account is refused (and audited);
the history says who, when and how."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.app import create_app
from naho.config import Settings
from naho.messaging import consent
from naho.platform.access import PatientNotFound
from naho.platform.audit import AuditEvent, AuditTag
from naho.platform.clock import FixedClock
from naho.platform.deps import Container
from naho.portal import service as portal
from tests.personas import csrf_from
from tests.scheduling.world import PATIENT_PASSWORD, new_patient, portal_account, staff_actor


@pytest.fixture
def app(db_url: str, clock: FixedClock) -> Iterator[FastAPI]:
    application = create_app(Settings(mode="test", database_url=db_url, workers=False), clock=clock)
    yield application
    application.state.container.engine.dispose()


def _words(container: Container, patient: uuid.UUID) -> dict[str, consent.ConsentState]:
    with container.uow() as uow:
        return {s.purpose: s for s in consent.states(uow.session, patient)}


def _signed_in(client: TestClient, email: str) -> TestClient:
    form = client.get("/portail/connexion")
    response = client.post("/portail/connexion", data={"email": email, "password": PATIENT_PASSWORD,
                                                       "csrf_token": csrf_from(form.text)}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def test_the_patient_objects_to_each_purpose_and_withdraws_and_the_history_says_who_when_how(
        container: Container, clock: FixedClock) -> None:
    clerk = staff_actor(container, "admission")
    patient = new_patient(container)
    me = portal_account(container, clerk, patient, "lucie@example.org")
    assert [line.allowed for line in portal.consents(container.uow(), me, patient, container.ports["care"])] == [
        True, True, True]
    objected_at = clock.now()
    for purpose in consent.ORDER:
        portal.change_consent(container.uow(), me, patient, purpose, objects=True, care=container.ports["care"])
    with container.uow() as uow:
        assert not any(consent.sharing_allowed(uow.session, patient, p) for p in consent.ORDER)
    clock.advance(minutes=5)
    portal.change_consent(container.uow(), me, patient, consent.RESEARCH, objects=False,
                          care=container.ports["care"])
    words = _words(container, patient)
    assert [words[p].allowed for p in consent.ORDER] == [False, False, True]
    assert [(e.objects, e.source, e.recorded_by, e.recorded_at) for e in words[consent.RESEARCH].history] == [
        (False, consent.PATIENT, me.label, objected_at + timedelta(minutes=5)),
        (True, consent.PATIENT, me.label, objected_at)]
    with container.uow() as uow:  # each change went through the door and is in the trail
        changes = uow.session.scalars(select(AuditEvent.target).where(
            AuditEvent.action == "patient:consent:update", AuditEvent.patient_id == patient)).all()
    assert sorted(changes) == sorted([*consent.ORDER, consent.RESEARCH])


def test_two_words_in_the_same_instant_keep_their_order(container: Container) -> None:
    clerk = staff_actor(container, "admission")
    patient = new_patient(container)
    me = portal_account(container, clerk, patient, "lucie@example.org")
    for objects in (True, False, True):  # the test clock does not move
        portal.change_consent(container.uow(), me, patient, consent.GROUP_ESTABLISHMENTS, objects=objects,
                              care=container.ports["care"])
    state = _words(container, patient)[consent.GROUP_ESTABLISHMENTS]
    assert not state.allowed and [e.objects for e in state.history] == [True, False, True]


def test_another_patients_account_cannot_change_the_consents_and_the_attempt_is_audited(
        container: Container) -> None:
    clerk = staff_actor(container, "admission")
    patient = new_patient(container)
    other = new_patient(container, "DURAND", "PAUL", date(1970, 5, 5))
    portal_account(container, clerk, patient, "lucie@example.org")
    intruder = portal_account(container, clerk, other, "paul@example.org", birth=date(1970, 5, 5))
    with pytest.raises(PatientNotFound):
        portal.change_consent(container.uow(), intruder, patient, consent.COMMUNITY_PROFESSIONALS, objects=True,
                              care=container.ports["care"])
    with pytest.raises(PatientNotFound):
        portal.consents(container.uow(), intruder, patient, container.ports["care"])
    assert all(s.allowed and not s.history for s in _words(container, patient).values())
    with container.uow() as uow:
        denied = [(e.actor_id, e.target, (e.details or {}).get("action")) for e in uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == AuditTag.ACCESS_DENIED, AuditEvent.patient_id == patient)
            .order_by(AuditEvent.seq))]
    assert denied == [
        (intruder.account_id, consent.COMMUNITY_PROFESSIONALS, "patient:consent:update"),
        (intruder.account_id, None, "patient:consent:view")]


def test_a_parent_changes_a_minor_childs_consent_until_the_proxy_is_revoked(container: Container) -> None:
    clerk = staff_actor(container, "admission")
    mother_id = new_patient(container, "LEROY", "ANNE", date(1985, 6, 1))
    child = new_patient(container, "LEROY", "HUGO", date(2016, 3, 3))
    mother = portal_account(container, clerk, mother_id, "anne@example.org", birth=date(1985, 6, 1))
    proxy = portal.create_proxy(container.uow(), clerk, child, "anne@example.org", "livret de famille",
                                container.ports["care"])
    portal.change_consent(container.uow(), mother, child, consent.RESEARCH, objects=True,
                          care=container.ports["care"])
    (word,) = _words(container, child)[consent.RESEARCH].history
    assert (word.objects, word.source, word.recorded_by) == (True, consent.PARENT, mother.label)
    assert _words(container, mother_id)[consent.RESEARCH].history == ()  # the child's, not hers
    portal.revoke_proxy(container.uow(), clerk, proxy, container.ports["care"])
    with pytest.raises(PatientNotFound):
        portal.change_consent(container.uow(), mother, child, consent.RESEARCH, objects=False,
                              care=container.ports["care"])
    assert not _words(container, child)[consent.RESEARCH].allowed


def test_an_unknown_purpose_is_refused(container: Container) -> None:
    clerk = staff_actor(container, "admission")
    patient = new_patient(container)
    me = portal_account(container, clerk, patient, "lucie@example.org")
    with pytest.raises(consent.UnknownConsentPurpose):
        portal.change_consent(container.uow(), me, patient, "marketing", objects=True, care=container.ports["care"])


def test_the_consents_page_explains_each_purpose_and_changes_it_with_a_confirmation(app: FastAPI) -> None:
    container = app.state.container
    clerk = staff_actor(container, "admission")
    patient = new_patient(container)
    other = new_patient(container, "DURAND", "PAUL", date(1970, 5, 5))
    portal_account(container, clerk, patient, "lucie@example.org")
    portal_account(container, clerk, other, "paul@example.org", birth=date(1970, 5, 5))
    with TestClient(app) as phone, TestClient(app) as intruder:
        page = _signed_in(phone, "lucie@example.org").get("/portail/consentements")
        assert page.status_code == 200
        assert re.findall(r'id="consent-([a-z_]+)" data-allowed="yes"', page.text) == list(consent.ORDER)
        change = {"patient_id": str(patient), "purpose": consent.GROUP_ESTABLISHMENTS, "objects": "oui"}
        assert phone.post("/portail/consentements", data=change).status_code == 403  # no CSRF token
        done = phone.post("/portail/consentements", data={**change, "csrf_token": csrf_from(page.text)})
        assert done.status_code == 200 and 'class="alert' in done.text
        card = done.text.split(f'id="consent-{consent.GROUP_ESTABLISHMENTS}"')[1].split("</li>")[0]
        assert 'data-allowed="no"' in card and f'data-source="{consent.PATIENT}"' in card
        assert 'name="objects" value="non"' in card
        # Another patient's account posting for Lucie gets the door's answer, nothing changes.
        own = _signed_in(intruder, "paul@example.org").get("/portail/consentements")
        refused = intruder.post("/portail/consentements", data={
            "patient_id": str(patient), "purpose": consent.RESEARCH, "objects": "oui",
            "csrf_token": csrf_from(own.text)})
        assert refused.status_code == 404
    words = _words(container, patient)
    assert [words[p].allowed for p in consent.ORDER] == [True, False, True]
