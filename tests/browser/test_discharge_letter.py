"""The discharge letter in a real browser: from the patient's stays, the physician drafts the
letter, writes the reasons for admission, signs it, and opens its PDF."""

from __future__ import annotations

import re

import pytest

from tests.browser.test_care_team import _patient_in_internal_medicine
from tests.personas import PASSWORD, PHYSICIAN

pytestmark = pytest.mark.browser


def test_a_physician_drafts_writes_and_signs_the_discharge_letter(page, db_url: str) -> None:  # type: ignore[no-untyped-def]
    patient = _patient_in_internal_medicine(db_url)
    page.goto(page.base + "/connexion")
    page.get_by_label("Identifiant").fill(PHYSICIAN)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r"/accueil$"))

    page.goto(page.base + f"/patients/{patient}")
    page.locator("#stays a.discharge-letter-link").first.click()
    page.wait_for_url(re.compile(r"/lettre-de-liaison$"))
    page.locator("#no-letter button").click()
    page.wait_for_selector("#letter-edit")
    page.locator("#letter-reasons").fill("Chute à domicile")
    page.locator("#letter-edit form").first.locator("button").click()
    page.wait_for_selector("#section-reasons")
    assert "Chute à domicile" in page.locator("#section-reasons").inner_text()

    page.locator("#sign-letter").click()
    page.wait_for_selector("#letter-status[data-status='signed']")
    assert page.locator("#letter-edit").count() == 0  # locked
    response = page.request.get(page.base + page.locator("#letter-pdf").get_attribute("href"))
    assert response.ok and response.headers["content-type"] == "application/pdf"
    assert response.body().startswith(b"%PDF-")
