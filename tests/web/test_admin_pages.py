"""The IT administrators' platform pages: outbox dead letters and the audit trail; staff search."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.platform import outbox
from naho.platform.audit import AuditEvent
from naho.platform.outbox import DEAD, PENDING, OutboxMessage, OutboxWorker
from tests.personas import ADMIN, NURSE, csrf_from, login


def _dead_message(app, clock) -> str:  # type: ignore[no-untyped-def]
    container = app.state.container
    with container.uow() as uow:
        message_id = outbox.enqueue(uow.session, "letter.send", {"letter": 1}, now=clock.now())
        uow.commit()

    def refuse(_envelope: outbox.Envelope) -> None:
        raise ConnectionRefusedError("MSSanté relay unreachable")

    OutboxWorker(container.session_factory, clock, {"letter.send": refuse}, max_attempts=1).run_once()
    return str(message_id)


def test_dead_letters_are_listed_and_retried_by_an_administrator(client: TestClient, app, clock) -> None:  # type: ignore[no-untyped-def]
    message_id = _dead_message(app, clock)
    login(client, ADMIN)
    page = client.get("/admin/outbox")
    assert page.status_code == 200
    assert "MSSanté relay unreachable" in page.text and "letter.send" in page.text
    response = client.post(f"/admin/outbox/{message_id}/relancer", data={"csrf_token": csrf_from(page.text)},
                           follow_redirects=False)
    assert response.status_code == 303
    with app.state.container.session_factory() as s:
        row = s.get(OutboxMessage, __import__("uuid").UUID(message_id))
        assert row is not None and row.status == PENDING and row.attempts == 0
        actions = s.scalars(select(AuditEvent.action).order_by(AuditEvent.seq.desc()).limit(1)).all()
    assert actions == ["platform:outbox:retry"]


def test_a_nurse_cannot_see_or_retry_the_outbox(client: TestClient, app, clock) -> None:  # type: ignore[no-untyped-def]
    message_id = _dead_message(app, clock)
    login(client, NURSE)
    assert client.get("/admin/outbox").status_code == 403
    home = client.get("/accueil").text
    response = client.post(f"/admin/outbox/{message_id}/relancer", data={"csrf_token": csrf_from(home)})
    assert response.status_code == 403
    with app.state.container.session_factory() as s:
        assert s.execute(select(OutboxMessage.status)).scalar_one() == DEAD


def test_the_audit_page_shows_logins_and_is_itself_audited(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    login(client, ADMIN)
    page = client.get("/admin/audit")
    assert page.status_code == 200
    assert "account:login:success" in page.text and "Thomas DELATTRE" in page.text
    with app.state.container.session_factory() as s:
        last = s.scalars(select(AuditEvent.action).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert last == "platform:audit:view"


def test_search_finds_units_and_colleagues(client: TestClient) -> None:
    login(client, NURSE)
    page = client.get("/recherche", params={"q": "cardio"})
    assert page.status_code == 200
    assert "Cardiologie" in page.text
    page = client.get("/recherche", params={"q": "Delattre"})
    assert "Thomas DELATTRE" in page.text
