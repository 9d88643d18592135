"""What clinicians see of imaging with the local DICOM store (the demo's PACS): the patient's
studies, the viewer and its frames, imaging orders linked to their study, reports, the JSON API
and FHIR ImagingStudy; who is refused, and that it is traced."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.imagingstudy import ImagingStudy
from sqlalchemy import select

from naho.platform import i18n
from naho.platform.audit import AuditEvent
from naho.platform.deps import Container
from naho.platform.outbox import OutboxMessage
from naho.platform.security.actor import SYSTEM_ACTOR
from naho.platform.security.rules import Role
from naho.record import service as record
from naho.results import imaging_rules, imaging_service
from naho.results.dicom_store import LocalDicomStore
from naho.results.orthanc import OrthancStore
from tests.conftest import free_port
from tests.interop.test_mllp import ServerThread
from tests.personas import CLERK, NURSE, PHYSICIAN, PORTER, form_token, login
from tests.results.conftest import Inpatient, admit_inpatient, answer, obx, oru
from tests.results.imaging_support import ct_of, picture, radiograph_of, write

FHIR_JSON = "application/fhir+json"


@pytest.fixture
def dicom_dir(container: Container, tmp_path: Path) -> Path:
    """The app's image store: DICOM files in a fresh directory."""
    directory = tmp_path / "dicom"
    container.ports["images"] = LocalDicomStore(directory, zone=ZoneInfo("Europe/Paris"))
    return directory


def _signed_in(app: FastAPI, who: str) -> TestClient:
    return login(TestClient(app), who)


def _actions(container: Container, patient: Inpatient) -> list[str]:
    with container.uow() as uow:
        return list(uow.session.scalars(select(AuditEvent.action).where(AuditEvent.patient_id == patient.id)
                                        .order_by(AuditEvent.seq)))


def _order(client: TestClient, patient: Inpatient, **form: str):  # type: ignore[no-untyped-def]
    data = {"modality": "CT", "body_part": "Thorax", "question": "Dyspnée fébrile: foyer ?", "urgency": "urgent",
            **form, "csrf_token": form_token(client, f"/patients/{patient.id}/imagerie")}
    return client.post(f"/patients/{patient.id}/imagerie/demandes", data=data, follow_redirects=False)


def test_a_physician_sees_the_studies_the_viewer_and_its_frames(client: TestClient, container: Container,
                                                                dicom_dir: Path) -> None:
    patient = admit_inpatient(container)
    other = admit_inpatient(container, "MARTIN")
    ct = write(ct_of(patient), dicom_dir)
    dx = write(radiograph_of(patient), dicom_dir)
    write(ct_of(other, "IM2600000190", slices=3), dicom_dir)
    login(client, PHYSICIAN)
    assert f'href="/patients/{patient.id}/imagerie"' in client.get(f"/patients/{patient.id}").text

    page = client.get(f"/patients/{patient.id}/imagerie")
    assert page.status_code == 200
    assert page.text.count('<tr data-study="') == 2  # not the other patient's study
    assert f'data-study="{ct[0].StudyInstanceUID}"' in page.text and "TDM thoracique" in page.text
    assert page.text.index("Radiographie du thorax") < page.text.index("TDM thoracique")  # newest first
    assert "25/11/2026 08:30" in page.text  # the study time, in Paris

    study = ct[0].StudyInstanceUID
    viewer = client.get(f"/patients/{patient.id}/imagerie/etudes/{study}")
    assert viewer.status_code == 200
    assert viewer.text.count('class="imaging-thumbnail"') == 1 and 'id="frame-slider"' in viewer.text
    assert 'max="20"' in viewer.text and "1 / 20" in viewer.text
    assert '<script src="/static/imaging-viewer.js" defer></script>' in viewer.text
    base = f"/patients/{patient.id}/imagerie/etudes/{study}/series/{ct[0].SeriesInstanceUID}/images"
    middle = ct[10].SOPInstanceUID
    assert f'src="{base}/{middle}/1?vignette=true"' in viewer.text  # the thumbnail is the middle slice

    thumbnail = client.get(f"{base}/{middle}/1", params={"vignette": "true"})
    assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
    assert thumbnail.headers["cache-control"] == "private, max-age=300"
    assert max(picture(thumbnail.content).size) <= imaging_rules.THUMBNAIL_SIZE
    frame = client.get(f"{base}/{middle}/1")
    assert picture(frame.content).size == (128, 128)  # the slice at its own size
    lung = client.get(f"{base}/{middle}/1", params={"fenetre": "lung"})
    bone = client.get(f"{base}/{middle}/1", params={"fenetre": "bone"})
    assert len({frame.content, lung.content, bone.content}) == 3  # each window shows other grey levels
    # Lungs (-850 HU) are black in the soft tissue window, grey in the lung window.
    assert picture(frame.content).convert("L").getpixel((40, 60)) < 40
    assert 60 < picture(lung.content).convert("L").getpixel((40, 60)) < 110

    dx_page = client.get(f"/patients/{patient.id}/imagerie/etudes/{dx[0].StudyInstanceUID}")
    assert dx_page.status_code == 200 and 'max="1"' in dx_page.text
    actions = _actions(container, patient)
    for action in (imaging_service.STUDIES_VIEWED, imaging_service.STUDY_VIEWED, imaging_service.IMAGE_VIEWED):
        assert action in actions
    assert actions.count(imaging_service.IMAGE_VIEWED) == 4


