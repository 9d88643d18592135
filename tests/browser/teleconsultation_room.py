"""Run by tests/browser/test_teleconsultation.py inside its own network namespace (loopback only):
starts naho with uvicorn on 127.0.0.1, then two Chromium contexts with fake camera and
microphone, the patient and the practitioner, join the same room. Prints one JSON line of what
it saw; exits 0 only when both received the other's video and the practitioner saw the patient
leave.

    python teleconsultation_room.py <database url> <appointment id> <clock ISO time> <patient e-mail>
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from typing import Any

import uvicorn
from playwright.sync_api import Page, sync_playwright

from naho.app import create_app
from naho.config import Settings
from naho.platform import i18n
from naho.platform.clock import FixedClock
from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS
from tests.personas import PASSWORD, PHYSICIAN
from tests.scheduling.world import PATIENT_PASSWORD

MEDIA_FLAGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
               "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required"]
REMOTE_VIDEO = "document.getElementById('remote-video').videoWidth > 0"
#: A minimal PDF: the document shared over the data channel.
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def serve(database_url: str, at: datetime) -> tuple[str, uvicorn.Server]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    app = create_app(Settings(mode="test", database_url=database_url, workers=False), clock=FixedClock(at))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise SystemExit("the server did not start")
    return f"http://127.0.0.1:{port}", server


def wait_until(page: Page, expression: str, timeout: float = 30.0) -> Any:
    """Poll an expression (page.wait_for_function evaluates its predicate with eval, which the
    page's strict CSP refuses, and a CSP bypass would hide the violations this test looks for)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = page.evaluate(expression)
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"still false after {timeout} s: {expression}")


def watch(page: Page, errors: list[str]) -> Page:
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page


def frames(page: Page) -> int:
    return int(page.locator("#room").get_attribute("data-frames-decoded") or 0)


def playing_again(page: Page, since: int) -> int:
    """Video frames decode again, more than before the drop; the status says the call is on."""
    try:
        wait_until(page, f"Number(document.getElementById('room').dataset.framesDecoded || 0) > {since} "
                         "&& document.getElementById('room').dataset.status === 'in-call' "
                         "&& document.getElementById('remote-video').videoWidth > 0", 45)
    except TimeoutError as exc:
        state = page.evaluate("JSON.stringify(Object.assign({}, document.getElementById('room').dataset, "
                              "{ice: undefined, texts: undefined}))")
        raise TimeoutError(f"{page.url}: the call did not come back: {state}") from exc
    return frames(page)


def recover(seen: dict[str, Any], base: str, doctor: Page, patient: Page) -> None:
    """Two network drops in the middle of the call: the signalling connections are cut (their TCP
    sockets killed: each page reconnects its websocket), then the loopback goes down for a few
    seconds (ICE loses its path: an ICE restart brings the media back when it returns)."""
    port = base.rsplit(":", 1)[1]
    before = {"doctor": frames(doctor), "patient": frames(patient)}
    for side in (["dst", "127.0.0.1", "dport", "=", f":{port}"], ["src", "127.0.0.1", "sport", "=", f":{port}"]):
        subprocess.run(["ss", "-K", *side], capture_output=True, timeout=10)
    for name, page in (("doctor", doctor), ("patient", patient)):
        wait_until(page, "Number(document.getElementById('room').dataset.socketOpens || 0) >= 2", 20)
        before[name] = playing_again(page, before[name])
    seen["socket_reconnected"] = True
    subprocess.run(["ip", "link", "set", "lo", "down"], check=True, timeout=10)
    time.sleep(15)  # ICE is disconnected after about 5 s: the page restarts it 3 s later
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=10)
    for name, page in (("doctor", doctor), ("patient", patient)):
        playing_again(page, before[name])
    seen["ice_restarts"] = sum(int(p.locator("#room").get_attribute("data-ice-restarts") or 0)
                               for p in (doctor, patient))


def main(database_url: str, appointment_id: str, at: str, email: str) -> dict[str, Any]:
    base, server = serve(database_url, datetime.fromisoformat(at))
    seen: dict[str, Any] = {"errors": []}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS + MEDIA_FLAGS)
            patient = watch(browser.new_context(locale="fr-FR", timezone_id="Europe/Paris").new_page(), seen["errors"])
            doctor = watch(browser.new_context(locale="fr-FR", timezone_id="Europe/Paris").new_page(), seen["errors"])

            patient.goto(base + "/portail/connexion")
            patient.locator("#field-email").fill(email)
            patient.locator("#field-password").fill(PATIENT_PASSWORD)
            patient.locator("form .button").click()
            patient.wait_for_url("**/portail")
            patient.locator(f'a[href="/portail/teleconsultation/{appointment_id}"]').click()
            patient.wait_for_selector('#room[data-status="waiting"]', timeout=15_000)
            seen["patient_waiting"] = patient.locator("#status").inner_text()

            doctor.goto(base + "/connexion")
            doctor.locator("#field-username").fill(PHYSICIAN)
            doctor.locator("#field-password").fill(PASSWORD)
            doctor.locator("form .button").click()
            doctor.wait_for_url("**/accueil")
            doctor.goto(base + f"/teleconsultations/{appointment_id}")
            doctor.wait_for_selector("#admit:enabled", timeout=15_000)
            doctor.locator("#admit").click()

            wait_until(doctor, REMOTE_VIDEO)
            wait_until(patient, REMOTE_VIDEO)
            seen["doctor_sees"] = doctor.evaluate("document.getElementById('remote-video').videoWidth")
            seen["patient_sees"] = patient.evaluate("document.getElementById('remote-video').videoWidth")
            for name, page in (("doctor", doctor), ("patient", patient)):
                wait_until(page, "Number(document.getElementById('room').dataset.framesDecoded || 0) > 0", 15)
                page.wait_for_selector('#quality:not([data-quality="unknown"])', timeout=15_000)
                seen[f"{name}_frames"] = int(page.locator("#room").get_attribute("data-frames-decoded") or 0)
                seen[f"{name}_quality"] = page.locator("#quality").get_attribute("data-quality")

            doctor.locator("#identity").check()
            doctor.locator("#consent").check()
            doctor.wait_for_selector("#end:enabled", timeout=10_000)

            patient.locator("#chat-text").fill("Bonjour docteur")
            patient.locator("#chat-form button").click()
            doctor.wait_for_selector("#chat-log li", timeout=10_000)
            seen["chat"] = doctor.locator("#chat-log li").first.inner_text()

            doctor.wait_for_selector("#file-input:enabled", timeout=10_000)
            doctor.locator("#file-input").set_input_files(
                {"name": "ordonnance.pdf", "mimeType": "application/pdf", "buffer": PDF})
            patient.wait_for_selector("#files a[download]", timeout=15_000)
            seen["document"] = patient.locator("#files a[download]").get_attribute("download")

            recover(seen, base, doctor, patient)

            patient.locator("#leave").click()
            doctor.wait_for_selector('#room[data-peer="left"]', timeout=15_000)
            seen["doctor_status"] = doctor.locator("#status").inner_text()
            seen["peer_left_text"] = i18n._("The other participant has left.")
            browser.close()
    finally:
        server.should_exit = True
    return seen


if __name__ == "__main__":
    try:
        result = main(*sys.argv[1:5])
    except Exception as exc:  # the test shows what went wrong
        print(json.dumps({"failure": f"{type(exc).__name__}: {exc}"}))
        sys.exit(1)
    print(json.dumps(result))
