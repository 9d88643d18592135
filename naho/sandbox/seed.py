"""Synthetic data: the group's structure, staff for every unit, one demo account per role.

Deterministic for a given seed (Faker fr_FR). The base later issues extend with patients,
stays, orders and results. Demo accounts get a password only in development mode.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from faker import Faker
from sqlalchemy import select

from naho.config import DEVELOPMENT_PASSWORD, Settings
from naho.medication import service as medication
from naho.messaging import directory
from naho.platform.security.actor import SYSTEM_ACTOR
from naho.platform.security.models import Account
from naho.platform.security.passwords import hash_password
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.sandbox.imaging import seed_imaging
from naho.sandbox.patients import seed_patients
from naho.sandbox.scheduling import seed_scheduling
from naho.sites import service as sites
from naho.staff import service as staff
from naho.staff.rules import luhn_key
from naho.staff.schemas import StaffCreate

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: Role
    first_name: str
    last_name: str
    units: tuple[str, ...]


#: One per role, signed in with the development password (printed by `naho demo`).
DEMO_ACCOUNTS = (
    DemoAccount("medecin", Role.PHYSICIAN, "Claire", "Lefebvre", ("LENS-MED-MIN", "BETHUNE-MED-MIN")),
    DemoAccount("infirmier", Role.NURSE, "Julien", "Dupont", ("LENS-MED-MIN",)),
    DemoAccount("pharmacien", Role.PHARMACIST, "Nadia", "Benali", ("LENS-PUI-PHARMA",)),
    DemoAccount("preparateur", Role.PHARMACY_TECHNICIAN, "Kevin", "Lemaire", ("LENS-PUI-PHARMA",)),
    DemoAccount("admission", Role.ADMISSION_CLERK, "Sophie", "Martin", ("LENS-URG-SAU",)),
    DemoAccount("brancardier", Role.PORTER, "Mehdi", "Caron", ("LENS-URG-SAU",)),
    DemoAccount("admin", Role.IT_ADMIN, "Thomas", "Delattre", ()),
    DemoAccount("identitovigilance", Role.IDENTITY_VIGILANCE, "Isabelle", "Vasseur", ("LENS-URG-SAU",)),
    DemoAccount("dim", Role.MEDICAL_INFORMATION, "Marc", "Lemoine", ()),
)

#: How many of each profession a unit gets, by unit kind (care units scale with beds).
_CLINICAL = {"emergency", "icu", "continuing_care", "medicine", "surgery", "maternity", "neonatology",
             "paediatrics", "psychiatry", "geriatrics", "rehabilitation", "oncology"}


def staffing(kind: str, beds: int) -> dict[Role, int]:
    if kind in _CLINICAL:
        return {Role.PHYSICIAN: max(1, beds // 12), Role.NURSE: max(2, beds // 5)}
    if kind in {"operating_rooms", "recovery"}:
        return {Role.PHYSICIAN: 3, Role.NURSE: 4, Role.PORTER: 2}
    if kind == "pharmacy":
        return {Role.PHARMACIST: 2, Role.PHARMACY_TECHNICIAN: 3}
    if kind in {"laboratory", "imaging"}:
        return {Role.PHYSICIAN: 1}
    if kind == "outpatient":
        return {Role.PHYSICIAN: 2, Role.NURSE: 2, Role.ADMISSION_CLERK: 1}
    return {}


def _ascii(value: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", value) if c.isalnum() and c.isascii()).lower()


def _rpps(rng: random.Random) -> str:
    body = "10" + "".join(str(rng.randrange(10)) for _ in range(8))
    return body + luhn_key(body)


def demo_accounts_for(roles: list[Role]) -> list[DemoAccount]:
    return [a for a in DEMO_ACCOUNTS if a.role in roles]


def seed(uow: UnitOfWork, settings: Settings, *, progress: Progress | None = None) -> dict[str, int]:
    """Import the reference structure and create staff; safe to run again (adds what is missing)."""
    spec = sites.load_reference(settings.sites_file)
    report = sites.import_reference(uow, SYSTEM_ACTOR, spec,
                                    progress=(lambda d, t: progress("sites", d, t)) if progress else None)
    fake = Faker("fr_FR")
    fake.seed_instance(settings.seed)
    rng = random.Random(settings.seed)
    # One argon2 hash shared by the synthetic staff: hashing hundreds of them would take minutes.
    shared_hash = hash_password(DEVELOPMENT_PASSWORD) if settings.development else None
    created = 0
    with uow:
        s = uow.session
        now = uow.clock.now()
        taken = set(s.scalars(select(Account.username)))
        rpps_taken: set[str] = {"10000000017", "10000000025"}
        unit_ids = sites.unit_ids_by_code(s)
        for demo in DEMO_ACCOUNTS:
            if demo.username in taken:
                continue
            units = [u for u in demo.units if u in unit_ids]
            rpps = "10000000017" if demo.role is Role.PHYSICIAN else (
                "10000000025" if demo.role is Role.PHARMACIST else None)
            staff.add_staff(s, StaffCreate(
                username=demo.username, first_name=demo.first_name, last_name=demo.last_name,
                profession=str(demo.role), rpps=rpps, unit_codes=units,
                password=DEVELOPMENT_PASSWORD if settings.development else None,
            ), now=now, unit_ids=unit_ids)
            taken.add(demo.username)
            created += 1
        # Names come from a seeded generator: the same sequence every run, so a second run
        # finds every synthetic username already there and adds nothing.
        generated = {a.username for a in DEMO_ACCOUNTS}
        units = [u for e in spec.establishments for u in e.units]
        for index, unit in enumerate(units, 1):
            for role, count in staffing(unit.kind, unit.bed_count).items():
                for _ in range(count):
                    first, last = fake.first_name(), fake.last_name()
                    base = f"{_ascii(first)[:1]}{_ascii(last)}"[:30] or "agent"
                    username, n = base, 1
                    while username in generated:
                        n += 1
                        username = f"{base}{n}"
                    generated.add(username)
                    rpps = None
                    if role in {Role.PHYSICIAN, Role.PHARMACIST}:
                        rpps = _rpps(rng)
                        while rpps in rpps_taken:
                            rpps = _rpps(rng)
                        rpps_taken.add(rpps)
                    if username in taken or unit.code not in unit_ids:
                        continue
                    staff.add_staff(s, StaffCreate(
                        username=username, first_name=first, last_name=last, profession=str(role),
                        rpps=rpps, unit_codes=[unit.code],
                    ), now=now, unit_ids=unit_ids)
                    taken.add(username)
                    created += 1
            if progress:
                progress("staff", index, len(units))
        s.flush()
        if shared_hash:
            for account in s.scalars(select(Account).where(Account.password_hash.is_(None))):
                account.password_hash = shared_hash
        uow.commit()
    formulary = medication.ensure_formulary(uow, SYSTEM_ACTOR)
    with directory.SAMPLE_EXTRACT.open(encoding="utf-8") as extract:
        professionals = directory.import_extract(uow, SYSTEM_ACTOR, extract, source=directory.SAMPLE_EXTRACT.name)
    patients = seed_patients(uow, count=settings.demo_patients, seed=settings.seed,
                             progress=(lambda d, t: progress("patients", d, t)) if progress else None)
    patients.update(seed_scheduling(uow, settings))  # demo schedules, slots and a patient account
    patients.update(seed_imaging(uow, settings))  # synthetic studies in the local DICOM store
    return {"staff_created": created, **{f"{k}_created": v for k, v in report.created.items()},
            **({"formulary_products": formulary.products} if formulary else {}),
            **({"community_professionals_created": professionals.created} if professionals.created else {}),
            **patients}
