"""Deny by default: every route declares a policy, and anonymous requests are refused."""

from __future__ import annotations

import re

import pytest
from fastapi import APIRouter, FastAPI, WebSocket
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient

from naho.app import create_app
from naho.config import Settings
from naho.platform.security.policy import RouteWithoutPolicyError, SocketPolicy, enforce_policies, policy_of
from tests.personas import NURSE, login

#: Routes any visitor may call. Everything else must refuse an anonymous request.
PUBLIC_ROUTES = {
    ("GET", "/"),
    ("GET", "/connexion"),
    ("POST", "/connexion"),
    ("GET", "/connexion/sso"),
    ("GET", "/connexion/sso/retour"),
    ("GET", "/api/health"),
    ("GET", "/api/openapi.json"),
    ("GET", "/fhir/R4/metadata"),
    # The patient portal before sign-in: activation, sign-in, password reset, e-mail verification.
    ("GET", "/portail/activation"), ("POST", "/portail/activation"),
    ("GET", "/portail/connexion"), ("POST", "/portail/connexion"),
    ("GET", "/portail/mot-de-passe-oublie"), ("POST", "/portail/mot-de-passe-oublie"),
    ("GET", "/portail/reinitialiser"), ("POST", "/portail/reinitialiser"),
    ("GET", "/portail/verifier"),
}


def _api_routes(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    return [(m, r.path, r) for r in app.routes if isinstance(r, APIRoute) for m in sorted(r.methods)]


def _concrete(path: str) -> str:
    # Fill path parameters with plausible values: a UUID for ids, a code otherwise.
    path = re.sub(r"\{[a-z_]*id\}", "00000000-0000-0000-0000-000000000000", path)
    return re.sub(r"\{[a-z_]+\}", "LENS", path)


def test_every_route_declares_a_policy(app: FastAPI) -> None:
    routes = _api_routes(app)
    assert len(routes) > 20
    assert [f"{m} {p}" for m, p, r in routes if policy_of(r) is None] == []


def test_only_the_listed_routes_are_public(app: FastAPI) -> None:
    public = {(m, p) for m, p, r in _api_routes(app) if policy_of(r).anonymous}  # type: ignore[union-attr]
    assert public == PUBLIC_ROUTES


def test_every_protected_route_refuses_an_anonymous_request(app: FastAPI) -> None:
    checked = 0
    with TestClient(app) as client:
        for method, path, _route in _api_routes(app):
            if (method, path) in PUBLIC_ROUTES:
                continue
            url = _concrete(path)
            response = client.request(method, url, follow_redirects=False)
            # 403 comes first on unsafe methods: no CSRF token.
            assert response.status_code in {303, 401, 403}, f"{method} {path} answered {response.status_code}"
            if response.status_code == 303:
                assert response.headers["location"].startswith("/connexion")
            api_response = client.request(method, url, headers={"accept": "application/json"},
                                          follow_redirects=False)
            assert api_response.status_code in {401, 403}, f"{method} {path} (API) answered {api_response.status_code}"
            checked += 1
    assert checked > 15


def test_every_admin_route_refuses_a_nurse(app: FastAPI) -> None:
    with TestClient(app) as client:
        login(client, NURSE)
        for method, path, route in _api_routes(app):
            policy = policy_of(route)
            if method != "GET" or policy is None or policy.roles is None or "nurse" in policy.roles:
                continue
            response = client.get(_concrete(path), follow_redirects=False)
            assert response.status_code == 403, f"GET {path} answered {response.status_code} to a nurse"


def test_a_route_without_policy_stops_the_app_from_starting() -> None:
    router = APIRouter()

    @router.get("/oubli")
    def forgotten() -> str:
        return "secret"

    app = FastAPI()
    app.router.routes.extend(router.routes)
    with pytest.raises(RouteWithoutPolicyError, match="GET /oubli"):
        enforce_policies(app.routes, public_mounts=set())


def test_a_websocket_without_policy_stops_the_app_from_starting() -> None:
    router = APIRouter()

    @router.websocket("/ecoute")
    async def listen(websocket: WebSocket) -> None:
        await websocket.accept()

    app = FastAPI()
    app.router.routes.extend(router.routes)
    with pytest.raises(RouteWithoutPolicyError, match="WEBSOCKET /ecoute"):
        enforce_policies(app.routes, public_mounts=set())


def test_every_websocket_declares_a_socket_policy(app: FastAPI) -> None:
    sockets = [r for r in app.routes if isinstance(r, APIWebSocketRoute)]
    assert sockets and all(isinstance(policy_of(r), SocketPolicy) for r in sockets)


def test_the_api_answers_problem_details(client: TestClient) -> None:
    response = client.get("/api/sites/establishments")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 401 and body["title"] and body["type"] == "about:blank"


def test_an_unknown_page_is_a_friendly_404(client: TestClient) -> None:
    response = client.get("/nulle-part")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "<h1>" in response.text


def test_production_refuses_default_secrets(db_url: str) -> None:
    from naho.config import DEVELOPMENT_SECRET_KEY, InsecureSettingsError

    with pytest.raises(InsecureSettingsError):
        Settings(mode="production", database_url=db_url, secret_key="")
    with pytest.raises(InsecureSettingsError):
        Settings(mode="production", database_url=db_url, secret_key=DEVELOPMENT_SECRET_KEY)
    with pytest.raises(InsecureSettingsError):
        Settings(mode="production", database_url=db_url, secret_key="short")
    ok = Settings(mode="production", database_url=db_url, secret_key="x" * 40, workers=False)
    app = create_app(ok)
    assert app.state.container.settings.production
    app.state.container.engine.dispose()


def test_production_sets_hsts_and_secure_cookies(db_url: str) -> None:
    app = create_app(Settings(mode="production", database_url=db_url, secret_key="y" * 40, workers=False))
    with TestClient(app, base_url="https://testserver") as client:
        response = client.get("/connexion")
    assert "max-age" in response.headers["strict-transport-security"]
    assert "Secure" in response.headers["set-cookie"]