def test_an_image_of_another_patient_never_shows_under_this_one(client: TestClient, container: Container,
                                                                dicom_dir: Path) -> None:
    patient = admit_inpatient(container)
    other = admit_inpatient(container, "MARTIN")  # the physician cares for both
    theirs = write(ct_of(other, "IM2600000190", slices=2), dicom_dir)
    write(ct_of(patient, slices=2), dicom_dir)
    login(client, PHYSICIAN)
    study, series, instance = (theirs[0].StudyInstanceUID, theirs[0].SeriesInstanceUID, theirs[0].SOPInstanceUID)
    assert client.get(f"/patients/{patient.id}/imagerie/etudes/{study}").status_code == 404
    assert client.get(f"/patients/{patient.id}/imagerie/etudes/{study}/series/{series}/images/{instance}/1"
                      ).status_code == 404
    assert client.get(f"/patients/{other.id}/imagerie/etudes/{study}/series/{series}/images/{instance}/1"
                      ).status_code == 200
    mine = f"/patients/{patient.id}/imagerie/etudes"
    assert client.get(f"{mine}/1..2").status_code == 404  # not a UID
    assert client.get(f"{mine}/{study}/series/{series}/images/{instance}/9").status_code == 404
    assert client.get(f"/patients/{other.id}/imagerie/etudes/{study}/series/{series}/images/{instance}/9"
                      ).status_code == 404  # no such frame
    assert client.get(f"/patients/{other.id}/imagerie/etudes/{study}/series/{series}/images/{instance}/un"
                      ).status_code == 404  # not a frame number
    assert client.get(f"/patients/{other.id}/imagerie/etudes/{study}/series/{series}/images/{instance}/1",
                      params={"fenetre": "x-ray"}).status_code == 422


