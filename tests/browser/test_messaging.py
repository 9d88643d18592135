"""Secure messaging in a real browser: the physician attaches the GP found in the directory,
files a discharge letter, sends it, and sees it queued, then sent once the relay took it."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn

from naho.identity import service as identity
from naho.identity.rules import IdentityStatus, Traits
from naho.messaging import sink
from naho.platform.clock import FixedClock
from naho.record import service as record
from tests.conftest import free_port
from tests.messaging.test_sending import PDF, Setup, configured
from tests.personas import PASSWORD, PHYSICIAN

pytestmark = pytest.mark.browser
aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")


@pytest.fixture
def messaging(db_url: str, clock: FixedClock, tmp_path: Path) -> Iterator[Setup]:
    yield from configured(db_url, clock, tmp_path)


@pytest.fixture
def live_server(messaging: Setup) -> Iterator[str]:
    """The conftest's live server, but with secure messaging configured (overrides it here)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(messaging.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _patient_in_internal_medicine(messaging: Setup) -> str:
    with messaging.uow() as uow:
        now = uow.clock.now()
        patient = identity.import_identity(
            uow.session, Traits(birth_name="LEROY", used_name=None, first_names=("MARCEL",), sex="M",
                                birth_date=now.date().replace(year=1941), birth_place="62498"),
            status=IdentityStatus.PROVISIONAL, now=now, actor_label="test")
        record.import_stay(uow.session, patient, establishment_code="LENS", encounter_class="inpatient",
                           unit_code="LENS-MED-MIN", bed_code=None, admitted_at=now - timedelta(hours=3),
                           now=now, actor_label="test")
        uow.commit()
        return str(patient)


def test_a_physician_attaches_the_gp_and_sends_the_discharge_letter(  # type: ignore[no-untyped-def]
        page, messaging: Setup, tmp_path: Path) -> None:
    patient = _patient_in_internal_medicine(messaging)
    page.goto(page.base + "/connexion")
    page.get_by_label("Identifiant").fill(PHYSICIAN)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r"/accueil$"))

    page.goto(page.base + f"/patients/{patient}")
    page.locator("#doc-title").fill("Lettre de liaison")
    page.locator("#doc-file").set_input_files(files=[{"name": "lettre.pdf", "mimeType": "application/pdf",
                                                      "buffer": PDF}])
    page.locator("#documents form button").click()
    page.wait_for_selector("#documents a[href^='/documents/']")

    page.locator("#correspondents-link").click()
    page.wait_for_url(re.compile(r"/correspondants$"))
    page.locator("#attach-correspondent summary").click()
    page.locator("#directory-search").fill("Lecomte Camille")
    page.locator("#attach-correspondent form[role=search] button").click()
    page.wait_for_selector("#directory-found")
    page.locator("#role-19990000001").select_option("gp")
    page.locator("#directory-found form").filter(has=page.locator("#role-19990000001")).locator("button").click()
    page.wait_for_url(re.compile(r"/correspondants$"))
    assert "LECOMTE" in page.locator("#correspondents").inner_text()

    page.locator("#send-letter button[type=submit]").click()
    page.wait_for_url(re.compile(r"envoye=1$"))
    status = page.locator("#letters-table .letter-status").first
    assert status.get_attribute("data-status") == "queued"
    assert "Lettre de liaison" in page.locator("#letters-table").inner_text()

    relay = aiosmtpd_controller.Controller(sink.SinkHandler(tmp_path / "received"), hostname="127.0.0.1",
                                           port=messaging.smtp_port)
    relay.start()
    try:
        assert messaging.worker().run_once() == 1
    finally:
        relay.stop()
    page.reload()
    assert page.locator("#letters-table .letter-status").first.get_attribute("data-status") == "sent"
    assert len(sink.stored(tmp_path / "received")) == 1
    assert page.console_errors == []
