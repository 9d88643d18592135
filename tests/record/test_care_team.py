"""The care team of a stay: named members added and ended by the team itself or the admission
desk, the units' staff derived, every view and change through the door and in the audit trail."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from naho.platform.audit import AuditEvent
from naho.platform.security.rules import Role
from naho.platform.uow import UnitOfWork
from naho.record import care_team
from naho.record.models import CareTeamMember
from naho.staff import service as staff
from tests.personas import CLERK, NURSE, PHARMACIST, PHYSICIAN, PORTER, form_token, login

UowFactory = Callable[[], UnitOfWork]


def _admit(client: TestClient, unit: str, bed: str | None = None, name: str = "Deprez") -> tuple[str, str]:
    """A patient admitted by the admission desk; (patient id, stay id)."""
    login(client, CLERK)
    token = form_token(client)
    patient = client.post("/api/patients", headers={"x-csrf-token": token}, json={
        "birth_name": name, "first_names": "Lucien", "sex": "M", "birth_date": "1937-11-08"}).json()["id"]
    stay = client.post("/api/encounters", headers={"x-csrf-token": token}, json={
        "patient_id": patient, "establishment_code": "LENS", "encounter_class": "inpatient",
        "unit_code": unit, "bed_code": bed}).json()["id"]
    return str(patient), str(stay)


@pytest.fixture
def stay(client: TestClient) -> tuple[str, str]:
    """A patient in internal medicine, the unit of the demo nurse and physician."""
    return _admit(client, "LENS-MED-MIN", "LENS-MED-MIN-524-1")


def _post(client: TestClient, path: str, **data: str):  # type: ignore[no-untyped-def]
    return client.post(path, data={**data, "csrf_token": form_token(client)}, follow_redirects=False)


def _section(html: str, section: str) -> str:
    return html.split(f'id="{section}"')[1].split("</section>")[0] if f'id="{section}"' in html else ""


def _events(uow_factory: UowFactory, action: str) -> list[AuditEvent]:
    with uow_factory() as uow:
        rows = list(uow.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                        .order_by(AuditEvent.seq)))
        uow.session.expunge_all()
        return rows


def _members(uow_factory: UowFactory) -> int:
    with uow_factory() as uow:
        return uow.session.execute(select(func.count()).select_from(CareTeamMember)).scalar_one()


def _unit_staff(uow_factory: UowFactory, unit: str, profession: str) -> str:
    """Username of a synthetic professional of `unit` (signed in with the development password)."""
    with uow_factory() as uow:
        people, _ = staff.list_staff(uow.session, unit_code=unit)
    return next(p.username for p in people if p.profession == profession)


# --- pure rules -----------------------------------------------------------------------------------

def test_who_may_change_a_care_team() -> None:
    assert care_team.may_change(frozenset({Role.ADMISSION_CLERK}), in_team=False)
    assert care_team.may_change(frozenset({Role.NURSE}), in_team=True)
    assert care_team.may_change(frozenset({Role.PHYSICIAN}), in_team=True)
    assert not care_team.may_change(frozenset({Role.NURSE}), in_team=False)
    assert not care_team.may_change(frozenset({Role.PHARMACIST}), in_team=True)
    assert not care_team.may_change(frozenset({Role.PORTER}), in_team=True)


def test_a_role_wants_the_right_profession_an_open_stay_and_a_new_member() -> None:
    assert care_team.check_new_member("referring_physician", "physician", "in_progress", False).code == \
        "referring_physician"
    assert care_team.check_new_member("physiotherapist", "nurse", "on_leave", False).code == "physiotherapist"
    with pytest.raises(care_team.ProfessionDoesNotFitRole):
        care_team.check_new_member("referring_physician", "nurse", "in_progress", False)
    with pytest.raises(care_team.ProfessionDoesNotFitRole):
        care_team.check_new_member("physiotherapist", "porter", "in_progress", False)
    with pytest.raises(care_team.UnknownTeamRole):
        care_team.check_new_member("chef", "physician", "in_progress", False)
    with pytest.raises(care_team.StayClosed):
        care_team.check_new_member("intern", "physician", "finished", False)
    with pytest.raises(care_team.AlreadyInCareTeam):
        care_team.check_new_member("intern", "physician", "in_progress", True)
    nurse_roles = care_team.roles_for("nurse")
    assert "referring_nurse" in nurse_roles and "referring_physician" not in nurse_roles
    assert care_team.roles_for("porter") == []


# --- pages ----------------------------------------------------------------------------------------

def test_the_patient_page_links_each_stay_to_its_care_team(client: TestClient, stay: tuple[str, str]) -> None:
    patient, encounter = stay
    page = client.get(f"/patients/{patient}").text
    assert f'href="/sejours/{encounter}/equipe"' in page.split('id="stays"')[1]


def test_the_unit_nurse_sees_the_team_and_names_a_referring_physician(
        client: TestClient, stay: tuple[str, str], uow_factory: UowFactory) -> None:
    _patient, encounter = stay
    login(client, NURSE)
    page = client.get(f"/sejours/{encounter}/equipe")
    assert page.status_code == 200
    units = _section(page.text, "unit-teams")
    assert "Julien DUPONT" in units and "Claire LEFEBVRE" in units  # the unit's staff, derived
    assert "LEFEBVRE" not in _section(page.text, "named-members")
    found = client.get(f"/sejours/{encounter}/equipe", params={"q": "lefeb"}).text
    assert "Claire LEFEBVRE" in _section(found, "add-member") and 'value="medecin"' in found
    assert "DEPREZ Lucien" in page.text and "IPP" in page.text  # whose team it is, on every page

    response = _post(client, f"/sejours/{encounter}/equipe/membres", username="medecin", role="referring_physician")
    assert response.status_code == 303 and response.headers["location"] == f"/sejours/{encounter}/equipe"
    named = _section(client.get(f"/sejours/{encounter}/equipe").text, "named-members")
    assert "Claire LEFEBVRE" in named and _members(uow_factory) == 1
    [added] = _events(uow_factory, care_team.MEMBER_ADDED)
    assert added.actor_label.startswith("Julien") and added.target == encounter
    assert added.details["username"] == "medecin" and added.details["role"] == "referring_physician"
    assert [e.target for e in _events(uow_factory, care_team.ACCESS_CHANGE)] == [encounter]
    assert len(_events(uow_factory, care_team.ACCESS_VIEW)) == 3  # every view through the door


def test_ending_a_membership_deletes_it_and_the_trail_keeps_it(
        client: TestClient, stay: tuple[str, str], uow_factory: UowFactory) -> None:
    _patient, encounter = stay
    login(client, PHYSICIAN)
    _post(client, f"/sejours/{encounter}/equipe/membres", username="infirmier", role="referring_nurse")
    with uow_factory() as uow:
        member = uow.session.scalars(select(CareTeamMember.id)).one()
    response = _post(client, f"/sejours/{encounter}/equipe/membres/{member}/fin")
    assert response.status_code == 303
    assert _members(uow_factory) == 0
    page = client.get(f"/sejours/{encounter}/equipe").text
    assert "DUPONT" not in _section(page, "named-members")
    assert "Julien DUPONT" in _section(page, "former-members") and "Claire LEFEBVRE" in _section(page, "former-members")
    [removed] = _events(uow_factory, care_team.MEMBER_REMOVED)
    assert removed.details["username"] == "infirmier" and removed.details["role"] == "referring_nurse"
    assert removed.details["member_id"] == str(member) and removed.details["since"]
    assert removed.actor_label.startswith("Claire")
    again = _post(client, f"/sejours/{encounter}/equipe/membres/{member}/fin")
    assert again.headers["location"].endswith("erreur=MemberNotFound")


def test_a_named_member_from_another_unit_opens_the_chart(
        client: TestClient, app, stay: tuple[str, str], uow_factory: UowFactory) -> None:  # type: ignore[no-untyped-def]
    patient, encounter = stay
    cardiologist = _unit_staff(uow_factory, "LENS-MED-CARDIO", "physician")
    with TestClient(app) as outsider:
        login(outsider, cardiologist)
        assert outsider.get(f"/patients/{patient}").status_code == 404
        login(client, NURSE)
        response = _post(client, f"/sejours/{encounter}/equipe/membres", username=cardiologist,
                         role="consulting_physician")
        assert response.status_code == 303
        assert outsider.get(f"/patients/{patient}").status_code == 200  # record.service.CARE reads the table
        assert outsider.get(f"/sejours/{encounter}/equipe").status_code == 200


@pytest.mark.parametrize(("username", "role", "rule"), [
    ("infirmier", "referring_physician", "ProfessionDoesNotFitRole"),
    ("brancardier", "physiotherapist", "ProfessionDoesNotFitRole"),
    ("medecin", "chef_de_clinique_imaginaire", "UnknownTeamRole"),
    ("personne", "intern", "StaffNotFound"),
    ("", "", "StaffNotFound"),
])
def test_a_member_that_breaks_a_rule_is_refused_and_explained(
        client: TestClient, stay: tuple[str, str], uow_factory: UowFactory, username: str, role: str,
        rule: str) -> None:
    _patient, encounter = stay
    login(client, NURSE)
    response = _post(client, f"/sejours/{encounter}/equipe/membres", username=username, role=role)
    assert response.headers["location"] == f"/sejours/{encounter}/equipe?erreur={rule}"
    page = client.get(response.headers["location"]).text
    assert 'class="alert' in page
    assert _members(uow_factory) == 0


def test_a_member_is_named_once_and_a_finished_stay_takes_no_new_one(
        client: TestClient, stay: tuple[str, str], uow_factory: UowFactory) -> None:
    _patient, encounter = stay
    login(client, NURSE)
    _post(client, f"/sejours/{encounter}/equipe/membres", username="medecin", role="referring_physician")
    twice = _post(client, f"/sejours/{encounter}/equipe/membres", username="medecin", role="intern")
    assert twice.headers["location"].endswith("erreur=AlreadyInCareTeam")
    login(client, CLERK)
    client.post(f"/api/encounters/{encounter}/discharge", headers={"x-csrf-token": form_token(client)}, json={})
    login(client, NURSE)
    late = _post(client, f"/sejours/{encounter}/equipe/membres", username="infirmier", role="referring_nurse")
    assert late.headers["location"].endswith("erreur=StayClosed")
    assert _members(uow_factory) == 1


def test_the_admission_desk_names_a_referent_without_being_in_the_team(
        client: TestClient, stay: tuple[str, str], uow_factory: UowFactory) -> None:
    _patient, encounter = stay
    login(client, CLERK)
    page = client.get(f"/sejours/{encounter}/equipe")
    assert page.status_code == 200 and 'id="add-member"' in page.text
    response = _post(client, f"/sejours/{encounter}/equipe/membres", username="medecin", role="referring_physician")
    assert response.status_code == 303 and _members(uow_factory) == 1
    [event] = _events(uow_factory, care_team.ACCESS_CHANGE)
    assert event.details["purpose"] == "administration"


# --- refusals -------------------------------------------------------------------------------------

def test_a_porter_and_a_pharmacist_are_refused_changes(
        client: TestClient, app, stay: tuple[str, str], uow_factory: UowFactory) -> None:  # type: ignore[no-untyped-def]
    _patient, encounter = stay
    with TestClient(app) as porter:
        login(porter, PORTER)
        page = porter.get(f"/sejours/{encounter}/equipe")
        assert page.status_code == 403 and "DEPREZ" not in page.text
        refused = _post(porter, f"/sejours/{encounter}/equipe/membres", username="medecin", role="intern")
        assert refused.status_code == 403
    with TestClient(app) as pharmacist:
        login(pharmacist, PHARMACIST)
        refused = _post(pharmacist, f"/sejours/{encounter}/equipe/membres", username="medecin", role="intern")
        assert refused.status_code == 403
    assert _members(uow_factory) == 0


def test_anonymous_visitors_are_sent_to_sign_in(client: TestClient, app, stay: tuple[str, str]) -> None:  # type: ignore[no-untyped-def]
    _patient, encounter = stay
    with TestClient(app) as anonymous:
        page = anonymous.get(f"/sejours/{encounter}/equipe", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/connexion")
        api = anonymous.get(f"/sejours/{encounter}/equipe", headers={"accept": "application/json"})
        assert api.status_code == 401 and api.headers["content-type"] == "application/problem+json"
        post = anonymous.post(f"/sejours/{encounter}/equipe/membres", data={"username": "medecin", "role": "intern"},
                              follow_redirects=False)
        assert post.status_code in (303, 403) and "DEPREZ" not in post.text


def test_a_nurse_outside_the_care_team_is_refused_and_the_refusal_audited(
        client: TestClient, app, uow_factory: UowFactory) -> None:  # type: ignore[no-untyped-def]
    _patient, encounter = _admit(client, "LENS-MED-CARDIO", name="Hennebelle")  # not the demo nurse's unit
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        page = nurse.get(f"/sejours/{encounter}/equipe")
        assert page.status_code == 404 and "HENNEBELLE" not in page.text  # the door: absent or forbidden alike
        add = _post(nurse, f"/sejours/{encounter}/equipe/membres", username="infirmier", role="referring_nurse")
        assert add.status_code == 404
    assert _members(uow_factory) == 0
    denied = _events(uow_factory, "patient:record:denied")
    assert [e.details["action"] for e in denied] == [care_team.ACCESS_VIEW, care_team.ACCESS_CHANGE]


def test_a_nurse_of_another_stay_sees_this_team_but_may_not_change_it(
        client: TestClient, app, uow_factory: UowFactory) -> None:  # type: ignore[no-untyped-def]
    """Last week in internal medicine (the nurse's unit), now in cardiology: the door opens the
    patient to her (a recent stay), but the cardiology stay's team is not hers to change."""
    patient, before = _admit(client, "LENS-MED-MIN", name="Hennebelle")
    token = form_token(client)
    assert client.post(f"/api/encounters/{before}/discharge", headers={"x-csrf-token": token},
                       json={}).status_code == 200
    now = client.post("/api/encounters", headers={"x-csrf-token": token}, json={
        "patient_id": patient, "establishment_code": "LENS", "encounter_class": "inpatient",
        "unit_code": "LENS-MED-CARDIO"}).json()["id"]
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        page = nurse.get(f"/sejours/{now}/equipe")
        assert page.status_code == 200 and 'id="add-member"' not in page.text
        refused = _post(nurse, f"/sejours/{now}/equipe/membres", username="infirmier", role="referring_nurse")
        assert refused.status_code == 403 and "HENNEBELLE" not in refused.text
        assert _post(nurse, f"/sejours/{before}/equipe/membres", username="infirmier",
                     role="referring_nurse").headers["location"].endswith("erreur=StayClosed")
    assert _members(uow_factory) == 0


def test_break_the_glass_shows_the_team_but_gives_no_right_to_change_it(
        client: TestClient, app, uow_factory: UowFactory) -> None:  # type: ignore[no-untyped-def]
    patient, encounter = _admit(client, "LENS-MED-CARDIO", name="Hennebelle")
    with TestClient(app) as nurse:
        login(nurse, NURSE)
        patient_page = nurse.get(f"/patients/{patient}")
        assert patient_page.status_code == 404
        login(client, CLERK)
        ipp = client.get(f"/api/patients/{patient}").json()["ipp"]
        glass = _post(nurse, "/bris-de-glace", ipp=ipp, reason="Arrêt cardiaque dans le couloir, prise en charge")
        assert glass.status_code == 303
        page = nurse.get(f"/sejours/{encounter}/equipe")
        assert page.status_code == 200 and 'id="add-member"' not in page.text
        refused = _post(nurse, f"/sejours/{encounter}/equipe/membres", username="infirmier", role="referring_nurse")
        assert refused.status_code == 403
        assert "HENNEBELLE" not in refused.text
    assert _members(uow_factory) == 0


def test_a_stay_that_does_not_exist_is_not_found(client: TestClient) -> None:
    login(client, NURSE)
    assert client.get(f"/sejours/{uuid.uuid4()}/equipe").status_code == 404
    assert _post(client, f"/sejours/{uuid.uuid4()}/equipe/membres", username="medecin",
                 role="intern").status_code == 404
