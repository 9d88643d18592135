"""The patient portal in a real browser, on a phone-sized screen: the admission clerk hands an
activation code from the patient's file; the patient opens the account with it and the birth
date, books the soonest cardiology slot, then cancels it."""

from __future__ import annotations

import re
from datetime import date, time, timedelta

import pytest
from sqlalchemy import select

from naho.identity import rules as identity_rules
from naho.identity import service as identity
from naho.platform.clock import SystemClock
from naho.platform.db import make_engine, make_session_factory
from naho.platform.events import EventBus
from naho.platform.security import service as security
from naho.platform.security.models import Account
from naho.platform.uow import UnitOfWork
from naho.scheduling import rules
from naho.scheduling import service as scheduling
from tests.personas import CLERK, PASSWORD

pytestmark = pytest.mark.browser


def _patient_and_schedule(db_url: str) -> str:
    engine = make_engine(db_url)
    uow = UnitOfWork(make_session_factory(engine), SystemClock(), EventBus())
    try:
        with uow:
            now = uow.clock.now()
            clerk = security.actor_for(uow.session.scalars(select(Account).where(Account.username == CLERK)).one(),
                                       via="session")
            patient = identity.import_identity(uow.session, identity_rules.Traits(
                "BERNARD", None, ("CHLOE",), "F", date(1990, 7, 14), "62498"),
                status=identity_rules.IdentityStatus.PROVISIONAL, now=now, actor_label="test")
            uow.commit()
        schedule = scheduling.create_schedule(
            uow, clerk, name="Consultation de cardiologie", specialty="cardiology", establishment_code="LENS",
            place="Bâtiment B", openings=[rules.Opening(d, time(9, 0), time(11, 0), rules.ConsultationType.FIRST_VISIT,
                                                        30) for d in range(7)])
        first = now.date() + timedelta(days=3)
        scheduling.generate_slots(uow, clerk, schedule, first, first + timedelta(days=7))
        return str(patient)
    finally:
        engine.dispose()


def test_activation_then_booking_then_cancellation_on_a_phone(browser, live_server, db_url: str) -> None:  # type: ignore[no-untyped-def]
    patient = _patient_and_schedule(db_url)
    desk = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris").new_page()
    desk.goto(live_server + "/connexion")
    desk.locator("#field-username").fill(CLERK)
    desk.locator("#field-password").fill(PASSWORD)
    desk.locator("form .button").click()
    desk.wait_for_url(re.compile(r"/accueil$"))
    desk.goto(live_server + f"/patients/{patient}")
    desk.locator("#portal-link a").click()
    desk.wait_for_url(re.compile(r"/portail$"))
    desk.locator("form[action$='/portail/code'] button").click()
    code = desk.locator("#code-value").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", code)

    phone_context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris",
                                        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = phone_context.new_page()
    phone.goto(live_server + "/portail/activation")
    phone.locator("#field-code").fill(code)
    phone.locator("#field-birth_date").fill("1990-07-14")
    phone.locator("#field-email").fill("chloe.bernard@example.org")
    phone.locator("#field-password").fill("une phrase de passe assez longue")
    phone.locator("#activation button[type=submit]").click()
    phone.wait_for_url(re.compile(r"/portail$"))
    assert phone.locator("#no-appointment").is_visible()
    # The page fits the phone: nothing wider than the screen.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390 + 1

    phone.locator("a.button[href*='/portail/rendez-vous/nouveau']").click()
    phone.locator("#specialite").select_option("cardiology")
    phone.locator("form[role=search] button").click()
    phone.wait_for_selector("#slots")
    chosen = phone.locator("#slots li").first.inner_text()
    phone.locator("#slots li button").first.click()
    phone.wait_for_selector("#appointments")
    booked = phone.locator("#appointments li").first.inner_text()
    assert chosen.split("·")[0].strip() in booked and "Bâtiment B" in booked

    phone.locator("#appointments li form button").first.click()
    phone.wait_for_selector("#no-appointment")
    phone_context.close()
