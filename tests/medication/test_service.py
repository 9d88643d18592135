"""The formulary stored in the database (import, re-import, the catalogue rebuilt from the tables)
and the orders' life beyond the API: discharge stops them, a withdrawn product keeps its orders."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from naho.cli import app as cli
from naho.medication import service
from naho.medication.catalogue import FORMULARY, FormularyError, load_catalogue
from naho.medication.models import (
    FormularyImport,
    FormularyInteraction,
    FormularyProduct,
    FormularySubstance,
    MedicationOrderAlert,
)
from naho.medication.schemas import OrderCreate
from naho.medication.service import OrderBlocked, OrderNotFound, PrescriberRequired
from naho.platform.audit import AuditEvent
from naho.platform.security.actor import SYSTEM_ACTOR, Actor
from naho.platform.security.models import Account
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.record.service import RecordCareRelationship
from tests.medication.test_api import PARACETAMOL, _admit, _measure, _orders, _post, _prescribe
from tests.personas import CLERK, NURSE, login

UowFactory = Callable[[], UnitOfWork]


def _counts(uow_factory: UowFactory) -> dict[str, int]:
    with uow_factory() as uow:
        s = uow.session
        return {
            "substances": s.execute(select(func.count()).select_from(FormularySubstance)).scalar_one(),
            "products": s.execute(select(func.count()).select_from(FormularyProduct)).scalar_one(),
            "active_products": s.execute(select(func.count()).select_from(FormularyProduct)
                                         .where(FormularyProduct.active.is_(True))).scalar_one(),
            "interactions": s.execute(select(func.count()).select_from(FormularyInteraction)).scalar_one(),
            "imports": s.execute(select(func.count()).select_from(FormularyImport)).scalar_one(),
        }


def _import(uow_factory: UowFactory, path: Path = FORMULARY) -> service.ImportReport:
    with uow_factory() as uow:
        report = service.import_formulary(uow.session, SYSTEM_ACTOR, path, now=uow.clock.now())
        uow.commit()
        return report


def _without(tmp_path: Path, product_code: str) -> Path:
    """The shipped formulary with one product line removed."""
    lines = FORMULARY.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if f"code: {product_code}," not in line]
    assert len(kept) == len(lines) - 1
    path = tmp_path / "formulary.yaml"
    path.write_text("".join(kept), encoding="utf-8")
    return path


def test_the_seed_stored_the_shipped_formulary_and_the_catalogue_is_rebuilt_equal(uow_factory: UowFactory) -> None:
    shipped = load_catalogue()
    counts = _counts(uow_factory)
    assert counts["imports"] == 1 and counts["products"] == len(shipped.products) == 441
    assert counts["substances"] == len(shipped.substances) and counts["interactions"] == len(shipped.interactions)
    with uow_factory() as uow:
        assert service.catalogue(uow.session) == shipped


def test_reimport_is_idempotent_and_a_removed_product_becomes_inactive(
        client: TestClient, uow_factory: UowFactory, tmp_path: Path) -> None:
    patient, _ = _admit(client)
    _measure(client, patient)
    syrup = {"product_code": "AMOX250SB", "dose_value": 500, "dose_unit": "mg", "route": "PO",
             "frequency": "times_per_day", "times_per_day": 3}
    ordered = _prescribe(client, patient, syrup)
    assert ordered.status_code == 201, ordered.text
    before = _counts(uow_factory)

    same = _import(uow_factory)
    assert (same.added, same.updated, same.withdrawn) == (0, 0, 0)
    assert {k: v for k, v in _counts(uow_factory).items() if k != "imports"} == \
        {k: v for k, v in before.items() if k != "imports"}

    removed = _import(uow_factory, _without(tmp_path, "AMOX250SB"))
    assert (removed.added, removed.withdrawn, removed.products) == (0, 1, 440)
    after = _counts(uow_factory)
    assert after["products"] == before["products"] and after["active_products"] == before["active_products"] - 1
    with uow_factory() as uow:
        row = uow.session.get(FormularyProduct, "AMOX250SB")
        assert row is not None and not row.active
        assert "AMOX250SB" not in service.catalogue(uow.session).products

    # the order on the withdrawn product stays, and the next order says it could not check against it
    login(client, NURSE)
    [kept] = client.get(f"/api/patients/{patient}/medication-orders").json()
    assert kept["product_code"] == "AMOX250SB" and kept["status"] == "active"
    assert kept["product_name"].startswith("Amoxicilline 250 mg")
    second = _prescribe(client, patient, PARACETAMOL)
    assert second.status_code == 201, second.text
    assert "unchecked" in [a["kind"] for a in second.json()["alerts"]]
    refused = _post(client, f"/api/patients/{patient}/medication-orders", syrup)
    assert refused.status_code == 422 and refused.json()["rule"] == "UnknownProduct"

    back = _import(uow_factory)
    assert (back.updated, back.withdrawn) == (1, 0)
    assert _counts(uow_factory)["active_products"] == before["active_products"]
    with uow_factory() as uow:
        imports = list(uow.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "medication:formulary:import")))
        assert len(imports) == 4 and imports[-1].details["sha256"] == same.sha256


def test_a_malformed_formulary_is_refused_whole(uow_factory: UowFactory, tmp_path: Path) -> None:
    bad = tmp_path / "formulary.yaml"
    bad.write_text(FORMULARY.read_text(encoding="utf-8").replace("atc: N02BE01", "atc: paracetamol", 1),
                   encoding="utf-8")
    before = _counts(uow_factory)
    with pytest.raises(FormularyError):
        _import(uow_factory, bad)
    assert _counts(uow_factory) == before


def test_the_import_command(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NAHO_DATABASE_URL", db_url)
    monkeypatch.setenv("NAHO_MODE", "development")
    runner = CliRunner()
    result = runner.invoke(cli, ["medication", "import"])
    assert result.exit_code == 0, result.output
    assert "441 products" in result.output and "added 0" in result.output and "withdrawn 0" in result.output
    missing = runner.invoke(cli, ["medication", "import", str(tmp_path / "absent.yaml")])
    assert missing.exit_code == 1


def test_discharge_stops_the_stays_orders(client: TestClient, uow_factory: UowFactory) -> None:
    patient, stay = _admit(client)
    _measure(client, patient)
    order = _prescribe(client, patient, PARACETAMOL).json()
    assert order["encounter_id"] == stay
    login(client, NURSE)
    discharged = _post(client, f"/api/encounters/{stay}/discharge", {})
    assert discharged.status_code == 200, discharged.text
    [row] = _orders(uow_factory, patient)
    assert row.status == "stopped" and row.status_reason == "discharge"
    with uow_factory() as uow:
        event = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "medication:order:stopped")).one()
        assert event.reason == "discharge" and event.target == order["id"]


def _physician(uow_factory: UowFactory, roles: frozenset[Role] = frozenset({Role.PHYSICIAN})) -> Actor:
    with uow_factory() as uow:
        account_id = uow.session.scalars(select(Account.id).where(Account.username == "medecin")).one()
        return Actor(account_id, "medecin", "Claire Lefebvre", roles)


def test_the_service_refuses_non_physicians_before_opening_anything(uow_factory: UowFactory) -> None:
    nurse = _physician(uow_factory, frozenset({Role.NURSE}))
    with pytest.raises(PrescriberRequired):
        service.prescribe(uow_factory(), nurse, uuid.uuid4(), OrderCreate(**PARACETAMOL), RecordCareRelationship())


def test_an_unknown_order_is_not_found(uow_factory: UowFactory) -> None:
    with pytest.raises(OrderNotFound):
        service.stop(uow_factory(), _physician(uow_factory), uuid.uuid4(), service.StatusChange(),
                     RecordCareRelationship())


def test_stop_all_at_discharge_leaves_other_stays_alone(client: TestClient, uow_factory: UowFactory) -> None:
    patient, stay = _admit(client)
    _measure(client, patient)
    _prescribe(client, patient, PARACETAMOL)
    assert service.stop_all_at_discharge(uow_factory(), SYSTEM_ACTOR, uuid.uuid4()) == 0
    assert [o.status for o in _orders(uow_factory, patient)] == ["active"]
    assert service.stop_all_at_discharge(uow_factory(), SYSTEM_ACTOR, uuid.UUID(stay)) == 1


def test_a_blocking_alert_is_an_unprocessable_order() -> None:
    assert OrderBlocked.status == 422 and service.OverrideReasonRequired.status == 409


def test_orders_follow_a_merged_patient_and_come_back_on_undo(client: TestClient, uow_factory: UowFactory) -> None:
    merged, _ = _admit(client)
    _measure(client, merged)
    order = _prescribe(client, merged, PARACETAMOL).json()
    survivor, _ = _admit(client, bed="LENS-MED-MIN-524-1", name="Vandamme", first_names="Gérard")
    with uow_factory() as uow:
        moved = service.MOVER.move(uow.session, uuid.UUID(merged), uuid.UUID(survivor))
        uow.commit()
    assert moved == [f"medication_order:{order['id']}"]
    assert [str(o.id) for o in _orders(uow_factory, survivor)] == [order["id"]] and not _orders(uow_factory, merged)
    with uow_factory() as uow:
        alert_patients = set(uow.session.scalars(select(MedicationOrderAlert.patient_id)))
        assert alert_patients == {uuid.UUID(survivor)}
        service.MOVER.move_back(uow.session, moved, uuid.UUID(merged))
        uow.commit()
    assert [str(o.id) for o in _orders(uow_factory, merged)] == [order["id"]]


def test_an_order_outside_the_care_team_is_answered_as_an_unknown_one(
        client: TestClient, uow_factory: UowFactory) -> None:
    patient, _ = _admit(client)
    _measure(client, patient)
    order = uuid.UUID(_prescribe(client, patient, PARACETAMOL).json()["id"])
    stranger = Actor(uuid.uuid4(), "inconnu", "Docteur Inconnu", frozenset({Role.PHYSICIAN}))
    care = RecordCareRelationship()
    with pytest.raises(OrderNotFound) as outside:
        service.stop(uow_factory(), stranger, order, service.StatusChange(), care)
    with pytest.raises(OrderNotFound) as unknown:
        service.stop(uow_factory(), stranger, uuid.uuid4(), service.StatusChange(), care)
    assert outside.value.detail == unknown.value.detail
    assert [o.status for o in _orders(uow_factory, patient)] == ["active"]
    with uow_factory() as uow:
        denied = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "patient:record:denied")).all()
        assert [e.target for e in denied] == [str(order)]


def test_an_inbound_a40_moves_the_orders_with_the_merged_patient(client: TestClient, app,  # type: ignore[no-untyped-def]
                                                                 uow_factory: UowFactory) -> None:
    from naho.interop.hl7_listener import AdtListener
    from tests.interop.test_hl7_pam_movements import message, send

    merged, _ = _admit(client)
    _measure(client, merged)
    order = _prescribe(client, merged, PARACETAMOL).json()
    survivor, _ = _admit(client, bed="LENS-MED-MIN-524-1", name="Vandamme", first_names="Gérard")
    login(client, CLERK)
    ipps = {p: client.get(f"/api/patients/{p}").json()["ipp"] for p in (merged, survivor)}
    gam = AdtListener(app.state.container)
    merge = message("A40", "M1", ipp=ipps[survivor], name="VANDAMME^GERARD^GERARD",
                    mrg=f"{ipps[merged]}^^^NAHO^PI", structure="ADT_A39")
    assert send(gam, merge)[0] == "AA"
    # The medication orders followed the merge as the stays and the chart do (the app's movers).
    assert [str(o.id) for o in _orders(uow_factory, survivor)] == [order["id"]] and not _orders(uow_factory, merged)
