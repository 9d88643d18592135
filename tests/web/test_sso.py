"""Single sign-on through an OIDC provider (a real one on loopback, see fake_oidc.py)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from naho.app import create_app
from naho.config import Settings
from naho.platform.security.policy import SESSION_COOKIE
from tests.web.fake_oidc import running_provider


@pytest.fixture
def sso_client(db_url: str) -> Iterator[tuple[TestClient, str]]:
    with running_provider() as issuer:
        settings = Settings(mode="test", database_url=db_url, workers=False, oidc_issuer=issuer,
                            oidc_client_id="naho", oidc_client_secret="s3cret", public_url="http://testserver")
        with TestClient(create_app(settings)) as client:
            yield client, issuer


def _sso(client: TestClient, user: str, tamper_state: bool = False):  # type: ignore[no-untyped-def]
    start = client.get("/connexion/sso?suivant=/admin", follow_redirects=False)
    assert start.status_code == 302
    authorize = start.headers["location"]
    if tamper_state:
        authorize = authorize.replace("state=", "state=x")
    back = httpx.get(authorize + f"&login_as={user}", follow_redirects=False)
    assert back.status_code == 302
    return client.get(back.headers["location"].replace("http://testserver", ""), follow_redirects=False)


def test_the_login_page_offers_single_sign_on(sso_client) -> None:  # type: ignore[no-untyped-def]
    client, _ = sso_client
    assert "/connexion/sso" in client.get("/connexion").text


def test_a_known_professional_signs_in_through_the_provider(sso_client) -> None:  # type: ignore[no-untyped-def]
    client, _ = sso_client
    response = _sso(client, "admin")
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/admin"
    assert SESSION_COOKIE in response.headers["set-cookie"]
    assert client.get("/admin").status_code == 200


def test_an_identity_without_account_is_refused(sso_client) -> None:  # type: ignore[no-untyped-def]
    client, _ = sso_client
    response = _sso(client, "inconnu")
    assert response.status_code == 403
    assert client.get("/accueil", follow_redirects=False).status_code == 303


def test_a_forged_state_is_refused(sso_client) -> None:  # type: ignore[no-untyped-def]
    client, _ = sso_client
    response = _sso(client, "admin", tamper_state=True)
    assert response.status_code == 401
    assert client.get("/accueil", follow_redirects=False).status_code == 303


def test_without_configuration_there_is_no_sso_button(client: TestClient) -> None:
    assert "/connexion/sso" not in client.get("/connexion").text
    assert client.get("/connexion/sso", follow_redirects=False).headers["location"] == "/connexion"
