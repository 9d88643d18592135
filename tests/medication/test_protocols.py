"""Protocols (order sets): the shipped file validated against the formulary, and applied for a
patient in one step, all or nothing, each line checked against the patient and the other lines."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.medication import service
from naho.medication.catalogue import load_catalogue
from naho.medication.protocols import PROTOCOLS, ProtocolError, load_protocols, parse_protocols
from naho.medication.rules import PatientContext, Severity, Sex, check_order
from naho.platform.audit import AuditEvent
from naho.platform.uow import UnitOfWork
from tests.medication.test_api import _admit, _measure, _orders, _post, _prescribe
from tests.medication.test_service import _creatinine
from tests.personas import NURSE, PHYSICIAN, login

UowFactory = Callable[[], UnitOfWork]
CATALOGUE = load_catalogue()


# --- the file ---------------------------------------------------------------------------------------


def test_the_shipped_protocols_load_against_the_shipped_formulary() -> None:
    protocols = load_protocols(CATALOGUE)
    assert {"emergency_pain", "sepsis_bundle", "postop_standard", "fever"} <= set(protocols)
    sepsis = protocols["sepsis_bundle"]
    assert [line.product for line in sepsis.lines] == ["RL1L", "CTRI2GINJ", "AMIK1GINJ"]
    assert str(sepsis.lines[2].dose.value) == "25.0" and sepsis.lines[2].dose.unit == "mg/kg"
    assert all(p.source and p.description for p in protocols.values())


@pytest.mark.parametrize("code", ["emergency_pain", "sepsis_bundle", "postop_standard", "fever"])
def test_each_shipped_protocol_is_clean_for_an_ordinary_adult(code: str) -> None:
    """No alert storm: a protocol applied as written to a 50-year-old of 72 kg with normal renal
    function raises nothing to justify, its lines counted against each other."""
    protocol = load_protocols(CATALOGUE)[code]
    patient = PatientContext(age_years=50, weight_kg=72, height_cm=175, sex=Sex.MALE, creatinine_clearance_ml_min=90)
    for n, line in enumerate(protocol.lines):
        others = tuple(other.order for m, other in enumerate(protocol.lines) if m != n)
        alerts = check_order(line.order, dataclasses.replace(patient, active_orders=others), CATALOGUE)
        assert [a.text() for a in alerts if a.severity is not Severity.INFO] == [], (code, line.product)


def _one_line(line: str) -> str:
    return f"""version: "1"
protocols:
- code: test
  name: "Test"
  description: "Un protocole de test."
  source: "Tests"
  lines:
  - {line}
