"""Laboratory results in a real browser: the laboratory sends results over MLLP, the physician
opens them from the patient's page, reads the cumulative table and acknowledges a critical value."""

from __future__ import annotations

import re

import pytest

from naho.app import create_app
from naho.config import Settings
from naho.interop.hl7_listener import start_listener
from tests.browser.test_admission import _sign_in
from tests.interop.test_mllp import ServerThread
from tests.personas import PHYSICIAN
from tests.results.conftest import Inpatient, admit_inpatient, answer, obx, oru

pytestmark = pytest.mark.browser


@pytest.fixture
def patient_with_results(db_url: str) -> Inpatient:
    """Two reports sent over MLLP, before the browser starts (its event loop owns the thread after)."""
    app = create_app(Settings(mode="test", database_url=db_url, workers=False))
    container = app.state.container
    patient = admit_inpatient(container, "MOREAU")
    lab = ServerThread(lambda port: start_listener(container, "127.0.0.1", port))
    try:
        assert answer(lab.send(oru("B1", [obx(1, "2823-3", "Potassium", "4.4", "mmol/L", "3.5-5.1"),
                                          obx(2, "14682-9", "Créatinine", "95", "umol/L", "45-90", "H")],
                                   ipp=patient.ipp, filler="B1", sampled="20261124080000")))[0] == "AA"
        assert answer(lab.send(oru("B2", [obx(1, "2823-3", "Potassium", "6.9", "mmol/L", "3.5-5.1", "HH"),
                                          obx(2, "14682-9", "Créatinine", "102", "umol/L", "45-90", "H")],
                                   ipp=patient.ipp, filler="B2", sampled="20261125080000")))[0] == "AA"
    finally:
        lab.close()
        container.engine.dispose()
    return patient


def test_the_physician_reads_the_cumulative_table_and_acknowledges_a_critical_value(  # type: ignore[no-untyped-def]
        patient_with_results: Inpatient, page) -> None:
    patient = patient_with_results
    _sign_in(page, PHYSICIAN)

    page.goto(page.base + f"/patients/{patient.id}")
    assert "6.9 mmol/L" in page.locator("#lab-alerts #critical-alerts").inner_text()  # loaded by htmx
    page.locator("#results-link a").click()
    page.wait_for_url(re.compile(r"/resultats$"))
    table = page.locator("#results-table")
    headers = table.locator("thead th").all_inner_texts()
    assert headers[2:] == ["25/11/2026 08:00", "24/11/2026 08:00"]
    potassium = table.locator("tr[data-loinc='2823-3'] td.result")
    assert potassium.all_inner_texts()[0].split()[:2] == ["6.9", "HH"]
    assert "abnormal" in (potassium.first.get_attribute("class") or "")
    assert page.locator("#trends figure[data-loinc='14682-9'] circle").count() == 2

    banner = page.locator("#critical-alerts")
    assert "6.9 mmol/L" in banner.inner_text()
    banner.get_by_role("button").click()
    page.wait_for_url(re.compile(r"/resultats$"))
    assert page.locator("#critical-alerts").count() == 0
    assert page.console_errors == []  # type: ignore[attr-defined]
