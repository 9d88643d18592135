"""The imaging viewer in a real browser: the physician opens a CT from the patient's imaging
page, sees the series thumbnail, scrolls to another slice (wheel, keys, slider) and changes the
window; each picture comes from naho and loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from naho.app import create_app
from naho.config import Settings
from tests.browser.test_admission import _sign_in
from tests.personas import PHYSICIAN
from tests.results.conftest import Inpatient, admit_inpatient
from tests.results.imaging_support import ct_of, write

pytestmark = pytest.mark.browser


@pytest.fixture
def imaged_patient(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Inpatient, str]:
    """A patient with a 20-slice CT in the local DICOM store the live server reads (set before it starts)."""
    directory = tmp_path / "dicom"
    monkeypatch.setenv("NAHO_IMAGING_STORE_DIR", str(directory))
    app = create_app(Settings(mode="test", database_url=db_url, workers=False))
    try:
        patient = admit_inpatient(app.state.container, "LAMBERT")
    finally:
        app.state.container.engine.dispose()
    ct = write(ct_of(patient), directory)
    return patient, str(ct[0].StudyInstanceUID)


def _loaded(page, selector: str) -> bool:  # type: ignore[no-untyped-def]
    return bool(page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0"))


def test_the_physician_scrolls_through_a_ct_and_changes_the_window(  # type: ignore[no-untyped-def]
        imaged_patient: tuple[Inpatient, str], page) -> None:
    patient, study = imaged_patient
    _sign_in(page, PHYSICIAN)
    page.goto(page.base + f"/patients/{patient.id}")
    page.locator("#imaging-link a").click()
    page.wait_for_url(re.compile(r"/imagerie$"))
    page.locator(f"tr[data-study='{study}'] a").click()
    page.wait_for_url(re.compile(rf"/imagerie/etudes/{re.escape(study)}$"))

    thumbnail = page.locator("img.imaging-thumbnail")
    assert thumbnail.count() == 1
    page.wait_for_function("() => { const t = document.querySelector('img.imaging-thumbnail');"
                           " return t.complete && t.naturalWidth > 0; }")
    frame = page.locator("#frame-image")
    page.wait_for_function("() => document.getElementById('frame-image').naturalWidth > 0")
    first = frame.get_attribute("src")
    assert page.locator("#frame-position").inner_text() == "1 / 20"

    frame.hover()
    page.mouse.wheel(0, 120)  # one notch down: the next slice
    page.wait_for_function("src => document.getElementById('frame-image').getAttribute('src') !== src", arg=first)
    page.wait_for_function("() => { const i = document.getElementById('frame-image');"
                           " return i.complete && i.naturalWidth > 0; }")
    assert page.locator("#frame-position").inner_text() == "2 / 20"
    second = frame.get_attribute("src")
    assert second != first and _loaded(page, "#frame-image")

    frame.focus()
    page.keyboard.press("End")
    assert page.locator("#frame-position").inner_text() == "20 / 20"
    page.locator("#frame-slider").fill("10")
    assert page.locator("#frame-position").inner_text() == "10 / 20"
    page.get_by_role("link", name=re.compile("^(Poumon|Lung)$")).click()
    page.wait_for_function("() => document.getElementById('frame-image').src.includes('fenetre=lung')")
    page.wait_for_function("() => { const i = document.getElementById('frame-image');"
                           " return i.complete && i.naturalWidth > 0; }")
    assert page.url.endswith(study)  # the window changed without leaving the page
    assert page.console_errors == []  # no CSP violation, no failed picture
