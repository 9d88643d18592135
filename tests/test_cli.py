"""The `naho` command, as an operator uses it."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from naho.cli import app
from naho.platform.db import make_engine

runner = CliRunner()


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("NAHO_DATABASE_URL", db_url)
    monkeypatch.setenv("NAHO_MODE", "development")
    return db_url


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "serve", "migrate", "seed", "audit", "sites", "token"):
        assert command in result.output


def test_audit_verify_passes_then_fails_after_tampering(env: str) -> None:
    ok = runner.invoke(app, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    engine = make_engine(env)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER audit_event_no_update"))
        conn.execute(text("UPDATE audit_event SET target = 'forged' WHERE seq = 1"))
    engine.dispose()
    bad = runner.invoke(app, ["audit", "verify"])
    assert bad.exit_code == 1
    assert "altered" in bad.output and "event 1" in bad.output


def test_audit_head_then_verify_against_it(env: str) -> None:
    head = runner.invoke(app, ["audit", "head"]).output.strip()
    assert ":" in head
    assert runner.invoke(app, ["audit", "verify", "--expected-head", head]).exit_code == 0
    assert runner.invoke(app, ["audit", "verify", "--expected-head", "999:" + "0" * 64]).exit_code == 1


def test_sites_import_is_idempotent_from_the_command_line(env: str) -> None:
    result = runner.invoke(app, ["sites", "import"])
    assert result.exit_code == 0, result.output
    assert "created {}" in result.output and "updated {}" in result.output


def test_a_token_gives_api_access_until_revoked(env: str, app_factory=None) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from naho.app import create_app
    from naho.config import Settings

    created = runner.invoke(app, ["token", "create", "--user", "admin", "--name", "passerelle labo"])
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("naho_")
    web = create_app(Settings(mode="test", database_url=env, workers=False))
    with TestClient(web) as client:
        me = client.get("/api/me", headers={"authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["username"] == "admin" and me.json()["via"] == "token"
        # No CSRF token needed: a bearer token is no ambient credential.
        staff = client.post("/api/staff", headers={"authorization": f"Bearer {token}"}, json={
            "username": "interface-labo", "first_name": "Passerelle", "last_name": "Labo",
            "profession": "porter"})
        assert staff.status_code == 201, staff.text
        assert runner.invoke(app, ["token", "revoke", token[:12]]).exit_code == 0
        assert client.get("/api/me", headers={"authorization": f"Bearer {token}"}).status_code == 401
        assert client.get("/api/me", headers={"authorization": "Bearer naho_forged"}).status_code == 401


def test_a_token_for_an_unknown_account_is_refused(env: str) -> None:
    result = runner.invoke(app, ["token", "create", "--user", "ghost", "--name", "x"])
    assert result.exit_code == 1
