"""Signing in and out through the pages, as a browser does (TestClient keeps cookies)."""

from __future__ import annotations

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.platform.audit import AuditEvent
from naho.platform.security.models import Account
from naho.platform.security.policy import SESSION_COOKIE
from tests.personas import ADMIN, NURSE, PASSWORD, PHYSICIAN, csrf_from, form_token, login


def _post_login(client: TestClient, username: str, password: str, token: str | None = "auto",
                suivant: str = "/accueil"):  # type: ignore[no-untyped-def]
    data = {"username": username, "password": password, "suivant": suivant}
    if token == "auto":
        data["csrf_token"] = csrf_from(client.get("/connexion").text)
    elif token is not None:
        data["csrf_token"] = token
    return client.post("/connexion", data=data, follow_redirects=False)


def test_a_nurse_signs_in_and_sees_the_home_page(client: TestClient) -> None:
    response = _post_login(client, NURSE, PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/accueil"
    cookie = response.headers["set-cookie"]
    assert SESSION_COOKIE in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    home = client.get("/accueil")
    assert home.status_code == 200
    assert "Julien DUPONT" in home.text
    assert 'id="unit-list"' in home.text


def test_a_wrong_password_is_refused_without_a_session(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    response = _post_login(client, NURSE, "not-the-password")
    assert response.status_code == 401
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert client.get("/accueil", follow_redirects=False).status_code == 303
    with app.state.container.session_factory() as s:
        actions = s.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
    assert actions[-1] == "account:login:failure"


def test_an_unknown_user_gets_the_same_answer_as_a_wrong_password(client: TestClient) -> None:
    unknown = _post_login(client, "nobody-here", "whatever-password")
    wrong = _post_login(client, NURSE, "whatever-password")
    assert unknown.status_code == wrong.status_code == 401
    assert "Unknown username or wrong password" in unknown.text or "Identifiant" in unknown.text


def test_login_without_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/connexion")  # the browser has its CSRF cookie, but the form lacks the field
    response = _post_login(client, NURSE, PASSWORD, token=None)
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert "Ce formulaire a expiré" in response.text


def test_login_with_a_forged_csrf_token_is_refused(client: TestClient) -> None:
    response = _post_login(client, NURSE, PASSWORD, token="0" * 64)
    assert response.status_code == 403


def test_a_token_from_another_browser_is_refused(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as attacker, TestClient(app) as victim:
        stolen = csrf_from(attacker.get("/connexion").text)
        victim.get("/connexion")
        response = _post_login(victim, NURSE, PASSWORD, token=stolen)
    assert response.status_code == 403


def test_logins_are_throttled_after_repeated_failures(client: TestClient) -> None:
    for _ in range(5):
        assert _post_login(client, PHYSICIAN, "wrong-password-xx").status_code == 401
    # Even the right password is refused while the account is throttled.
    response = _post_login(client, PHYSICIAN, PASSWORD)
    assert response.status_code == 429
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_throttling_ends_after_the_window(client: TestClient, clock) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        _post_login(client, PHYSICIAN, "wrong-password-xx")
    clock.advance(minutes=16)
    assert _post_login(client, PHYSICIAN, PASSWORD).status_code == 303


def test_sign_out_revokes_the_session(client: TestClient) -> None:
    login(client, NURSE)
    old_cookie = client.cookies.get(SESSION_COOKIE)
    response = client.post("/deconnexion", data={"csrf_token": form_token(client)}, follow_redirects=False)
    assert response.status_code == 303
    client.cookies.set(SESSION_COOKIE, old_cookie)  # replaying the old cookie does not work
    assert client.get("/accueil", follow_redirects=False).status_code == 303


def test_sign_out_needs_the_csrf_token(client: TestClient) -> None:
    login(client, NURSE)
    assert client.post("/deconnexion", data={}, follow_redirects=False).status_code == 403
    assert client.get("/accueil").status_code == 200


def test_an_idle_session_expires(client: TestClient, clock) -> None:  # type: ignore[no-untyped-def]
    login(client, NURSE)
    clock.advance(minutes=61)
    assert client.get("/accueil", follow_redirects=False).status_code == 303


def test_after_login_only_local_paths_are_followed(client: TestClient) -> None:
    response = _post_login(client, NURSE, PASSWORD, suivant="//evil.example/phish")
    assert response.headers["location"] == "/accueil"
    response = _post_login(client, NURSE, PASSWORD, suivant="/admin")
    assert response.headers["location"] == "/admin"


def test_an_anonymous_visitor_is_sent_to_the_login_page(client: TestClient) -> None:
    response = client.get("/admin/personnel", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/connexion?suivant=/admin/personnel"


def test_a_nurse_cannot_open_the_administration(client: TestClient) -> None:
    login(client, NURSE)
    response = client.get("/admin")
    assert response.status_code == 403
    assert "Accès refusé" in response.text or "Access refused" in response.text


def test_the_administrator_opens_the_administration(client: TestClient) -> None:
    login(client, ADMIN)
    response = client.get("/admin")
    assert response.status_code == 200
    assert "Lens" in response.text


def test_pages_send_security_headers(client: TestClient) -> None:
    response = client.get("/connexion")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "<script>" not in response.text  # no inline script anywhere
    assert " style=" not in response.text


def test_switching_establishment_changes_the_unit_list(client: TestClient) -> None:
    login(client, NURSE)
    lens = client.get("/accueil").text
    response = client.post("/contexte", data={"establishment": "LABASSEE", "csrf_token": csrf_from(lens),
                                              "suivant": "/accueil"}, follow_redirects=False)
    assert response.status_code == 303
    bassee = client.get("/accueil").text
    assert "Centre hospitalier de La Bassée" in bassee
    assert bassee.count("<tr>") < lens.count("<tr>")


def test_switching_to_an_unknown_establishment_is_refused(client: TestClient) -> None:
    login(client, NURSE)
    response = client.post("/contexte", data={"establishment": "NOWHERE", "csrf_token": form_token(client)})
    assert response.status_code == 404


class TestSecondFactor:
    def _enable(self, client: TestClient, clock) -> str:  # type: ignore[no-untyped-def]
        login(client, PHYSICIAN)
        page = client.get("/compte?totp=1").text
        secret = page.split('name="secret" value="')[1].split('"')[0]
        code = pyotp.TOTP(secret).at(clock.now())
        response = client.post("/compte/totp", data={"secret": secret, "code": code,
                                                     "csrf_token": csrf_from(page)}, follow_redirects=False)
        assert response.status_code == 303
        client.post("/deconnexion", data={"csrf_token": form_token(client)})
        return secret

    def test_a_wrong_code_does_not_enable_it(self, client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
        login(client, PHYSICIAN)
        page = client.get("/compte?totp=1").text
        secret = page.split('name="secret" value="')[1].split('"')[0]
        response = client.post("/compte/totp", data={"secret": secret, "code": "000000",
                                                     "csrf_token": csrf_from(page)})
        assert response.status_code == 422
        with app.state.container.session_factory() as s:
            account = s.scalars(select(Account).where(Account.username == PHYSICIAN)).one()
        assert account.totp_secret is None

    def test_once_enabled_the_password_alone_does_not_open_a_session(self, client: TestClient, clock) -> None:  # type: ignore[no-untyped-def]
        self._enable(client, clock)
        response = _post_login(client, PHYSICIAN, PASSWORD)
        assert response.headers["location"].startswith("/connexion/second-facteur")
        assert client.get("/accueil", follow_redirects=False).status_code == 303
        page = client.get("/connexion/second-facteur").text
        wrong = client.post("/connexion/second-facteur", data={"code": "123456", "csrf_token": csrf_from(page)})
        assert wrong.status_code == 401
        assert client.get("/accueil", follow_redirects=False).status_code == 303

    def test_the_right_code_completes_the_sign_in(self, client: TestClient, clock) -> None:  # type: ignore[no-untyped-def]
        secret = self._enable(client, clock)
        _post_login(client, PHYSICIAN, PASSWORD)
        page = client.get("/connexion/second-facteur").text
        response = client.post("/connexion/second-facteur", data={
            "code": pyotp.TOTP(secret).at(clock.now()), "csrf_token": csrf_from(page), "suivant": "/accueil",
        }, follow_redirects=False)
        assert response.status_code == 303
        assert client.get("/accueil").status_code == 200


@pytest.mark.parametrize("path", ["/", "/connexion"])
def test_public_pages_render_in_french(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert '<html lang="fr">' in response.text


def test_the_current_unit_defaults_to_the_persons_own(client: TestClient) -> None:
    login(client, NURSE)
    home = client.get("/accueil").text
    assert 'id="current-unit"' in home and "Médecine interne" in home.split('id="current-unit"')[1][:200]


def test_switching_unit_within_the_establishment(client: TestClient) -> None:
    login(client, NURSE)
    response = client.post("/contexte", data={"establishment": "LENS", "unit": "LENS-MED-CARDIO",
                                              "csrf_token": form_token(client)}, follow_redirects=False)
    assert response.status_code == 303
    home = client.get("/accueil").text
    assert "Cardiologie" in home.split('id="current-unit"')[1][:200]
    assert '<option value="LENS-MED-CARDIO" selected>' in home


def test_a_unit_of_another_establishment_is_refused(client: TestClient) -> None:
    login(client, NURSE)
    response = client.post("/contexte", data={"establishment": "LENS", "unit": "BETHUNE-URG-SAU",
                                              "csrf_token": form_token(client)})
    assert response.status_code == 404
    assert "Médecine interne" in client.get("/accueil").text.split('id="current-unit"')[1][:200]
