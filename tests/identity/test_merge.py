"""Merging two records of one person: traced, refused for two different people, undoable; the
stays follow the survivor and come back on undo."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.personas import CLERK, NURSE, VIGILANCE, form_token, login

PAUL = {"birth_name": "Dufour", "first_names": "Paul", "sex": "M", "birth_date": "1951-07-02", "birth_place": "62498"}


def _post(client: TestClient, path: str, body: dict):  # type: ignore[no-untyped-def, type-arg]
    return client.post(path, json=body, headers={"x-csrf-token": form_token(client)})


def _two_records_of_paul(client: TestClient) -> tuple[str, str, str]:
    """The second record was created with a typo and confirmed by mistake; it holds a stay."""
    login(client, CLERK)
    first = _post(client, "/api/patients", PAUL).json()["id"]
    second = _post(client, "/api/patients", {**PAUL, "birth_name": "Dufourr",
                                             "confirm_reason": "pensé être un homonyme"}).json()["id"]
    stay = _post(client, "/api/encounters", {"patient_id": second, "establishment_code": "LENS",
                                              "encounter_class": "inpatient", "unit_code": "LENS-MED-MIN"}).json()["id"]
    return first, second, stay


def _merge(client: TestClient, survivor: str, merged: str, reason: str = "Même personne, pièce d'identité vue",  # type: ignore[no-untyped-def]
           **more: str):
    return client.post("/identitovigilance/fusion", data={
        "survivor": survivor, "merged": merged, "reason": reason,
        "csrf_token": form_token(client, "/identitovigilance"), **more}, follow_redirects=False)


def test_a_merge_moves_the_stays_and_redirects_the_merged_record(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    first, second, stay = _two_records_of_paul(client)
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        nurse.post(f"/patients/{second}/allergies", data={"substance_label": "Latex", "substance_code": "ENV:latex",
                                                          "csrf_token": form_token(nurse)})
    login(client, VIGILANCE)
    response = _merge(client, first, second)
    assert response.status_code == 303 and response.headers["location"] == f"/patients/{first}"
    assert client.get(f"/patients/{second}", follow_redirects=False).headers["location"] == f"/patients/{first}"
    login(client, CLERK)
    page = client.get(f"/patients/{first}").text
    assert 'id="stays"' in page and 'id="location"' in page  # the stay followed the survivor
    assert "Médecine interne" in page.split('id="location"')[1][:300]
    transferred = _post(client, f"/api/encounters/{stay}/transfer", {"unit_code": "LENS-MED-CARDIO"}).json()
    assert transferred["patient_id"] == first
    with TestClient(app) as nurse:
        login(nurse, NURSE)  # her unit had the patient less than 30 days ago
        assert "Latex" in nurse.get(f"/patients/{first}").text.split('id="allergy-banner"')[1][:200]
    assert all(p["id"] != second for p in client.get("/api/patients", params={"q": "dufour"}).json())


def test_undo_brings_back_exactly_what_moved(client: TestClient) -> None:
    first, second, _stay = _two_records_of_paul(client)
    login(client, VIGILANCE)
    _merge(client, first, second)
    merges = client.get("/identitovigilance/fusions").text
    merge_id = re.search(r"/identitovigilance/fusions/([0-9a-f-]{36})/annulation", merges)
    assert merge_id
    client.post(f"/identitovigilance/fusions/{merge_id.group(1)}/annulation",
                data={"csrf_token": form_token(client, "/identitovigilance/fusions")})
    assert "Annulée" in client.get("/identitovigilance/fusions").text
    login(client, CLERK)
    assert 'id="stays"' not in client.get(f"/patients/{first}").text
    assert 'id="location"' in client.get(f"/patients/{second}").text


def test_two_different_ins_are_never_merged(client: TestClient) -> None:
    login(client, CLERK)
    a = _post(client, "/api/patients", PAUL).json()["id"]
    b = _post(client, "/api/patients", {**PAUL, "first_names": "Pierre", "birth_date": "1951-07-03"}).json()["id"]
    for patient in (a, b):
        client.post(f"/patients/{patient}/identite/insi", data={"csrf_token": form_token(client)})
    login(client, VIGILANCE)
    response = _merge(client, a, b)
    assert response.status_code == 409 and "deux INS différents" in response.text
    login(client, CLERK)
    assert client.get(f"/patients/{b}", follow_redirects=False).status_code == 200


def test_declared_twins_are_never_merged(client: TestClient) -> None:
    login(client, VIGILANCE)
    a = _post(client, "/api/patients", PAUL).json()["id"]
    b = _post(client, "/api/patients", {**PAUL, "first_names": "Pierre"}).json()["id"]
    client.post("/identitovigilance/distincts", data={"first": a, "second": b,
                                                      "csrf_token": form_token(client, "/identitovigilance")})
    assert _merge(client, a, b).status_code == 409


def test_suspected_twins_are_merged_only_once_twins_are_ruled_out(client: TestClient) -> None:
    # Same birth name, birth date and place, other first name: the matcher suspects twins.
    login(client, VIGILANCE)
    a = _post(client, "/api/patients", PAUL).json()["id"]
    b = _post(client, "/api/patients", {**PAUL, "first_names": "Pierre",
                                        "confirm_reason": "jumeaux ? à vérifier"}).json()["id"]
    page = client.get("/identitovigilance").text
    assert "jumeau ?" in page and 'name="not_twins"' in page
    refused = _merge(client, a, b)
    assert refused.status_code == 409 and "jumeaux" in refused.text
    assert client.get(f"/patients/{b}", follow_redirects=False).status_code == 200  # not merged
    # The legitimate twin: documents show one person (the first name was mistyped), stated so.
    merged = _merge(client, a, b, reason="Même personne : CNI vue, prénom mal saisi", not_twins="yes")
    assert merged.status_code == 303 and merged.headers["location"] == f"/patients/{a}"


def test_a_merge_needs_a_reason_and_identity_vigilance(client: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    first, second, _stay = _two_records_of_paul(client)
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        assert _merge(nurse, first, second).status_code == 403
    login(client, VIGILANCE)
    assert _merge(client, first, second, reason="").status_code == 409
    assert client.get(f"/patients/{second}", follow_redirects=False).status_code == 200


def test_the_worklist_offers_to_keep_either_record(client: TestClient) -> None:
    first, second, _stay = _two_records_of_paul(client)
    login(client, VIGILANCE)
    page = client.get("/identitovigilance").text
    offers = set(re.findall(r'name="survivor" value="([0-9a-f-]{36})"><input type="hidden" name="merged" '
                            r'value="([0-9a-f-]{36})"', page))
    assert {(first, second), (second, first)} <= offers
    assert _merge(client, second, first).status_code == 303  # keep the record that holds the stay
    login(client, CLERK)
    assert client.get(f"/patients/{first}", follow_redirects=False).headers["location"] == f"/patients/{second}"
