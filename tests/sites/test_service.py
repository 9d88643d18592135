"""Importing the reference file is idempotent; the admin pages and API read it back."""

from __future__ import annotations

from pathlib import Path

import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from naho.platform.security.actor import SYSTEM_ACTOR
from naho.sites import service
from naho.sites.models import Bed
from naho.sites.rules import parse_reference
from tests.personas import ADMIN, NURSE, form_token, login
from tests.sites.test_rules import REFERENCE


def test_a_second_import_changes_nothing(uow_factory) -> None:  # type: ignore[no-untyped-def]
    spec = service.load_reference(REFERENCE)
    report = service.import_reference(uow_factory(), SYSTEM_ACTOR, spec)  # the seed imported it already
    assert report.created == {} and report.updated == {} and report.deactivated == {}


def test_an_edited_file_updates_and_deactivates_without_deleting(uow_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(REFERENCE.read_text(encoding="utf-8"))
    lens = data["establishments"][0]
    lens["name"] = "Centre hospitalier de Lens (renommé)"
    unit = lens["departments"][0]["units"][1]  # LENS-URG-UHCD
    removed_beds = sum(b["count"] * b.get("beds_per_room", 1) for b in unit["rooms"])
    unit["rooms"] = []
    report = service.import_reference(uow_factory(), SYSTEM_ACTOR, parse_reference(data))
    assert report.updated == {"establishment": 1}
    assert report.deactivated["bed"] == removed_beds
    assert "created" not in report.created
    with uow_factory() as uow:
        assert service.get_establishment(uow.session, "LENS").name.endswith("(renommé)")
        inactive = uow.session.execute(select(func.count()).select_from(Bed).where(Bed.active.is_(False))).scalar_one()
    assert inactive == removed_beds
    # Putting the rooms back reactivates the same beds rather than creating new ones.
    report = service.import_reference(uow_factory(), SYSTEM_ACTOR, service.load_reference(REFERENCE))
    assert report.created == {} and report.updated["bed"] == removed_beds


def test_a_broken_file_is_refused_with_its_reason(tmp_path: Path) -> None:
    import pytest

    from naho.sites.errors import InvalidReference

    bad = tmp_path / "ght.yaml"
    bad.write_text("version: 1\ngroup: {code: G}\nestablishments:\n  - {code: lens, finess: '620000017'}\n")
    with pytest.raises(InvalidReference, match="uppercase"):
        service.load_reference(bad)
    bad.write_text("version: [")
    with pytest.raises(InvalidReference, match="cannot be read"):
        service.load_reference(bad)


def test_the_admin_lists_establishments_units_and_beds(client: TestClient) -> None:
    login(client, ADMIN)
    page = client.get("/admin/etablissements")
    assert page.status_code == 200
    for name in ("Lens", "Béthune", "Hénin-Beaumont", "La Bassée"):
        assert name in page.text
    units = client.get("/admin/etablissements/LENS")
    assert "Service d&#39;accueil des urgences" in units.text or "accueil des urgences" in units.text
    beds = client.get("/admin/etablissements/LENS/unites/LENS-MED-CARDIO")
    assert beds.status_code == 200 and "LENS-MED-CARDIO-" in beds.text
    assert client.get("/admin/etablissements/HENIN/unites/LENS-MED-CARDIO").status_code == 404


def test_the_api_gives_units_and_beds_to_staff(client: TestClient) -> None:
    login(client, NURSE)
    establishments = client.get("/api/sites/establishments").json()
    lens = next(e for e in establishments if e["code"] == "LENS")
    assert 760 <= lens["bed_count"] <= 840 and lens["rollout_state"] == "live"
    units = client.get("/api/sites/establishments/BETHUNE/units").json()
    assert units and all(u["establishment_code"] == "BETHUNE" for u in units)
    beds = client.get(f"/api/sites/units/{units[0]['code']}/beds").json()
    assert all(b["unit_code"] == units[0]["code"] for b in beds)
    missing = client.get("/api/sites/establishments/NOWHERE")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_an_administrator_moves_an_establishment_to_live(client: TestClient) -> None:
    login(client, ADMIN)
    response = client.post("/admin/etablissements/BETHUNE/deploiement",
                           data={"state": "live", "reason": "", "csrf_token": form_token(client)},
                           follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/api/sites/establishments/BETHUNE").json()["rollout_state"] == "live"


def test_la_bassee_cannot_go_live_before_its_sandbox(client: TestClient) -> None:
    login(client, ADMIN)
    response = client.post("/admin/etablissements/LABASSEE/deploiement",
                           data={"state": "live", "csrf_token": form_token(client)})
    assert response.status_code == 409
    assert client.get("/api/sites/establishments/LABASSEE").json()["rollout_state"] == "not_started"


def test_a_nurse_cannot_move_the_rollout(client: TestClient) -> None:
    login(client, NURSE)
    response = client.put("/api/sites/establishments/HENIN/rollout", json={"state": "live"},
                          headers={"x-csrf-token": form_token(client)})
    assert response.status_code == 403
