"""The FHIR R4 facade as a client system uses it: every answer is a valid R4 resource (checked by
a round trip through fhir.resources), patient data only through the one door, errors as
OperationOutcome with the HTTP status they belong to."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class

from naho.identity.fhir import IPP_SYSTEM
from naho.identity.models import Patient
from naho.platform.clock import FixedClock
from naho.platform.events import EventBus
from naho.platform.security.actor import SYSTEM_ACTOR
from naho.platform.security.rules import Role
from naho.platform.security.service import create_account, create_api_token
from naho.platform.uow import UnitOfWork
from naho.record.fhir import NDA_SYSTEM
from naho.sites.fhir import BED_SYSTEM, FINESS_SYSTEM, UNIT_SYSTEM
from naho.staff.fhir import IDNPS_SYSTEM, RPPS_SYSTEM
from tests.personas import CLERK, NURSE, form_token, login

FHIR = "/fhir/R4"
FHIR_JSON = "application/fhir+json"
INS_OIDS = {"urn:oid:1.2.250.1.213.1.4.8", "urn:oid:1.2.250.1.213.1.4.9", "urn:oid:1.2.250.1.213.1.4.10",
            "urn:oid:1.2.250.1.213.1.4.11"}
UNIT = "LENS-MED-MIN"  # the demo nurse works here
BED = "LENS-MED-MIN-521-1"
JEANNE = {"birth_name": "Lefèvre", "first_names": "Jeanne Marie", "sex": "F", "birth_date": "1948-03-12",
          "birth_place": "62498"}


# --- helpers ------------------------------------------------------------------------------------------------

def _post(client: TestClient, path: str, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    return client.post(path, json=body, headers={"x-csrf-token": form_token(client)})


def _patient(client: TestClient, **traits: str) -> dict[str, Any]:
    response = _post(client, "/api/patients", {**JEANNE, **traits})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _admit(client: TestClient, patient_id: str, unit: str = UNIT, bed: str | None = BED,
           encounter_class: str = "inpatient") -> dict[str, Any]:
    response = _post(client, "/api/encounters", {"patient_id": patient_id, "establishment_code": "LENS",
                                                 "encounter_class": encounter_class, "unit_code": unit,
                                                 "bed_code": bed, "expected_end_at": "2026-11-30T10:00:00Z"})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _valid(body: dict[str, Any]) -> Any:
    """Parse with the fhir.resources model of its type; dumping it again gives the same JSON."""
    model = get_fhir_model_class(body["resourceType"]).model_validate(body)
    assert model.model_dump(mode="json", exclude_none=True) == body
    return model


def _get(client: TestClient, path: str, expect: int = 200, **params: str) -> dict[str, Any]:
    response = client.get(FHIR + path, params=params, headers={"accept": FHIR_JSON})
    assert response.status_code == expect, response.text
    assert response.headers["content-type"] == FHIR_JSON
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    _valid(body)
    if expect >= 400:
        assert body["resourceType"] == "OperationOutcome"
    return body


def _entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    return [e["resource"] for e in bundle.get("entry", [])]


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == relation), None)


def _identifier(resource: dict[str, Any], system: str) -> str | None:
    return next((i["value"] for i in resource.get("identifier", []) if i["system"] == system), None)


def _issue(outcome: dict[str, Any]) -> tuple[str, str]:
    return outcome["issue"][0]["code"], outcome["issue"][0]["diagnostics"]


# --- CapabilityStatement and refusals -----------------------------------------------------------------------

def test_the_capability_statement_is_public_and_matches_what_is_served(client: TestClient) -> None:
    statement = _get(client, "/metadata")
    assert statement["resourceType"] == "CapabilityStatement" and statement["fhirVersion"] == "4.0.1"
    assert statement["implementation"]["url"] == "http://testserver/fhir/R4"
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(resources) == {"Patient", "Encounter", "Organization", "Location", "Practitioner", "Condition",
                              "AllergyIntolerance", "Observation", "DocumentReference", "Binary", "AuditEvent",
                              "Medication", "MedicationRequest", "MedicationDispense", "MedicationAdministration",
                              "Schedule", "Slot", "Appointment", "DiagnosticReport", "ServiceRequest", "Specimen",
                              "ImagingStudy"}
    assert {p["name"] for p in resources["Patient"]["searchParam"]} == {
        "identifier", "family", "given", "name", "birthdate", "gender"}
    assert all({"read", "search-type"} <= {i["code"] for i in r["interaction"]} for r in resources.values()
               if r["type"] != "Binary")


def test_an_anonymous_caller_gets_a_401_operation_outcome(client: TestClient) -> None:
    for path in ("/Patient?family=lefevre", f"/Patient/{uuid.uuid4()}", "/Organization", "/Observation"):
        response = client.get(FHIR + path)
        assert response.status_code == 401, path
        assert response.headers["content-type"] == FHIR_JSON
        assert response.headers["www-authenticate"] == "Bearer"
        assert _issue(_valid(response.json()).model_dump(mode="json"))[0] == "login"


def test_bad_requests_are_400_operation_outcomes_that_say_why(client: TestClient) -> None:
    login(client, CLERK)
    cases = {
        "/Flag": "'Flag' is not served",
        f"/Flag/{uuid.uuid4()}": "'Flag' is not served",
        "/Patient?colour=blue": "unknown search parameter 'colour'",
        "/Patient?family:exact=DUPONT": "modifier :exact",
        "/Patient?birthdate=yesterday": "is not a FHIR date",
        "/Patient?family=a&family=b": "more than once",
        "/Patient": "needs identifier, family, name or a birthdate",
        "/Patient?gender=female": "needs identifier",
        "/Patient?family=x&gender=woman": "'woman' is not one of",
        "/Patient?family=x&_count=many": "_count must be an integer",
        "/Patient?family=x&_offset=990&_count=20": "paging stops at 1000",
        f"/Patient/{uuid.uuid4()}?_elements=name": "a read accepts only _format and _pretty",
        "/Encounter?status=finished": "needs patient (or subject) or identifier",
        f"/Encounter?patient=Patient/{uuid.uuid4()}&status=done": "status='done'",
        "/Encounter?patient=Practitioner/1": "must reference a Patient",
        "/Location?status=closed": "'closed' is not one of",
    }
    for path, reason in cases.items():
        response = client.get(FHIR + path, headers={"accept": FHIR_JSON})
        assert response.status_code == 400, (path, response.text)
        code, diagnostics = _issue(_valid(response.json()).model_dump(mode="json"))
        assert reason in diagnostics, (path, diagnostics)
        assert code in ("invalid", "not-supported")


def test_unknown_paths_and_methods_and_formats_answer_operation_outcomes(client: TestClient) -> None:
    login(client, CLERK)
    assert _issue(_get(client, f"/Patient/{uuid.uuid4()}/_history", expect=404))[0] == "not-found"
    refused = client.delete(FHIR + f"/Patient/{uuid.uuid4()}", headers={"x-csrf-token": form_token(client)})
    assert refused.status_code == 405 and refused.headers["content-type"] == FHIR_JSON
    xml = client.get(FHIR + "/metadata", headers={"accept": "application/fhir+xml"})
    assert xml.status_code == 406 and _issue(xml.json())[0] == "not-supported"
    assert client.get(FHIR + "/metadata", params={"_format": "xml"}).status_code == 406
    assert client.get(FHIR + "/metadata", params={"_format": "json"}).status_code == 200
    assert client.get(FHIR + "/metadata", headers={"accept": "application/json"}).status_code == 200
    browser = client.get(FHIR + "/metadata", headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert browser.status_code == 200 and browser.headers["content-type"] == FHIR_JSON
    pretty = client.get(FHIR + "/metadata", params={"_pretty": "true"})
    assert pretty.text.startswith('{\n  "resourceType": "CapabilityStatement"')


# --- Patient ------------------------------------------------------------------------------------------------

def test_a_patient_reads_with_the_ipp_and_the_ins_only_once_qualified(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    jeanne = _patient(client)
    patient = _get(client, f"/Patient/{jeanne['id']}")
    assert patient["id"] == jeanne["id"] and patient["gender"] == "female" and patient["birthDate"] == "1948-03-12"
    ipp = next(i for i in patient["identifier"] if i["system"] == IPP_SYSTEM)
    assert ipp["value"] == jeanne["ipp"] and ipp["use"] == "usual" and ipp["type"]["coding"][0]["code"] == "PI"
    assert patient["name"] == [{"use": "official", "family": "LEFEVRE", "given": ["JEANNE", "MARIE"]}]
    assert not {i["system"] for i in patient["identifier"]} & INS_OIDS  # provisional: no INS
    # The INS is retrieved from INSi but the identity not yet validated: still not shown, not searchable.
    client.post(f"/patients/{jeanne['id']}/identite/insi", data={"csrf_token": form_token(client)})
    retrieved = client.get(f"/api/patients/{jeanne['id']}").json()
    assert retrieved["status"] == "retrieved"
    assert not {i["system"] for i in _get(client, f"/Patient/{jeanne['id']}")["identifier"]} & INS_OIDS
    with app.state.container.session_factory() as s:
        stored_ins = s.get(Patient, uuid.UUID(jeanne["id"])).ins
    assert stored_ins
    demo = "urn:oid:1.2.250.1.213.1.4.11"
    assert _entries(_get(client, "/Patient", identifier=f"{demo}|{stored_ins}")) == []
    assert _entries(_get(client, "/Patient", identifier=stored_ins)) == []
    # Qualified: the INS goes out under its authority, with FR Core's type for it.
    _post(client, f"/api/patients/{jeanne['id']}/validation", {"proof": "national_id_card"})
    qualified = _get(client, f"/Patient/{jeanne['id']}")
    ins = next(i for i in qualified["identifier"] if i["system"] in INS_OIDS)
    assert ins == {"use": "official", "system": demo, "value": stored_ins, "type": {"coding": [{
        "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203", "code": "INS-NIR-DEMO",
        "display": "NIR DEMO"}]}}
    found = _entries(_get(client, "/Patient", identifier=f"{demo}|{stored_ins}"))
    assert [p["id"] for p in found] == [jeanne["id"]]
    assert _entries(_get(client, "/Patient", identifier=f"urn:oid:1.2.250.1.213.1.4.8|{stored_ins}")) == []


def test_patients_are_searched_by_identifier_names_birthdate_and_gender(client: TestClient) -> None:
    login(client, CLERK)
    jeanne = _patient(client)
    paul = _patient(client, birth_name="Lefèvre", first_names="Paul", sex="M", birth_date="1975-10-30",
                    used_name="Martin")

    def ids(**params: str) -> list[str]:
        return [p["id"] for p in _entries(_get(client, "/Patient", **params))]

    assert ids(identifier=f"{IPP_SYSTEM}|{jeanne['ipp']}") == [jeanne["id"]]
    assert ids(identifier=jeanne["ipp"]) == [jeanne["id"]]
    assert ids(identifier=f"https://other.example/ipp|{jeanne['ipp']}") == []
    assert set(ids(family="lefèvre")) == {jeanne["id"], paul["id"]}
    assert ids(family="LEFEVRE", given="marie") == [jeanne["id"]]  # any first name, not only the first
    assert ids(family="martin") == [paul["id"]]  # the used name
    assert ids(name="lefe", gender="male") == [paul["id"]]
    assert ids(birthdate="1948-03-12") == [jeanne["id"]]
    assert ids(family="lefevre", birthdate="ge1950") == [paul["id"]]
    assert ids(family="lefevre", birthdate="lt1950-01-01") == [jeanne["id"]]
    assert ids(family="lefevre", gender="female,unknown") == [jeanne["id"]]


def test_a_nurse_outside_the_care_team_neither_reads_nor_finds_the_patient(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    jeanne = _patient(client)
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        forbidden = _get(nurse, f"/Patient/{jeanne['id']}", expect=404)
        absent = _get(nurse, f"/Patient/{(other := uuid.uuid4())}", expect=404)
        # The same answer for "not yours" and "does not exist" (STYLE.md R7).
        assert _issue(forbidden) == ("not-found", f"Patient/{jeanne['id']} is not known")
        assert _issue(absent) == ("not-found", f"Patient/{other} is not known")
        assert _entries(_get(nurse, "/Patient", family="lefevre")) == []
        assert _entries(_get(nurse, "/Patient", identifier=jeanne["ipp"])) == []
        _admit(client, jeanne["id"])  # now in her unit: she cares for her
        assert _get(nurse, f"/Patient/{jeanne['id']}")["id"] == jeanne["id"]
        assert [p["id"] for p in _entries(_get(nurse, "/Patient", family="lefevre"))] == [jeanne["id"]]


def test_search_results_are_paged_with_next_and_previous_links(client: TestClient) -> None:
    login(client, CLERK)
    people = [("Arthur", "M", "1931-01-05"), ("Béatrice", "F", "1962-06-17"), ("Kevin", "M", "1999-11-28")]
    for first, sex, born in people:
        _patient(client, birth_name="Vasseur", first_names=first, sex=sex, birth_date=born)
    first_page = _get(client, "/Patient", family="vasseur", _count="2")
    assert [p["name"][0]["given"][0] for p in _entries(first_page)] == ["ARTHUR", "BEATRICE"]
    assert _link(first_page, "previous") is None
    next_url = _link(first_page, "next")
    assert next_url and next_url.startswith("http://testserver/fhir/R4/Patient?") and "_offset=2" in next_url
    second_page = client.get(next_url.removeprefix("http://testserver"), headers={"accept": FHIR_JSON}).json()
    _valid(second_page)
    assert [p["name"][0]["given"][0] for p in _entries(second_page)] == ["KEVIN"]
    assert _link(second_page, "next") is None and "_offset=0" in (_link(second_page, "previous") or "")
    establishments = len(client.get("/api/sites/establishments").json())
    organizations = _get(client, "/Organization", _count="2", _offset="2")
    assert organizations["total"] == establishments + 1 and len(_entries(organizations)) == 2  # and the group
    assert _link(organizations, "next") and _link(organizations, "previous")
    assert len(_entries(_get(client, "/Location", _count="500"))) == 100  # _count is capped


# --- Encounter ----------------------------------------------------------------------------------------------

def test_an_encounter_carries_its_nda_class_patient_places_and_establishment(client: TestClient, clock) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    jeanne = _patient(client)
    stay = _admit(client, jeanne["id"])
    encounter = _get(client, f"/Encounter/{stay['id']}")
    assert encounter["status"] == "in-progress"
    assert encounter["class"] == {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP",
                                  "display": "inpatient encounter"}
    assert _identifier(encounter, NDA_SYSTEM) == stay["nda"]
    assert encounter["identifier"][0]["type"]["coding"][0]["code"] == "VN"
    assert encounter["subject"] == {"reference": f"Patient/{jeanne['id']}"}
    assert encounter["period"] == {"start": "2026-11-25T09:30:00Z"}
    assert encounter["extension"][0]["valueDate"] == "2026-11-30"
    unit, bed = encounter["location"]
    assert (unit["physicalType"]["coding"][0]["code"], unit["status"]) == ("wa", "active")
    assert (bed["physicalType"]["coding"][0]["code"], bed["status"]) == ("bd", "active")
    assert _identifier(_get(client, "/" + unit["location"]["reference"]), UNIT_SYSTEM) == UNIT
    assert _identifier(_get(client, "/" + bed["location"]["reference"]), BED_SYSTEM) == BED
    lens = _get(client, "/" + encounter["serviceProvider"]["reference"])
    assert _identifier(lens, FINESS_SYSTEM) == "629990011"
    # Leave keeps the bed; discharge ends the period.
    clock.advance(hours=2)
    login(client, CLERK)
    _post(client, f"/api/encounters/{stay['id']}/leave", {})
    on_leave = _get(client, f"/Encounter/{stay['id']}")
    assert on_leave["status"] == "onleave" and on_leave["location"][1]["status"] == "reserved"
    clock.advance(hours=2)
    login(client, CLERK)
    _post(client, f"/api/encounters/{stay['id']}/return", {})
    _post(client, f"/api/encounters/{stay['id']}/discharge", {})
    done = _get(client, f"/Encounter/{stay['id']}")
    assert done["status"] == "finished" and done["period"]["end"] == "2026-11-25T13:30:00Z"
    assert {loc["status"] for loc in done["location"]} == {"completed"}


def test_encounter_classes_map_to_act_codes(client: TestClient) -> None:
    login(client, CLERK)
    kinds = {"emergency": ("LENS-URG-SAU", "EMER"), "day_hospital": (UNIT, "SS"), "outpatient": (UNIT, "AMB")}
    for index, (kind, (unit, code)) in enumerate(kinds.items()):
        patient = _patient(client, birth_name=f"Caron{'x' * index}", first_names=["Lucie", "Agathe", "Inès"][index],
                           birth_date=f"19{60 + 9 * index}-0{index + 1}-1{index}")
        stay = _admit(client, patient["id"], unit=unit, bed=None, encounter_class=kind)
        encounter = _get(client, f"/Encounter/{stay['id']}")
        assert encounter["class"]["code"] == code, kind
        assert encounter["type"][0]["coding"][0]["code"] == kind


def test_encounters_are_searched_by_patient_nda_status_and_date(client: TestClient) -> None:
    login(client, CLERK)
    jeanne = _patient(client)
    stay = _admit(client, jeanne["id"])

    def ids(**params: str) -> list[str]:
        bundle = _get(client, "/Encounter", **params)
        assert bundle["total"] == len(bundle.get("entry", []))
        return [e["id"] for e in _entries(bundle)]

    assert ids(patient=f"Patient/{jeanne['id']}") == [stay["id"]]
    assert ids(subject=jeanne["id"]) == [stay["id"]]
    assert ids(identifier=f"{NDA_SYSTEM}|{stay['nda']}") == [stay["id"]]
    assert ids(identifier=f"{NDA_SYSTEM}|{stay['nda']}", patient=str(uuid.uuid4())) == []
    assert ids(patient=jeanne["id"], status="in-progress,onleave") == [stay["id"]]
    assert ids(patient=jeanne["id"], status="finished") == []
    assert ids(patient=jeanne["id"], date="ge2026-11-01") == [stay["id"]]
    assert ids(patient=jeanne["id"], date="lt2026-11-01") == []
    assert ids(patient="not-a-uuid") == []


def test_a_nurse_outside_the_care_team_neither_reads_nor_finds_the_stay(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    jeanne = _patient(client)
    stay = _admit(client, jeanne["id"], unit="LENS-MED-CARDIO", bed=None)
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        forbidden = _get(nurse, f"/Encounter/{stay['id']}", expect=404)
        assert _issue(forbidden) == ("not-found", f"Encounter/{stay['id']} is not known")
        assert _issue(_get(nurse, f"/Encounter/{uuid.uuid4()}", expect=404))[0] == "not-found"
        assert _entries(_get(nurse, "/Encounter", patient=jeanne["id"])) == []
        assert _entries(_get(nurse, "/Encounter", identifier=stay["nda"])) == []


# --- the group's structure and the staff directory ----------------------------------------------------------

def test_establishments_are_organizations_of_the_group_with_their_finess(client: TestClient) -> None:
    login(client, NURSE)
    [lens] = _entries(_get(client, "/Organization", identifier=f"{FINESS_SYSTEM}|629990011"))
    finess = next(i for i in lens["identifier"] if i["system"] == FINESS_SYSTEM)
    assert finess["type"]["coding"][0]["code"] == "FINEG" and lens["name"] == "Centre hospitalier de Lens"
    group = _get(client, "/" + lens["partOf"]["reference"])
    assert group["name"] == "Groupement hospitalier de territoire de l'Artois" and "partOf" not in group
    assert [o["id"] for o in _entries(_get(client, "/Organization", name="lens"))] == [lens["id"]]  # the alias
    assert [o["id"] for o in _entries(_get(client, "/Organization", identifier="LENS"))] == [lens["id"]]
    assert _entries(_get(client, "/Organization", identifier="https://other.example|629990011")) == []
    assert _issue(_get(client, "/Organization/not-an-id", expect=404))[0] == "not-found"


def test_units_rooms_and_beds_are_locations_part_of_one_another(client: TestClient) -> None:
    login(client, NURSE)
    [unit] = _entries(_get(client, "/Location", identifier=f"{UNIT_SYSTEM}|{UNIT}"))
    assert unit["physicalType"]["coding"][0]["code"] == "wa" and unit["status"] == "active"
    rooms = _entries(_get(client, "/Location", partof=f"Location/{unit['id']}", _count="100"))
    assert rooms and {r["physicalType"]["coding"][0]["code"] for r in rooms} == {"ro"}
    room = next(r for r in rooms if r["name"] == "521")
    beds = _entries(_get(client, "/Location", partof=room["id"]))
    assert [_identifier(b, BED_SYSTEM) for b in beds] == [BED]
    assert beds[0]["partOf"]["reference"] == f"Location/{room['id']}"
    assert beds[0]["managingOrganization"] == unit["managingOrganization"]
    lens_units = _get(client, "/Location", organization=unit["managingOrganization"]["reference"],
                      name="médecine interne")
    assert [u["id"] for u in _entries(lens_units)] == [unit["id"]]
    assert _entries(_get(client, "/Location", identifier=BED, status="inactive")) == []


def test_practitioners_are_found_by_rpps_idnps_and_name(client: TestClient) -> None:
    login(client, NURSE)
    [claire] = _entries(_get(client, "/Practitioner", identifier=f"{RPPS_SYSTEM}|10000000017"))
    assert claire["name"] == [{"use": "official", "family": "Lefebvre", "given": ["Claire"]}]
    assert _identifier(claire, IDNPS_SYSTEM) == "810000000017"
    assert [p["id"] for p in _entries(_get(client, "/Practitioner", identifier=f"{IDNPS_SYSTEM}|810000000017"))] \
        == [claire["id"]]
    assert _entries(_get(client, "/Practitioner", identifier=f"{RPPS_SYSTEM}|10000000018")) == []  # bad key
    named = _get(client, "/Practitioner", name="lefebvre")
    assert claire["id"] in [p["id"] for p in _entries(named)] and named["total"] >= 1
    assert _get(client, f"/Practitioner/{claire['id']}") == claire
    assert _issue(_get(client, f"/Practitioner/{uuid.uuid4()}", expect=404))[0] == "not-found"
    assert set(claire) == {"resourceType", "id", "identifier", "active", "name"}  # nothing of the account


def test_a_system_token_reads_the_structure_and_identities(client: TestClient, app,  # type: ignore[no-untyped-def]
                                                            clock: FixedClock) -> None:
    container = app.state.container
    with container.session_factory() as s:
        create_account(s, username="passerelle-adt", display_name="Passerelle ADT", roles={Role.INTERFACE},
                       password=None, now_=clock.now())
        s.commit()
    token = create_api_token(UnitOfWork(container.session_factory, clock, EventBus()), SYSTEM_ACTOR,
                             username="passerelle-adt", name="tests")
    jeanne = _patient_by_clerk(app)
    with TestClient(app) as system:
        system.headers["authorization"] = f"Bearer {token}"
        assert _entries(_get(system, "/Organization", identifier=f"{FINESS_SYSTEM}|629990011"))
        # A system acts for administration and identity (platform.access.ROLE_PURPOSES).
        assert _get(system, f"/Patient/{jeanne}")["id"] == jeanne


def _patient_by_clerk(app) -> str:  # type: ignore[no-untyped-def]
    with TestClient(app) as clerk:
        login(clerk, CLERK)
        return str(_patient(clerk)["id"])
