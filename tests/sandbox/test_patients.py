"""The demo's synthetic patients: deterministic, charted, and with real work for identity vigilance."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from naho.identity.models import Patient
from naho.identity.service import duplicate_worklist
from naho.platform.clock import FixedClock
from naho.platform.db import make_engine, make_session_factory
from naho.platform.events import EventBus
from naho.platform.security.actor import SYSTEM_ACTOR
from naho.platform.security.models import Account
from naho.platform.uow import UnitOfWork
from naho.record import chart, rules
from naho.record.models import Allergy, CareTeamMember, ClinicalNote, Condition, Encounter
from naho.sandbox import clinical
from naho.sandbox.patients import SHOWCASE_KINDS, fits, seed_patients, seed_records
from naho.sites import service as sites

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
COUNT = 300


def _uow(url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(url)
    return engine, UnitOfWork(make_session_factory(engine), FixedClock(NOW), EventBus())


@pytest.fixture(scope="module")
def demo(databases) -> Iterator[tuple[UnitOfWork, dict[str, int]]]:  # type: ignore[no-untyped-def]
    """One seeded group with COUNT synthetic patients, shared read-only by this module's tests."""
    from tests.conftest import _seed

    url = databases.copy(databases.template("seeded", _seed))
    engine, uow = _uow(url)
    result = seed_patients(uow, count=COUNT, seed=7)
    uow.url = url  # type: ignore[attr-defined]
    yield uow, result
    engine.dispose()


def _snapshot(uow: UnitOfWork) -> dict[str, object]:
    """Everything the seed decided, keyed by IPP (row ids are random UUIDs by design)."""
    with uow:
        s = uow.session
        ipp = dict(s.execute(select(Patient.id, Patient.ipp)).all())
        return {
            "patients": sorted(s.execute(select(Patient.ipp, Patient.birth_name, Patient.first_names,
                                                Patient.birth_date, Patient.status, Patient.ins)).all()),
            "problems": sorted((ipp[p], c) for p, c in s.execute(select(Condition.patient_id, Condition.icd10))),
            "allergies": sorted((ipp[p], c, k) for p, c, k in s.execute(
                select(Allergy.patient_id, Allergy.substance_code, Allergy.criticality))),
            "notes": sorted((ipp[p], t) for p, t in s.execute(select(ClinicalNote.patient_id, ClinicalNote.text))),
            "members": sorted((ipp[p], r, u) for p, r, u in s.execute(
                select(Encounter.patient_id, CareTeamMember.role, Account.username)
                .join(Encounter, Encounter.id == CareTeamMember.encounter_id)
                .join(Account, Account.id == CareTeamMember.account_id))),
            "stays": sorted((ipp[p], u, b, st) for p, u, b, st in s.execute(
                select(Encounter.patient_id, Encounter.unit_code, Encounter.bed_code, Encounter.status))),
        }


def test_the_same_seed_gives_the_same_records_and_another_seed_others() -> None:
    assert seed_records(COUNT, 7) == seed_records(COUNT, 7)
    assert seed_records(COUNT, 8) != seed_records(COUNT, 7)
    records = seed_records(COUNT, 7)
    assert len(records) == COUNT
    assert sorted(r.showcase for r in records if r.showcase) == sorted(SHOWCASE_KINDS)
    assert not any(r.showcase for r in seed_records(20, 7))  # tiny sandboxes stay random


def test_two_fresh_databases_get_the_same_patients_charts_and_stays(demo, databases) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import _seed

    uow, _result = demo
    engine, again = _uow(databases.copy(databases.template("seeded", _seed)))
    try:
        seed_patients(again, count=COUNT, seed=7)
        assert _snapshot(again) == _snapshot(uow)
    finally:
        engine.dispose()


def test_every_patient_is_charted_as_counted(demo) -> None:  # type: ignore[no-untyped-def]
    uow, result = demo
    with uow:
        s = uow.session
        count = lambda table: s.execute(select(func.count()).select_from(table)).scalar_one()  # noqa: E731
        assert count(Patient) == result["patients_created"] == COUNT
        assert count(Condition) == result["problems"] > COUNT // 2
        assert count(Allergy) == result["allergies"]
        allergic = s.execute(select(func.count(func.distinct(Allergy.patient_id)))).scalar_one()
        assert 0.1 * COUNT < allergic < 0.35 * COUNT  # about one person in five declares one
        in_bed = list(s.scalars(select(Encounter.id).where(Encounter.status == "in_progress")))
        assert len(in_bed) == result["stays_in_progress"] > 100
        notes = Counter(s.scalars(select(ClinicalNote.encounter_id)))
        medical = set(s.scalars(select(ClinicalNote.encounter_id).where(
            ClinicalNote.kind == "medical", ClinicalNote.text.like("Observation médicale d'entrée%"))))
        referents = Counter(s.scalars(select(CareTeamMember.encounter_id)
                                      .where(CareTeamMember.role == "referring_physician")))
        assert count(CareTeamMember) == result["care_team_members"] > len(in_bed)
    for stay in in_bed:  # every stay in progress has its admission notes, filed under the stay
        assert notes[stay] >= 2 and stay in medical
        assert referents[stay] == 1  # and its referring physician
    assert sum(notes.values()) == result["notes"]


