"""What scheduling and portal tests build on: staff actors from the seed, patients, a schedule
with its slots, a patient's portal account."""

from __future__ import annotations

import uuid
from datetime import date, time

from sqlalchemy import select

from naho.identity import service as identity
from naho.identity.schemas import PatientCreate
from naho.platform.deps import Container
from naho.platform.security import service as security
from naho.platform.security.actor import Actor
from naho.platform.security.models import Account
from naho.platform.security.rules import Role
from naho.portal import service as portal
from naho.scheduling import rules
from naho.scheduling import service as scheduling
from naho.scheduling.rules import ConsultationType as T

VIGILANCE = Actor(uuid.uuid4(), "iv", "Identitovigilance", frozenset({Role.IDENTITY_VIGILANCE}))
PATIENT_PASSWORD = "un mot de passe assez long"


def staff_actor(container: Container, username: str) -> Actor:
    with container.uow() as uow:
        account = uow.session.scalars(select(Account).where(Account.username == username)).one()
        return security.actor_for(account, via="session")


def new_patient(container: Container, name: str = "MARTIN", first: str = "LUCIE",
                birth: date = date(1980, 2, 2)) -> uuid.UUID:
    return identity.register_patient(container.uow(), VIGILANCE, PatientCreate(
        birth_name=name, first_names=first, sex="F", birth_date=birth, birth_place="62498"),
        confirm_reason="test patient").id


def cardiology(container: Container, clerk: Actor, practitioner: uuid.UUID | None = None,
               first_day: date = date(2026, 11, 30), last_day: date = date(2026, 12, 4)) -> uuid.UUID:
    """Cardiology in Lens, weekdays 08:30-12:00, first visits of 30 minutes; slots generated."""
    schedule = scheduling.create_schedule(
        container.uow(), clerk, name="Consultation de cardiologie", specialty="cardiology",
        establishment_code="LENS", place="Bâtiment B, 2e étage", practitioner_account_id=practitioner,
        openings=[rules.Opening(d, time(8, 30), time(12, 0), T.FIRST_VISIT, 30) for d in range(5)])
    scheduling.generate_slots(container.uow(), clerk, schedule, first_day, last_day)
    return schedule


def portal_account(container: Container, clerk: Actor, patient_id: uuid.UUID, email: str,
                   birth: date = date(1980, 2, 2)) -> Actor:
    """Activate the patient's portal account with a fresh code; the patient as an actor."""
    code, _ = portal.issue_activation_code(container.uow(), clerk, patient_id, container.ports["care"])
    account_id = portal.activate(container.uow(), code=code, birth_date=birth, email=email,
                                 password=PATIENT_PASSWORD, address="192.0.2.1")
    with container.uow() as uow:
        account = uow.session.get(Account, account_id)
        assert account is not None
        return security.actor_for(account, via="session")


def door(container: Container, actor: Actor) -> portal.PortalDoor:
    return portal.PortalDoor(container.ports["care"], actor.account_id)
