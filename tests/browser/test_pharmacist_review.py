"""The pharmacist's review in a real browser: the pharmacist opens the queue from the menu, refuses
an order with SFPC codes and a comment; the prescriber then reads the intervention and accepts it."""

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
from tests.browser.test_admission import _sign_in
from tests.personas import PHARMACIST, PHYSICIAN

pytestmark = pytest.mark.browser

COMMENT = "Clairance basse : proposer 500 mg trois fois par jour."


def _ordered_patient(db_url: str) -> tuple[str, str]:
    """A woman of 85 in internal medicine at Lens with a paracetamol order signed by the demo physician."""
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    try:
        with UnitOfWork(factory, SystemClock(), EventBus()) as uow:
            now = uow.clock.now()
            patient = identity.import_identity(
                uow.session, Traits(birth_name="CARPENTIER", used_name=None, first_names=("JEANNE",), sex="F",
                                    birth_date=now.date().replace(year=now.year - 85), birth_place="62498"),
                status=IdentityStatus.PROVISIONAL, now=now, actor_label="test")
            record.import_stay(uow.session, patient, establishment_code="LENS", encounter_class="inpatient",
                               unit_code="LENS-MED-MIN", bed_code=None, admitted_at=now - timedelta(hours=3),
                               now=now, actor_label="test")
            physician = uow.session.execute(select(Account.id).where(Account.username == PHYSICIAN)).scalar_one()
            uow.commit()
        actor = Actor(account_id=physician, username=PHYSICIAN, display_name="Claire Lefebvre",
                      roles=frozenset({Role.PHYSICIAN}))
        order = medication.prescribe(
            UnitOfWork(factory, SystemClock(), EventBus()), actor, patient,
            OrderCreate(product_code="PARA1GCP", dose_value=1, dose_unit="g", route="PO", frequency="times_per_day",
                        times_per_day=3, weight_kg=62, height_cm=158), record.CARE)
        return str(patient), str(order.id)
    finally:
        engine.dispose()


def test_the_pharmacist_refuses_with_codes_and_the_prescriber_reads_and_accepts(  # type: ignore[no-untyped-def]
        page, browser, db_url: str) -> None:
    patient, order = _ordered_patient(db_url)
    _sign_in(page, PHARMACIST)
    page.locator('nav.mainnav a[href="/pharmacie/analyse"]').click()
    page.wait_for_url(re.compile(r"/pharmacie/analyse$"))
    row = page.locator(f"#order-{order}")
    assert "CARPENTIER" in row.inner_text().upper() and "85" in row.inner_text()
    row.locator("a").click()
    page.wait_for_url(re.compile(rf"/pharmacie/analyse/{order}$"))
    assert "62 kg" in page.locator("#patient-measures").inner_text()

    page.locator('#decision-form input[name="decision"][value="refused"]').check()
    page.locator("#problem-code").select_option("1.4")
    page.locator("#intervention-code").select_option("2.7")
    page.locator("#review-comment").fill(COMMENT)
    page.locator("#decision-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/pharmacie/analyse\?fait=refused$"))
    assert page.locator(f"#order-{order}").count() == 0
    assert page.console_errors == []

    context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris")
    prescriber = context.new_page()
    prescriber.base = page.base
    _sign_in(prescriber, PHYSICIAN)
    prescriber.goto(page.base + f"/pharmacie/analyse/{order}")
    analysis = prescriber.locator("#review").inner_text()
    assert COMMENT in analysis and "1.4" in analysis and "2.7" in analysis
    assert prescriber.locator("#decision-form").count() == 0
    prescriber.locator('#answer-form input[name="response"][value="accepted"]').check()
    prescriber.locator("#answer-comment").fill("Je passe à 500 mg.")
    prescriber.locator("#answer-form button[type=submit]").click()
    prescriber.wait_for_selector("#review .prescriber-response")
    assert prescriber.locator("#answer-form").count() == 0
    # the JSON API the order list reads says the same
    listed = prescriber.request.get(page.base + f"/api/patients/{patient}/medication-orders")
    assert listed.ok and [o["review_status"] for o in listed.json()] == ["refused"]
    context.close()
