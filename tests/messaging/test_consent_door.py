"""The patient's objection to sharing between the group's establishments, enforced by the door:
the care team is unaffected; outside it, professionals of an establishment that never treated
the patient are refused, break-the-glass included; professionals of an establishment that did
may still break the glass. Read from the consent registry, the one place consents live."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.platform.audit import AuditEvent
from naho.platform.i18n import _
from naho.staff import service as staff
from tests.personas import CLERK, PHYSICIAN, csrf_from, form_token, login

REASON = "Patient inconscient aux urgences, antécédents à connaître"


def _physician_of(app: FastAPI, unit: str) -> str:
    with app.state.container.uow() as uow:
        people, _total = staff.list_staff(uow.session, unit_code=unit)
    return next(p.username for p in people if p.profession == "physician")


def _admitted_in_lens_cardiology(client: TestClient) -> tuple[str, str]:
    login(client, CLERK)
    token = form_token(client)
    patient = client.post("/api/patients", headers={"x-csrf-token": token}, json={
        "birth_name": "Lemaire", "first_names": "Odile", "sex": "F", "birth_date": "1950-06-02"}).json()["id"]
    stay = client.post("/api/encounters", headers={"x-csrf-token": token}, json={
        "patient_id": patient, "establishment_code": "LENS", "encounter_class": "inpatient",
        "unit_code": "LENS-MED-CARDIO"})
    assert stay.status_code in (200, 201), stay.text
    return patient, client.get(f"/api/patients/{patient}").json()["ipp"]


def _objection(client: TestClient, patient: str, objects: bool) -> None:
    page = client.get(f"/patients/{patient}/correspondants")
    assert page.status_code == 200
    client.post(f"/patients/{patient}/opposition", data={
        "purpose": "group_establishments", "objects": "oui" if objects else "non", "csrf_token": csrf_from(page.text)})


def _break_glass(client: TestClient, ipp: str):  # type: ignore[no-untyped-def]
    return client.post("/bris-de-glace", data={"ipp": ipp, "reason": REASON,
                                               "csrf_token": form_token(client, "/bris-de-glace")},
                       follow_redirects=False)


def test_an_objection_keeps_out_the_establishments_that_never_treated_the_patient(client: TestClient,
                                                                                 app: FastAPI) -> None:
    patient, ipp = _admitted_in_lens_cardiology(client)
    with TestClient(app) as cardiologist, TestClient(app) as bethune, TestClient(app) as lens:
        login(cardiologist, _physician_of(app, "LENS-MED-CARDIO"))  # the care team
        _objection(cardiologist, patient, objects=True)
        assert cardiologist.get(f"/patients/{patient}").status_code == 200

        login(bethune, _physician_of(app, "BETHUNE-URG-SAU"))
        refused = _break_glass(bethune, ipp)
        assert refused.status_code == 422
        assert _("The patient objected to sharing their record with the establishments of the group that did not "
                 "treat them: no emergency access from yours.")[:40] in refused.text.replace("&#39;", "'")
        assert bethune.get(f"/patients/{patient}").status_code == 404

        login(lens, PHYSICIAN)  # Lens internal medicine: not the care team, but Lens treated her
        assert _break_glass(lens, ipp).status_code == 303
        assert lens.get(f"/patients/{patient}").status_code == 200

        _objection(cardiologist, patient, objects=False)  # withdrawn: the emergency access opens
        assert _break_glass(bethune, ipp).status_code == 303
        assert bethune.get(f"/patients/{patient}").status_code == 200

        _objection(cardiologist, patient, objects=True)  # objected again: the open access closes at once
        assert bethune.get(f"/patients/{patient}").status_code == 404
        assert lens.get(f"/patients/{patient}").status_code == 200

    with app.state.container.uow() as uow:
        denied = uow.session.scalars(select(AuditEvent.details).where(
            AuditEvent.action == "patient:record:denied")).all()
    assert any((d or {}).get("refused") == "sharing objected" for d in denied)
