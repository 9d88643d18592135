"""The second factor by e-mail, for patients without an authenticator application: only to a
verified address; a six-digit code per sign-in, mailed with nothing else, valid ten minutes,
five tries; the portal stays closed until it is given."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.platform.clock import FixedClock
from naho.platform.i18n import _
from naho.platform.outbox import OutboxMessage
from naho.portal import mail
from tests.personas import CLERK, csrf_from, login
from tests.portal.test_pages import _activate, _code, app
from tests.scheduling.world import PATIENT_PASSWORD, new_patient

EMAIL = "lucie@example.org"
__all__ = ["app"]  # the portal tests' app, patient mails collected


def _mails(app: FastAPI, kind: str) -> list[dict[str, str]]:
    with app.state.container.uow() as uow:
        rows = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "mail.portal")
                                   .order_by(OutboxMessage.created_at))
        return [m.payload for m in rows if m.payload.get("kind") == kind]


def _sign_in(app: FastAPI) -> TestClient:
    client = TestClient(app)
    form = client.get("/portail/connexion")
    signed = client.post("/portail/connexion", data={"email": EMAIL, "password": PATIENT_PASSWORD,
                                                     "csrf_token": csrf_from(form.text)}, follow_redirects=False)
    assert signed.headers.get("location", "").startswith("/connexion/second-facteur"), signed.status_code
    return client


def _give(client: TestClient, code: str):  # type: ignore[no-untyped-def]
    page = client.get("/connexion/second-facteur")
    return client.post("/connexion/second-facteur", data={"code": code, "suivant": "/portail",
                                                          "csrf_token": csrf_from(page.text)}, follow_redirects=False)


@pytest.fixture
def patient_with_codes_by_email(app: FastAPI) -> uuid.UUID:
    patient = new_patient(app.state.container)
    with TestClient(app) as staff, TestClient(app) as phone:
        assert _activate(phone, _code(login(staff, CLERK), patient)).status_code == 303
        page = phone.get("/portail/securite")
        unverified = phone.post("/portail/securite/email", data={"csrf_token": csrf_from(page.text)})
        assert unverified.status_code == 409 and 'id="second-factor-on"' not in unverified.text
        (verification,) = _mails(app, "verify_email")
        assert phone.get(f"/portail/verifier?jeton={verification['token']}").status_code == 200
        on = phone.post("/portail/securite/email", data={"csrf_token": csrf_from(page.text)})
        assert on.status_code == 200 and 'id="second-factor-on"' in on.text
        again = phone.post("/portail/securite/email", data={"csrf_token": csrf_from(page.text)})
        assert again.status_code == 409  # already on
    return patient


def test_a_code_is_mailed_at_each_sign_in_and_opens_the_portal(app: FastAPI, patient_with_codes_by_email) -> None:  # type: ignore[no-untyped-def]
    client = _sign_in(app)
    (sent,) = _mails(app, "login_code")
    assert sent["to"] == EMAIL and len(sent["code"]) == 6 and sent["code"].isdigit()
    page = client.get("/connexion/second-facteur")
    assert 'id="mfa-instructions"' in page.text and "e-mail" in page.text.lower()
    assert client.get("/portail", follow_redirects=False).status_code == 303  # not in yet
    wrong = "000000" if sent["code"] != "000000" else "111111"
    refused = _give(client, wrong)
    assert refused.status_code == 401
    assert _("Wrong code. Enter the six digits of the last e-mail you received.").split(".")[0] in refused.text
    opened = _give(client, sent["code"][:3] + " " + sent["code"][3:])  # as a phone may space it
    assert opened.status_code == 303 and opened.headers["location"] == "/portail"
    assert client.get("/portail").status_code == 200

    now = app.state.container.clock.now()
    message = mail.compose(sent, [EMAIL], "portail@example.org", "https://naho.example", now, uuid.uuid4()).as_string()
    assert sent["code"] in message and "portail" in message.lower()


def test_five_wrong_codes_or_a_late_one_end_the_sign_in(app: FastAPI, patient_with_codes_by_email,  # type: ignore[no-untyped-def]
                                                       clock: FixedClock) -> None:
    client = _sign_in(app)
    code = _mails(app, "login_code")[-1]["code"]
    wrong = "000000" if code != "000000" else "111111"
    for _attempt in range(5):
        assert _give(client, wrong).status_code == 401
    assert _give(client, code).status_code in (303, 401)  # the sign-in is over: the page sends back to sign in
    assert client.get("/portail", follow_redirects=False).status_code == 303
    # Wrong codes count as failed sign-ins: the account is throttled for the window.
    other = TestClient(app)
    form = other.get("/portail/connexion")
    throttled = other.post("/portail/connexion", data={
        "email": EMAIL, "password": PATIENT_PASSWORD, "csrf_token": csrf_from(form.text)}, follow_redirects=False)
    assert throttled.status_code == 429
    clock.advance(minutes=16)

    late = _sign_in(app)
    code = _mails(app, "login_code")[-1]["code"]
    clock.advance(minutes=11)
    refused = _give(late, code)
    assert refused.status_code in (303, 401)
    assert late.get("/portail", follow_redirects=False).status_code == 303

    fresh = _sign_in(app)  # a new sign-in mails a new code, which works
    assert _give(fresh, _mails(app, "login_code")[-1]["code"]).headers["location"] == "/portail"
    assert len({m["code"] for m in _mails(app, "login_code")}) >= 2
