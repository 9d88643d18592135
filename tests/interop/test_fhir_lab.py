"""Laboratory orders through the FHIR facade: ServiceRequest per order and Specimen per label,
read and searched per patient under the same door and audit as the pages; every answer is
checked with fhir.resources (R4B)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.interop.fhir_lab import SPECIMEN_VIEWED
from naho.platform.audit import AuditEvent, AuditTag
from naho.platform.deps import Container
from naho.results import orders
from naho.results.fhir import LOINC_SYSTEM, PLACER_SYSTEM, SPECIMEN_SYSTEM
from naho.results.models import LabOrder
from tests.interop.test_fhir_api import _entries, _get
from tests.personas import CLERK, NURSE, PHYSICIAN, form_token, login
from tests.results.conftest import Inpatient, admit_inpatient, container

__all__ = ["container"]  # the app's container, as the results tests use it


def _ordered(client: TestClient, container: Container, patient: Inpatient) -> list[LabOrder]:
    page = f"/patients/{patient.id}/examens-biologiques"
    login(client, PHYSICIAN)
    assert client.post(page, data={"examens": ["IONO", "CRP", "TPINR"], "urgence": "urgent",
                                   "renseignements": "Fièvre", "csrf_token": form_token(client, page)},
                       follow_redirects=False).status_code == 303
    with container.uow() as uow:
        rows = list(uow.session.scalars(select(LabOrder).order_by(LabOrder.placer_number)))
        uow.session.expunge_all()
    login(client, NURSE)
    assert client.post(f"{page}/prelevement", data={"etiquette": rows[0].specimen_number,
                                                    "csrf_token": form_token(client)},
                       follow_redirects=False).status_code == 303
    login(client, PHYSICIAN)
    assert client.post(f"{page}/{rows[2].id}/annulation", data={"csrf_token": form_token(client)},
                       follow_redirects=False).status_code == 303
    return rows


def _events(container: Container, action: str) -> list[AuditEvent]:
    with container.uow() as uow:
        found = list(uow.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
        uow.session.expunge_all()
        return found


def test_orders_are_service_requests_of_their_patient(client: TestClient, container: Container) -> None:
    patient = admit_inpatient(container)
    iono, crp, tp = _ordered(client, container, patient)
    bundle = _get(client, "/ServiceRequest", patient=f"Patient/{patient.id}", _include="ServiceRequest:patient")
    found = _entries(bundle)
    assert [r["resourceType"] for r in found] == ["ServiceRequest"] * 3 + ["Patient"]
    by_id = {r["id"]: r for r in found[:3]}
    resource = by_id[str(iono.id)]
    assert resource["status"] == "active" and resource["intent"] == "order" and resource["priority"] == "urgent"
    assert {"system": LOINC_SYSTEM, "code": "24326-1", "display": "Ionogramme sanguin"} in resource["code"]["coding"]
    assert resource["identifier"][0]["system"] == PLACER_SYSTEM
    assert resource["identifier"][0]["value"] == iono.placer_number
    assert resource["specimen"] == [{"reference": f"Specimen/{iono.specimen_number}"}]
    assert resource["encounter"]["reference"].startswith("Encounter/") and resource["note"] == [{"text": "Fièvre"}]
    assert by_id[str(tp.id)]["status"] == "revoked"
    assert len(by_id[str(tp.id)]["code"]["coding"]) == 1  # a local panel: no LOINC of its own

    revoked = _entries(_get(client, "/ServiceRequest", patient=str(patient.id), status="revoked"))
    assert [r["id"] for r in revoked] == [str(tp.id)]
    read = _get(client, f"/ServiceRequest/{crp.id}")
    assert read["id"] == str(crp.id) and read["subject"] == {"reference": f"Patient/{patient.id}"}
    assert str(crp.id) in {e.target for e in _events(container, orders.VIEWED)}


def test_specimens_carry_their_label_number_and_collection(client: TestClient, container: Container) -> None:
    patient = admit_inpatient(container)
    iono, crp, tp = _ordered(client, container, patient)
    found = _entries(_get(client, "/Specimen", subject=f"Patient/{patient.id}"))
    by_id = {r["id"]: r for r in found}
    assert set(by_id) == {iono.specimen_number, tp.specimen_number}  # IONO and CRP share the green tube
    tube = by_id[iono.specimen_number]
    assert tube["identifier"] == [{"system": SPECIMEN_SYSTEM, "value": iono.specimen_number}]
    assert tube["status"] == "available" and tube["type"]["coding"][0]["code"] == "PLAS"
    assert {r["reference"] for r in tube["request"]} == {f"ServiceRequest/{iono.id}", f"ServiceRequest/{crp.id}"}
    assert "collectedDateTime" in tube["collection"] and tube["collection"]["collector"]["display"]
    assert by_id[tp.specimen_number]["status"] == "unavailable" and "collection" not in by_id[tp.specimen_number]
    read = _get(client, f"/Specimen/{iono.specimen_number}")
    assert read["id"] == iono.specimen_number
    assert _events(container, SPECIMEN_VIEWED)


def test_outside_the_care_team_nothing_is_shown_and_the_refusal_is_traced(
        client: TestClient, container: Container) -> None:
    patient = admit_inpatient(container)
    iono, _crp, _tp = _ordered(client, container, patient)
    login(client, CLERK)  # administrative staff: no clinical content
    assert _entries(_get(client, "/ServiceRequest", patient=str(patient.id))) == []
    assert _entries(_get(client, "/Specimen", patient=str(patient.id))) == []
    _get(client, f"/ServiceRequest/{iono.id}", expect=404)
    _get(client, f"/Specimen/{iono.specimen_number}", expect=404)
    _get(client, "/Specimen/S0000000999", expect=404)
    _get(client, "/ServiceRequest/not-a-uuid", expect=404)
    denied = [e for e in _events(container, AuditTag.ACCESS_DENIED) if e.patient_id == patient.id]
    assert {e.details["action"] for e in denied} == {orders.VIEWED, SPECIMEN_VIEWED}