def test_an_imaging_order_gets_an_accession_number_then_its_study_then_its_report(
        client: TestClient, container: Container, dicom_dir: Path) -> None:
    patient = admit_inpatient(container)
    login(client, PHYSICIAN)
    assert _order(client, patient, question="?").headers["location"].endswith("erreur=ClinicalQuestionRequired"
                                                                                 "#order-form")
    response = _order(client, patient)
    assert response.status_code == 303
    page = client.get(f"/patients/{patient.id}/imagerie")
    accession = imaging_rules.accession_number(2026, 1)
    assert f'data-accession="{accession}" data-status="ordered"' in page.text
    assert i18n._("Urgent") in page.text and "Dyspnée fébrile: foyer ?" in page.text
    with container.uow() as uow:
        [sent] = uow.session.scalars(select(OutboxMessage).where(OutboxMessage.topic == imaging_service.ORDER_TOPIC))
        assert (sent.payload["accession_number"], sent.payload["patient_ipp"], sent.payload["visit_nda"]) == (
            accession, patient.ipp, patient.nda)

    # The modality performs the exam: the study carries the accession number.
    ct = write(ct_of(patient, accession, slices=2), dicom_dir)
    study = ct[0].StudyInstanceUID
    page = client.get(f"/patients/{patient.id}/imagerie")
    assert f'data-accession="{accession}" data-status="performed"' in page.text
    assert f'class="order-study" href="/patients/{patient.id}/imagerie/etudes/{study}"' in page.text
    viewer = client.get(f"/patients/{patient.id}/imagerie/etudes/{study}")
    assert "Dyspnée fébrile: foyer ?" in viewer.text and 'id="no-report"' in viewer.text

    token = form_token(client, f"/patients/{patient.id}/imagerie/etudes/{study}")
    short = client.post(f"/patients/{patient.id}/imagerie/etudes/{study}/compte-rendu",
                        data={"findings": "RAS", "conclusion": "x", "csrf_token": token}, follow_redirects=False)
    assert short.headers["location"].endswith("erreur=FindingsRequired#report-form")
    signed = client.post(f"/patients/{patient.id}/imagerie/etudes/{study}/compte-rendu", data={
        "findings": "Condensation lobaire inférieure droite.", "conclusion": "Pneumopathie lobaire inférieure droite.",
        "csrf_token": token}, follow_redirects=False)
    assert signed.status_code == 303
    viewer = client.get(f"/patients/{patient.id}/imagerie/etudes/{study}")
    assert "Pneumopathie lobaire inférieure droite." in viewer.text and "Claire" in viewer.text
    page = client.get(f"/patients/{patient.id}/imagerie")
    assert f'data-accession="{accession}" data-status="reported"' in page.text
    actions = _actions(container, patient)
    assert imaging_service.ORDERED in actions and imaging_service.REPORTED in actions

    data = client.get(f"/api/patients/{patient.id}/imaging").json()
    [listed] = data["studies"]
    assert (listed["uid"], listed["accession_number"], listed["modalities"]) == (study, accession, ["CT"])
    assert listed["reports"][0]["conclusion"] == "Pneumopathie lobaire inférieure droite."
    assert [(o["accession_number"], o["status"], o["study_uid"]) for o in data["orders"]] == [
        (accession, "reported", study)]


def test_an_order_needs_a_current_stay(client: TestClient, container: Container, dicom_dir: Path) -> None:
    patient = admit_inpatient(container)
    with container.uow() as uow:
        stay = record.get_encounter(uow.session, record.stay_by_nda(uow.session, patient.nda)[0])
    # Discharged: the physician still cares for the patient (a recent stay), but no stay is current.
    record.discharge_patient(container.uow(), replace(SYSTEM_ACTOR, roles=frozenset({Role.INTERFACE})), stay.id)
    login(client, PHYSICIAN)
    response = _order(client, patient)
    assert response.headers["location"].endswith("erreur=NoCurrentStay#order-form")
    page = client.get(response.headers["location"])
    assert i18n._("The patient has no current stay: an imaging exam is ordered for a stay.") in page.text
    assert 'id="no-orders"' in page.text


def test_a_nurse_of_another_unit_and_a_porter_are_refused_and_traced(app: FastAPI, container: Container,
                                                                     dicom_dir: Path) -> None:
    patient = admit_inpatient(container, unit="LENS-MED-CARDIO")  # the demo nurse works in internal medicine
    ct = write(ct_of(patient, slices=2), dicom_dir)
    study, series, instance = ct[0].StudyInstanceUID, ct[0].SeriesInstanceUID, ct[0].SOPInstanceUID
    image = f"/patients/{patient.id}/imagerie/etudes/{study}/series/{series}/images/{instance}/1"
    for who in (NURSE, PORTER):
        outsider = _signed_in(app, who)
        for path in (f"/patients/{patient.id}/imagerie", f"/patients/{patient.id}/imagerie/etudes/{study}", image,
                     f"/api/patients/{patient.id}/imaging"):
            response = outsider.get(path)
            assert response.status_code in (403, 404), path
            assert b"TDM thoracique" not in response.content and response.headers["content-type"] != "image/jpeg"
        bundle = outsider.get("/fhir/R4/ImagingStudy", params={"patient": f"Patient/{patient.id}"},
                              headers={"accept": FHIR_JSON})
        assert bundle.status_code in (200, 403) and study not in bundle.text
    actions = _actions(container, patient)
    assert actions.count("patient:record:denied") >= 4
    assert not {imaging_service.STUDY_VIEWED, imaging_service.IMAGE_VIEWED} & set(actions)


