"""Fixed personas of the tests: the demo accounts of the seed, one per role."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from naho.config import DEVELOPMENT_PASSWORD

PHYSICIAN = "medecin"
NURSE = "infirmier"
PHARMACIST = "pharmacien"
CLERK = "admission"
PORTER = "brancardier"
ADMIN = "admin"
VIGILANCE = "identitovigilance"
PASSWORD = DEVELOPMENT_PASSWORD

_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client: TestClient, username: str, password: str = PASSWORD) -> TestClient:
    page = client.get("/connexion")
    response = client.post("/connexion", data={
        "username": username, "password": password, "csrf_token": csrf_from(page.text),
        "suivant": "/accueil",
    }, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def form_token(client: TestClient, path: str = "/accueil") -> str:
    return csrf_from(client.get(path).text)
