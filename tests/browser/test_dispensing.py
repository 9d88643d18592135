"""Nominative dispensing in a real browser: the pharmacy technician opens the unit's list, opens
the batch, prepares each line by typing the pack's DataMatrix into the scan field (as a
keyboard-wedge scanner does), prints the labels and hands the batch over."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select, update

from naho.medication import dispensing
from naho.medication import service as orders
from naho.medication.models import MedicationOrder
from naho.medication.schemas import OrderCreate
from naho.platform.clock import SystemClock
from naho.platform.db import make_engine, make_session_factory
from naho.platform.events import EventBus
from naho.platform.security.actor import Actor
from naho.platform.security.models import Account
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.record import service as record
from tests.browser.test_care_team import _patient_in_internal_medicine
from tests.medication.test_barcodes import with_check_digit
from tests.personas import PASSWORD, PHYSICIAN

pytestmark = pytest.mark.browser
TECHNICIAN = "preparateur"
CIP = with_check_digit("340093000201")


def _actor(uow: UnitOfWork, username: str) -> Actor:
    account = uow.session.scalars(select(Account).where(Account.username == username)).one()
    return Actor(account.id, account.username, account.display_name, frozenset(Role(r) for r in account.role_names))


def _ward_with_a_validated_order(db_url: str) -> None:
    """A patient in internal medicine with paracetamol three times a day, validated by the
    pharmacist; ten tablets of lot LB1 in the Lens pharmacy's stock."""
    patient = uuid.UUID(_patient_in_internal_medicine(db_url))
    engine = make_engine(db_url)
    try:
        make = lambda: UnitOfWork(make_session_factory(engine), SystemClock(), EventBus())  # noqa: E731
        with make() as uow:
            physician, technician = _actor(uow, PHYSICIAN), _actor(uow, TECHNICIAN)
        order = orders.prescribe(make(), physician, patient, OrderCreate(
            product_code="PARA500CP", dose_value=1, dose_unit="g", route="PO", frequency="times_per_day",
            times_per_day=3, weight_kg=61, height_cm=160), record.CARE)
        with make() as uow:
            uow.session.execute(update(MedicationOrder).where(MedicationOrder.id == order.id)
                                .values(review_status="validated"))
            uow.commit()
        dispensing.receive_stock(make(), technician, "LENS", quantity=10, product_code="PARA500CP",
                                 code=f"]d2010{CIP}1728013110LB1")
    finally:
        engine.dispose()


def test_the_technician_prepares_labels_and_hands_over_a_batch(page, db_url: str) -> None:  # type: ignore[no-untyped-def]
    _ward_with_a_validated_order(db_url)
    page.goto(page.base + "/connexion")
    page.get_by_label("Identifiant").fill(TECHNICIAN)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r"/accueil$"))

    page.goto(page.base + "/pharmacie/dispensation?etablissement=LENS")
    page.locator("#unit").select_option("LENS-MED-MIN")
    page.locator("#dispensing-choice button[type=submit]").click()
    page.wait_for_selector("#dispensing-list")
    patient = page.locator("article.patient-needs", has_text="LEROY")
    assert patient.locator("tr.need").count() == 3

    page.locator("#open-batch button").click()
    page.wait_for_url(re.compile(r"/preparations/[0-9a-f-]{36}$"))
    for remaining in ("2", "1", "0"):
        field = page.locator("#scan-field")
        field.fill(f"]d2010{CIP}1728013110LB1")  # the lot last: no group separator needed
        field.press("Enter")
        page.wait_for_url(re.compile(r"etiquette=D\d{10}"))
        assert page.locator("#remaining").inner_text() == remaining
    assert page.locator("#batch-lines tr.line.prepared").count() == 3
    labels_url = page.locator("#print-labels").get_attribute("href")

    page.locator("#handover-form button").click()
    page.wait_for_selector("#handed-over")

    page.goto(page.base + labels_url)
    labels = page.locator("#labels section.label")
    assert labels.count() == 3
    barcode = labels.first.locator("img")
    assert barcode.get_attribute("src").startswith("data:image/svg+xml;base64,")
    assert barcode.evaluate("img => img.complete && img.naturalWidth > 0")
    first = labels.first.inner_text()
    assert re.search(r"D\d{10}", first) and "LEROY" in first and "LB1" in first
    assert page.console_errors == [], page.console_errors[:3]
