"""The care team of a stay in a real browser: the unit's nurse names the referring physician,
then ends the membership."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from naho.identity import service as identity
from naho.identity.rules import IdentityStatus, Traits
from naho.platform.clock import SystemClock
from naho.platform.db import make_engine, make_session_factory
from naho.platform.events import EventBus
from naho.platform.uow import UnitOfWork
from naho.record import service as record
from tests.personas import NURSE, PASSWORD

pytestmark = pytest.mark.browser


def _patient_in_internal_medicine(db_url: str) -> str:
    engine = make_engine(db_url)
    try:
        with UnitOfWork(make_session_factory(engine), SystemClock(), EventBus()) as uow:
            now = uow.clock.now()
            patient = identity.import_identity(
                uow.session, Traits(birth_name="LEROY", used_name=None, first_names=("MARCEL",), sex="M",
                                    birth_date=now.date().replace(year=1941), birth_place="62498"),
                status=IdentityStatus.PROVISIONAL, now=now, actor_label="test")
            record.import_stay(uow.session, patient, establishment_code="LENS", encounter_class="inpatient",
                               unit_code="LENS-MED-MIN", bed_code=None, admitted_at=now - timedelta(hours=3),
                               now=now, actor_label="test")
            uow.commit()
            return str(patient)
    finally:
        engine.dispose()


def test_the_unit_nurse_names_and_ends_a_care_team_member(page, db_url: str) -> None:  # type: ignore[no-untyped-def]
    patient = _patient_in_internal_medicine(db_url)
    page.goto(page.base + "/connexion")
    page.get_by_label("Identifiant").fill(NURSE)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r"/accueil$"))

    page.goto(page.base + f"/patients/{patient}")
    page.locator("#stays a.care-team-link").first.click()
    page.wait_for_url(re.compile(r"/sejours/[0-9a-f-]{36}/equipe$"))
    assert "Julien DUPONT" in page.locator("#unit-teams").inner_text()

    page.locator("#staff-search").fill("Lefebvre")
    page.locator("#add-member form[role=search] button").click()
    page.wait_for_selector("#staff-found")
    page.locator("#role-medecin").select_option("referring_physician")
    page.locator("#staff-found form").filter(has=page.locator("#role-medecin")).locator("button").click()
    page.wait_for_url(re.compile(r"/equipe$"))
    named = page.locator("#named-members").inner_text()
    assert "Claire LEFEBVRE" in named

    page.locator("#named-members form button").click()
    page.wait_for_selector("#former-members")
    assert "Claire LEFEBVRE" not in page.locator("#named-members").inner_text()
    assert "Claire LEFEBVRE" in page.locator("#former-members").inner_text()
    assert page.console_errors == []
