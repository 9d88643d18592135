"""FHIR writes as a client system uses them: Patient create / update (duplicate stop, conditional
create), clinical entries through the care-team door, and transaction / batch Bundles posted by a
system token; every refusal is an OperationOutcome with its HTTP status, and a failed transaction
leaves nothing behind."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import func, select

from naho.identity.fhir import IPP_SYSTEM
from naho.identity.models import BlockingKey, IdentityEvent, Patient
from naho.identity.service import duplicate_worklist
from naho.platform.audit import AuditEvent
from naho.platform.clock import FixedClock
from naho.platform.events import EventBus
from naho.platform.security.actor import SYSTEM_ACTOR, Actor
from naho.platform.security.rules import Role
from naho.platform.security.service import create_account, create_api_token
from naho.platform.uow import UnitOfWork
from naho.record.models import Allergy, Condition, Observation
from tests.personas import CLERK, NURSE, PORTER, form_token, login

FHIR = "/fhir/R4"
FHIR_JSON = "application/fhir+json"
UNIT, BED = "LENS-MED-MIN", "LENS-MED-MIN-521-1"  # the demo nurse works in this unit
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"


def _patient_resource(family: str = "Lefèvre", given: tuple[str, ...] = ("Jeanne", "Marie"),
                      birth: str = "1948-03-12", gender: str = "female", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"use": "official", "family": family, "given": list(given)}],
            "gender": gender, "birthDate": birth, **extra}


def _condition(subject: str, code: str = "I10", display: str = "Hypertension essentielle") -> dict[str, Any]:
    return {"resourceType": "Condition", "subject": {"reference": subject},
            "code": {"coding": [{"system": ICD10, "code": code, "display": display}]},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": "active"}]}}


def _allergy(patient: str) -> dict[str, Any]:
    return {"resourceType": "AllergyIntolerance", "patient": {"reference": patient}, "type": "allergy",
            "criticality": "high", "code": {"coding": [{"system": "http://www.whocc.no/atc", "code": "J01C",
                                                        "display": "Pénicillines"}]},
            "reaction": [{"manifestation": [{"text": "Urticaire"}]}]}


def _heart_rate(subject: str, value: float = 72, unit: str = "/min") -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "subject": {"reference": subject},
            "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
            "effectiveDateTime": "2026-11-25T08:00:00+01:00",
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}


def _send(client: TestClient, method: str, path: str, body: Any, **headers: str):  # type: ignore[no-untyped-def]
    if "authorization" not in client.headers:
        headers["x-csrf-token"] = form_token(client)
    return client.request(method, FHIR + path, json=body, headers={"content-type": FHIR_JSON, **headers})


def _outcome(response, status: int) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The response is an OperationOutcome with this status: (issue code, diagnostics)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == FHIR_JSON
    body = response.json()
    get_fhir_model_class("OperationOutcome").model_validate(body)
    return body["issue"][0]["code"], body["issue"][0]["diagnostics"]


def _count(app, table) -> int:  # type: ignore[no-untyped-def]
    with app.state.container.session_factory() as s:
        return int(s.execute(select(func.count()).select_from(table)).scalar_one())


def _actions(app, action: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    with app.state.container.session_factory() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _token(app, clock: FixedClock, role: Role = Role.INTERFACE, username: str = "reprise-dpi") -> str:  # type: ignore[no-untyped-def]
    container = app.state.container
    with container.session_factory() as s:
        create_account(s, username=username, display_name="Reprise DPI", roles={role}, password=None,
                       now_=clock.now())
        s.commit()
    return create_api_token(UnitOfWork(container.session_factory, clock, EventBus()), SYSTEM_ACTOR,
                            username=username, name="tests")


@pytest.fixture
def system(app, clock: FixedClock):  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        client.headers["authorization"] = f"Bearer {_token(app, clock)}"
        yield client


def _create(client: TestClient, **traits: Any) -> dict[str, Any]:
    response = _send(client, "POST", "/Patient", _patient_resource(**traits))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _admit(client: TestClient, patient_id: str) -> None:
    response = client.post("/api/encounters", json={
        "patient_id": patient_id, "establishment_code": "LENS", "encounter_class": "inpatient", "unit_code": UNIT,
        "bed_code": BED}, headers={"x-csrf-token": form_token(client)})
    assert response.status_code == 201, response.text


# --- Patient ------------------------------------------------------------------------------------------------

def test_a_clerk_registers_a_patient_and_gets_its_location_and_representation(client: TestClient) -> None:
    login(client, CLERK)
    response = _send(client, "POST", "/Patient", _patient_resource(
        name=[{"use": "official", "family": "Lefèvre", "given": ["Jeanne", "Marie"]},
              {"use": "usual", "family": "Martin", "given": ["Jeanne"]}],
        telecom=[{"system": "phone", "value": "0321000000"}],
        address=[{"use": "home", "line": ["3 rue des Fleurs"], "postalCode": "62300", "city": "Lens"}]))
    assert response.status_code == 201, response.text
    body = response.json()
    get_fhir_model_class("Patient").model_validate(body)
    assert response.headers["location"] == f"http://testserver{FHIR}/Patient/{body['id']}"
    assert body["name"][0] == {"use": "official", "family": "LEFEVRE", "given": ["JEANNE", "MARIE"]}
    assert body["name"][1]["family"] == "MARTIN"
    assert body["telecom"] == [{"system": "phone", "value": "0321000000", "use": "home"}]
    assert body["address"][0]["city"] == "Lens"
    assert [i["system"] for i in body["identifier"]] == [IPP_SYSTEM]
    read = client.get(FHIR + f"/Patient/{body['id']}").json()
    assert read == body
    minimal = _send(client, "POST", "/Patient", _patient_resource(family="Durand", given=("Paul",), gender="male",
                                                                  birth="1990-01-05"), prefer="return=minimal")
    assert minimal.status_code == 201 and minimal.content == b""
    assert minimal.headers["location"].startswith(f"http://testserver{FHIR}/Patient/")
    assert len(_actions(client.app, "patient:identity:create")) == 2  # type: ignore[attr-defined]


def test_a_possible_duplicate_is_refused_with_409_unless_the_client_says_why(client: TestClient) -> None:
    login(client, CLERK)
    first = _create(client)
    code, why = _outcome(_send(client, "POST", "/Patient", _patient_resource(given=("Jeanne",))), 409)
    ipp = first["identifier"][0]["value"]
    assert code == "duplicate" and f"IPP {ipp}" in why and "X-Naho-Not-Duplicate" in why
    twin = _send(client, "POST", "/Patient", _patient_resource(given=("Jeanne",)),
                 **{"x-naho-not-duplicate": "s%C5%93ur jumelle, vue avec sa carte d'identit%C3%A9"})
    assert twin.status_code == 201 and twin.json()["id"] != first["id"]
    with client.app.state.container.session_factory() as s:  # type: ignore[attr-defined]
        event = s.scalars(select(IdentityEvent).where(IdentityEvent.patient_id == uuid.UUID(twin.json()["id"]))).one()
        assert event.details["reason"] == "sœur jumelle, vue avec sa carte d'identité"


def test_a_conditional_create_finds_the_patient_by_its_ipp(client: TestClient) -> None:
    login(client, CLERK)
    first = _create(client)
    ipp = first["identifier"][0]["value"]
    again = _send(client, "POST", "/Patient", _patient_resource(),
                  **{"if-none-exist": f"identifier={IPP_SYSTEM}|{ipp}"})
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert again.headers["location"].endswith(f"/Patient/{first['id']}")
    new = _send(client, "POST", "/Patient", _patient_resource(family="Nouveau", given=("Marc",), gender="male"),
                **{"if-none-exist": f"identifier={IPP_SYSTEM}|99999999"})
    assert new.status_code == 201
    assert _outcome(_send(client, "POST", "/Patient", _patient_resource(), **{"if-none-exist": "family=x"}),
                    400)[1].startswith("If-None-Exist takes one criterion")


def test_an_update_corrects_traits_and_contact(client: TestClient) -> None:
    login(client, CLERK)
    jeanne = _create(client)
    changed = {**jeanne, "name": [jeanne["name"][0], {"use": "usual", "family": "Martin", "given": ["Jeanne"]}],
               "telecom": [{"system": "email", "value": "jeanne@example.org"}]}
    response = _send(client, "PUT", f"/Patient/{jeanne['id']}", changed, **{"x-naho-reason": "nom marital"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"][1]["family"] == "MARTIN" and body["telecom"][0]["value"] == "jeanne@example.org"
    assert _actions(client.app, "patient:identity:update")[-1].reason == "nom marital"  # type: ignore[attr-defined]
    assert "must be the one in the URL" in _outcome(
        _send(client, "PUT", f"/Patient/{uuid.uuid4()}", changed), 400)[1]
    other = str(uuid.uuid4())
    assert _outcome(_send(client, "PUT", f"/Patient/{other}", {**changed, "id": other}), 404)[0] == "not-found"


def test_invalid_resources_are_400_operation_outcomes_that_say_where(client: TestClient) -> None:
    login(client, CLERK)
    cases = [
        ({"resourceType": "Patient", "birthDate": "12/03/1948"}, "invalid Patient resource"),
        ({"resourceType": "Observation"}, "must be a Patient resource"),
        (_patient_resource(gender="other"), "male, female or unknown"),
        (_patient_resource(birth="1948"), "full date"),
        ({"resourceType": "Patient", "gender": "female", "birthDate": "1948-03-12"}, "official name"),
        (_patient_resource(identifier=[{"system": IPP_SYSTEM, "value": "00001234"}]), "IPP is assigned by naho"),
        (_patient_resource(family="1234"), "at least one letter"),
    ]
    for body, reason in cases:
        code, why = _outcome(_send(client, "POST", "/Patient", body), 400)
        assert code == "invalid" and reason in why, (body, why)
    bad = client.post(FHIR + "/Patient", content=b"{not json", headers={
        "content-type": FHIR_JSON, "x-csrf-token": form_token(client)})
    assert "not JSON" in _outcome(bad, 400)[1]
    xml = client.post(FHIR + "/Patient", content=b"<Patient/>", headers={
        "content-type": "application/fhir+xml", "x-csrf-token": form_token(client)})
    assert _outcome(xml, 415)[0] == "not-supported"
    assert _outcome(_send(client, "POST", "/Medication", {"resourceType": "Medication"}), 400)[0] == "not-supported"


# --- clinical entries ---------------------------------------------------------------------------------------

def test_a_nurse_records_conditions_allergies_and_vital_signs_of_her_patient(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    jeanne = _create(client)
    _admit(client, jeanne["id"])
    subject = f"Patient/{jeanne['id']}"
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        condition = _send(nurse, "POST", "/Condition", _condition(subject, code="E119", display="Diabète de type 2"))
        assert condition.status_code == 201, condition.text
        assert condition.headers["location"].endswith(f"/Condition/{condition.json()['id']}")
        stored = condition.json()  # as stored: the code in its normal form, the author
        assert stored["code"]["coding"][0]["code"] == "E11.9" and stored["recorder"]["display"].startswith("Julien")
        assert nurse.get(FHIR + f"/Condition/{stored['id']}").json() == stored
        allergy = _send(nurse, "POST", "/AllergyIntolerance", _allergy(subject), prefer="return=minimal")
        assert allergy.status_code == 201 and allergy.content == b""
        vitals = _send(nurse, "POST", "/Observation", _heart_rate(subject))
        assert vitals.status_code == 201 and vitals.json()["valueQuantity"]["value"] == 72
        panel = _send(nurse, "POST", "/Observation", {
            "resourceType": "Observation", "status": "final", "subject": {"reference": subject},
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "effectiveDateTime": "2026-11-25T08:00:00Z",
            "component": [{"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                           "valueQuantity": {"value": 135, "code": "mm[Hg]"}},
                          {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                           "valueQuantity": {"value": 82, "code": "mm[Hg]"}}]})
        assert panel.status_code == 201, panel.text
        # Domain rules answer as OperationOutcomes: implausible value, wrong unit, bad code.
        assert "outside" in _outcome(_send(nurse, "POST", "/Observation", _heart_rate(subject, 900)), 409)[1]
        assert "recorded in /min" in _outcome(_send(nurse, "POST", "/Observation",
                                                    _heart_rate(subject, 72, "/s")), 400)[1]
        assert "not an ICD-10 code" in _outcome(_send(nurse, "POST", "/Condition", _condition(subject, "??")), 409)[1]
    with app.state.container.session_factory() as s:
        row = s.scalars(select(Condition).where(Condition.patient_id == uuid.UUID(jeanne["id"]))).one()
        assert (row.icd10, row.label, row.recorded_by) == ("E11.9", "Diabète de type 2", "Julien DUPONT (infirmier)")
        allergy_row = s.scalars(select(Allergy)).one()
        assert (allergy_row.substance_code, allergy_row.criticality, allergy_row.reaction) == (
            "ATC:J01C", "high", "Urticaire")
        assert sorted(o.loinc for o in s.scalars(select(Observation))) == ["8462-4", "8480-6", "8867-4"]
    assert len(_actions(app, "patient:condition:create")) == 1  # through the door, audited


def test_clinical_writes_are_refused_outside_the_care_team(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    jeanne = _create(client)  # not admitted: nobody's care team
    subject = f"Patient/{jeanne['id']}"
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        code, why = _outcome(_send(nurse, "POST", "/Condition", _condition(subject)), 404)
        assert (code, why) == ("not-found", f"Patient/{jeanne['id']} is not known")
        unknown = uuid.uuid4()
        assert _outcome(_send(nurse, "POST", "/Observation", _heart_rate(f"Patient/{unknown}")),
                        404)[1] == f"Patient/{unknown} is not known"
        assert "must reference a Patient" in _outcome(
            _send(nurse, "POST", "/Condition", _condition("Practitioner/1")), 400)[1]
    with TestClient(app) as porter:
        login(porter, PORTER)
        assert _outcome(_send(porter, "POST", "/Condition", _condition(subject)), 403)[0] == "forbidden"
        assert _outcome(_send(porter, "POST", "/Patient", _patient_resource()), 403)[0] == "forbidden"
    # The clerk registers patients but writes no clinical content.
    assert _outcome(_send(client, "POST", "/AllergyIntolerance", _allergy(subject)), 403)[0] == "forbidden"
    with TestClient(app) as anonymous:
        response = anonymous.post(FHIR + "/Condition", json=_condition(subject), headers={
            "content-type": FHIR_JSON, "authorization": "Bearer naho_not-a-token"})
        assert _outcome(response, 401)[0] == "login"
        # Without any credential: authenticate first (401), whatever the CSRF check would say.
        response = anonymous.post(FHIR + "/Condition", json=_condition(subject), headers={"content-type": FHIR_JSON})
        assert _outcome(response, 401)[0] == "login" and response.headers["www-authenticate"] == "Bearer"
    assert _count(app, Condition) == 0 and _count(app, Allergy) == 0 and _count(app, Observation) == 0
    assert len(_actions(app, "patient:record:denied")) == 2  # both refusals, known patient or not


# --- Bundles ------------------------------------------------------------------------------------------------

def _legacy_bundle(kind: str = "transaction", patients: int = 2) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    for n in range(patients):
        url = f"urn:uuid:{uuid.uuid4()}"
        entries.append({"fullUrl": url, "resource": _patient_resource(family=f"Ancien-{'ABCDEFGH'[n]}",
                                                                      given=("Louise",)),
                        "request": {"method": "POST", "url": "Patient"}})
        entries += [{"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}
                    for resource in (_condition(url), _allergy(url), _heart_rate(url))]
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def test_a_transaction_bundle_loads_a_legacy_record_with_one_audit_event(system: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    before = len(_actions(app, "patient:record:import"))
    response = _send(system, "POST", "", _legacy_bundle())
    assert response.status_code == 200, response.text
    body = response.json()
    get_fhir_model_class("Bundle").model_validate(body)
    assert body["type"] == "transaction-response"
    statuses = [(e["response"]["status"], e["response"]["location"].split("/")[0]) for e in body["entry"]]
    assert statuses == [("201 Created", k) for k in ("Patient", "Condition", "AllergyIntolerance",
                                                      "Observation")] * 2
    patient_ids = [e["response"]["location"].split("/")[1] for e in body["entry"][::4]]
    with app.state.container.session_factory() as s:
        rows = {str(p.id): p for p in s.scalars(select(Patient))}
        assert set(patient_ids) <= set(rows) and rows[patient_ids[0]].birth_name == "ANCIEN-A"
        assert rows[patient_ids[0]].status == "provisional" and rows[patient_ids[0]].ipp.isdigit()
        condition = s.scalars(select(Condition).where(Condition.patient_id == uuid.UUID(patient_ids[1]))).one()
        assert condition.icd10 == "I10" and condition.recorded_by == "Reprise DPI (reprise-dpi)"
        assert s.scalars(select(IdentityEvent.kind).where(IdentityEvent.patient_id == uuid.UUID(patient_ids[0]))
                         ).all() == ["imported"]
        assert s.execute(select(func.count()).select_from(BlockingKey)
                         .where(BlockingKey.patient_id == uuid.UUID(patient_ids[0]))).scalar_one() > 0
    events = _actions(app, "patient:record:import")
    assert len(events) == before + 1  # one event for the bundle, not one per resource
    assert events[-1].details["written"] == {"Patient": 2, "Condition": 2, "AllergyIntolerance": 2,
                                             "Observation": 2}
    assert sorted(events[-1].details["patients"]) == sorted(patient_ids)


def test_imported_identities_that_may_be_known_patients_reach_the_duplicate_worklist(
        system: TestClient, app, clock: FixedClock) -> None:  # type: ignore[no-untyped-def]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _patient_resource(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": _patient_resource(given=("Jeanne",)), "request": {"method": "POST", "url": "Patient"}}]}
    assert _send(system, "POST", "", bundle).status_code == 200  # no duplicate stop in bulk
    vigilance = Actor(uuid.uuid4(), "iv", "IV", frozenset({Role.IDENTITY_VIGILANCE}))
    pairs = duplicate_worklist(UnitOfWork(app.state.container.session_factory, clock, EventBus()), vigilance)
    assert [(a.birth_name, b.patient.birth_name) for a, b in pairs] == [("LEFEVRE", "LEFEVRE")]


def test_a_transaction_whose_third_entry_is_invalid_writes_nothing(system: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    counts = [_count(app, t) for t in (Patient, Condition, Allergy, Observation, AuditEvent)]
    bundle = _legacy_bundle()
    del bundle["entry"][2]["resource"]["patient"]  # the third entry: AllergyIntolerance.patient is required
    code, why = _outcome(_send(system, "POST", "", bundle), 400)
    assert code == "invalid" and why.startswith("Bundle.entry[2]: invalid AllergyIntolerance resource")
    bundle = _legacy_bundle()
    bundle["entry"][5]["resource"]["subject"]["reference"] = f"urn:uuid:{uuid.uuid4()}"
    assert "names no Patient of this Bundle" in _outcome(_send(system, "POST", "", bundle), 400)[1]
    bundle = _legacy_bundle()
    bundle["entry"][7]["resource"]["valueQuantity"]["value"] = 900  # implausible: a rule, late in the bundle
    assert _outcome(_send(system, "POST", "", bundle), 409)[1].startswith("Bundle.entry[7]: Observation")
    bundle = _legacy_bundle()
    bundle["entry"][1]["resource"]["subject"]["reference"] = f"Patient/{uuid.uuid4()}"
    assert _outcome(_send(system, "POST", "", bundle), 404)[0] == "not-found"
    assert [_count(app, t) for t in (Patient, Condition, Allergy, Observation, AuditEvent)] == counts


def test_a_batch_writes_each_valid_entry_and_answers_each_refusal(system: TestClient, app, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    known = _create(client)
    subject = f"Patient/{known['id']}"
    bad = _heart_rate(subject)
    bad["valueQuantity"]["value"] = 900
    entries = [_condition(subject), bad, _allergy(subject), _condition(f"urn:uuid:{uuid.uuid4()}")]
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": r, "request": {"method": "POST", "url": r["resourceType"]}} for r in entries]}
    response = _send(system, "POST", "", bundle)
    assert response.status_code == 200, response.text
    answered = response.json()["entry"]
    assert [e["response"]["status"] for e in answered] == ["201 Created", "409 Conflict",
                                                           "201 Created", "400 Bad Request"]
    assert "outside" in answered[1]["response"]["outcome"]["issue"][0]["diagnostics"]
    assert _count(app, Condition) == 1 and _count(app, Allergy) == 1 and _count(app, Observation) == 0


def test_a_bundle_conditional_create_reuses_the_patient_found_by_ipp(system: TestClient, client: TestClient,
                                                                    app) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    known = _create(client)
    ipp = known["identifier"][0]["value"]
    bundle = _legacy_bundle(patients=1)
    bundle["entry"][0]["request"]["ifNoneExist"] = f"identifier={IPP_SYSTEM}|{ipp}"
    answered = _send(system, "POST", "", bundle).json()["entry"]
    assert answered[0]["response"] == {"status": "200 OK", "location": f"Patient/{known['id']}"}
    with app.state.container.session_factory() as s:
        assert s.scalars(select(Condition.patient_id)).all() == [uuid.UUID(known["id"])]
    assert _count(app, Patient) == 1


def test_only_a_system_token_posts_bundles(client: TestClient, app, clock: FixedClock) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    assert _outcome(_send(client, "POST", "", _legacy_bundle()), 403)[0] == "forbidden"
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        assert _outcome(_send(nurse, "POST", "", _legacy_bundle()), 403)[0] == "forbidden"
    with TestClient(app) as admin_token:  # a person's token, not a system's
        admin_token.headers["authorization"] = f"Bearer {_token(app, clock, Role.IT_ADMIN, 'admin-script')}"
        assert _outcome(_send(admin_token, "POST", "", _legacy_bundle()), 403)[0] == "forbidden"
    with TestClient(app) as anonymous:
        assert _outcome(anonymous.post(FHIR, json=_legacy_bundle(), headers={
            "content-type": FHIR_JSON, "authorization": "Bearer naho_not-a-token"}), 401)[0] == "login"
    assert _count(app, Patient) == 0


def test_a_bundle_must_be_a_transaction_or_a_batch_of_creates(system: TestClient) -> None:
    history = {"resourceType": "Bundle", "type": "history", "entry": []}
    assert "transaction or batch" in _outcome(_send(system, "POST", "", history), 400)[1]
    delete = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": _patient_resource(), "request": {"method": "DELETE", "url": "Patient/1"}}]}
    assert "not supported in a Bundle" in _outcome(_send(system, "POST", "", delete), 400)[1]
    assert "takes a Bundle" in _outcome(_send(system, "POST", "", _patient_resource()), 400)[1]
    no_url = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": _patient_resource(), "request": {"method": "POST"}}]}
    assert "Bundle.entry[0].request needs a method and a url" in _outcome(_send(system, "POST", "", no_url), 400)[1]
    bad_type = {"resourceType": "Bundle", "type": "transaction", "timestamp": "yesterday", "entry": []}
    assert _outcome(_send(system, "POST", "", bad_type), 400)[1] == "invalid Bundle"
    twice = _legacy_bundle(patients=2)
    twice["entry"][4]["fullUrl"] = twice["entry"][0]["fullUrl"]
    assert "names two entries" in _outcome(_send(system, "POST", "", twice), 400)[1]


def test_the_capability_statement_advertises_the_writes(client: TestClient) -> None:
    statement = client.get(FHIR + "/metadata").json()
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    codes = {kind: {i["code"] for i in resources[kind]["interaction"]} for kind in resources}
    assert {"create", "update"} <= codes["Patient"] and resources["Patient"]["conditionalCreate"] is True
    assert all("create" in codes[k] for k in ("Condition", "AllergyIntolerance", "Observation"))
    assert "create" not in codes["Encounter"]
    assert {i["code"] for i in statement["rest"][0]["interaction"]} == {"transaction", "batch"}


def test_a_load_keeps_the_legacy_identifiers_so_a_rerun_finds_its_patients(system: TestClient, client: TestClient,
                                                                           app) -> None:  # type: ignore[no-untyped-def]
    legacy = "https://dpi-ancien.example/ipp"

    def bundle(value: str, condition: bool = True) -> dict[str, Any]:
        loaded = _legacy_bundle(patients=1)
        loaded["entry"][0]["resource"]["identifier"] = [{"system": legacy, "value": value}]
        loaded["entry"][0]["request"]["ifNoneExist"] = f"identifier={legacy}|{value}"
        if not condition:
            del loaded["entry"][0]["request"]["ifNoneExist"]
        return loaded

    first = _send(system, "POST", "", bundle("A-1")).json()["entry"]
    again = _send(system, "POST", "", bundle("A-1")).json()["entry"]
    assert first[0]["response"]["status"] == "201 Created"
    assert again[0]["response"] == {"status": "200 OK", "location": first[0]["response"]["location"]}
    assert _count(app, Patient) == 1 and _count(app, Condition) == 2  # the rerun added its entries to her
    # The same legacy identifier for somebody new: refused, the load and naho disagree on who is who.
    code, why = _outcome(_send(system, "POST", "", bundle("A-1", condition=False)), 409)
    assert code == "conflict" and "already names another patient" in why and _count(app, Patient) == 1
    login(client, CLERK)
    found = _send(client, "POST", "/Patient", _patient_resource(family="Autre"),
                  **{"if-none-exist": f"identifier={legacy}|A-1"})
    assert found.status_code == 200 and f"Patient/{found.json()['id']}" == first[0]["response"]["location"]
