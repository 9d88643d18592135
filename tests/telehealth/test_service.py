"""Teleconsultation's use cases on a real database: who enters the room and when, admission,
identity and consent, the note and its duration written to the record, every step audited."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from naho.platform.audit import AuditEvent
from naho.platform.clock import FixedClock
from naho.platform.deps import Container
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role
from naho.record import chart
from naho.telehealth import rules, service
from naho.telehealth.models import TeleconsultationSession
from tests.scheduling.world import new_patient, portal_account
from tests.telehealth.world import World, move_clock, video_appointment

KEY = service.room_key("a test secret of the right length, 32+")


@pytest.fixture
def world(container: Container, clock: FixedClock) -> World:
    built = video_appointment(container)
    move_clock(clock, built.starts_at - timedelta(minutes=5))
    return built


def _actions(container: Container, patient_id: uuid.UUID) -> list[str]:
    with container.uow() as uow:
        return list(uow.session.scalars(select(AuditEvent.action).where(AuditEvent.patient_id == patient_id)
                                        .order_by(AuditEvent.seq)))


def _enter(container: Container, actor: Actor, w: World) -> service.Room:
    return service.enter_room(container.uow(), actor, w.appointment_id, container.ports["care"], KEY)


def test_both_participants_enter_within_the_window_with_their_own_token(container: Container, world: World) -> None:
    patient_room = _enter(container, world.patient, world)
    practitioner_room = _enter(container, world.physician, world)
    assert patient_room.role is rules.Role.PATIENT and practitioner_room.role is rules.Role.PRACTITIONER
    assert patient_room.token != practitioner_room.token
    now = container.clock.now()
    claims = rules.read_room_token(KEY, patient_room.token, appointment_id=world.appointment_id,
                                   account_id=world.patient.account_id, now=now)
    assert claims.expires_at == world.ends_at + rules.CLOSES_AFTER
    assert _actions(container, world.patient_id).count("patient:teleconsultation:enter") == 2


def test_the_room_is_refused_before_its_window_and_after(container: Container, clock: FixedClock) -> None:
    w = video_appointment(container)
    move_clock(clock, w.starts_at - timedelta(minutes=16))
    with pytest.raises(service.RoomRefused) as early:
        _enter(container, w.patient, w)
    assert early.value.extra["rule"] == "RoomNotYetOpen"
    move_clock(clock, w.ends_at + timedelta(minutes=31))
    with pytest.raises(service.RoomRefused) as late:
        _enter(container, w.physician, w)
    assert late.value.extra["rule"] == "RoomClosed"
    assert _actions(container, w.patient_id).count("patient:teleconsultation:outside-window") == 2


def test_anyone_else_is_refused_and_the_refusal_is_audited(container: Container, world: World) -> None:
    colleague = Actor(uuid.uuid4(), "autre.medecin", "Autre Médecin", frozenset({Role.PHYSICIAN}))
    other_patient = portal_account(container, world.clerk, new_patient(container, name="DURAND", first="PAUL"),
                                   "paul@example.org")
    for intruder in (colleague, world.clerk, other_patient):
        with pytest.raises(service.RoomNotFound):
            _enter(container, intruder, world)
    assert _actions(container, world.patient_id).count("patient:record:denied") == 3


def test_a_websocket_token_is_bound_to_its_appointment_and_person(container: Container, world: World) -> None:
    token = _enter(container, world.patient, world).token
    care = container.ports["care"]
    joined = service.join_room(container.uow(), world.patient, world.appointment_id, token, care, KEY)
    assert joined.role is rules.Role.PATIENT
    with pytest.raises(service.RoomRefused) as wrong_person:
        service.join_room(container.uow(), world.physician, world.appointment_id, token, care, KEY)
    assert wrong_person.value.extra["rule"] == "WrongParticipant"
    with pytest.raises(service.RoomRefused) as tampered:
        service.join_room(container.uow(), world.patient, world.appointment_id, token[:-2] + "xx", care, KEY)
    assert tampered.value.extra["rule"] == "TokenTampered"
    with container.uow() as uow:
        refused = uow.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "patient:teleconsultation:token-refused")).all()
    assert len(refused) == 2


def test_only_the_practitioner_admits_and_identity_and_consent_need_admission(container: Container,
                                                                               world: World) -> None:
    care = container.ports["care"]
    with pytest.raises(service.RoomNotFound):
        service.admit(container.uow(), world.patient, world.appointment_id, care)
    with pytest.raises(service.RoomRefused):
        service.confirm_identity(container.uow(), world.physician, world.appointment_id, care)
    state = service.admit(container.uow(), world.physician, world.appointment_id, care)
    assert state.admitted and not state.identity_confirmed
    assert service.confirm_identity(container.uow(), world.physician, world.appointment_id, care).identity_confirmed
    assert service.record_consent(container.uow(), world.physician, world.appointment_id, care).consent
    actions = _actions(container, world.patient_id)
    for action in ("admit", "identity-confirm", "consent"):
        assert f"patient:teleconsultation:{action}" in actions


def test_the_end_files_the_note_with_its_duration_in_the_record(container: Container, clock: FixedClock,
                                                                world: World) -> None:
    care = container.ports["care"]
    service.admit(container.uow(), world.physician, world.appointment_id, care)
    with pytest.raises(service.RoomRefused) as refused:
        service.end_consultation(container.uow(), world.physician, world.appointment_id, "Note.", care)
    assert refused.value.extra["rule"] == "IdentityNotConfirmed"
    service.confirm_identity(container.uow(), world.physician, world.appointment_id, care)
    service.record_consent(container.uow(), world.physician, world.appointment_id, care)
    clock.advance(minutes=12, seconds=10)
    state = service.end_consultation(container.uow(), world.physician, world.appointment_id,
                                     "Douleur thoracique atypique, ECG à faire.", care)
    assert state.ended and state.duration_seconds == 730
    with container.uow() as uow:
        notes = chart.read_chart(uow.session, world.patient_id, container.clock.now()).notes
        row = uow.session.scalars(select(TeleconsultationSession)).one()
        recorded = (row.note_id, row.duration_seconds, row.ended_at)
    assert len(notes) == 1 and notes[0].kind == "medical"
    assert "13 min" in notes[0].text and "ECG à faire" in notes[0].text
    assert notes[0].author == world.physician.label
    assert recorded == (notes[0].id, 730, container.clock.now())
    assert "patient:note:create" in _actions(container, world.patient_id)
    with pytest.raises(service.RoomRefused) as again:
        service.end_consultation(container.uow(), world.physician, world.appointment_id, "Encore.", care)
    assert again.value.extra["rule"] == "ConsultationEnded"
