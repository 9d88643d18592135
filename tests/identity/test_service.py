"""Registering, finding and qualifying identities through the API, as a clerk's software does."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.identity.models import IdentityEvent
from tests.personas import CLERK, NURSE, VIGILANCE, form_token, login

JEANNE = {"birth_name": "Lefèvre", "first_names": "Jeanne Marie", "sex": "F", "birth_date": "1948-03-12",
          "birth_place": "62498"}


def _post(client: TestClient, path: str, body: dict):  # type: ignore[no-untyped-def, type-arg]
    return client.post(path, json=body, headers={"x-csrf-token": form_token(client)})


def _register(client: TestClient, **overrides: str):  # type: ignore[no-untyped-def]
    return _post(client, "/api/patients", {**JEANNE, **overrides})


def test_a_clerk_registers_a_provisional_identity_with_an_ipp(client: TestClient) -> None:
    login(client, CLERK)
    response = _register(client)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["birth_name"] == "LEFEVRE" and body["first_names"] == "JEANNE MARIE"  # RNIV capture rules
    assert body["status"] == "provisional" and body["ins"] is None
    assert body["ipp"].isdigit() and len(body["ipp"]) == 8
    assert _register(client, birth_name="Martin").json()["ipp"] != body["ipp"]


def test_a_probable_duplicate_stops_the_registration_until_confirmed(client: TestClient) -> None:
    login(client, CLERK)
    first = _register(client).json()
    again = _register(client, birth_name="Lefebvre", birth_date="1948-12-03")  # phonetic + day/month swap
    assert again.status_code == 409
    problem = again.json()
    assert problem["candidates"][0]["ipp"] == first["ipp"]
    assert problem["candidates"][0]["verdict"] in ("same", "probable")
    confirmed = _post(client, "/api/patients", {**JEANNE, "birth_name": "Lefebvre", "birth_date": "1948-12-03",
                                               "confirm_reason": "Homonyme vérifiée sur pièce d'identité"})
    assert confirmed.status_code == 201


def test_a_twin_is_registered_without_being_taken_for_a_duplicate(client: TestClient) -> None:
    login(client, CLERK)
    assert _register(client).status_code == 201
    twin = _register(client, first_names="Louise")
    assert twin.status_code == 201, twin.text


def test_a_nurse_cannot_register_a_patient(client: TestClient) -> None:
    login(client, NURSE)
    assert _register(client).status_code == 403


def test_a_low_trust_document_does_not_validate(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    patient = _register(client).json()
    refused = _post(client, f"/api/patients/{patient['id']}/validation", {"proof": "vitale_card"})
    assert refused.status_code == 409 and refused.json()["rule"] == "LowTrustProofError"
    assert client.get(f"/api/patients/{patient['id']}").json()["status"] == "provisional"
    validated = _post(client, f"/api/patients/{patient['id']}/validation", {"proof": "passport"})
    assert validated.status_code == 200 and validated.json()["status"] == "validated"
    with app.state.container.session_factory() as s:
        events = s.scalars(select(IdentityEvent).where(IdentityEvent.kind == "validate")).all()
    assert [(e.status_before, e.status_after, e.proof, e.actor_label) for e in events] == [
        ("provisional", "validated", "passport", "Sophie MARTIN (admission)")]


def test_the_ins_shows_only_once_the_identity_is_qualified(client: TestClient) -> None:
    login(client, CLERK)
    patient = _register(client).json()
    response = client.post(f"/patients/{patient['id']}/identite/insi", data={"csrf_token": form_token(client)},
                           follow_redirects=False)
    assert response.status_code == 303 and "erreur" not in response.headers["location"]
    retrieved = client.get(f"/api/patients/{patient['id']}").json()
    assert retrieved["status"] == "retrieved" and retrieved["ins"] is None  # retrieved, not yet usable
    qualified = _post(client, f"/api/patients/{patient['id']}/validation", {"proof": "national_id_card"}).json()
    assert qualified["status"] == "qualified"
    assert qualified["ins"] and qualified["ins"][0] == "2" and qualified["ins_oid"] == "1.2.250.1.213.1.4.11"
    assert qualified["ins"] in client.get(f"/patients/{patient['id']}").text


def test_a_doubt_downgrades_and_blocks_validation(client: TestClient) -> None:
    login(client, CLERK)
    patient = _register(client).json()
    _post(client, f"/api/patients/{patient['id']}/validation", {"proof": "passport"})
    client.post(f"/patients/{patient['id']}/identite/doute",
                data={"reason": "Patient confus, identité déclarée par un tiers", "csrf_token": form_token(client)})
    doubtful = client.get(f"/api/patients/{patient['id']}").json()
    assert doubtful["status"] == "provisional" and doubtful["doubtful"] is True
    refused = _post(client, f"/api/patients/{patient['id']}/validation", {"proof": "passport"})
    assert refused.status_code == 409 and refused.json()["rule"] == "RestrictedIdentityError"


def test_search_shows_only_patients_the_user_may_see(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    login(client, CLERK)
    patient = _register(client).json()
    assert [p["ipp"] for p in client.get("/api/patients", params={"q": "lefevre jeanne"}).json()] == [patient["ipp"]]
    assert [p["ipp"] for p in client.get("/api/patients", params={"q": patient["ipp"]}).json()] == [patient["ipp"]]
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        assert nurse.get("/api/patients", params={"q": "lefevre"}).json() == []
        assert nurse.get(f"/api/patients/{patient['id']}").status_code == 404


def test_search_by_name_prefix_finds_birth_and_used_names_in_order(client: TestClient) -> None:
    login(client, CLERK)
    people = [_register(client, birth_name=name, first_names=first, used_name=used, birth_date=born,
                        confirm_reason="autre personne").json()
              for name, first, used, born in (("Lefort", "Paul", "", "1960-01-01"),
                                              ("Martin", "Anne", "Lefebvre", "1970-05-05"),
                                              ("Lenoir", "Eve", "", "1980-02-02"),
                                              ("Dupont", "Luc", "", "1990-03-03"))]
    found = [p["birth_name"] for p in client.get("/api/patients", params={"q": "lef"}).json()]
    # Birth names and used names starting with LEF, ordered by the name that matched.
    assert found == ["MARTIN", "LEFORT"]  # MARTIN by her married name LEFEBVRE, then LEFORT
    assert [p["first_names"] for p in client.get("/api/patients", params={"q": "lef pa"}).json()] == ["PAUL"]
    assert client.get("/api/patients", params={"q": "lez"}).json() == []
    by_day = client.get("/api/patients", params={"q": "", "birth_date": "1980-02-02"}).json()
    assert [p["id"] for p in by_day] == [people[2]["id"]]


def test_identity_vigilance_sees_possible_duplicates_and_separates_twins(client: TestClient) -> None:
    login(client, VIGILANCE)
    _register(client)
    _register(client, first_names="Louise")  # a twin sister: "possible", not blocking
    page = client.get("/identitovigilance")
    assert page.status_code == 200 and "LOUISE" in page.text.upper() and "jumeau" in page.text
    ids = re.findall(r'name="(?:first|second)" value="([0-9a-f-]{36})"', page.text)
    assert len(ids) == 2
    client.post("/identitovigilance/distincts", data={"first": ids[0], "second": ids[1],
                                                      "csrf_token": form_token(client, "/identitovigilance")})
    assert "LOUISE" not in client.get("/identitovigilance").text.upper()


def test_a_nurse_cannot_open_the_worklist(client: TestClient) -> None:
    login(client, NURSE)
    assert client.get("/identitovigilance").status_code == 403


def test_the_ins_finds_only_a_qualified_identity(client: TestClient) -> None:
    login(client, CLERK)
    patient = _register(client).json()
    client.post(f"/patients/{patient['id']}/identite/insi", data={"csrf_token": form_token(client)})
    from naho.identity.insi import SimulatedInsi
    from naho.identity.rules import Traits

    ins = SimulatedInsi().search(Traits("LEFEVRE", None, ("JEANNE", "MARIE"), "F",
                                        __import__("datetime").date(1948, 3, 12), "62498"))
    assert ins is not None
    assert client.get("/api/patients", params={"q": ins.ins}).json() == []  # retrieved, not qualified
    _post(client, f"/api/patients/{patient['id']}/validation", {"proof": "passport"})
    assert [p["id"] for p in client.get("/api/patients", params={"q": ins.ins}).json()] == [patient["id"]]


def _patch(client: TestClient, patient_id: str, body: dict):  # type: ignore[no-untyped-def, type-arg]
    return client.patch(f"/api/patients/{patient_id}", json=body, headers={"x-csrf-token": form_token(client)})


def test_correcting_a_strict_trait_of_a_validated_identity_sends_it_back_to_provisional(client: TestClient) -> None:
    login(client, CLERK)
    patient = _register(client).json()
    _post(client, f"/api/patients/{patient['id']}/validation", {"proof": "passport"})
    contact = _patch(client, patient["id"], {"phone": "03 21 00 00 00", "reason": "nouveau numéro"}).json()
    assert contact["status"] == "validated" and contact["phone"] == "03 21 00 00 00"  # not a strict trait
    corrected = _patch(client, patient["id"], {"birth_date": "1948-03-13", "reason": "erreur de saisie"}).json()
    assert corrected["status"] == "provisional" and corrected["birth_date"] == "1948-03-13"


def test_strict_traits_from_insi_cannot_be_changed_by_hand(client: TestClient) -> None:
    login(client, CLERK)
    patient = _register(client).json()
    client.post(f"/patients/{patient['id']}/identite/insi", data={"csrf_token": form_token(client)})
    refused = _patch(client, patient["id"], {"birth_name": "Lefebvre", "reason": "orthographe"})
    assert refused.status_code == 409 and refused.json()["traits"] == ["birth_name"]
    assert client.get(f"/api/patients/{patient['id']}").json()["birth_name"] == "LEFEVRE"
    allowed = _patch(client, patient["id"], {"used_name": "Martin", "reason": "nom d'usage après mariage"})
    assert allowed.status_code == 200 and allowed.json()["used_name"] == "MARTIN"


def test_a_traits_correction_needs_a_reason(client: TestClient) -> None:
    login(client, CLERK)
    patient = _register(client).json()
    assert _patch(client, patient["id"], {"phone": "0600000000"}).status_code == 422


def test_the_clerk_corrects_a_typo_from_the_patient_page(client: TestClient) -> None:
    login(client, CLERK)
    patient = _register(client, first_names="Jeane").json()
    page = client.get(f"/patients/{patient['id']}").text
    assert 'id="traits-form"' in page
    response = client.post(f"/patients/{patient['id']}/identite/traits", data={
        "birth_name": "LEFEVRE", "first_names": "Jeanne", "used_name": "", "birth_date": "1948-03-12", "phone": "",
        "reason": "faute de frappe", "csrf_token": form_token(client)}, follow_redirects=False)
    assert response.headers["location"] == f"/patients/{patient['id']}"
    assert client.get(f"/api/patients/{patient['id']}").json()["first_names"] == "JEANNE"
