"""The portal on the real database: activation (birth date, single use, expiry, throttling),
password reset that leaks nothing, proxies for a child and their revocation, who opened my
record (staff accesses, break-the-glass highlighted), consents read from the registry."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from naho.messaging import consent
from naho.platform import access
from naho.platform.access import PatientNotFound, Purpose
from naho.platform.clock import FixedClock
from naho.platform.deps import Container
from naho.platform.outbox import OutboxMessage
from naho.platform.security import service as security
from naho.portal import service as portal
from naho.portal.models import ActivationCode
from naho.scheduling import service as scheduling
from tests.scheduling.world import (
    PATIENT_PASSWORD,
    cardiology,
    door,
    new_patient,
    portal_account,
    staff_actor,
)

ADDRESS = "198.51.100.7"


def _activate(container: Container, code: str, birth: date, email: str = "lucie@example.org") -> object:
    return portal.activate(container.uow(), code=code, birth_date=birth, email=email, password=PATIENT_PASSWORD,
                           address=ADDRESS)


def test_the_code_is_stored_hashed_and_opens_the_account_once_with_the_right_birth_date(container: Container) -> None:
    clerk = staff_actor(container, "admission")
    patient = new_patient(container)
    code, _ = portal.issue_activation_code(container.uow(), clerk, patient, container.ports["care"])
    with container.uow() as uow:
        stored = uow.session.scalars(select(ActivationCode.code_hash)).all()
    assert code not in stored and len(stored) == 1
    with pytest.raises(portal.ActivationRefused):
        _activate(container, code, date(1980, 2, 3))  # wrong birth date
    _activate(container, code.lower().replace("-", " "), date(1980, 2, 2))  # typed loosely: still the code
    with pytest.raises(portal.ActivationRefused):  # used already
        _activate(container, code, date(1980, 2, 2), email="other@example.org")
    # A verification link went out through the outbox; the mail carries no health data.
    with container.uow() as uow:
        mail = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "mail.portal")).one().payload
    assert mail["kind"] == "verify_email" and mail["to"] == "lucie@example.org"
    portal.verify_email(container.uow(), mail["token"], address=ADDRESS)
    with pytest.raises(portal.TokenRefused):
        portal.verify_email(container.uow(), mail["token"], address=ADDRESS)
    signed = security.sign_in(container.uow(), container.settings, username="lucie@example.org",
                              password=PATIENT_PASSWORD, address=ADDRESS, user_agent=None)
    assert not signed.mfa_pending


def test_an_expired_code_is_refused(container: Container, clock: FixedClock) -> None:
    clerk = staff_actor(container, "admission")
    patient = new_patient(container)
    code, expires = portal.issue_activation_code(container.uow(), clerk, patient, container.ports["care"])
    assert expires == clock.now() + portal.ACTIVATION_LIFETIME
    clock.advance(days=31)
    with pytest.raises(portal.ActivationRefused):
        _activate(container, code, date(1980, 2, 2))


def test_a_code_dies_after_five_wrong_birth_dates_and_an_address_is_held_off_after_ten_failures(
        container: Container) -> None:
    clerk = staff_actor(container, "admission")
    patient = new_patient(container)
    code, _ = portal.issue_activation_code(container.uow(), clerk, patient, container.ports["care"])
    for day in range(3, 8):
        with pytest.raises(portal.ActivationRefused):
            _activate(container, code, date(1980, 2, day))
    with pytest.raises(portal.ActivationRefused):  # the right birth date comes too late
        _activate(container, code, date(1980, 2, 2))
    for _ in range(4):
        with pytest.raises(portal.ActivationRefused):
            _activate(container, "AAAA-BBBB-CCCC", date(1980, 2, 2))
    with pytest.raises(portal.TooManyAttempts):
        _activate(container, "AAAA-BBBB-CCCC", date(1980, 2, 2))


def test_a_new_code_revokes_the_previous_one(container: Container) -> None:
    clerk = staff_actor(container, "admission")
    patient = new_patient(container)
    first, _ = portal.issue_activation_code(container.uow(), clerk, patient, container.ports["care"])
    second, _ = portal.issue_activation_code(container.uow(), clerk, patient, container.ports["care"])
    with pytest.raises(portal.ActivationRefused):
        _activate(container, first, date(1980, 2, 2))
    _activate(container, second, date(1980, 2, 2))


def test_a_password_reset_request_answers_the_same_and_mails_only_an_existing_account(container: Container) -> None:
    clerk = staff_actor(container, "admission")
    patient = new_patient(container)
    portal_account(container, clerk, patient, "lucie@example.org")
    assert portal.request_password_reset(container.uow(), "nobody@example.org", address=ADDRESS) is None
    assert portal.request_password_reset(container.uow(), "LUCIE@example.org", address=ADDRESS) is None
    assert portal.request_password_reset(container.uow(), "admission", address=ADDRESS) is None  # staff: never
    with container.uow() as uow:
        sent = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "mail.portal"))
        resets = [m.payload for m in sent if m.payload["kind"] == "reset_password"]
    assert [m["to"] for m in resets] == ["lucie@example.org"]
    with pytest.raises(portal.TokenRefused):  # too short a password: the link is not spent
        portal.reset_password(container.uow(), resets[0]["token"], "short", address=ADDRESS)
    portal.reset_password(container.uow(), resets[0]["token"], "un tout nouveau mot de passe", address=ADDRESS)
    with pytest.raises(portal.TokenRefused):
        portal.reset_password(container.uow(), resets[0]["token"], "encore un autre mot de passe", address=ADDRESS)
    security.sign_in(container.uow(), container.settings, username="lucie@example.org",
                     password="un tout nouveau mot de passe", address=ADDRESS, user_agent=None)


def test_an_expired_reset_link_is_refused(container: Container, clock: FixedClock) -> None:
    clerk = staff_actor(container, "admission")
    portal_account(container, clerk, new_patient(container), "lucie@example.org")
    portal.request_password_reset(container.uow(), "lucie@example.org", address=ADDRESS)
    with container.uow() as uow:
        token = next(m.payload["token"] for m in uow.session.scalars(select(OutboxMessage))
                     if m.payload.get("kind") == "reset_password")
    clock.advance(hours=1, seconds=1)
    with pytest.raises(portal.TokenRefused):
        portal.reset_password(container.uow(), token, "un tout nouveau mot de passe", address=ADDRESS)


def test_a_parent_acts_for_a_minor_child_until_the_proxy_is_revoked(container: Container) -> None:
    clerk = staff_actor(container, "admission")
    cardiology(container, clerk)
    mother_id = new_patient(container, "LEROY", "ANNE", date(1985, 6, 1))
    child = new_patient(container, "LEROY", "HUGO", date(2016, 3, 3))
    adult = new_patient(container, "LEROY", "MARC", date(2000, 1, 1))
    mother = portal_account(container, clerk, mother_id, "anne@example.org", birth=date(1985, 6, 1))
    with pytest.raises(portal.ProxyRefused):
        portal.create_proxy(container.uow(), clerk, adult, "anne@example.org", "livret de famille",
                            container.ports["care"])
    with pytest.raises(portal.ProxyRefused):
        portal.create_proxy(container.uow(), clerk, child, "anne@example.org", "", container.ports["care"])
    proxy = portal.create_proxy(container.uow(), clerk, child, "anne@example.org", "livret de famille",
                                container.ports["care"])
    with container.uow() as uow:
        assert [p.patient_id for p in portal.people_of(uow.session, mother.account_id)] == [mother_id, child]
    with container.uow() as uow:
        slot = scheduling.search_slots(uow.session, now=container.clock.now())[0]
    booked = scheduling.book(container.uow(), mother, slot.id, child, door(container, mother))
    assert booked.patient_id == child and booked.booked_via == "portal"
    with pytest.raises(PatientNotFound):  # an adult relative: no proxy, no access
        scheduling.patient_appointments(container.uow(), mother, adult, door(container, mother))
    portal.revoke_proxy(container.uow(), clerk, proxy, container.ports["care"])
    with pytest.raises(PatientNotFound):
        scheduling.patient_appointments(container.uow(), mother, child, door(container, mother))
    with pytest.raises(scheduling.AppointmentNotFound):
        scheduling.cancel(container.uow(), mother, booked.id, door(container, mother))


def test_who_opened_my_record_lists_staff_accesses_by_role_and_unit_and_highlights_break_the_glass(
        container: Container, clock: FixedClock) -> None:
    clerk = staff_actor(container, "admission")
    nurse = staff_actor(container, "infirmier")
    patient = new_patient(container)
    me = portal_account(container, clerk, patient, "lucie@example.org")
    with container.uow() as uow:  # an emergency access by a nurse outside the care team
        access.break_the_glass(uow.session, nurse, patient, "malaise en salle d'attente", now=clock.now(),
                               port=container.ports["care"])
        access.access_patient(uow.session, nurse, patient, Purpose.CARE, now=clock.now(), port=container.ports["care"])
        uow.commit()
    scheduling.patient_appointments(container.uow(), me, patient, door(container, me))  # my own reading: not listed
    lines = portal.who_opened(container.uow(), me, patient, container.ports["care"])
    by_role = {tuple(line.roles): line for line in lines if not line.break_the_glass}
    assert ("admission_clerk",) in by_role  # the code handed at the desk
    emergency = [line for line in lines if line.break_the_glass]
    assert {line.action for line in emergency} == {"patient:record:break-the-glass", "patient:record:view"}
    assert all(line.roles == ["nurse"] and line.unit and line.establishment for line in emergency)
    assert any(line.reason == "malaise en salle d'attente" for line in emergency)
    assert all(line.basis != "self" for line in lines)
    # Another patient's log is not mine to read.
    other = new_patient(container, "DURAND", "PAUL")
    with pytest.raises(PatientNotFound):
        portal.who_opened(container.uow(), me, other, container.ports["care"])


def test_consents_are_read_from_the_registry(container: Container) -> None:
    clerk = staff_actor(container, "admission")
    patient = new_patient(container)
    me = portal_account(container, clerk, patient, "lucie@example.org")
    lines = portal.consents(container.uow(), me, patient, container.ports["care"])
    assert [(line.purpose, line.allowed) for line in lines] == [
        (consent.COMMUNITY_PROFESSIONALS, True), (consent.GROUP_ESTABLISHMENTS, True), (consent.RESEARCH, True)]


def test_only_the_desk_or_the_care_team_hands_codes_and_a_patient_gets_one_account(container: Container) -> None:
    clerk = staff_actor(container, "admission")
    porter = staff_actor(container, "brancardier")
    patient = new_patient(container)
    from naho.platform.errors import Forbidden
    with pytest.raises(Forbidden):
        portal.issue_activation_code(container.uow(), porter, patient, container.ports["care"])
    portal_account(container, clerk, patient, "lucie@example.org")
    with pytest.raises(portal.AlreadyActivated):
        portal.issue_activation_code(container.uow(), clerk, patient, container.ports["care"])
    assert timedelta(days=30) == portal.ACTIVATION_LIFETIME