def test_a_nurse_of_the_care_team_sees_images_but_neither_orders_nor_reports(app: FastAPI, container: Container,
                                                                            dicom_dir: Path) -> None:
    patient = admit_inpatient(container)
    ct = write(ct_of(patient, slices=2), dicom_dir)
    nurse = _signed_in(app, NURSE)
    page = nurse.get(f"/patients/{patient.id}/imagerie")
    assert page.status_code == 200 and 'id="order-form"' not in page.text
    viewer = nurse.get(f"/patients/{patient.id}/imagerie/etudes/{ct[0].StudyInstanceUID}")
    assert viewer.status_code == 200 and 'id="report-form"' not in viewer.text
    token = form_token(nurse, f"/patients/{patient.id}/imagerie")
    assert nurse.post(f"/patients/{patient.id}/imagerie/demandes", data={
        "modality": "CT", "body_part": "Thorax", "question": "Dyspnée fébrile", "urgency": "routine",
        "csrf_token": token}, follow_redirects=False).status_code == 403
    assert nurse.post(f"/patients/{patient.id}/imagerie/etudes/{ct[0].StudyInstanceUID}/compte-rendu", data={
        "findings": "Condensation lobaire.", "conclusion": "Pneumopathie.", "csrf_token": token},
        follow_redirects=False).status_code == 403


def test_fhir_imaging_study_read_and_search_through_the_door(app: FastAPI, client: TestClient,
                                                            container: Container, dicom_dir: Path) -> None:
    patient = admit_inpatient(container)
    ct = write(ct_of(patient, slices=3), dicom_dir)
    write(radiograph_of(patient), dicom_dir)
    login(client, PHYSICIAN)
    response = client.get("/fhir/R4/ImagingStudy", params={"patient": f"Patient/{patient.id}"},
                          headers={"accept": FHIR_JSON})
    assert response.status_code == 200, response.text
    bundle = Bundle.model_validate(response.json())
    studies = [ImagingStudy.model_validate(e.resource.model_dump()) for e in bundle.entry or []]
    assert [s.description for s in studies] == ["Radiographie du thorax", "TDM thoracique"]
    tdm = studies[1]
    assert tdm.id == ct[0].StudyInstanceUID and tdm.subject.reference == f"Patient/{patient.id}"
    assert tdm.numberOfSeries == 1 and tdm.numberOfInstances == 3
    assert tdm.series[0].uid == ct[0].SeriesInstanceUID and tdm.series[0].modality.code == "CT"
    assert {i.value for i in tdm.identifier} == {f"urn:oid:{tdm.id}", "IM2600000182"}
    assert not tdm.endpoint  # the local store has no DICOMweb endpoint

    read = client.get(f"/fhir/R4/ImagingStudy/{tdm.id}", headers={"accept": FHIR_JSON})
    assert read.status_code == 200
    assert ImagingStudy.model_validate(read.json()).started is not None
    assert client.get("/fhir/R4/ImagingStudy/1.2.3", headers={"accept": FHIR_JSON}).status_code == 404
    assert client.get("/fhir/R4/ImagingStudy", headers={"accept": FHIR_JSON}).status_code == 400
    assert "ImagingStudy" in client.get("/fhir/R4/metadata", headers={"accept": FHIR_JSON}).text

    clerk = _signed_in(app, CLERK)  # an admission clerk opens identities and stays, never images
    bundle = clerk.get("/fhir/R4/ImagingStudy", params={"patient": f"Patient/{patient.id}"},
                       headers={"accept": FHIR_JSON})
    assert bundle.status_code == 200 and bundle.json()["total"] == 0
    assert clerk.get(f"/fhir/R4/ImagingStudy/{tdm.id}", headers={"accept": FHIR_JSON}).status_code == 404


