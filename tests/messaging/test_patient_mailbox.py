"""A letter to the patient's own secure mailbox (Mon espace santé), only with a qualified INS;
the XDS type of what is sent (a laboratory's report is not a discharge letter); and the
patient's view, on the portal, of everything sent about them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.identity.rules import IdentityStatus
from naho.interop.hl7_listener import start_listener
from naho.messaging import rules, smime, xdm
from naho.messaging.pki import Identity, TestAuthority, covers
from naho.platform.audit import AuditEvent
from naho.platform.clock import FixedClock
from naho.platform.i18n import _
from naho.results.models import LabReport
from tests.interop.test_mllp import ServerThread
from tests.messaging.test_inbound import qualify, register
from tests.messaging.test_sending import (
    GP,
    PDF,
    Setup,
    admit,
    attach,
    client_of,
    configured,
    file_document,
    letters,
    post,
    setup_fixture,
)
from tests.personas import CLERK, PHYSICIAN, csrf_from, form_token, login
from tests.results.conftest import oru, pdf_obx
from tests.scheduling.world import PATIENT_PASSWORD

#: The patients' mail service (its certificate is issued by the same local test authority).
PATIENT_SERVICE = "operateur@patient.mssante.fr"
__all__ = ["setup_fixture"]  # the messaging tests' configured app, as fixture `setup`
VALID_INS = "180072B01234592"  # a Corsican NIR (2B) whose key matches


# --- the rule ----------------------------------------------------------------------------------------

def test_the_rule_gives_the_ins_at_the_patients_domain_only_for_a_qualified_identity() -> None:
    assert rules.patient_mailbox(VALID_INS, "qualified", doubtful=False, fictitious=False,
                                 domain="patient.mssante.fr") == f"{VALID_INS}@patient.mssante.fr"
    for status in (IdentityStatus.PROVISIONAL, IdentityStatus.RETRIEVED, IdentityStatus.VALIDATED):
        with pytest.raises(rules.PatientMailboxRefused, match="not qualified"):
            rules.patient_mailbox(VALID_INS, status, doubtful=False, fictitious=False, domain="patient.mssante.fr")
    for doubtful, fictitious in ((True, False), (False, True)):
        with pytest.raises(rules.PatientMailboxRefused, match="not qualified"):
            rules.patient_mailbox(VALID_INS, "qualified", doubtful=doubtful, fictitious=fictitious,
                                  domain="patient.mssante.fr")
    for ins in (None, "", "180072B01234599", "18007"):  # absent, wrong key, truncated
        with pytest.raises(rules.PatientMailboxRefused, match="INS"):
            rules.patient_mailbox(ins, "qualified", doubtful=False, fictitious=False, domain="patient.mssante.fr")
    with pytest.raises(rules.PatientMailboxRefused, match="domain"):
        rules.patient_mailbox(VALID_INS, "qualified", doubtful=False, fictitious=False, domain="evil.org>, x@y")


def test_a_mail_services_certificate_covers_its_domain_and_nothing_else(clock: FixedClock) -> None:
    authority = TestAuthority("Test", clock.now())
    service = authority.issue_organisation(PATIENT_SERVICE, "Mon espace santé", domains=["patient.mssante.fr"])
    group = authority.issue_organisation("secretariat@ght-artois.mssante.fr", "GHT")
    assert covers(service.certificate, f"{VALID_INS}@Patient.MSSante.fr")
    assert not covers(service.certificate, "dr.lecomte@medecin.mssante.fr")
    assert not covers(service.certificate, f"{VALID_INS}@patient.mssante.fr.evil.org")
    content = smime.build_content("test\n", [])
    with pytest.raises(ValueError, match="belongs to none of the addressees"):
        smime.seal_message(letter_id=str(uuid.uuid4()), domain="ght-artois.mssante.fr", sender=group,
                           to=["dr.lecomte@medecin.mssante.fr"], recipient_certificates=[service.certificate],
                           subject="x", content=content, date=clock.now())


# --- through the app ---------------------------------------------------------------------------------

@pytest.fixture
def with_service(db_url: str, clock: FixedClock, tmp_path: Path) -> Iterator[tuple[Setup, Identity]]:
    """Messaging configured with the patients' mail service's certificate (its own authority)."""
    authority = TestAuthority("Mon espace santé Test", clock.now())
    service = authority.issue_organisation(PATIENT_SERVICE, "Mon espace santé", domains=["patient.mssante.fr"])
    files = authority.write(tmp_path / "patients", "service", service)
    for setup in configured(db_url, clock, tmp_path, messaging_patient_certificate=files.certificate):
        yield setup, service


def test_a_letter_reaches_a_qualified_patients_own_mailbox_sealed_for_their_mail_service(
        with_service: tuple[Setup, Identity]) -> None:
    setup, service = with_service
    for web in client_of(setup):
        patient, _ipp = register(web, unit="LENS-MED-MIN")
        ins, _oid = qualify(web, patient)
        login(web, PHYSICIAN)
        document = file_document(web, patient)
        # The patient objected to sharing with community professionals: a letter to them alone is theirs.
        post(web, f"/patients/{patient}/opposition", {"objects": "oui"})
        page = web.get(f"/patients/{patient}/correspondants").text
        assert f"{ins}@patient.mssante.fr" in page and 'id="to-patient"' in page
        response = post(web, f"/patients/{patient}/courriers", {"document_id": document, "to_patient": "oui"})
        assert response.headers["location"].endswith("?envoye=1"), response.headers["location"]
        (letter,) = letters(setup.uow)
        assert [(r["kind"], r["address"], r["professional_id"]) for r in letter.recipients] == [
            ("patient", f"{ins}@patient.mssante.fr", "")]
        opened = smime.open_message(letter.raw, recipient=service, trust_anchors=[setup.pki.authority.certificate],
                                    now=setup.clock.now())
        (submission,) = xdm.unpack(next(a.data for a in opened.attachments() if a.filename == "IHE_XDM.ZIP"))
        assert submission.documents[0].data == PDF
        assert submission.patient_id.startswith(f"{ins}^^^&1.2.250.1.213.1.4")  # the INS names the patient
        assert submission.documents[0].type_code == xdm.TYPE_EPISODE_SUMMARY.code  # a document added by hand

        # With a professional too, the objection refuses the whole letter.
        attach(web, patient, setup.ids[GP])
        both = post(web, f"/patients/{patient}/courriers", {"document_id": document, "to_patient": "oui",
                                                            "professional_id": [str(setup.ids[GP])]})
        assert both.headers["location"].endswith("?erreur=SharingObjected")
        assert len(letters(setup.uow)) == 1


def test_a_patient_whose_identity_is_not_qualified_has_no_mailbox_and_nothing_is_sent(
        with_service: tuple[Setup, Identity]) -> None:
    setup, _service = with_service
    for web in client_of(setup):
        patient = admit(web)  # provisional identity
        login(web, CLERK)
        web.post(f"/patients/{patient}/identite/insi", data={"csrf_token": form_token(web)})  # retrieved only
        login(web, PHYSICIAN)
        document = file_document(web, patient)
        attach(web, patient, setup.ids[GP])
        page = web.get(f"/patients/{patient}/correspondants").text
        assert 'id="no-patient-mailbox"' in page and 'id="to-patient"' not in page
        refused = post(web, f"/patients/{patient}/courriers", {"document_id": document, "to_patient": "oui"})
        assert refused.headers["location"].endswith("?erreur=PatientMailboxRefused")
        assert _("Nothing was sent.") in web.get(refused.headers["location"]).text or "INS" in web.get(
            refused.headers["location"]).text
        api = web.post(f"/api/patients/{patient}/letters", headers={"x-csrf-token": form_token(web)},
                       json={"document_id": document, "to_patient": True})
        assert api.status_code == 422 and api.json()["rule"] == "PatientMailboxRefused", api.text
        assert letters(setup.uow) == []


def test_without_the_patients_mail_service_certificate_nothing_goes_to_a_patient(setup: Setup) -> None:
    for web in client_of(setup):
        patient, _ipp = register(web, unit="LENS-MED-MIN")
        qualify(web, patient)
        login(web, PHYSICIAN)
        document = file_document(web, patient)
        assert 'id="to-patient"' not in web.get(f"/patients/{patient}/correspondants").text
        api = web.post(f"/api/patients/{patient}/letters", headers={"x-csrf-token": form_token(web)},
                       json={"document_id": document, "to_patient": True})
        assert api.status_code == 422 and api.json()["rule"] == "NoPatientMailService", api.text
        empty = web.post(f"/api/patients/{patient}/letters", headers={"x-csrf-token": form_token(web)},
                         json={"document_id": document})
        assert empty.status_code == 422 and empty.json()["rule"] == "NoRecipient", empty.text
        assert letters(setup.uow) == []


def _sent_to_the_gp(web: TestClient, setup: Setup, patient: str, document: uuid.UUID):  # type: ignore[no-untyped-def]
    """Send the chart document to the GP through the API; the document the GP unpacks."""
    attach(web, patient, setup.ids[GP])
    sent = web.post(f"/api/patients/{patient}/letters", headers={"x-csrf-token": form_token(web)},
                    json={"document_id": str(document), "professional_ids": [str(setup.ids[GP])]})
    assert sent.status_code == 202, sent.text
    (letter,) = letters(setup.uow)
    opened = smime.open_message(letter.raw, recipient=setup.pki.professionals[GP],
                                trust_anchors=[setup.pki.authority.certificate], now=setup.clock.now())
    (submission,) = xdm.unpack(next(a.data for a in opened.attachments() if a.filename == "IHE_XDM.ZIP"))
    return submission.documents[0]


def test_a_laboratory_report_goes_out_typed_as_a_laboratory_report(setup: Setup) -> None:
    container = setup.app.state.container
    for web in client_of(setup):
        patient = admit(web)
        ipp = web.get(f"/api/patients/{patient}").json()["ipp"]
        server = ServerThread(lambda port: start_listener(container, "127.0.0.1", port))
        try:
            ack = server.send(oru("MBX1", [pdf_obx(1)], ipp=ipp))
        finally:
            server.close()
        assert b"MSA|AA|MBX1" in ack, ack
        with setup.uow() as uow:
            document = uow.session.scalar(select(LabReport.document_id).where(
                LabReport.patient_id == uuid.UUID(patient)))
        assert document is not None
        login(web, PHYSICIAN)
        assert _sent_to_the_gp(web, setup, patient, document).type_code == "11502-2"


def test_the_patient_sees_on_the_portal_what_was_sent_to_whom_and_no_one_elses(setup: Setup) -> None:
    app = setup.app
    for web in client_of(setup):
        patient = admit(web)
        other = admit(web, name="Vasseur", born="1950-01-01")
        login(web, PHYSICIAN)
        attach(web, patient, setup.ids[GP])
        document = file_document(web, patient, title="Compte rendu de consultation")
        sent = post(web, f"/patients/{patient}/courriers", {"document_id": document,
                                                            "professional_id": [str(setup.ids[GP])]})
        assert sent.headers["location"].endswith("?envoye=1")
        attach(web, other, setup.ids[GP])
        elsewhere = file_document(web, other, title="Courrier de Monsieur Vasseur")
        post(web, f"/patients/{other}/courriers", {"document_id": elsewhere, "professional_id": [str(setup.ids[GP])]})
        assert len(letters(setup.uow)) == 2
        login(web, CLERK)
        code_page = web.get(f"/patients/{patient}/portail")
        issued = web.post(f"/patients/{patient}/portail/code", data={"csrf_token": csrf_from(code_page.text)})
        code = re.search(r'id="code-value">([A-Z0-9-]+)<', issued.text)
        assert code, issued.text
        with TestClient(app) as phone:
            form = phone.get("/portail/activation")
            activated = phone.post("/portail/activation", data={
                "code": code.group(1), "birth_date": "1937-11-08", "email": "lucien@example.org",
                "password": PATIENT_PASSWORD, "csrf_token": csrf_from(form.text)}, follow_redirects=False)
            assert activated.status_code == 303, activated.text
            page = phone.get("/portail/courriers")
            assert page.status_code == 200
            listed = page.text.split('id="letters"')[1]
            assert "Compte rendu de consultation" in listed and "LECOMTE" in listed.upper()
            assert 'data-status="queued"' in listed
            assert "Vasseur" not in listed
            # Asking for another patient's letters shows the account's own (the portal's door).
            foreign = phone.get(f"/portail/courriers?pour={other}").text
            assert "Compte rendu de consultation" in foreign and "Vasseur" not in foreign
        with setup.uow() as uow:
            assert uow.session.scalars(select(AuditEvent.action).where(
                AuditEvent.patient_id == uuid.UUID(patient), AuditEvent.action == "patient:letters:view")).all()


def test_a_signed_imaging_report_is_filed_as_a_pdf_and_goes_out_typed_as_an_imaging_report(
        setup: Setup, tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    from naho.results.dicom_store import LocalDicomStore
    from naho.results.imaging_models import ImagingReport
    from tests.results.conftest import admit_inpatient
    from tests.results.imaging_support import ct_of, write

    container = setup.app.state.container
    container.ports["images"] = LocalDicomStore(tmp_path / "dicom", zone=ZoneInfo("Europe/Paris"))
    patient = admit_inpatient(container)
    study = write(ct_of(patient, "IM2600000182", slices=2), tmp_path / "dicom")[0].StudyInstanceUID
    for web in client_of(setup):
        login(web, PHYSICIAN)
        signed = web.post(f"/patients/{patient.id}/imagerie/etudes/{study}/compte-rendu", data={
            "findings": "Condensation lobaire inférieure droite.", "conclusion": "Pneumopathie lobaire.",
            "csrf_token": form_token(web, f"/patients/{patient.id}/imagerie/etudes/{study}")}, follow_redirects=False)
        assert signed.status_code == 303, signed.text
        with setup.uow() as uow:
            document = uow.session.scalars(select(ImagingReport.document_id)).one()
        assert document is not None
        listed = web.get(f"/patients/{patient.id}").text
        assert f"/documents/{document}" in listed  # in the chart, readable there
        pdf = web.get(f"/documents/{document}")
        assert pdf.content.startswith(b"%PDF-")
        sent = _sent_to_the_gp(web, setup, str(patient.id), document)
        assert sent.type_code == "18748-4" and sent.data == pdf.content
