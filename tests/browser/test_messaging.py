"""Secure messaging in a real browser: the physician attaches the GP found in the directory,
files a discharge letter, sends it, and sees it queued, then sent once the relay took it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from naho.config import Settings
from naho.messaging import sink
from naho.messaging.smtp import make_letter_handler
from naho.platform.clock import SystemClock
from naho.platform.db import make_engine, make_session_factory
from naho.platform.events import EventBus
from naho.platform.outbox import OutboxWorker
from naho.platform.uow import UnitOfWork
from tests.browser.test_care_team import _patient_in_internal_medicine
from tests.conftest import free_port
from tests.messaging.test_sending import GP, PDF, load_directory, make_pki, messaging_settings, sample_mailboxes
from tests.personas import CLERK, PASSWORD, PHYSICIAN

pytestmark = pytest.mark.browser
aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")


@pytest.fixture
def messaging(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Messaging configured through the environment, so that the conftest's live server has it;
    the directory loaded with the GP's certificate. Request it before `page`."""
    pki = make_pki(SystemClock().now(), tmp_path / "pki", {GP: sample_mailboxes()[GP]})
    settings = messaging_settings(db_url, pki, free_port())
    for name in ("smtp_host", "smtp_port", "certificate", "private_key", "trust_anchors"):
        monkeypatch.setenv(f"NAHO_MESSAGING_{name.upper()}", str(getattr(settings, f"messaging_{name}")))
    engine = make_engine(db_url)
    load_directory(UnitOfWork(make_session_factory(engine), SystemClock(), EventBus()), pki)
    engine.dispose()
    yield settings


def test_a_physician_attaches_the_gp_and_sends_the_discharge_letter(  # type: ignore[no-untyped-def]
        messaging: Settings, page, browser, db_url: str, tmp_path: Path) -> None:
    patient = _patient_in_internal_medicine(db_url)
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
    page.locator(f"#role-{GP}").select_option("gp")
    page.locator("#directory-found form").filter(has=page.locator(f"#role-{GP}")).locator("button").click()
    page.wait_for_url(re.compile(r"/correspondants$"))
    assert "LECOMTE" in page.locator("#correspondents").inner_text()

    page.locator("#send-letter button[type=submit]").click()
    page.wait_for_url(re.compile(r"envoye=1$"))
    assert page.locator("#letters-table .letter-status").first.get_attribute("data-status") == "queued"
    assert "Lettre de liaison" in page.locator("#letters-table").inner_text()

    relay = aiosmtpd_controller.Controller(sink.SinkHandler(tmp_path / "received"), hostname="127.0.0.1",
                                           port=messaging.messaging_smtp_port)
    relay.start()
    engine = make_engine(db_url)
    try:
        factory = make_session_factory(engine)
        handler = make_letter_handler(messaging, factory, SystemClock())
        assert OutboxWorker(factory, SystemClock(), {"messaging.letter": handler}).run_once() == 1
    finally:
        relay.stop()
        engine.dispose()
    page.reload()
    assert page.locator("#letters-table .letter-status").first.get_attribute("data-status") == "sent"
    assert len(sink.stored(tmp_path / "received")) == 1
    assert page.console_errors == []

    # The patient, handed an activation code at the desk, reads on the portal what was sent to whom.
    desk = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris").new_page()
    desk.goto(page.base + "/connexion")
    desk.locator("#field-username").fill(CLERK)
    desk.locator("#field-password").fill(PASSWORD)
    desk.locator("form .button").click()
    desk.wait_for_url(re.compile(r"/accueil$"))
    desk.goto(page.base + f"/patients/{patient}/portail")
    desk.locator("form[action$='/portail/code'] button").click()
    code = desk.locator("#code-value").inner_text().strip()
    phone = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", viewport={"width": 390, "height": 844},
                                is_mobile=True, has_touch=True).new_page()
    phone.goto(page.base + "/portail/activation")
    phone.locator("#field-code").fill(code)
    phone.locator("#field-birth_date").fill(SystemClock().now().date().replace(year=1941).isoformat())
    phone.locator("#field-email").fill("marcel.leroy@example.org")
    phone.locator("#field-password").fill("une phrase de passe assez longue")
    phone.locator("#activation button[type=submit]").click()
    phone.wait_for_url(re.compile(r"/portail$"))
    phone.locator("a[href^='/portail/courriers']").click()
    phone.wait_for_url(re.compile(r"/portail/courriers"))
    letter = phone.locator("#letters .letter").first
    assert letter.get_attribute("data-status") == "sent"
    assert "Lettre de liaison" in letter.inner_text() and "LECOMTE" in letter.inner_text().upper()
