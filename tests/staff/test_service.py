from __future__ import annotations

from fastapi.testclient import TestClient

from tests.personas import ADMIN, NURSE, form_token, login


def _create(client: TestClient, **overrides: object):  # type: ignore[no-untyped-def]
    body = {"username": "mmartin", "first_name": "Marie", "last_name": "Martin", "profession": "physician",
            "rpps": "10000000033", "unit_codes": ["LENS-SC-REA", "HENIN-URG-SAU"], "password": "longue-phrase-secrete"}
    body.update(overrides)
    return client.post("/api/staff", json=body, headers={"x-csrf-token": form_token(client)})


def test_an_administrator_creates_a_physician_working_in_two_establishments(client: TestClient) -> None:
    login(client, ADMIN)
    from naho.staff.rules import luhn_key

    response = _create(client, rpps="1000000003" + luhn_key("1000000003"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert {a["establishment_code"] for a in body["assignments"]} == {"LENS", "HENIN"}
    assert body["assignments"][0]["primary"] is True
    found = client.get("/api/staff", params={"q": "martin", "establishment": "HENIN"}).json()
    assert any(item["username"] == "mmartin" for item in found["items"])


def test_a_physician_without_rpps_is_refused(client: TestClient) -> None:
    login(client, ADMIN)
    response = _create(client, rpps=None)
    assert response.status_code == 422
    assert "RPPS" in response.json()["detail"]


def test_an_unknown_unit_and_a_taken_username_are_refused(client: TestClient) -> None:
    login(client, ADMIN)
    assert _create(client, profession="nurse", rpps=None, unit_codes=["NOPE"]).status_code == 422
    assert _create(client, profession="nurse", rpps=None, username="infirmier").status_code == 409


def test_a_weak_password_is_refused(client: TestClient) -> None:
    login(client, ADMIN)
    response = _create(client, profession="nurse", rpps=None, password="court")
    assert response.status_code == 422


def test_a_nurse_cannot_create_accounts(client: TestClient) -> None:
    login(client, NURSE)
    assert _create(client, profession="nurse", rpps=None).status_code == 403


def test_the_staff_page_lists_filters_and_is_audited(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    login(client, ADMIN)
    page = client.get("/admin/personnel", params={"etablissement": "LABASSEE"})
    assert page.status_code == 200
    assert "LABASSEE" in page.text and "(LENS)" not in page.text
    from sqlalchemy import select

    from naho.platform.audit import AuditEvent

    with app.state.container.session_factory() as s:
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert (last.action, last.target) == ("staff:directory:view", "LABASSEE")
    assert last.actor_label == "Thomas DELATTRE (admin)"
