"""Laboratory orders in a real browser: the physician orders from the patient's page, the
labels print with their barcodes, the nurse records the collection by typing the label's number
(as a scanner does: the number, then Enter)."""

from __future__ import annotations

import re

import pytest

from naho.app import create_app
from naho.config import Settings
from tests.browser.test_admission import _sign_in
from tests.personas import NURSE, PHYSICIAN
from tests.results.conftest import Inpatient, admit_inpatient

pytestmark = pytest.mark.browser


@pytest.fixture
def inpatient(db_url: str) -> Inpatient:
    app = create_app(Settings(mode="test", database_url=db_url, workers=False))
    try:
        return admit_inpatient(app.state.container, "LEROY")
    finally:
        app.state.container.engine.dispose()


def test_the_physician_orders_prints_labels_and_the_nurse_records_the_collection(  # type: ignore[no-untyped-def]
        inpatient: Inpatient, page) -> None:
    _sign_in(page, PHYSICIAN)
    page.goto(page.base + f"/patients/{inpatient.id}")
    page.locator("#lab-orders-link a").click()
    page.wait_for_url(re.compile(r"/examens-biologiques$"))
    assert page.locator("#no-order").count() == 1
    form = page.locator("#new-order form")
    form.locator("#test-IONO").check()
    form.locator("#test-NFS").check()
    form.locator("#urgency-stat").check()
    form.locator("#field-renseignements").fill("Douleur thoracique")
    form.locator("button[type=submit]").click()

    page.wait_for_url(re.compile(r"/etiquettes\?groupe=G\d{10}$"))
    labels = page.locator("#specimen-labels section.label")
    assert labels.count() == 2  # a green tube (ionogramme) and a lavender one (NFS)
    specimens = [labels.nth(i).get_attribute("data-specimen") for i in range(2)]
    assert all(s and re.fullmatch(r"S\d{10}", s) for s in specimens)
    first = labels.first
    assert first.locator("img").evaluate("img => img.naturalWidth") > 0  # the barcode draws
    assert "LEROY MARIE" in first.inner_text() and specimens[0] in first.inner_text()

    page.context.clear_cookies()
    _sign_in(page, NURSE)
    page.goto(page.base + f"/patients/{inpatient.id}/examens-biologiques")
    rows = page.locator("#lab-orders-table tbody tr")
    assert rows.count() == 2
    assert page.locator("#new-order").count() == 0  # a nurse does not order
    field = page.locator("#field-etiquette")
    field.fill(str(specimens[0]))
    field.press("Enter")
    page.wait_for_url(re.compile(r"preleve=S\d{10}$"))
    statuses = {r.get_attribute("data-status") for r in page.locator("#lab-orders-table tbody tr").all()}
    assert statuses == {"collected", "ordered"}
    collected = page.locator("#lab-orders-table tbody tr[data-status=collected]")
    assert specimens[0] in collected.inner_text()

    field = page.locator("#field-etiquette")
    field.fill(str(specimens[0]))  # scanned twice: refused, said so
    field.press("Enter")
    page.wait_for_url(re.compile(r"erreur=AlreadyCollected$"))
    assert page.locator(".alert-error").count() == 1
    assert page.console_errors == []  # type: ignore[attr-defined]
