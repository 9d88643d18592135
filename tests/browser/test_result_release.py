"""Releasing results to the patient in a real browser: abnormal results wait on the physician's
results page until marked seen; then the patient, on a phone, reads them on the portal with
their trend."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from naho.app import create_app
from naho.config import Settings
from naho.interop.hl7_listener import start_listener
from naho.platform.security import service as security
from naho.platform.security.models import Account
from naho.portal import service as portal
from tests.browser.test_admission import _sign_in
from tests.interop.test_mllp import ServerThread
from tests.personas import CLERK, PHYSICIAN
from tests.results.conftest import Inpatient, admit_inpatient, answer, obx, oru

pytestmark = pytest.mark.browser
EMAIL, SECRET = "lea.moreau@example.org", "une phrase de passe assez longue"


@pytest.fixture
def patient_on_the_portal(db_url: str) -> Inpatient:
    """Two abnormal reports over MLLP, and the patient's portal account (before the browser starts)."""
    app = create_app(Settings(mode="test", database_url=db_url, workers=False))
    container = app.state.container
    patient = admit_inpatient(container, "MOREAU")
    lab = ServerThread(lambda port: start_listener(container, "127.0.0.1", port))
    try:
        for control, day, value in (("B1", "24", "95"), ("B2", "25", "121")):
            assert answer(lab.send(oru(control, [obx(1, "14682-9", "Créatinine", value, "umol/L", "45-90", "H")],
                                       ipp=patient.ipp, filler=control, placer=f"CMD-{control}",
                                       sampled=f"202611{day}080000")))[0] == "AA"
        with container.uow() as uow:
            clerk = security.actor_for(uow.session.scalars(select(Account).where(Account.username == CLERK)).one(),
                                       via="session")
        code, _expires = portal.issue_activation_code(container.uow(), clerk, patient.id, container.ports["care"])
        with container.uow() as uow:
            born = uow.clock.now().date().replace(year=1962)
        portal.activate(container.uow(), code=code, birth_date=date.fromisoformat(born.isoformat()), email=EMAIL,
                        password=SECRET, address="127.0.0.1")
    finally:
        lab.close()
        container.engine.dispose()
    return patient


def test_the_physician_marks_results_seen_and_the_patient_reads_them_with_their_trend(  # type: ignore[no-untyped-def]
        patient_on_the_portal: Inpatient, page, browser) -> None:
    patient = patient_on_the_portal
    phone = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", viewport={"width": 390, "height": 844},
                                is_mobile=True, has_touch=True).new_page()
    phone.goto(page.base + "/portail/connexion")
    phone.locator("#field-email").fill(EMAIL)
    phone.locator("#field-password").fill(SECRET)
    phone.locator("form .button").click()
    phone.wait_for_url(re.compile(r"/portail$"))
    phone.locator("a[href^='/portail/resultats']").click()
    phone.wait_for_url(re.compile(r"/portail/resultats"))
    assert phone.locator("#no-results").count() == 1  # abnormal: held until a physician saw them

    _sign_in(page, PHYSICIAN)
    page.goto(page.base + f"/patients/{patient.id}/resultats")
    held = page.locator("#reports .release[data-released='no']")
    assert held.count() == 2 and "médecin" in held.first.inner_text()
    for _ in range(2):
        page.locator("#reports form[action$='/vu'] button").first.click()
        page.wait_for_url(re.compile(r"/resultats"))
    assert page.locator("#reports .release[data-released='yes']").count() == 2
    assert page.console_errors == []  # type: ignore[attr-defined]

    phone.reload()
    result = phone.locator("#results li[data-loinc='14682-9']")
    assert "121" in result.locator(".value").inner_text()
    assert result.locator(".badge-danger").count() == 1
    assert result.locator("svg circle").count() == 2