def test_problems_fit_age_and_sex(demo) -> None:  # type: ignore[no-untyped-def]
    uow, _ = demo
    with uow:
        rows = uow.session.execute(select(Condition.icd10, Patient.sex, Patient.birth_date)
                                   .join(Patient, Patient.id == Condition.patient_id)).all()
    for code, sex, birth_date in rows:
        age = clinical.age_on(birth_date, NOW.date())
        problem = next(p for p in clinical.PROBLEMS if p.icd10 == code)
        assert problem.prevalence(age, sex) > 0, (code, sex, age)
    codes = Counter(code for code, _, _ in rows)
    assert codes["I10"] == max(codes.values())  # hypertension first, as in any French ward


def test_patients_lie_in_units_that_fit_them(demo) -> None:  # type: ignore[no-untyped-def]
    uow, _ = demo
    with uow:
        s = uow.session
        kinds = {u.code: u.kind for e in sites.establishment_choices(s) for u in sites.list_units(s, e.code)}
        rows = s.execute(select(Encounter.unit_code, Patient.sex, Patient.birth_date)
                         .join(Patient, Patient.id == Encounter.patient_id)).all()
    assert rows
    for unit_code, sex, birth_date in rows:
        assert fits(kinds[unit_code], clinical.age_on(birth_date, NOW.date()), sex), (unit_code, sex, birth_date)


def test_every_code_passes_the_record_rules(demo) -> None:  # type: ignore[no-untyped-def]
    for problem in clinical.PROBLEMS:
        assert rules.check_icd10(problem.icd10) == problem.icd10
    for substance in clinical.SUBSTANCES:
        assert rules.check_substance(substance.code) == substance.code
        assert substance.code.split(":")[0] in {"ATC", "FOOD", "ENV"}
    uow, _ = demo
    with uow:
        s = uow.session
        stored_conditions = set(s.scalars(select(Condition.icd10)))
        stored_allergies = set(s.scalars(select(Allergy.substance_code)))
        criticalities = set(s.scalars(select(Allergy.criticality)))
    assert all(rules.check_icd10(c) == c for c in stored_conditions)
    assert all(rules.check_substance(c) == c for c in stored_allergies)
    assert any(c.startswith("ATC:J01C") for c in stored_allergies)  # penicillins, for the medication checks
    assert criticalities <= {"low", "high", "unknown"}


def test_drug_allergies_fall_in_the_families_the_medication_checks_know() -> None:
    from naho.medication.rules import allergy_family

    families = {s.code: allergy_family(s.code.removeprefix("ATC:")) for s in clinical.SUBSTANCES}
    assert families["ATC:J01C"] == families["ATC:J01CA04"] == "penicillins"
    assert families["ATC:J01DD"] == "cephalosporins"
    assert families["ATC:J01EE"] == "sulfonamides"
    assert families["ATC:M01A"] == families["ATC:N02BA01"] == "nsaids"


def test_a_malformed_code_is_refused_on_import(db_url: str) -> None:
    engine, uow = _uow(db_url)
    try:
        with uow, pytest.raises(rules.BadCode):
            chart.import_history(uow.session, SYSTEM_ACTOR.account_id, observations=[], notes=[],
                                 allergies=[("pénicilline", "Pénicilline", "allergy", "high", None)],
                                 author="test", now=NOW)
    finally:
        engine.dispose()


def test_the_worklist_shows_each_kind_of_duplicate_and_flags_the_twins(demo) -> None:  # type: ignore[no-untyped-def]
    uow, _ = demo
    pairs = duplicate_worklist(uow, SYSTEM_ACTOR, limit=500)
    reasons = [set(c.reasons) for _, c in pairs]
    assert any("transposed_day_month" in r for r in reasons)
    assert any("used_name_matches_birth_name" in r for r in reasons)
    assert any("typo_birth_name" in r or "phonetic_birth_name" in r for r in reasons)
    twins = [(first, c) for first, c in pairs if c.twins_suspected]
    assert twins, "the worklist shows a pair of twins"
    for first, c in twins:  # twins are never proposed as the same person
        assert c.verdict == "possible"
        assert first.birth_name == c.patient.birth_name and first.birth_date == c.patient.birth_date
        assert first.first_names.split()[0] != c.patient.first_names.split()[0]
    same = [(first, c) for first, c in pairs if c.verdict in ("same", "probable")]
    assert len(same) >= 5
    for first, c in same:  # a duplicate was typed without INSi: the pair can be merged
        assert not (first.ins and c.patient.ins)


def test_identity_vigilance_opens_on_real_candidates(demo) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from naho.app import create_app
    from naho.config import Settings
    from tests.personas import VIGILANCE, login

    uow, _ = demo
    app = create_app(Settings(mode="test", database_url=uow.url, workers=False), clock=FixedClock(NOW))
    try:
        with TestClient(app) as client:
            login(client, VIGILANCE)
            page = client.get("/identitovigilance")
            assert page.status_code == 200
            rows = page.text.split('id="duplicates"')[1].count("<tr>") - 1  # minus the header row
            assert rows >= 8
            assert "jumeau ?" in page.text or "twin?" in page.text
    finally:
        app.state.container.engine.dispose()
