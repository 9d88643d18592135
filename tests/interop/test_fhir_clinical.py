"""The FHIR facade's clinical resources as a client system uses them: the chart (Condition,
AllergyIntolerance, Observation, DocumentReference and Binary), Patient/$everything, `_include`,
and the audit trail as AuditEvent. Every answer is checked with fhir.resources (R4B); patient data
comes only through the one door, for care, and every refusal is traced."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from naho.platform.audit import AuditEvent
from naho.platform.clock import FixedClock
from naho.platform.events import EventBus
from naho.platform.security.actor import SYSTEM_ACTOR
from naho.platform.security.rules import Role
from naho.platform.security.service import create_account, create_api_token
from naho.platform.uow import UnitOfWork
from naho.record.fhir import ATC_SYSTEM, ICD10_SYSTEM, LOINC_SYSTEM, SUBSTANCE_SYSTEM, UCUM_SYSTEM
from naho.record.models import Allergy, Condition, Observation
from tests.interop.test_fhir_api import FHIR, FHIR_JSON, _admit, _entries, _get, _issue, _link, _patient, _valid
from tests.personas import ADMIN, CLERK, NURSE, PHYSICIAN, PORTER, form_token, login

DIM = "dim"  # the medical information department's demo account (sandbox.seed)
LETTER = "Lettre de sortie : patiente rentrée à domicile, traitement inchangé.\n".encode()
NOTE = "Patiente vue ce matin : céphalées, TA 165/95. Majoration du traitement antihypertenseur."


# --- the chart of one patient, written through the pages ---------------------------------------------------

def _form(client: TestClient, path: str, **fields: str) -> None:
    response = client.post(path, data={**fields, "csrf_token": form_token(client)}, follow_redirects=False)
    assert response.status_code == 303 and "erreur" not in response.headers["location"], response.headers


def _write_chart(app: Any, clock: FixedClock, patient_id: str) -> None:  # type: ignore[misc]
    """A physician of the unit records a problem, two allergies, a round of vital signs and a
    letter, then five minutes later a progress note."""
    with TestClient(app) as physician:
        login(physician, PHYSICIAN)
        _form(physician, f"/patients/{patient_id}/problemes", icd10="I10", label="Hypertension essentielle")
        _form(physician, f"/patients/{patient_id}/allergies", substance_code="ATC:J01C",
              substance_label="Pénicillines", criticality="high", reaction="Urticaire généralisée")
        _form(physician, f"/patients/{patient_id}/allergies", substance_code="FOOD:peanut",
              substance_label="Arachide", criticality="low")
        _form(physician, f"/patients/{patient_id}/constantes", heart_rate="88", temperature="38,2")
        uploaded = physician.post(f"/patients/{patient_id}/documents",
                                  data={"title": "Lettre de sortie", "csrf_token": form_token(physician)},
                                  files={"file": ("lettre.txt", LETTER, "text/plain")}, follow_redirects=False)
        assert uploaded.status_code == 303 and "erreur" not in uploaded.headers["location"]
        clock.advance(minutes=5)
        _form(physician, f"/patients/{patient_id}/notes", kind="medical", text=NOTE)


@pytest.fixture
def jeanne(client: TestClient, app: Any, clock: FixedClock) -> dict[str, Any]:
    """Jeanne, admitted to the nurse's and physician's unit, with a chart; the client is the nurse."""
    login(client, CLERK)
    patient = _patient(client)
    stay = _admit(client, patient["id"])
    _write_chart(app, clock, patient["id"])
    login(client, NURSE)
    return {**patient, "stay": stay}


def _ids(client: TestClient, path: str, **params: str) -> list[str]:
    return [r["id"] for r in _entries(_get(client, path, **params))]


def _trail(app: Any, patient_id: str) -> list[AuditEvent]:  # type: ignore[misc]
    with app.state.container.session_factory() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.patient_id == uuid.UUID(patient_id))
                              .order_by(AuditEvent.seq)))


def _set(app: Any, model: Any, column: str, value: str, **where: Any) -> None:  # type: ignore[misc]
    with app.state.container.session_factory() as s:
        s.execute(update(model).where(*[getattr(model, k) == v for k, v in where.items()]).values({column: value}))
        s.commit()


def _system_token(app: Any, clock: FixedClock) -> str:  # type: ignore[misc]
    container = app.state.container
    with container.session_factory() as s:
        create_account(s, username="client-fhir", display_name="Client FHIR", roles={Role.INTERFACE},
                       password=None, now_=clock.now())
        s.commit()
    return create_api_token(UnitOfWork(container.session_factory, clock, EventBus()), SYSTEM_ACTOR,
                            username="client-fhir", name="tests")


# --- CapabilityStatement ------------------------------------------------------------------------------------

def test_the_capability_statement_lists_the_chart_the_trail_includes_and_everything(client: TestClient) -> None:
    statement = _get(client, "/metadata")
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {"Condition", "AllergyIntolerance", "Observation", "DocumentReference", "Binary", "AuditEvent"} \
        <= set(resources)
    assert {p["name"] for p in resources["Observation"]["searchParam"]} == {
        "patient", "subject", "code", "date", "category", "status"}
    assert resources["Encounter"]["searchInclude"] == ["Encounter:patient", "Encounter:subject"]
    assert "Observation:patient" in resources["Observation"]["searchInclude"]
    assert [i["code"] for i in resources["Binary"]["interaction"]] == ["read"] and "searchParam" not in \
        resources["Binary"]
    [everything] = resources["Patient"]["operation"]
    assert everything["name"] == "everything"
    assert everything["definition"] == "http://hl7.org/fhir/OperationDefinition/Patient-everything"


# --- Condition ----------------------------------------------------------------------------------------------

def test_a_condition_carries_its_icd10_code_statuses_patient_and_stay(client: TestClient,
                                                                       jeanne: dict[str, Any]) -> None:
    [condition] = _entries(_get(client, "/Condition", patient=f"Patient/{jeanne['id']}"))
    assert condition["code"] == {"coding": [{"system": ICD10_SYSTEM, "code": "I10",
                                             "display": "Hypertension essentielle"}],
                                 "text": "Hypertension essentielle"}
    assert condition["clinicalStatus"]["coding"][0]["code"] == "active"
    assert condition["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert condition["category"][0]["coding"][0]["code"] == "problem-list-item"
    assert condition["subject"] == {"reference": f"Patient/{jeanne['id']}"}
    assert condition["encounter"] == {"reference": f"Encounter/{jeanne['stay']['id']}"}
    assert condition["recordedDate"] == "2026-11-25T09:30:00Z"
    assert condition["recorder"]["display"].endswith("(medecin)")
    assert _get(client, f"/Condition/{condition['id']}") == condition
    found = condition["id"]
    assert _ids(client, "/Condition", subject=jeanne["id"], code=f"{ICD10_SYSTEM}|I10") == [found]
    assert _ids(client, "/Condition", patient=jeanne["id"], code="I10,E11.9") == [found]  # OR, any system
    assert _ids(client, "/Condition", patient=jeanne["id"], code="http://snomed.info/sct|I10") == []
    assert _ids(client, "/Condition", patient=jeanne["id"], code=f"{ICD10_SYSTEM}|I21.4") == []
    assert _ids(client, "/Condition", patient=jeanne["id"], **{"clinical-status": "active,recurrence"}) == [found]
    assert _ids(client, "/Condition", patient=jeanne["id"], **{"clinical-status": "resolved"}) == []
    assert _ids(client, "/Condition", patient=jeanne["id"], category="problem-list-item") == [found]
    assert _ids(client, "/Condition", patient=jeanne["id"], category="encounter-diagnosis") == []


def test_an_entry_entered_in_error_says_so_and_is_found_only_when_asked(client: TestClient, app: Any,
                                                                         jeanne: dict[str, Any]) -> None:
    [condition] = _entries(_get(client, "/Condition", patient=jeanne["id"]))
    _set(app, Condition, "status", "entered_in_error", id=uuid.UUID(condition["id"]))
    assert _entries(_get(client, "/Condition", patient=jeanne["id"])) == []
    asked = {"verification-status": "entered-in-error"}
    [wrong] = _entries(_get(client, "/Condition", patient=jeanne["id"], **asked))
    assert wrong["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    assert "clinicalStatus" not in wrong  # FHIR con-5
    assert _get(client, f"/Condition/{condition['id']}") == wrong  # a read still finds it
    # The same for an allergy and a measure.
    _set(app, Allergy, "status", "entered_in_error", substance_code="FOOD:peanut")
    allergies = _entries(_get(client, "/AllergyIntolerance", patient=jeanne["id"]))
    assert [a["code"]["text"] for a in allergies] == ["Pénicillines"]
    [peanut] = _entries(_get(client, "/AllergyIntolerance", patient=jeanne["id"], **asked))
    assert peanut["verificationStatus"]["coding"][0]["code"] == "entered-in-error" and "clinicalStatus" not in peanut
    both = {"verification-status": "confirmed,entered-in-error"}
    assert len(_entries(_get(client, "/AllergyIntolerance", patient=jeanne["id"], **both))) == 2
    _set(app, Observation, "status", "entered_in_error", loinc="8310-5")
    assert [o["code"]["coding"][0]["code"] for o in _entries(_get(client, "/Observation", patient=jeanne["id"]))] \
        == ["8867-4"]
    [fever] = _entries(_get(client, "/Observation", patient=jeanne["id"], status="entered-in-error"))
    assert fever["status"] == "entered-in-error" and fever["code"]["coding"][0]["code"] == "8310-5"


# --- AllergyIntolerance -------------------------------------------------------------------------------------

def test_allergies_carry_the_atc_class_or_the_allergen_criticality_and_reaction(client: TestClient,
                                                                               jeanne: dict[str, Any]) -> None:
    allergies = {a["code"]["text"]: a for a in _entries(_get(client, "/AllergyIntolerance", patient=jeanne["id"]))}
    penicillin, peanut = allergies["Pénicillines"], allergies["Arachide"]
    assert penicillin["code"]["coding"] == [{"system": ATC_SYSTEM, "code": "J01C", "display": "Pénicillines"}]
    assert penicillin["category"] == ["medication"] and penicillin["criticality"] == "high"
    assert penicillin["type"] == "allergy" and penicillin["patient"] == {"reference": f"Patient/{jeanne['id']}"}
    assert penicillin["reaction"] == [{"manifestation": [{"text": "Urticaire généralisée"}]}]
    assert penicillin["clinicalStatus"]["coding"][0]["code"] == "active"
    assert peanut["code"]["coding"][0] == {"system": SUBSTANCE_SYSTEM, "code": "FOOD:peanut", "display": "Arachide"}
    assert peanut["category"] == ["food"] and "reaction" not in peanut
    assert _get(client, f"/AllergyIntolerance/{peanut['id']}") == peanut
    assert _ids(client, "/AllergyIntolerance", patient=jeanne["id"], code=f"{ATC_SYSTEM}|J01C") == [penicillin["id"]]
    assert _ids(client, "/AllergyIntolerance", patient=jeanne["id"], code="J01C") == [penicillin["id"]]
    assert _ids(client, "/AllergyIntolerance", patient=jeanne["id"], code="FOOD:peanut") == [peanut["id"]]
    assert _ids(client, "/AllergyIntolerance", patient=jeanne["id"], code=f"{ATC_SYSTEM}|FOOD:peanut") == []
    assert _ids(client, "/AllergyIntolerance", patient=jeanne["id"], category="food") == [peanut["id"]]
    assert _ids(client, "/AllergyIntolerance", patient=jeanne["id"], category="environment") == []
    assert _ids(client, "/AllergyIntolerance", patient=jeanne["id"], **{"clinical-status": "inactive"}) == []


# --- Observation --------------------------------------------------------------------------------------------

def test_vital_signs_are_observations_in_loinc_and_ucum_with_their_stay(client: TestClient,
                                                                         jeanne: dict[str, Any]) -> None:
    measures = {o["code"]["coding"][0]["code"]: o for o in _entries(_get(client, "/Observation",
                                                                         subject=f"Patient/{jeanne['id']}"))}
    assert set(measures) == {"8867-4", "8310-5"}
    heart, temperature = measures["8867-4"], measures["8310-5"]
    assert heart["status"] == "final"
    assert heart["category"] == [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                              "code": "vital-signs", "display": "Vital Signs"}]}]
    assert heart["code"]["coding"] == [{"system": LOINC_SYSTEM, "code": "8867-4", "display": "Heart rate"}]
    assert heart["valueQuantity"] == {"value": 88.0, "unit": "/min", "system": UCUM_SYSTEM, "code": "/min"}
    assert temperature["valueQuantity"] == {"value": 38.2, "unit": "Cel", "system": UCUM_SYSTEM, "code": "Cel"}
    assert heart["effectiveDateTime"] == "2026-11-25T09:30:00Z"
    assert heart["subject"] == {"reference": f"Patient/{jeanne['id']}"}
    assert heart["encounter"] == {"reference": f"Encounter/{jeanne['stay']['id']}"}
    assert _get(client, f"/Observation/{heart['id']}") == heart
    assert _ids(client, "/Observation", patient=jeanne["id"], code=f"{LOINC_SYSTEM}|8867-4") == [heart["id"]]
    assert _ids(client, "/Observation", patient=jeanne["id"], code="http://other.example|8867-4") == []
    assert _ids(client, "/Observation", patient=jeanne["id"], category="laboratory") == []
    assert len(_ids(client, "/Observation", patient=jeanne["id"], category="vital-signs")) == 2


def test_observations_are_searched_by_date_and_paged_newest_first(client: TestClient, app: Any,
                                                                 jeanne: dict[str, Any]) -> None:
    # Ten days of morning heart rates before the admission (an import, as the demo's history).
    start = datetime(2026, 11, 10, 7, 0, tzinfo=UTC)
    with app.state.container.session_factory() as s:
        s.add_all(Observation(patient_id=uuid.UUID(jeanne["id"]), encounter_id=None, loinc="8867-4",
                              value=70 + day, unit="/min", effective_at=start + timedelta(days=day),
                              recorded_at=start + timedelta(days=day), recorded_by="Import") for day in range(10))
        s.commit()
    heart = {"patient": jeanne["id"], "code": f"{LOINC_SYSTEM}|8867-4"}
    all_rates = _get(client, "/Observation", **heart)
    assert all_rates["total"] == 11
    values = [o["valueQuantity"]["value"] for o in _entries(all_rates)]
    assert values == [88.0, *[float(70 + d) for d in reversed(range(10))]]  # newest first
    # A day in Paris time; a range given as two date parameters (AND); an instant with its zone.
    assert [o["valueQuantity"]["value"] for o in _entries(_get(client, "/Observation", **heart,
                                                                 date="2026-11-12"))] == [72.0]
    client_range = client.get(FHIR + "/Observation", params=[*heart.items(), ("date", "ge2026-11-15"),
                                                             ("date", "lt2026-11-18")])
    assert [o["resource"]["valueQuantity"]["value"] for o in _valid(client_range.json()).model_dump(
        mode="json", exclude_none=True)["entry"]] == [77.0, 76.0, 75.0]
    assert len(_entries(_get(client, "/Observation", **heart, date="gt2026-11-19"))) == 1  # only today's
    assert _entries(_get(client, "/Observation", **heart, date="lt2026-11-10T08:00:00+01:00")) == []  # 07:00Z
    assert len(_entries(_get(client, "/Observation", **heart, date="le2026-11-10T08:00:00+01:00"))) == 1
    assert _entries(_get(client, "/Observation", **heart, date="2025")) == []
    # Paging: _count and _offset, with links that reproduce the search.
    first = _get(client, "/Observation", **heart, _count="4")
    assert len(_entries(first)) == 4 and _link(first, "previous") is None
    seen = [o["id"] for o in _entries(first)]
    url = _link(first, "next")
    while url:
        page = client.get(url.removeprefix("http://testserver"), headers={"accept": FHIR_JSON}).json()
        _valid(page)
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
        url = _link(page, "next")
    assert len(seen) == len(set(seen)) == 11


# --- DocumentReference and Binary ---------------------------------------------------------------------------

def test_a_document_is_referenced_with_its_attachment_and_read_as_binary(client: TestClient,
                                                                         jeanne: dict[str, Any]) -> None:
    note, document = _entries(_get(client, "/DocumentReference", patient=jeanne["id"]))  # newest first
    assert document["status"] == "current" and document["description"] == "Lettre de sortie"
    assert document["subject"] == {"reference": f"Patient/{jeanne['id']}"}
    assert document["context"] == {"encounter": [{"reference": f"Encounter/{jeanne['stay']['id']}"}]}
    attachment = document["content"][0]["attachment"]
    assert attachment == {"contentType": "text/plain; charset=utf-8", "size": len(LETTER),
                          "title": "Lettre de sortie", "url": f"http://testserver/fhir/R4/Binary/{document['id']}",
                          "creation": "2026-11-25T09:30:00Z"}
    assert _get(client, f"/DocumentReference/{document['id']}") == document
    binary = _get(client, attachment["url"].removeprefix("http://testserver/fhir/R4"))
    assert binary["contentType"] == "text/plain; charset=utf-8"
    assert base64.b64decode(binary["data"]) == LETTER
    assert binary["securityContext"] == {"reference": f"DocumentReference/{document['id']}"}
    assert _ids(client, "/DocumentReference", subject=jeanne["id"], date="2026-11-25") == [note["id"], document["id"]]
    assert _ids(client, "/DocumentReference", patient=jeanne["id"], date="lt2026-11-25T09:35:00Z") == [document["id"]]
    assert _ids(client, "/DocumentReference", patient=jeanne["id"], date="lt2026-11-25") == []
    assert _ids(client, "/DocumentReference", patient=jeanne["id"], status="superseded") == []
    assert _issue(_get(client, "/Binary", expect=400))[1] == "Binary is read by id only: it cannot be searched"


def test_a_clinical_note_is_a_document_reference_with_its_text_inline_and_loinc_type(
        client: TestClient, jeanne: dict[str, Any]) -> None:
    note, _letter = _entries(_get(client, "/DocumentReference", patient=jeanne["id"]))
    assert note["type"] == {"coding": [{"system": LOINC_SYSTEM, "code": "11506-3", "display": "Progress note"}],
                            "text": "Progress note"}
    assert note["date"] == "2026-11-25T09:35:00Z" and note["author"][0]["display"].endswith("(medecin)")
    assert note["context"] == {"encounter": [{"reference": f"Encounter/{jeanne['stay']['id']}"}]}
    [content] = note["content"]
    assert content["attachment"]["contentType"] == "text/plain; charset=utf-8"
    assert base64.b64decode(content["attachment"]["data"]).decode() == NOTE
    assert content["attachment"]["size"] == len(NOTE.encode()) and "url" not in content["attachment"]
    assert _get(client, f"/DocumentReference/{note['id']}") == note
    assert _ids(client, "/DocumentReference", patient=jeanne["id"], type=f"{LOINC_SYSTEM}|11506-3") == [note["id"]]
    assert _ids(client, "/DocumentReference", patient=jeanne["id"], type="34746-8,34109-9") == []  # nurse, other
    assert _ids(client, "/DocumentReference", patient=jeanne["id"], type="http://snomed.info/sct|11506-3") == []
    assert _issue(_get(client, f"/Binary/{note['id']}", expect=404))[0] == "not-found"  # inline, no Binary
    assert _issue(_get(client, f"/Binary/{uuid.uuid4()}", expect=404))[0] == "not-found"


# --- refusals -----------------------------------------------------------------------------------------------

def test_a_nurse_outside_the_care_team_finds_nothing_and_every_refusal_is_traced(client: TestClient, app: Any,
                                                                                   clock: FixedClock) -> None:
    login(client, CLERK)
    patient = _patient(client)
    _admit(client, patient["id"], unit="LENS-MED-CARDIO", bed=None)  # not the nurse's unit
    with app.state.container.session_factory() as s:
        row = Condition(patient_id=uuid.UUID(patient["id"]), icd10="I48", label="Fibrillation auriculaire",
                        status="active", recorded_at=clock.now(), recorded_by="Cardiologue")
        s.add(row)
        s.commit()
        condition_id = str(row.id)
    login(client, NURSE)
    denied_before = sum(e.action == "patient:record:denied" for e in _trail(app, patient["id"]))
    for kind in ("Condition", "AllergyIntolerance", "Observation", "DocumentReference"):
        assert _entries(_get(client, f"/{kind}", patient=patient["id"])) == [], kind
    forbidden = _get(client, f"/Condition/{condition_id}", expect=404)
    absent = _get(client, f"/Condition/{(other := uuid.uuid4())}", expect=404)
    assert _issue(forbidden) == ("not-found", f"Condition/{condition_id} is not known")
    assert _issue(absent) == ("not-found", f"Condition/{other} is not known")
    assert _issue(_get(client, f"/Patient/{patient['id']}/$everything", expect=404))[0] == "not-found"
    denied = [e for e in _trail(app, patient["id"]) if e.action == "patient:record:denied"]
    assert len(denied) - denied_before == 6
    assert {e.details["action"] for e in denied} >= {"patient:condition:list", "patient:condition:view",
                                                    "patient:record:everything"}
    assert all(e.details["purpose"] == "care" and e.actor_label.endswith("(infirmier)") for e in denied)


def test_a_porter_a_clerk_in_the_unit_and_a_system_never_see_the_chart(client: TestClient, app: Any,
                                                                        clock: FixedClock,
                                                                        jeanne: dict[str, Any]) -> None:
    _note, document = _entries(_get(client, "/DocumentReference", patient=jeanne["id"]))
    [condition] = _entries(_get(client, "/Condition", patient=jeanne["id"]))
    with TestClient(app) as porter:
        login(porter, PORTER)
        assert _entries(_get(porter, "/Condition", patient=jeanne["id"])) == []
        assert _get(porter, f"/Condition/{condition['id']}", expect=404)
        refused = _get(porter, f"/Binary/{document['id']}", expect=403)  # documents: clinicians only
        assert _issue(refused)[0] == "forbidden"
    # An emergency patient: the clerk works in that unit, yet reads records for administration.
    with TestClient(app) as clerk:
        login(clerk, CLERK)
        emergency = _patient(clerk, birth_name="Dufour", first_names="Gérard", sex="M", birth_date="1939-02-14")
        _admit(clerk, emergency["id"], unit="LENS-URG-SAU", bed=None, encounter_class="emergency")
        with app.state.container.session_factory() as s:
            s.add(Condition(patient_id=uuid.UUID(emergency["id"]), icd10="S72.0", label="Fracture du col du fémur",
                            status="active", recorded_at=clock.now(), recorded_by="Urgentiste"))
            s.commit()
        assert _get(clerk, f"/Patient/{emergency['id']}")["id"] == emergency["id"]  # the identity, yes
        assert _entries(_get(clerk, "/Condition", patient=emergency["id"])) == []  # the chart, no
        assert _get(clerk, f"/Patient/{emergency['id']}/$everything", expect=404)
        refusal = _trail(app, emergency["id"])[-1]
        assert refusal.action == "patient:record:denied" and refusal.details == {
            "purpose": "care", "action": "patient:record:everything"}
    with TestClient(app) as system:
        system.headers["authorization"] = f"Bearer {_system_token(app, clock)}"
        assert _get(system, f"/Patient/{jeanne['id']}")["id"] == jeanne["id"]
        assert _entries(_get(system, "/Observation", patient=jeanne["id"])) == []
        assert _get(system, f"/Condition/{condition['id']}", expect=404)
        assert _get(system, f"/Patient/{jeanne['id']}/$everything", expect=404)
        assert _issue(_get(system, f"/Binary/{document['id']}", expect=403))[0] == "forbidden"
        assert _issue(_get(system, "/AuditEvent", expect=403))[0] == "forbidden"


def test_an_anonymous_caller_gets_401_everywhere(client: TestClient) -> None:
    some = uuid.uuid4()
    for path in (f"/Condition?patient={some}", f"/Observation/{some}", f"/Binary/{some}", "/AuditEvent",
                 f"/Patient/{some}/$everything", f"/DocumentReference?patient={some}"):
        response = client.get(FHIR + path)
        assert response.status_code == 401, path
        assert response.headers["content-type"] == FHIR_JSON
        assert _issue(_valid(response.json()).model_dump(mode="json"))[0] == "login"


def test_bad_clinical_searches_are_400_operation_outcomes_that_say_why(client: TestClient) -> None:
    login(client, NURSE)
    p = str(uuid.uuid4())
    cases = {
        "/Condition": "a Condition search needs patient (or subject)",
        "/AllergyIntolerance": "a AllergyIntolerance search needs patient",
        f"/AllergyIntolerance?subject={p}": "unknown search parameter 'subject'",
        f"/Condition?patient={p}&subject={p}": "not both",
        "/Condition?patient=Practitioner/1": "must reference a Patient",
        f"/Condition?patient={p}&code={ICD10_SYSTEM}|": "code needs a code",
        f"/Condition?patient={p}&clinical-status=cured": "'cured' is not one of",
        f"/Observation?patient={p}&status=done": "'done' is not one of",
        f"/Observation?patient={p}&date=yesterday": "is not a FHIR date",
        f"/Observation?patient={p}&date=sa2026": "prefix 'sa'",
        f"/Observation?patient={p}&code=8867-4&code=8310-5": "more than once",
        f"/Observation?patient={p}&_include=Observation:performer": "_include='Observation:performer' is not "
                                                                   "supported",
        f"/Observation?patient={p}&_include:iterate=Observation:patient": "modifier :iterate",
        f"/Observation?patient={p}&_revinclude=Provenance:target": "unknown search parameter '_revinclude'",
        "/Patient?family=x&_include=Patient:link": "unknown search parameter '_include'",
        f"/DocumentReference?patient={p}&status=final": "'final' is not one of",
        f"/Patient/{p}/$everything?_type=Observation": "unknown search parameter '_type'",
        f"/Patient/{p}/$everything?_count=0": "_count must be at least 1",
    }
    for path, reason in cases.items():
        response = client.get(FHIR + path, headers={"accept": FHIR_JSON})
        assert response.status_code == 400, (path, response.text)
        assert response.headers["content-type"] == FHIR_JSON
        code, diagnostics = _issue(_valid(response.json()).model_dump(mode="json"))
        assert reason in diagnostics, (path, diagnostics)
        assert code in ("invalid", "not-supported")
    assert _issue(_get(client, "/Observation/not-an-id", expect=404))[0] == "not-found"


# --- Patient/$everything ------------------------------------------------------------------------------------

def test_everything_gives_the_whole_record_in_pages_through_the_door_once_per_page(client: TestClient, app: Any,
                                                                                 jeanne: dict[str, Any]) -> None:
    before = len(_trail(app, jeanne["id"]))
    bundle = _get(client, f"/Patient/{jeanne['id']}/$everything")
    kinds = [r["resourceType"] for r in _entries(bundle)]
    assert kinds == ["Patient", "Encounter", "Condition", "AllergyIntolerance", "AllergyIntolerance",
                     "Observation", "Observation", "DocumentReference", "DocumentReference"]
    assert bundle["total"] == 9 and _link(bundle, "next") is None
    assert {e["search"]["mode"] for e in bundle["entry"]} == {"match"}
    assert bundle["entry"][0]["fullUrl"] == f"http://testserver/fhir/R4/Patient/{jeanne['id']}"
    [opened] = _trail(app, jeanne["id"])[before:]
    assert opened.action == "patient:record:everything"
    assert opened.details == {"purpose": "care", "basis": "care_team"}
    # Pages of three cross the kinds without loss or repetition; each page is one access.
    seen: list[tuple[str, str]] = []
    page = _get(client, f"/Patient/{jeanne['id']}/$everything", _count="3")
    pages = 1
    while True:
        seen += [(r["resourceType"], r["id"]) for r in _entries(page)]
        url = _link(page, "next")
        if url is None:
            break
        assert url.startswith(f"http://testserver/fhir/R4/Patient/{jeanne['id']}/$everything?")
        page = client.get(url.removeprefix("http://testserver"), headers={"accept": FHIR_JSON}).json()
        _valid(page)
        pages += 1
    assert pages == 3 and [k for k, _ in seen] == kinds and len(set(seen)) == 9
    assert [e.action for e in _trail(app, jeanne["id"])[before + 1:]] == ["patient:record:everything"] * 3
    assert _get(client, f"/Patient/{uuid.uuid4()}/$everything", expect=404)


# --- _include -----------------------------------------------------------------------------------------------

def test_include_adds_the_patient_once_with_the_include_mode(client: TestClient, jeanne: dict[str, Any]) -> None:
    searches = {"Encounter": "Encounter:patient", "Condition": "Condition:patient",
                "AllergyIntolerance": "AllergyIntolerance:patient", "Observation": "Observation:subject",
                "DocumentReference": "DocumentReference:patient"}
    for kind, include in searches.items():
        bundle = _get(client, f"/{kind}", patient=jeanne["id"], _include=include)
        modes = [(e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"]]
        assert modes[-1] == ("Patient", "include") and modes.count(("Patient", "include")) == 1, kind
        assert {m for k, m in modes if k == kind} == {"match"}
        assert bundle["entry"][-1]["resource"]["id"] == jeanne["id"]
        assert bundle["total"] == len(modes) - 1  # total counts the matches only
    plain = _get(client, "/Encounter", patient=jeanne["id"])
    assert [e["resource"]["resourceType"] for e in plain["entry"]] == ["Encounter"]
    assert _get(client, "/Encounter", identifier=jeanne["stay"]["nda"], _include="Encounter:subject")["entry"][-1][
        "resource"]["id"] == jeanne["id"]


# --- AuditEvent ---------------------------------------------------------------------------------------------

def test_the_trail_reads_as_audit_events_for_the_dim_and_reading_it_is_traced(client: TestClient, app: Any,
                                                                               jeanne: dict[str, Any]) -> None:
    _get(client, "/Condition", patient=jeanne["id"])  # the nurse opens the problems
    with TestClient(app) as dim:
        login(dim, DIM)
        bundle = _get(dim, "/AuditEvent", patient=f"Patient/{jeanne['id']}")
        events = _entries(bundle)
        assert events and all(e["entity"][0]["what"] == {"reference": f"Patient/{jeanne['id']}"} for e in events)
        listed = events[0]  # newest first: the nurse's search
        assert listed["subtype"] == [{"system": "https://naho.ght-artois.fr/fhir/CodeSystem/audit-action",
                                      "code": "patient:condition:list"}]
        assert listed["type"]["code"] == "110110" and listed["action"] == "R" and listed["outcome"] == "0"
        assert listed["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"
        who = listed["agent"][0]["who"]
        assert who["reference"].startswith("Practitioner/") and who["display"].endswith("(infirmier)")
        assert listed["entity"][0]["role"]["code"] == "1"
        assert {"type": "basis", "valueString": "care_team"} in listed["entity"][0]["detail"]
        assert _get(dim, "/" + who["reference"])["name"][0]["family"] == "Dupont"
        # By agent, action, subtype and date.
        by_nurse = _entries(_get(dim, "/AuditEvent", agent=who["reference"], _count="100"))
        assert by_nurse and all(e["agent"][0]["who"]["reference"] == who["reference"] for e in by_nurse)
        created = _entries(_get(dim, "/AuditEvent", patient=jeanne["id"], action="C", _count="100"))
        assert {e["subtype"][0]["code"] for e in created} >= {"patient:identity:create", "patient:condition:create",
                                                             "patient:allergy:create", "patient:document:create"}
        assert all(e["action"] == "C" for e in created)
        admitted = _entries(_get(dim, "/AuditEvent", patient=jeanne["id"], subtype="patient:stay:admit"))
        assert [e["action"] for e in admitted] == ["C"]
        assert _entries(_get(dim, "/AuditEvent", patient=jeanne["id"], date="lt2026-11-25")) == []
        on_the_day = _entries(_get(dim, "/AuditEvent", patient=jeanne["id"], date="2026-11-25", _count="100"))
        every = _entries(_get(dim, "/AuditEvent", patient=jeanne["id"], _count="100"))
        # Reading a patient's trail is an access about the patient: the last reading now shows too.
        assert len(every) == len(on_the_day) + 1 and every[0]["subtype"][0]["code"] == "platform:audit:view"
        assert every[0]["type"]["code"] == "110101" and every[0]["agent"][0]["who"]["display"].endswith("(dim)")
        assert _get(dim, f"/AuditEvent/{listed['id']}") == listed
        assert _issue(_get(dim, f"/AuditEvent/{uuid.uuid4()}", expect=404))[0] == "not-found"
        assert _issue(_get(dim, "/AuditEvent", action="X", expect=400))[1].startswith("action='X' is not one of")
    with app.state.container.session_factory() as s:
        viewed = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "platform:audit:view")
                                .order_by(AuditEvent.seq)))
    assert len(viewed) == 8 and all(v.actor_label.endswith("(dim)") and v.details["via"] == "fhir" for v in viewed)
    assert viewed[0].details["query"] == f"patient=Patient%2F{jeanne['id']}"
    assert viewed[-1].target == listed["id"]  # the read; the 404 and the 400 read nothing


def test_refusals_show_as_failed_events_and_only_trail_readers_read_the_trail(client: TestClient, app: Any,
                                                                               jeanne: dict[str, Any]) -> None:
    with TestClient(app) as porter:
        login(porter, PORTER)
        _get(porter, "/Condition", patient=jeanne["id"])
        assert _issue(_get(porter, "/AuditEvent", expect=403))[0] == "forbidden"
    for persona in (NURSE, PHYSICIAN, CLERK):
        login(client, persona)
        assert _issue(_get(client, "/AuditEvent", patient=jeanne["id"], expect=403))[0] == "forbidden", persona
        assert _get(client, f"/AuditEvent/{uuid.uuid4()}", expect=403)
    login(client, ADMIN)
    [denied] = _entries(_get(client, "/AuditEvent", patient=jeanne["id"], subtype="patient:record:denied"))
    assert denied["outcome"] == "4" and denied["action"] == "R"
    assert denied["agent"][0]["who"]["display"].endswith("(brancardier)")
    assert {"type": "action", "valueString": "patient:condition:list"} in denied["entity"][0]["detail"]


def test_break_the_glass_opens_the_chart_and_the_trail_shows_an_emergency_purpose(client: TestClient, app: Any,
                                                                                    clock: FixedClock) -> None:
    login(client, CLERK)
    patient = _patient(client)
    _admit(client, patient["id"], unit="LENS-MED-CARDIO", bed=None)  # not the nurse's unit
    login(client, NURSE)
    assert _get(client, f"/Patient/{patient['id']}/$everything", expect=404)
    reason = "Malaise dans le couloir, patiente inconsciente"
    opened = client.post("/bris-de-glace", data={"ipp": patient["ipp"], "reason": reason,
                                                 "csrf_token": form_token(client, "/bris-de-glace")},
                         follow_redirects=False)
    assert opened.status_code == 303
    everything = _get(client, f"/Patient/{patient['id']}/$everything")
    assert [r["resourceType"] for r in _entries(everything)] == ["Patient", "Encounter"]
    assert _trail(app, patient["id"])[-1].details == {"purpose": "care", "basis": "break_the_glass"}
    with TestClient(app) as dim:
        login(dim, DIM)
        broken, = _entries(_get(dim, "/AuditEvent", patient=patient["id"], subtype="patient:record:break-the-glass"))
        assert broken["purposeOfEvent"] == [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                                         "code": "ETREAT", "display": "Emergency Treatment"}],
                                             "text": reason}]
        assert broken["action"] == "E" and broken["outcome"] == "0"
        read, = _entries(_get(dim, "/AuditEvent", patient=patient["id"], subtype="patient:record:everything",
                              date="ge2026-11-25T09:30:00Z"))
        assert [e["outcome"] for e in _entries(_get(dim, "/AuditEvent", patient=patient["id"],
                                                     subtype="patient:record:denied"))] == ["4"]
        assert read["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"