def test_a_pacs_that_does_not_answer_leaves_the_page_usable(client: TestClient, container: Container) -> None:
    container.ports["images"] = OrthancStore(f"http://127.0.0.1:{free_port()}", zone=ZoneInfo("Europe/Paris"),
                                             timeout=2)
    patient = admit_inpatient(container)
    login(client, PHYSICIAN)
    page = client.get(f"/patients/{patient.id}/imagerie")
    assert page.status_code == 200
    assert i18n._("The image archive (PACS) does not answer: the studies cannot be listed now.") in page.text
    assert 'id="order-form"' in page.text
    study = f"/patients/{patient.id}/imagerie/etudes/1.2.3"
    assert client.get(study).status_code == 503  # not a server error: the PACS is away
    assert client.get(f"{study}/series/1.2.3.4/images/1.2.3.4.5/1").status_code == 503
    assert client.get(f"/fhir/R4/ImagingStudy?patient=Patient/{patient.id}",
                      headers={"accept": FHIR_JSON}).status_code == 503


def test_a_report_the_ris_sends_over_hl7_is_linked_by_accession_number(
        client: TestClient, container: Container, dicom_dir: Path, lab: ServerThread) -> None:
    patient = admit_inpatient(container)
    login(client, PHYSICIAN)
    assert _order(client, patient).status_code == 303
    accession = imaging_rules.accession_number(2026, 1)
    ct = write(ct_of(patient, accession, slices=2), dicom_dir)
    lines = [obx(1, "18782-3", "Constatations", "Condensation basale droite.", value_type="TX", sub="1"),
             obx(2, "19005-8", "Conclusion", "Pneumopathie basale droite.", value_type="TX", sub="2")]
    other = admit_inpatient(container, "MARTIN")  # a report of another patient with this number links nothing
    assert answer(lab.send(oru("RIS0", lines, ipp=other.ipp, placer=accession, sender="RIS^IMAGERIE")))[0] == "AA"
    assert f'data-accession="{accession}" data-status="performed"' in client.get(
        f"/patients/{patient.id}/imagerie").text
    assert answer(lab.send(oru("RIS1", lines, ipp=patient.ipp, placer=accession, filler="RIS-77",
                               sender="RIS^IMAGERIE")))[0] == "AA"
    page = client.get(f"/patients/{patient.id}/imagerie")
    assert f'data-accession="{accession}" data-status="reported"' in page.text
    viewer = client.get(f"/patients/{patient.id}/imagerie/etudes/{ct[0].StudyInstanceUID}")
    assert 'id="received-report"' in viewer.text and 'id="no-report"' not in viewer.text
    assert viewer.text.index("Condensation basale droite.") < viewer.text.index("Pneumopathie basale droite.")


def test_break_the_glass_opens_the_images_for_four_hours_and_is_traced(app: FastAPI, container: Container,
                                                                      dicom_dir: Path) -> None:
    patient = admit_inpatient(container, unit="LENS-MED-CARDIO")
    ct = write(ct_of(patient, slices=2), dicom_dir)
    image = (f"/patients/{patient.id}/imagerie/etudes/{ct[0].StudyInstanceUID}/series/{ct[0].SeriesInstanceUID}"
             f"/images/{ct[0].SOPInstanceUID}/1")
    nurse = _signed_in(app, NURSE)
    assert nurse.get(image).status_code == 404
    opened = nurse.post("/bris-de-glace", data={"ipp": patient.ipp, "reason": "Arrêt cardiaque dans le couloir",
                                                "csrf_token": form_token(nurse, "/bris-de-glace")},
                        follow_redirects=False)
    assert opened.status_code == 303
    assert nurse.get(f"/patients/{patient.id}/imagerie").status_code == 200
    assert picture(nurse.get(image).content).size == (128, 128)
    with container.uow() as uow:
        [event] = uow.session.scalars(select(AuditEvent).where(
            AuditEvent.patient_id == patient.id, AuditEvent.action == imaging_service.IMAGE_VIEWED))
        assert event.details["basis"] == "break_the_glass"
