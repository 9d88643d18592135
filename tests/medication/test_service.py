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


# --- renal function from the chart's creatinine ------------------------------------------------------

from datetime import timedelta  # noqa: E402

from naho.platform.i18n import PARIS  # noqa: E402
from tests.medication.test_api import _chart  # noqa: E402

#: Paracetamol 1 g four times a day: 4 g per 24 h, over the 3 g cap below 30 mL/min of clearance.
PARACETAMOL_QID = {**PARACETAMOL, "times_per_day": 4}


def _creatinine(client: TestClient, patient: str, value: str, days_ago: float = 0.5) -> None:
    """The nurse types a serum creatinine result (µmol/L) sampled `days_ago` days before the
    tests' clock."""
    login(client, NURSE)
    now = client.app.state.container.clock.now()  # type: ignore[attr-defined]
    sampled = (now.astimezone(PARIS) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M")
    _chart(client, f"/patients/{patient}/prescriptions/creatinine", creatinine=value, measured_at=sampled)


def _renal_alerts(order: dict) -> list[dict]:  # type: ignore[type-arg]
    return [a for a in order["alerts"] if a["kind"] in ("renal", "unchecked")]


def test_a_low_clearance_from_the_chart_needs_a_reason_for_paracetamol_4_g(client: TestClient) -> None:
    patient, _ = _admit(client)
    _measure(client, patient)
    # 69 years, 72 kg, man, 300 µmol/L: 1.23 × 71 × 72 / 300 = 21 mL/min
    _creatinine(client, patient, "300")
    refused = _prescribe(client, patient, PARACETAMOL_QID)
    assert refused.status_code == 409, refused.text
    [renal] = [a for a in refused.json()["alerts"] if a["kind"] == "renal"]
    assert (renal["params"]["clearance"], renal["params"]["cap"], renal["params"]["amount"]) == ("21", "3000", "4000")
    signed = _post(client, f"/api/patients/{patient}/medication-orders",
                   {**PARACETAMOL_QID, "override_reason": "Douleur post-opératoire, pas d'alternative"})
    assert signed.status_code == 201, signed.text


def test_a_normal_clearance_from_the_chart_passes_the_same_order(client: TestClient) -> None:
    patient, _ = _admit(client)
    _measure(client, patient)
    _creatinine(client, patient, "80")  # 79 mL/min
    signed = _prescribe(client, patient, PARACETAMOL_QID)
    assert signed.status_code == 201, signed.text
    assert _renal_alerts(signed.json()) == []


def test_an_old_creatinine_is_not_used_and_says_so(client: TestClient) -> None:
    patient, _ = _admit(client)
    _measure(client, patient)
    _creatinine(client, patient, "300", days_ago=10)
    signed = _prescribe(client, patient, PARACETAMOL_QID)
    assert signed.status_code == 201, signed.text  # no clearance: the 3 g cap is not applied...
    [said] = _renal_alerts(signed.json())
    assert said["kind"] == "unchecked" and said["severity"] == "info" and said["params"]["days"] == "10"


def test_an_implausible_creatinine_is_refused(client: TestClient) -> None:
    patient, _ = _admit(client)
    login(client, NURSE)
    from tests.personas import form_token
    response = client.post(f"/patients/{patient}/prescriptions/creatinine",
                           data={"creatinine": "0,5", "csrf_token": form_token(client)}, follow_redirects=False)
    assert response.status_code == 303 and "erreur=ChartEntryRefused" in response.headers["location"]


# --- continuous infusions -----------------------------------------------------------------------------

#: Noradrenaline 8 mg in 50 mL (0.16 mg/mL) at 2.7 mL/h = 0.1 µg/kg/min for 72 kg.
NORADRENALINE = {"product_code": "NORA8INJ", "dose_value": 2.7, "dose_unit": "mL/h", "route": "IV",
                 "frequency": "continuous", "concentration_value": 0.16, "concentration_unit": "mg/mL"}


def test_an_infusion_is_stored_with_its_concentration_range_and_pump_rate(client: TestClient,
                                                                         uow_factory: UowFactory) -> None:
    patient, _ = _admit(client)
    _measure(client, patient)
    # up to 40 mL/h = 6.4 mg/h, under 180 µg/kg/h × 72 kg = 12.96 mg/h
    signed = _prescribe(client, patient, {**NORADRENALINE, "titration_min": 1, "titration_max": 40})
    assert signed.status_code == 201, signed.text
    order = signed.json()
    assert (order["concentration_value"], order["concentration_unit"]) == (0.16, "mg/mL")
    assert (order["titration_min"], order["titration_max"], order["rate_ml_h"]) == (1, 40, 2.7)
    [row] = _orders(uow_factory, patient)
    assert (row.titration_min, row.titration_max, row.concentration_value) == (1, 40, 0.16)
    # the same drip ordered as a dose rate shows its pump rate
    login(client, PHYSICIAN := "medecin")
    rate = _post(client, f"/api/medication-orders/{order['id']}/modify",
                 {**NORADRENALINE, "dose_value": 0.1, "dose_unit": "µg/kg/min", "titration_min": 0.05,
                  "titration_max": 1})
    assert rate.status_code == 201, rate.text and PHYSICIAN
    assert rate.json()["rate_ml_h"] == 2.7


def test_the_top_of_a_titration_range_is_checked_like_the_rate(client: TestClient, uow_factory: UowFactory) -> None:
    patient, _ = _admit(client)
    _measure(client, patient)
    # 100 mL/h = 16 mg/h: over 12.96 mg/h (reason), under twice it
    high = _prescribe(client, patient, {**NORADRENALINE, "titration_min": 1, "titration_max": 100})
    assert high.status_code == 409, high.text
    assert [a["kind"] for a in high.json()["alerts"]] == ["dose"]
    # 200 mL/h = 32 mg/h: at twice the maximum or more, refused whatever the reason
    tenfold = _post(client, f"/api/patients/{patient}/medication-orders",
                    {**NORADRENALINE, "titration_min": 1, "titration_max": 200, "override_reason": "choc"})
    assert tenfold.status_code == 422 and tenfold.json()["alerts"][0]["kind"] == "dose"
    assert _orders(uow_factory, patient) == []


def test_malformed_infusions_are_refused_before_any_check(client: TestClient) -> None:
    patient, _ = _admit(client)
    _measure(client, patient)
    for changes in ({"titration_min": 5, "titration_max": 1}, {"titration_min": 1},
                    {"concentration_unit": "UI/mL"}, {"concentration_unit": None},
                    {"frequency": "once", "dose_unit": "mL"}):
        response = _prescribe(client, patient, {**NORADRENALINE, **changes})
        assert response.status_code == 422 and response.json()["rule"] == "BadInfusion", (changes, response.text)
