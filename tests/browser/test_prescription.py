"""The prescriber's page in a real browser: the physician of the unit weighs the patient, opens the
prescriptions from the patient's file, finds paracetamol, orders 1 g every 4 h (6 g a day: above
the maximum) stating the height the chart lacks, sees the alert asking for a reason, gives it, and
the order is listed with it."""

from __future__ import annotations

import re

import pytest

from tests.browser.test_care_team import _patient_in_internal_medicine
from tests.personas import PASSWORD, PHYSICIAN

pytestmark = pytest.mark.browser


def test_the_physician_prescribes_and_answers_an_alert_in_the_page(page, db_url: str) -> None:  # type: ignore[no-untyped-def]
    patient = _patient_in_internal_medicine(db_url)
    page.goto(page.base + "/connexion")
    page.get_by_label("Identifiant").fill(PHYSICIAN)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r"/accueil$"))

    page.goto(page.base + f"/patients/{patient}")
    page.locator("#vital-weight").fill("74")  # weighed on the ward; the height is not in the chart
    page.locator("#vitals-form button").click()
    page.wait_for_url(re.compile(rf"/patients/{patient}$"))
    page.locator("#prescriptions-link a").click()
    page.wait_for_url(re.compile(r"/prescriptions$"))
    assert "74 kg" in page.locator("#measures-summary").inner_text()

    page.locator("#product-search").fill("paracetamol 1 g comprime")
    page.locator("#order-entry form[role=search] button").click()
    page.wait_for_selector("#products-found")
    page.locator("#products-found tr", has_text="Paracétamol 1 g comprimé").locator("a.choose-product").click()
    page.wait_for_selector("#order-form")
    assert "Paracétamol 1 g comprimé" in page.locator("#chosen-product").inner_text()

    page.locator("#dose-value").fill("1")
    page.locator("#dose-unit").select_option("g")
    page.locator("#route").select_option("PO")
    page.locator("#frequency").select_option("every_hours")
    page.locator("#every-hours").fill("4")
    page.locator("#height-cm").fill("172")  # the order states the height the chart lacks
    page.locator("#sign-order").click()

    page.wait_for_selector("#order-alerts")
    alert = page.locator('#order-alerts li[data-severity="override_required"]')
    assert alert.count() == 1 and "6000" in alert.inner_text()
    assert page.locator("#every-hours").input_value() == "4"  # what was typed is kept
    page.locator("#override-reason").fill("Douleur osseuse métastatique, avis de l'équipe douleur")
    page.locator("#sign-order").click()

    page.wait_for_url(re.compile(r"/prescriptions#orders$"))
    row = page.locator("#orders-table tr.order-row")
    assert row.count() == 1
    text = row.inner_text()
    assert "Paracétamol 1 g comprimé" in text and "Douleur osseuse métastatique" in text
    # the page asking for the reason is answered 409 (Chromium logs the status): nothing else
    assert [e for e in page.console_errors if "409 (Conflict)" not in e] == []
