"""The synthetic staff: deterministic, in every care unit, passwords only in development."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from naho.config import Settings
from naho.platform.clock import SystemClock
from naho.platform.db import make_engine, make_session_factory
from naho.platform.events import EventBus
from naho.platform.security.models import Account
from naho.platform.uow import UnitOfWork
from naho.sandbox.seed import DEMO_ACCOUNTS, seed, staffing
from naho.sites import service as sites
from naho.staff import service as staff
from naho.staff.models import StaffAssignment

_ENGINES: list = []  # type: ignore[type-arg]


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    while _ENGINES:
        _ENGINES.pop().dispose()


def _seed(url: str, mode: str = "development") -> tuple[UnitOfWork, dict[str, int]]:
    engine = make_engine(url)
    _ENGINES.append(engine)
    uow = UnitOfWork(make_session_factory(engine), SystemClock(), EventBus())
    settings = Settings(mode=mode, database_url=url, secret_key="s" * 40, demo_patients=0)  # type: ignore[arg-type]
    return uow, seed(uow, settings)


def _usernames(uow: UnitOfWork) -> list[str]:
    with uow:
        return sorted(uow.session.scalars(select(Account.username)))


def test_two_fresh_databases_get_the_same_staff(databases) -> None:  # type: ignore[no-untyped-def]
    empty = databases.template("empty", lambda url: None)
    first, result = _seed(databases.copy(empty))
    second, _ = _seed(databases.copy(empty))
    assert result["staff_created"] > 400
    assert _usernames(first) == _usernames(second)


def test_seeding_again_adds_nothing(db_url: str) -> None:
    _uow, result = _seed(db_url)
    assert result == {"staff_created": 0, "patients_created": 0}


def test_every_care_unit_has_physicians_and_nurses(db_url: str) -> None:
    uow, _ = _seed(db_url)
    with uow:
        s = uow.session
        staffed = set(s.scalars(select(StaffAssignment.unit_id)))
        for establishment in sites.list_establishments(s):
            for unit in sites.list_units(s, establishment.code):
                if staffing(unit.kind, unit.bed_count):
                    assert unit.id in staffed, unit.code
        members, _total = staff.list_staff(s, unit_code="LENS-MED-CARDIO", limit=500)
    professions = {m.profession for m in members}
    assert {"physician", "nurse"} <= professions
    assert all(m.rpps for m in members if m.profession == "physician")


def test_demo_accounts_have_one_per_role(db_url: str) -> None:
    roles = {a.role for a in DEMO_ACCOUNTS}
    assert {"physician", "nurse", "pharmacist", "admission_clerk", "porter", "it_admin"} <= roles


def test_production_seed_sets_no_password(databases) -> None:  # type: ignore[no-untyped-def]
    empty = databases.template("empty", lambda url: None)
    uow, _ = _seed(databases.copy(empty), mode="production")
    with uow:
        hashes = set(uow.session.scalars(select(Account.password_hash)))
    assert hashes == {None}


def test_synthetic_patients_fill_beds_without_double_booking(db_url: str) -> None:
    from sqlalchemy import func

    from naho.identity.models import Patient
    from naho.record.models import BedOccupancy, Encounter, Observation
    from naho.sandbox.patients import seed_patients

    engine = make_engine(db_url)
    _ENGINES.append(engine)
    uow = UnitOfWork(make_session_factory(engine), SystemClock(), EventBus())
    result = seed_patients(uow, count=300, seed=7)
    assert result["patients_created"] == 300 and result["stays_in_progress"] > 100
    with uow:
        s = uow.session
        assert s.execute(select(func.count()).select_from(Patient)).scalar_one() == 300
        open_beds = s.execute(select(BedOccupancy.bed_code).where(BedOccupancy.ended_at.is_(None))).scalars().all()
        assert len(open_beds) == len(set(open_beds)) == result["stays_in_progress"]
        statuses = set(s.scalars(select(Patient.status)))
        in_progress = s.execute(select(func.count()).select_from(Encounter)
                                .where(Encounter.status == "in_progress")).scalar_one()
        charted = s.execute(select(func.count(func.distinct(Observation.patient_id)))).scalar_one()
    assert {"provisional", "validated", "qualified"} <= statuses
    assert in_progress == result["stays_in_progress"]
    assert charted == in_progress  # every patient in a bed has vital signs to show
    assert seed_patients(uow, count=300, seed=7) == {"patients_created": 0}  # only into an empty index
    _check_seeded_orders(uow, result)


def _check_seeded_orders(uow: UnitOfWork, result: dict[str, int]) -> None:
    """Patients in bed have their ward's usual orders, checked like signed ones: weight and height
    measured, signed by a physician of the stay's unit, never a penicillin for the allergic."""
    from naho.medication.models import MedicationOrder
    from naho.record.models import Allergy, Encounter

    assert result["medication_orders"] > result["stays_in_progress"]
    with uow:
        s = uow.session
        orders = list(s.scalars(select(MedicationOrder)))
        in_bed = {e.id: e.patient_id for e in s.scalars(select(Encounter).where(Encounter.status == "in_progress"))}
        allergic = set(s.scalars(select(Allergy.patient_id).where(Allergy.substance_code.startswith("ATC:J01C"))))
        s.expunge_all()
    assert len(orders) == result["medication_orders"]
    assert all(o.encounter_id in in_bed and in_bed[o.encounter_id] == o.patient_id for o in orders)
    assert all(o.weight_kg and o.height_cm and o.prescriber_label.endswith(")") for o in orders)
    assert {o.review_status for o in orders} == {"validated", "pending"}
    assert not [o for o in orders if o.patient_id in allergic and o.product_code.startswith("AMOX")]
