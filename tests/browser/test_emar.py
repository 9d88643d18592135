"""The plan of care in a real browser: the unit's nurse opens the timeline, scans another patient's
wristband and a unit-dose label into the scan field, sees the wrong-patient block, then scans the
right wristband and records the dose as given, with the keyboard only."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from naho.identity import service as identity
from naho.identity.rules import IdentityStatus, Traits
from naho.medication import service as medication
from naho.medication.schemas import OrderCreate
from naho.platform.clock import SystemClock
from naho.platform.db import make_engine, make_session_factory
from naho.platform.events import EventBus
from naho.platform.security.actor import Actor
from naho.platform.security.models import Account
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.record import service as record
from tests.personas import NURSE, PASSWORD, PHYSICIAN

pytestmark = pytest.mark.browser


#: Paracetamol 1 g every 6 hours, the first dose due 10 minutes ago.
EVERY_6H = {"product_code": "PARA500CP", "dose_value": 1, "dose_unit": "g", "route": "PO",
            "frequency": "every_hours", "every_hours": 6}


def _two_patients_and_an_order(db_url: str, order: dict[str, object] = EVERY_6H) -> tuple[str, str, str]:
    """(order id, the patient's IPP, another patient's IPP of the same unit)."""
    engine = make_engine(db_url)
    try:
        make_uow = lambda: UnitOfWork(make_session_factory(engine), SystemClock(), EventBus())  # noqa: E731
        with make_uow() as uow:
            s, now = uow.session, uow.clock.now()
            ids = []
            for name, first, bed in (("LEROY", "MARCEL", "LENS-MED-MIN-521-1"), ("MARTIN", "ROSE", None)):
                patient = identity.import_identity(s, Traits(
                    birth_name=name, used_name=None, first_names=(first,), sex="M",
                    birth_date=now.date().replace(year=1941), birth_place="62498"),
                    status=IdentityStatus.PROVISIONAL, now=now, actor_label="test")
                record.import_stay(s, patient, establishment_code="LENS", encounter_class="inpatient",
                                   unit_code="LENS-MED-MIN", bed_code=bed, admitted_at=now - timedelta(hours=3),
                                   now=now, actor_label="test")
                ids.append(patient)
            physician = s.execute(select(Account).where(Account.username == PHYSICIAN)).scalar_one()
            people = identity.summaries(s, ids)
            uow.commit()
        actor = Actor(physician.id, PHYSICIAN, "Claire LEFEBVRE", frozenset({Role.PHYSICIAN}))
        signed = medication.prescribe(make_uow(), actor, ids[0], OrderCreate.model_validate(
            {**order, "starts_at": SystemClock().now() - timedelta(minutes=10), "weight_kg": 72, "height_cm": 175}),
            record.CARE)
        return str(signed.id), people[ids[0]].ipp, people[ids[1]].ipp
    finally:
        engine.dispose()


def _sign_in_and_open_the_plan_of_care(page) -> None:  # type: ignore[no-untyped-def]
    page.goto(page.base + "/connexion")
    page.get_by_label("Identifiant").fill(NURSE)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r"/accueil$"))
    page.goto(page.base + "/services/LENS-MED-MIN/plan-de-soins")


def _scan(page, text: str) -> None:  # type: ignore[no-untyped-def]
    """What a keyboard-wedge scanner does: type the code, then Enter, into the focused field."""
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def test_the_nurse_is_blocked_on_the_wrong_wristband_then_records_the_dose(page, db_url: str) -> None:  # type: ignore[no-untyped-def]
    order, ipp, other_ipp = _two_patients_and_an_order(db_url)
    _sign_in_and_open_the_plan_of_care(page)
    dose = page.locator(f'tr[data-order="{order}"] button.give-dose').first
    dose.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#bedside[open]")
    assert page.evaluate("document.activeElement.id") == "scan-input"

    _scan(page, "P" + other_ipp)
    _scan(page, "MPARA500CP/L2345/271231")
    blocked = page.locator('#bedside-checks li[data-right="patient"][data-state="blocking"]')
    blocked.wait_for()
    assert other_ipp in blocked.inner_text() and ipp in blocked.inner_text()
    assert page.locator("#scan-dose").inner_text() == "MPARA500CP/L2345/271231"

    _scan(page, "P" + ipp)
    page.locator('#bedside-checks li[data-right="patient"][data-state="ok"]').wait_for()
    assert page.locator('#bedside-checks li[data-state="blocking"]').count() == 0
    page.locator("#bedside-record").focus()
    page.keyboard.press("Enter")
    page.locator(f'tr[data-order="{order}"] .dose[data-status="given"]').wait_for()
    assert page.console_errors == []


def test_the_nurse_starts_an_infusion_at_the_rate_ordered(page, db_url: str) -> None:  # type: ignore[no-untyped-def]
    order, ipp, _other = _two_patients_and_an_order(db_url, {
        "product_code": "MORP1MGINJ", "dose_value": 1, "dose_unit": "mg/h", "route": "IV",
        "frequency": "continuous", "override_reason": "douleur post-opératoire"})
    _sign_in_and_open_the_plan_of_care(page)
    row = page.locator(f'tr[data-order="{order}"]')
    assert row.locator('.infusion-state[data-infusion="not_started"]').count() == 1
    row.locator('button.infusion-action[data-kind="infusion_start"]').click()
    page.wait_for_selector("#infusion[open]")
    _scan(page, "P" + ipp)
    _scan(page, "MMORP1MGINJ/L77/271231")
    page.locator("#infusion-dose-rate").fill("3")  # not the rate ordered, no titration range: refused
    page.locator("#infusion-ml-h").fill("3")
    page.locator("#infusion-record").click()
    page.locator('#infusion-checks li[data-right="rate"][data-state="blocking"]').wait_for()
    page.locator("#infusion-dose-rate").fill("1")
    page.locator("#infusion-ml-h").fill("1")
    page.locator("#infusion-record").click()
    page.locator(f'tr[data-order="{order}"] .infusion-state[data-infusion="running"]').wait_for()
    assert "1 mL/h" in page.locator(f'tr[data-order="{order}"] .infusion-state').inner_text()
