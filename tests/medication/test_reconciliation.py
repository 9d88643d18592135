"""Medication reconciliation: the home treatment listed at admission, the prescriber's decision on
each line (an order through the checks, or a reasoned stop), and the changes at discharge."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from naho.medication.reconciliation import discharge_changes
from naho.platform.uow import UnitOfWork
from tests.medication.test_api import (
    AMOXICILLIN,
    PARACETAMOL,
    _admit,
    _allergic_to_penicillins,
    _measure,
    _orders,
    _post,
    _prescribe,
)
from tests.personas import NURSE, PHARMACIST, PHYSICIAN, form_token, login

UowFactory = Callable[[], UnitOfWork]

RAMIPRIL = {"product_code": "RAMI5CP", "dose_value": 5, "dose_unit": "mg", "route": "PO",
            "frequency": "times_per_day", "times_per_day": 1}


@pytest.fixture
def stay(client: TestClient) -> tuple[str, str]:
    patient, encounter = _admit(client)
    _measure(client, patient)
    return patient, encounter


def _line(client: TestClient, patient: str, who: str = NURSE, **body: Any) -> dict[str, Any]:
    login(client, who)
    response = _post(client, f"/api/patients/{patient}/home-medications", {"source": "patient", **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def _decide(client: TestClient, line: dict[str, Any], **body: Any):  # type: ignore[no-untyped-def]
    login(client, PHYSICIAN)
    return _post(client, f"/api/home-medications/{line['id']}/decision", body)


def test_the_home_treatment_is_listed_with_its_sources(client: TestClient, stay: tuple[str, str]) -> None:
    patient, encounter = stay
    _line(client, patient, drug="Doliprane 1000", product_code="PARA1GCP", dose="1 cp", frequency="3/j",
          source="gp_letter")
    _line(client, patient, PHYSICIAN, drug="Kardegic 75", dose="1 sachet", frequency="le midi", source="pharmacy")
    login(client, NURSE)
    listed = client.get(f"/api/patients/{patient}/home-medications").json()
    assert [(line["drug"], line["source"], line["decision"]) for line in listed] == [
        ("Doliprane 1000", "gp_letter", None), ("Kardegic 75", "pharmacy", None)]
    assert listed[0]["product_name"] == "Paracétamol 1 g comprimé" and listed[0]["encounter_id"] == encounter
    refused = _post(client, f"/api/patients/{patient}/home-medications", {"drug": "X", "source": "rumour"})
    assert refused.status_code == 422 and refused.json()["rule"] == "UnknownSource"
    unknown = _post(client, f"/api/patients/{patient}/home-medications",
                    {"drug": "X", "product_code": "NOPE", "source": "patient"})
    assert unknown.status_code == 422 and unknown.json()["rule"] == "UnknownProduct"
    login(client, PHARMACIST)  # not in this unit's care team: the door answers as for no patient
    assert client.get(f"/api/patients/{patient}/home-medications").status_code == 404


def test_continue_signs_an_order_through_the_checks(client: TestClient, stay: tuple[str, str],
                                                     uow_factory: UowFactory) -> None:
    patient, _ = stay
    line = _line(client, patient, drug="Doliprane 1000", product_code="PARA1GCP", dose="1 g", frequency="3/j")
    decided = _decide(client, line, decision="continue", order=PARACETAMOL)
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert body["decision"] == "continue" and body["decided_by"].startswith("Claire")
    [order] = _orders(uow_factory, patient)
    assert str(order.id) == body["order_id"] and order.product_code == "PARA1GCP"
    again = _decide(client, line, decision="stop", reason="doublon")
    assert again.status_code == 409


def test_a_continuation_blocked_by_the_checks_saves_neither_order_nor_decision(
        client: TestClient, stay: tuple[str, str], uow_factory: UowFactory) -> None:
    patient, _ = stay
    _allergic_to_penicillins(client, patient)
    line = _line(client, patient, drug="Clamoxyl 1 g", product_code="AMOX1GCP")
    refused = _decide(client, line, decision="continue", order=AMOXICILLIN)
    assert refused.status_code == 422 and refused.json()["alerts"][0]["kind"] == "allergy"
    assert _orders(uow_factory, patient) == []
    login(client, NURSE)
    [kept] = client.get(f"/api/patients/{patient}/home-medications").json()
    assert kept["decision"] is None
    # its legitimate twin: another patient without the allergy continues it
    other, _ = _admit(client, bed="LENS-MED-MIN-522-1", name="Caron")
    _measure(client, other)
    twin = _line(client, other, drug="Clamoxyl 1 g", product_code="AMOX1GCP")
    assert _decide(client, twin, decision="continue", order=AMOXICILLIN).status_code == 200


def test_continuing_is_the_same_substance_and_substituting_another(client: TestClient, stay: tuple[str, str]) -> None:
    patient, _ = stay
    line = _line(client, patient, drug="Doliprane 1000", product_code="PARA1GCP")
    wrong = _decide(client, line, decision="continue", order=AMOXICILLIN)
    assert wrong.status_code == 422 and wrong.json()["rule"] == "NotTheSameSubstance"
    same_substance = {**PARACETAMOL, "product_code": "PARA500CP", "dose_value": 1}
    assert _decide(client, line, decision="continue", order=same_substance).status_code == 200
    other = _line(client, patient, drug="Triatec 5 mg")  # free text, not in the formulary as such
    substituted = _decide(client, other, decision="substitute", reason="équivalent au livret", order=RAMIPRIL)
    assert substituted.status_code == 200, substituted.text


def test_stopping_states_its_reason_and_signs_nothing(client: TestClient, stay: tuple[str, str],
                                                      uow_factory: UowFactory) -> None:
    patient, _ = stay
    line = _line(client, patient, drug="Mopral 20")
    for body in ({"decision": "stop"}, {"decision": "stop", "reason": "  "},
                 {"decision": "stop", "reason": "x", "order": PARACETAMOL}, {"decision": "continue"},
                 {"decision": "maybe", "reason": "x"}):
        refused = _decide(client, line, **body)
        assert refused.status_code == 422, (body, refused.text)
    assert _decide(client, line, decision="stop", reason="Pas d'indication au long cours").status_code == 200
    assert _orders(uow_factory, patient) == []
    login(client, NURSE)
    assert _post(client, f"/api/home-medications/{line['id']}/decision",
                 {"decision": "stop", "reason": "x"}).status_code == 403


def test_discharge_changes_compare_the_stay_with_admission(client: TestClient, stay: tuple[str, str],
                                                           uow_factory: UowFactory) -> None:
    patient, encounter = stay
    kept = _line(client, patient, drug="Doliprane 1000", product_code="PARA1GCP")
    stopped = _line(client, patient, drug="Mopral 20", dose="20 mg", frequency="le soir")
    changed = _line(client, patient, drug="Triatec 2,5")
    ended = _line(client, patient, drug="Clamoxyl 1 g", product_code="AMOX1GCP")
    forgotten = _line(client, patient, drug="Levothyrox 50")
    assert _decide(client, kept, decision="continue", order=PARACETAMOL).status_code == 200
    assert _decide(client, stopped, decision="stop", reason="Pas d'indication").status_code == 200
    ramipril = _decide(client, changed, decision="substitute", order={**RAMIPRIL, "dose_value": 2.5}).json()
    amoxicillin = _decide(client, ended, decision="continue", order=AMOXICILLIN).json()
    login(client, PHYSICIAN)
    token = form_token(client)
    assert client.post(f"/api/medication-orders/{amoxicillin['order_id']}/stop", headers={"x-csrf-token": token},
                       json={"reason": "Fin du traitement"}).status_code == 200
    modified = client.post(f"/api/medication-orders/{ramipril['order_id']}/modify", headers={"x-csrf-token": token},
                           json=RAMIPRIL)
    assert modified.status_code == 201, modified.text
    new = _prescribe(client, patient, {"product_code": "ENOX4000", "dose_value": 4000, "dose_unit": "UI",
                                       "route": "SC", "frequency": "times_per_day", "times_per_day": 1})
    assert new.status_code == 201, new.text

    with uow_factory() as uow:
        changes = discharge_changes(uow.session, uuid.UUID(encounter))
    by_line = {str(c.home_medication_id): c for c in changes if c.home_medication_id}
    assert by_line[kept["id"]].change == "continued" and by_line[kept["id"]].dose == "1 g"
    assert (by_line[stopped["id"]].change, by_line[stopped["id"]].reason) == ("stopped", "Pas d'indication")
    assert by_line[changed["id"]].change == "modified" and by_line[changed["id"]].dose == "5 mg"
    assert (by_line[ended["id"]].change, by_line[ended["id"]].reason) == ("stopped", "Fin du traitement")
    assert by_line[forgotten["id"]].change == "not_reconciled"
    [added] = [c for c in changes if c.home_medication_id is None]
    assert added.change == "new" and added.drug.startswith("Énoxaparine 4 000 UI")
    assert (added.dose, added.route, added.frequency, added.times_per_day) == ("4000 UI", "SC", "times_per_day", 1)

    login(client, NURSE)
    listed = client.get(f"/api/encounters/{encounter}/discharge-medications").json()
    assert sorted(c["change"] for c in listed) == ["continued", "modified", "new", "not_reconciled", "stopped",
                                                   "stopped"]
    assert client.get(f"/api/encounters/{uuid.uuid4()}/discharge-medications").status_code == 404


def test_the_reconciliation_page_lists_decides_and_compares(client: TestClient, stay: tuple[str, str]) -> None:
    patient, _ = stay
    login(client, NURSE)
    page = client.get(f"/patients/{patient}/conciliation")
    assert page.status_code == 200 and "home-treatment" in page.text
    added = client.post(f"/patients/{patient}/conciliation", data={
        "drug": "Doliprane 1000", "product_code": "PARA1GCP", "dose": "1 g", "frequency": "3/j", "source": "patient",
        "csrf_token": form_token(client)}, follow_redirects=False)
    assert added.status_code == 303 and "erreur" not in added.headers["location"]
    login(client, PHYSICIAN)
    page = client.get(f"/patients/{patient}/conciliation")
    assert "Doliprane 1000" in page.text and 'class="form decision-form"' in page.text
    line_id = page.text.split('action="/conciliation/')[1].split("/decision")[0]
    decided = client.post(f"/conciliation/{line_id}/decision", data={
        "patient_id": patient, "decision": "continue", "product_code": "PARA1GCP", "dose_value": "1",
        "dose_unit": "g", "route": "PO", "frequency": "times_per_day", "times_per_day": "3",
        "csrf_token": form_token(client)}, follow_redirects=False)
    assert decided.status_code == 303 and "erreur" not in decided.headers["location"], decided.headers
    page = client.get(f"/patients/{patient}/conciliation")
    assert 'class="decision"' in page.text and 'class="change-continued"' in page.text


def test_a_decision_whose_order_needs_a_reason_asks_for_it_in_the_page(client: TestClient, stay: tuple[str, str],
                                                                        uow_factory: UowFactory) -> None:
    patient, _ = stay
    line = _line(client, patient, drug="Doliprane 1000", product_code="PARA1GCP", dose="1 g", frequency="6/j")
    login(client, PHYSICIAN)
    decision = {"patient_id": patient, "decision": "continue", "product_code": "PARA1GCP", "dose_value": "1",
                "dose_unit": "g", "route": "PO", "frequency": "every_hours", "every_hours": "4"}
    asked = client.post(f"/conciliation/{line['id']}/decision", data={**decision, "csrf_token": form_token(client)},
                        follow_redirects=False)
    assert asked.status_code == 409 and 'data-severity="override_required"' in asked.text
    assert f'id="override-{line["id"]}"' in asked.text and _orders(uow_factory, patient) == []
    signed = client.post(f"/conciliation/{line['id']}/decision", follow_redirects=False, data={
        **decision, "override_reason": "Traitement habituel bien toléré", "csrf_token": form_token(client)})
    assert signed.status_code == 303 and "erreur" not in signed.headers["location"]
    [order] = _orders(uow_factory, patient)
    assert order.override_reason == "Traitement habituel bien toléré"


def test_the_prescriber_says_which_orders_go_on_after_discharge(client: TestClient, stay: tuple[str, str],
                                                                uow_factory: UowFactory) -> None:
    """A hospital-only treatment said to stop at discharge leaves the discharge list; a home
    treatment said to stop is listed stopped; the word survives a new version; only physicians of
    the care team say it, and only of an order in force."""
    patient, encounter = stay
    home = _line(client, patient, drug="Doliprane 1 g", dose="1 g", frequency="3 fois par jour")
    continued = _decide(client, home, decision="continue", order=PARACETAMOL).json()
    inpatient = _prescribe(client, patient, {"product_code": "ENOX4000", "dose_value": 4000, "dose_unit": "UI",
                                             "route": "SC", "frequency": "times_per_day", "times_per_day": 1}).json()
    login(client, PHYSICIAN)
    token = form_token(client)

    def say(order: str, decision: str | None, who: str = PHYSICIAN):  # type: ignore[no-untyped-def]
        login(client, who)
        return client.post(f"/api/medication-orders/{order}/at-discharge", headers={"x-csrf-token": form_token(client)},
                           json={"at_discharge": decision})

    assert say(inpatient["id"], "stop", NURSE).status_code == 403
    assert say(inpatient["id"], "later").status_code == 422
    said = say(inpatient["id"], "stop")
    assert said.status_code == 200 and said.json()["at_discharge"] == "stop"
    assert say(continued["order_id"], "stop").json()["at_discharge"] == "stop"
    with uow_factory() as uow:
        changes = discharge_changes(uow.session, uuid.UUID(encounter))
    assert [(c.change, c.reason) for c in changes] == [("stopped", "arrêté à la sortie")]  # enoxaparin left out

    modified = client.post(f"/api/medication-orders/{continued['order_id']}/modify", headers={"x-csrf-token": token},
                           json={**PARACETAMOL, "times_per_day": 4})
    assert modified.status_code == 201 and modified.json()["at_discharge"] == "stop"  # kept on the new version
    assert say(modified.json()["id"], "continue").json()["at_discharge"] == "continue"
    assert say(inpatient["id"], None).json()["at_discharge"] is None  # withdrawn: counted as given at the end
    with uow_factory() as uow:
        changes = discharge_changes(uow.session, uuid.UUID(encounter))
    assert sorted(c.change for c in changes) == ["modified", "new"]
    assert client.post(f"/api/medication-orders/{inpatient['id']}/stop", headers={"x-csrf-token": form_token(client)},
                       json={"reason": "fin"}).status_code == 200
    assert say(inpatient["id"], "continue").status_code == 409  # no longer in force


def test_the_word_at_discharge_is_given_from_the_prescriptions_page(client: TestClient,
                                                                    stay: tuple[str, str]) -> None:
    from naho.platform import i18n

    patient, _ = stay
    order = _prescribe(client, patient, PARACETAMOL).json()
    page = f"/patients/{patient}/prescriptions"
    said = client.post(f"/prescriptions/{order['id']}/sortie", data={
        "at_discharge": "continue", "patient_id": patient, "csrf_token": form_token(client, page)},
        follow_redirects=False)
    assert said.status_code == 303
    assert i18n._("Continue after discharge") in client.get(page).text
    login(client, NURSE)
    refused = client.post(f"/prescriptions/{order['id']}/sortie", data={
        "at_discharge": "stop", "patient_id": patient, "csrf_token": form_token(client, page)},
        follow_redirects=False)
    assert refused.status_code == 403
