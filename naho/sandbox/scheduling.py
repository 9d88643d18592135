"""Demo schedules and a demo patient account: three consultations of the group with four weeks
of slots, and the portal account of one synthetic patient (login `patient@naho.demo`, the
development password), activated the way a real patient would be: a code, then the birth date.
Development only, and only with synthetic patients; safe to run again (adds what is missing)."""

from __future__ import annotations

from datetime import time, timedelta

from sqlalchemy import select

from naho.config import DEVELOPMENT_PASSWORD, Settings
from naho.identity import service as identity
from naho.platform.security import service as security
from naho.platform.security.models import Account
from naho.platform.uow import UnitOfWork
from naho.portal import service as portal
from naho.record.service import CARE
from naho.scheduling import rules
from naho.scheduling import service as scheduling

DEMO_PATIENT_LOGIN = "patient@naho.demo"
T = rules.ConsultationType
#: (name, specialty, establishment, place, practitioner's demo login or None, openings)
DEMO_SCHEDULES = (
    ("Consultation de cardiologie", "cardiology", "LENS", "Bâtiment B, 2e étage", "medecin",
     [rules.Opening(d, time(8, 30), time(12, 0), T.FIRST_VISIT, 30) for d in (0, 2, 4)]
     + [rules.Opening(d, time(14, 0), time(17, 0), T.FOLLOW_UP, 20) for d in (0, 2)]),
    ("Imagerie — échographie", "imaging", "BETHUNE", "Service d'imagerie, rez-de-chaussée", None,
     [rules.Opening(d, time(9, 0), time(16, 0), T.IMAGING, 15) for d in range(5)]),
    ("Prélèvements sanguins", "laboratory", "HENIN", "Laboratoire, accueil des prélèvements", None,
     [rules.Opening(d, time(7, 30), time(10, 30), T.LAB_DRAW, 10) for d in range(6)]),
)


def seed_scheduling(uow: UnitOfWork, settings: Settings) -> dict[str, int]:
    if not (settings.development and settings.demo_patients):
        return {}
    with uow:
        s = uow.session
        known = {v.name for v in scheduling.list_schedules(s)}
        accounts = {a.username: a.id for a in s.scalars(select(Account).where(Account.username.in_(
            ["medecin", DEMO_PATIENT_LOGIN])))}
        establishments = {e.code for e in scheduling.sites.establishment_choices(s)}
        clerk = security.actor_for(s.scalars(select(Account).where(Account.username == "admission")).one(),
                                   via="system")
    today = uow.clock.now().date()
    slots = 0
    for name, specialty, establishment, place, practitioner, openings in DEMO_SCHEDULES:
        if name in known or establishment not in establishments:
            continue
        owner = accounts.get(practitioner) if practitioner else None
        schedule = scheduling.create_schedule(uow, clerk, name=name, specialty=specialty,
                                              establishment_code=establishment, place=place,
                                              practitioner_account_id=owner, openings=openings)
        slots += scheduling.generate_slots(uow, clerk, schedule, today, today + timedelta(days=28))
    created = 0
    if DEMO_PATIENT_LOGIN not in accounts:
        with uow:
            patient_id = identity.id_by_ipp(uow.session, "01000001")  # the first synthetic patient
            person = identity.summaries(uow.session, [patient_id]).get(patient_id) if patient_id else None
        if person is not None:
            code, _ = portal.issue_activation_code(uow, clerk, person.id, CARE)
            portal.activate(uow, code=code, birth_date=person.birth_date, email=DEMO_PATIENT_LOGIN,
                            password=DEVELOPMENT_PASSWORD, address="127.0.0.1")
            created = 1
    return {"demo_slots_created": slots, "demo_patient_accounts_created": created}
