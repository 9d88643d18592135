"""The one door to patient data: care team, role for a purpose, break-the-glass, self; all audited."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from naho.platform import access
from naho.platform.access import Basis, BreakTheGlassRefused, PatientNotFound, Purpose
from naho.platform.audit import AuditEvent
from naho.platform.security.actor import Actor
from naho.platform.security.rules import Role

PATIENT = uuid.uuid4()
PATIENT_ACCOUNT = uuid.uuid4()


def actor(*roles: Role, account: uuid.UUID | None = None) -> Actor:
    return Actor(account or uuid.uuid4(), "someone", "Someone ELSE", frozenset(roles))


class FakeCarePort:
    """The record's port, as a test double: who is in the care team is set by the test."""

    def __init__(self) -> None:
        self.team: set[uuid.UUID] = set()
        self.patients = {PATIENT}

    def patient_exists(self, session: Session, patient_id: uuid.UUID) -> bool:
        return patient_id in self.patients

    def in_care_team(self, session: Session, actor: Actor, patient_id: uuid.UUID, now: datetime) -> bool:
        return actor.account_id in self.team

    def patient_account(self, session: Session, patient_id: uuid.UUID) -> uuid.UUID | None:
        return PATIENT_ACCOUNT if patient_id == PATIENT else None


@pytest.fixture
def port() -> FakeCarePort:
    return FakeCarePort()


@pytest.fixture
def uow(uow_factory):  # type: ignore[no-untyped-def]
    return uow_factory()


def _open(uow, who: Actor, port: FakeCarePort, purpose: Purpose = Purpose.CARE,  # type: ignore[no-untyped-def]
          patient: uuid.UUID = PATIENT) -> access.Grant:
    with uow:
        try:
            return access.access_patient(uow.session, who, patient, purpose, now=uow.clock.now(), port=port)
        finally:
            uow.commit()  # refusals are audited too


def _last_audit(uow) -> AuditEvent:  # type: ignore[no-untyped-def]
    with uow:
        row = uow.session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
        uow.session.expunge(row)
        return row


def test_a_member_of_the_care_team_opens_the_chart(uow, port) -> None:  # type: ignore[no-untyped-def]
    nurse = actor(Role.NURSE)
    port.team.add(nurse.account_id)
    grant = _open(uow, nurse, port)
    assert grant.basis is Basis.CARE_TEAM
    event = _last_audit(uow)
    assert event.patient_id == PATIENT and event.details == {"purpose": "care", "basis": "care_team"}


def test_a_nurse_outside_the_care_team_is_refused_as_if_absent(uow, port) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PatientNotFound) as refused:
        _open(uow, actor(Role.NURSE), port)
    with pytest.raises(PatientNotFound) as absent:
        _open(uow, actor(Role.NURSE), port, patient=uuid.uuid4())
    assert str(refused.value) == str(absent.value)
    assert _last_audit(uow).action == "patient:record:denied"


def test_an_admission_clerk_sees_identity_but_not_the_clinical_chart(uow, port) -> None:  # type: ignore[no-untyped-def]
    clerk = actor(Role.ADMISSION_CLERK)
    assert _open(uow, clerk, port, Purpose.ADMINISTRATION).basis is Basis.ROLE
    with pytest.raises(PatientNotFound):
        _open(uow, clerk, port, Purpose.CARE)


def test_the_care_team_opens_the_chart_to_clinicians_only(uow, port) -> None:  # type: ignore[no-untyped-def]
    # A porter or a clerk working in the patient's unit is part of the team for where the patient
    # is, never for what they have: the door refuses them clinical content, and says so.
    for role in (Role.PORTER, Role.ADMISSION_CLERK, Role.PHARMACY_TECHNICIAN):
        member = actor(role)
        port.team.add(member.account_id)
        assert access.reading_purpose(member) is Purpose.ADMINISTRATION
        with pytest.raises(PatientNotFound):
            _open(uow, member, port, Purpose.CARE)
        assert _last_audit(uow).action == "patient:record:denied"
    porter = actor(Role.PORTER)
    port.team.add(porter.account_id)
    assert _open(uow, porter, port, Purpose.ADMINISTRATION).basis is Basis.CARE_TEAM
    # The legitimate twin: a physician of the same team reads the chart.
    physician = actor(Role.PHYSICIAN)
    port.team.add(physician.account_id)
    assert access.reading_purpose(physician) is Purpose.CARE
    assert _open(uow, physician, port, Purpose.CARE).basis is Basis.CARE_TEAM


def test_an_it_administrator_never_reads_clinical_data(uow, port) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PatientNotFound):
        _open(uow, actor(Role.IT_ADMIN), port, Purpose.CARE)
    with pytest.raises(PatientNotFound):
        _open(uow, actor(Role.IT_ADMIN), port, Purpose.IDENTITY)


def test_break_the_glass_opens_for_a_while_with_a_reason(uow, port, clock) -> None:  # type: ignore[no-untyped-def]
    doctor = actor(Role.PHYSICIAN)
    with uow:
        access.break_the_glass(uow.session, doctor, PATIENT, "Arrêt cardiaque au SAU, patient inconscient",
                               now=clock.now(), port=port)
        uow.commit()
    assert _last_audit(uow).action == "patient:record:break-the-glass"
    assert _open(uow, doctor, port).basis is Basis.BREAK_THE_GLASS
    clock.advance(hours=4, seconds=1)
    with pytest.raises(PatientNotFound):
        _open(uow, doctor, port)


@pytest.mark.parametrize("reason", ["", "   ", "urgence"])
def test_break_the_glass_needs_a_real_reason(uow, port, clock, reason: str) -> None:  # type: ignore[no-untyped-def]
    with uow, pytest.raises(BreakTheGlassRefused):
        access.break_the_glass(uow.session, actor(Role.PHYSICIAN), PATIENT, reason, now=clock.now(), port=port)


def test_a_porter_cannot_break_the_glass(uow, port, clock) -> None:  # type: ignore[no-untyped-def]
    with uow, pytest.raises(BreakTheGlassRefused):
        access.break_the_glass(uow.session, actor(Role.PORTER), PATIENT, "je dois savoir pour le transport",
                               now=clock.now(), port=port)


def test_a_patient_reads_only_their_own_record(uow, port) -> None:  # type: ignore[no-untyped-def]
    me = actor(Role.PATIENT, account=PATIENT_ACCOUNT)
    assert _open(uow, me, port, Purpose.SELF).basis is Basis.SELF
    with pytest.raises(PatientNotFound):
        _open(uow, actor(Role.PATIENT), port, Purpose.SELF)
    with pytest.raises(PatientNotFound):
        _open(uow, me, port, Purpose.CARE)  # a patient is no clinician, even of themselves


def test_a_system_reads_identities_but_never_clinical_content(uow, port) -> None:  # type: ignore[no-untyped-def]
    gateway = actor(Role.INTERFACE)
    assert _open(uow, gateway, port, Purpose.ADMINISTRATION).basis is Basis.ROLE
    with pytest.raises(PatientNotFound):
        _open(uow, gateway, port, Purpose.CARE)