"""


@pytest.mark.parametrize(("line", "says"), [
    ("{product: NOPE1G, dose: 1 g, route: PO, frequency: once}", "'NOPE1G' is not in the formulary"),
    ("{product: PARA1GCP, dose: 1 g, route: IV, frequency: once}", "PARA1GCP has no route IV"),
    ("{product: PARA1GCP, dose: 1 g, route: ZZ, frequency: once}", "'ZZ' is not a route code"),
    ("{product: PARA1GCP, dose: 1 gramme, route: PO, frequency: once}", "unknown dose unit"),
    ("{product: PARA1GCP, dose: 1 g, route: PO, frequency: twice}", "'twice' is not a valid FrequencyKind"),
    ("{product: PARA1GCP, dose: 1 g, route: PO, frequency: times_per_day}", "1 to 48 doses per day"),
    ("{product: PARA1GCP, dose: 1 g, route: PO, frequency: if_needed, max_per_24h: 4}", "states its indication"),
    ("{product: PARA1GCP, dose: 1 g, route: PO, frequency: once, max_dialy: 4}", "unknown field 'max_dialy'"),
    ("{product: PARA1GCP, dose: 1 mg/h, route: PO, frequency: once}", "continuous infusion"),
])
def test_a_malformed_line_refuses_the_whole_file_naming_it(line: str, says: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_protocols(_one_line(line), CATALOGUE)
    assert says in str(refused.value) and "protocol 'test', line 1 (line 8)" in str(refused.value)


def test_the_legitimate_line_loads() -> None:
    [line] = parse_protocols(_one_line("{product: PARA1GCP, dose: 1 g, route: PO, frequency: if_needed, "
                                       "max_per_24h: 4, indication: fièvre}"), CATALOGUE)["test"].lines
    assert (line.product, line.dose.value, line.frequency.max_per_24h) == ("PARA1GCP", 1.0, 4)


def test_a_protocol_given_twice_or_without_lines_is_refused() -> None:
    twice = _one_line("{product: PARA1GCP, dose: 1 g, route: PO, frequency: once}")
    twice += twice.split("protocols:\n")[1]
    with pytest.raises(ProtocolError, match="code given twice"):
        parse_protocols(twice, CATALOGUE)
    with pytest.raises(ProtocolError, match="at least one line"):
        parse_protocols(_one_line("x").replace("  lines:\n  - x\n", "  lines: []\n"), CATALOGUE)
    assert PROTOCOLS.name == "protocols.yaml"


# --- applying a protocol ------------------------------------------------------------------------------


def _apply(client: TestClient, patient: str, code: str, **body: object):  # type: ignore[no-untyped-def]
    login(client, PHYSICIAN)
    return _post(client, f"/api/patients/{patient}/medication-protocols/{code}", body)


@pytest.fixture
def patient(client: TestClient) -> str:
    patient, _ = _admit(client)
    _measure(client, patient)
    return patient


def test_the_protocols_are_listed_for_the_care_team(client: TestClient) -> None:
    login(client, NURSE)
    listed = {p["code"]: p for p in client.get("/api/medication/protocols").json()}
    assert listed["postop_standard"]["lines"][2]["product_name"].startswith("Énoxaparine 4 000 UI")


def test_a_protocol_becomes_orders_that_remember_it(client: TestClient, patient: str,
                                                      uow_factory: UowFactory) -> None:
    applied = _apply(client, patient, "sepsis_bundle")
    assert applied.status_code == 201, applied.text
    orders = applied.json()
    assert [o["product_code"] for o in orders] == ["RL1L", "CTRI2GINJ", "AMIK1GINJ"]
    assert {o["protocol_code"] for o in orders} == {"sepsis_bundle"}
    assert len({o["protocol_run_id"] for o in orders}) == 1
    assert all(o["review_status"] == "pending" and o["weight_kg"] == 72 for o in orders)
    rows = _orders(uow_factory, patient)
    assert len(rows) == 3 and {r.protocol_run_id for r in rows} == {uuid.UUID(orders[0]["protocol_run_id"])}
    with uow_factory() as uow:
        [event] = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "medication:protocol:applied"))
        assert event.details["protocol"] == "sepsis_bundle" and len(event.details["orders"]) == 3


def test_one_blocked_line_refuses_the_whole_protocol(client: TestClient, patient: str,
                                                      uow_factory: UowFactory) -> None:
    assert _apply(client, patient, "emergency_pain").status_code == 201
    before = len(_orders(uow_factory, patient))
    # the fever protocol's paracetamol if needed adds 4 g to the 4 g in force: twice the maximum
    refused = _apply(client, patient, "fever", override_reasons={0: "fièvre"})
    assert refused.status_code == 422, refused.text
    [line] = refused.json()["lines"]
    assert line["line"] == 0 and line["severity"] == "blocking" and line["alerts"][0]["kind"] == "dose"
    assert len(_orders(uow_factory, patient)) == before


def test_lines_needing_a_reason_are_answered_one_by_one(client: TestClient, patient: str,
                                                          uow_factory: UowFactory) -> None:
    # 300 µmol/L: 21 mL/min; paracetamol 4 g per 24 h is over its 3 g renal cap
    _creatinine(client, patient, "300")
    refused = _apply(client, patient, "emergency_pain")
    assert refused.status_code == 409, refused.text
    assert [(line["line"], line["alerts"][0]["kind"]) for line in refused.json()["lines"]] == [(0, "renal")]
    assert _orders(uow_factory, patient) == []
    wrong_line = _apply(client, patient, "emergency_pain", override_reasons={1: "douleur intense"})
    assert wrong_line.status_code == 409
    applied = _apply(client, patient, "emergency_pain", override_reasons={0: "3 g insuffisants, surveillance"})
    assert applied.status_code == 201, applied.text
    first = applied.json()[0]
    assert first["override_reason"] == "3 g insuffisants, surveillance"
    assert [a["override_reason"] for a in first["alerts"] if a["kind"] == "renal"] == ["3 g insuffisants, surveillance"]


def test_a_normal_clearance_applies_the_same_protocol_without_reason(client: TestClient, patient: str) -> None:
    _creatinine(client, patient, "80")
    assert _apply(client, patient, "emergency_pain").status_code == 201


INTER_LINE = """version: "1"
protocols:
- code: two_nsaids
  name: "Deux AINS"
  description: "Deux anti-inflammatoires : doublon."
  source: "Tests"
  lines:
  - {product: IBUP400CP, dose: 400 mg, route: PO, frequency: times_per_day, times_per_day: 3}
  - {product: KETO100LP, dose: 100 mg, route: PO, frequency: times_per_day, times_per_day: 1}
- code: nsaid_and_paracetamol
  name: "AINS et paracétamol"
  description: "Association multimodale."
  source: "Tests"
  lines:
  - {product: IBUP400CP, dose: 400 mg, route: PO, frequency: times_per_day, times_per_day: 3}
  - {product: PARA1GCP, dose: 1 g, route: PO, frequency: times_per_day, times_per_day: 3}
"""


def test_each_line_is_checked_against_the_other_lines(client: TestClient, patient: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "_PROTOCOLS", [])
    monkeypatch.setattr(service, "load_protocols", lambda catalogue: parse_protocols(INTER_LINE, catalogue))
    refused = _apply(client, patient, "two_nsaids")
    assert refused.status_code == 409, refused.text
    assert [line["line"] for line in refused.json()["lines"]] == [0, 1]
    assert {a["kind"] for line in refused.json()["lines"] for a in line["alerts"]} >= {"duplicate"}
    assert _apply(client, patient, "nsaid_and_paracetamol").status_code == 201


def test_only_a_physician_applies_and_an_unknown_protocol_is_not_found(client: TestClient, patient: str) -> None:
    login(client, NURSE)
    assert _post(client, f"/api/patients/{patient}/medication-protocols/fever", {}).status_code == 403
    assert _apply(client, patient, "no_such_protocol").status_code == 404
    assert _prescribe(client, patient, {}).status_code == 422  # the physician is logged in again


def test_a_protocol_file_naming_a_withdrawn_product_is_refused_but_order_entry_still_works(
        client: TestClient, patient: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(catalogue):  # type: ignore[no-untyped-def]
        return parse_protocols(INTER_LINE.replace("KETO100LP", "WITHDRAWN"), catalogue)
    monkeypatch.setattr(service, "_PROTOCOLS", [])
    monkeypatch.setattr(service, "load_protocols", broken)
    refused = _apply(client, patient, "nsaid_and_paracetamol")
    assert refused.status_code == 422 and "'WITHDRAWN' is not in the formulary" in refused.json()["detail"]
    page = client.get(f"/patients/{patient}/prescriptions", params={"produit": "PARA1GCP"})
    assert page.status_code == 200 and 'id="protocols-error"' in page.text and 'id="order-form"' in page.text
