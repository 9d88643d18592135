"""The discharge letter (lettre de liaison): drafted from the stay by a physician of the care team,
edited, signed (then locked), filed in the chart as a PDF with its FHIR document twin, and sent
to the GP through the usual sending flow."""

from __future__ import annotations

import json
import re
import uuid
import zlib

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select

from naho.identity import service as identity
from naho.messaging import smime, xdm
from naho.messaging.letter_models import DischargeLetter
from naho.platform.audit import AuditEvent
from naho.results import hl7 as results_hl7
from naho.results import service as results
from naho.scheduling import service as scheduling
from naho.staff import service as staff
from tests.medication.test_api import PARACETAMOL, _admit, _measure, _prescribe
from tests.messaging.test_sending import GP, Setup, attach, letters, post, setup_fixture, web_fixture
from tests.personas import NURSE, PHYSICIAN, PORTER, form_token, login
from tests.results.conftest import obx, oru
from tests.scheduling.world import cardiology, staff_actor

__all__ = ["setup_fixture", "web_fixture"]  # the fixtures of test_sending, used here


@pytest.fixture
def stay(web: TestClient) -> tuple[str, str]:
    """(patient, stay): a heart failure, a home treatment continued, another stopped, a new order."""
    patient, encounter = _admit(web, name="Deprez", first_names="Lucien")
    _measure(web, patient)
    login(web, PHYSICIAN)
    assert post(web, f"/patients/{patient}/problemes", {"icd10": "I50.0", "label": "Insuffisance cardiaque"}
                ).status_code == 303
    token = form_token(web)
    kept = web.post(f"/api/patients/{patient}/home-medications", headers={"x-csrf-token": token},
                    json={"drug": "Doliprane 1000", "product_code": "PARA1GCP", "source": "patient"}).json()
    stopped = web.post(f"/api/patients/{patient}/home-medications", headers={"x-csrf-token": token},
                       json={"drug": "Mopral 20", "source": "patient"}).json()
    assert web.post(f"/api/home-medications/{kept['id']}/decision", headers={"x-csrf-token": token},
                    json={"decision": "continue", "order": PARACETAMOL}).status_code == 200
    assert web.post(f"/api/home-medications/{stopped['id']}/decision", headers={"x-csrf-token": token},
                    json={"decision": "stop", "reason": "Pas d'indication"}).status_code == 200
    new = _prescribe(web, patient, {"product_code": "ENOX4000", "dose_value": 4000, "dose_unit": "UI",
                                    "route": "SC", "frequency": "times_per_day", "times_per_day": 1})
    assert new.status_code == 201, new.text
    return patient, encounter


def _api(web: TestClient, method: str, path: str, **body: object):  # type: ignore[no-untyped-def]
    return web.request(method, f"/api/encounters/{path}", headers={"x-csrf-token": form_token(web)},
                       json=body or None)


def _pdf_text(pdf: bytes) -> str:
    """The text drawn in a PDF's content streams (fpdf2 deflates them, the core font is cp1252)."""
    shown = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            data = zlib.decompress(stream)
        except zlib.error:
            data = stream
        shown += [m.decode("cp1252") for m in re.findall(rb"\(((?:[^()\\]|\\.)*)\)\s*Tj", data)]
    return " ".join(shown)


def test_a_physician_drafts_the_letter_from_the_stay(web: TestClient, setup: Setup, stay: tuple[str, str]) -> None:
    patient, encounter = stay
    login(web, PHYSICIAN)
    page = web.get(f"/patients/{patient}").text
    assert f'href="/sejours/{encounter}/lettre-de-liaison"' in page  # linked from the stay list
    assert 'id="no-letter"' in web.get(f"/sejours/{encounter}/lettre-de-liaison").text
    response = post(web, f"/sejours/{encounter}/lettre-de-liaison/brouillon", {})
    assert response.status_code == 303, response.text
    letter = web.get(f"/api/encounters/{encounter}/discharge-letter").json()["letter"]
    assert letter["status"] == "draft"
    content = letter["content"]
    assert [(d["icd10"], d["status"]) for d in content["diagnoses"]] == [("I50.0", "active")]
    changes = sorted((t["change"], t["drug"].split()[0], t["reason"]) for t in content["treatments"])
    assert changes == [("continued", "Paracétamol", None), ("new", "Énoxaparine", None),
                       ("stopped", "Mopral", "Pas d'indication")]
    assert content["nda"]
    assert content["patient_name"].upper().startswith("DEPREZ")
    page = web.get(f"/sejours/{encounter}/lettre-de-liaison").text
    assert "I50.0 Insuffisance cardiaque" in page.split('id="section-diagnoses"')[1]
    assert "Pas d&#39;indication" in page.split('id="section-treatments"')[1]

    # The free text is the physician's; refreshing the stay's data keeps it.
    assert post(web, f"/sejours/{encounter}/lettre-de-liaison", {
        "reasons": "Dyspnée d'effort", "procedures": "Échographie cardiaque", "synthesis": "Bonne évolution",
        "follow_up": "Contrôle du poids"}).status_code == 303
    post(web, f"/sejours/{encounter}/lettre-de-liaison/brouillon", {})
    content = web.get(f"/api/encounters/{encounter}/discharge-letter").json()["letter"]["content"]
    assert (content["reasons"], content["procedures"]) == ("Dyspnée d'effort", "Échographie cardiaque")
    draft_pdf = web.get(f"/sejours/{encounter}/lettre-de-liaison.pdf")
    assert draft_pdf.headers["content-type"] == "application/pdf" and draft_pdf.content.startswith(b"%PDF-")
    assert "Dyspnée d'effort" in _pdf_text(draft_pdf.content)
    refused = _api(web, "PATCH", f"{encounter}/discharge-letter", sections={"diagnoses": "x"})
    assert refused.status_code == 422 and refused.json()["rule"] == "LetterSectionInvalid"


def test_signing_locks_the_letter_and_files_the_pdf_with_its_fhir_twin(
        web: TestClient, setup: Setup, stay: tuple[str, str]) -> None:
    patient, encounter = stay
    login(web, PHYSICIAN)
    assert _api(web, "POST", f"{encounter}/discharge-letter").status_code == 200
    assert _api(web, "PATCH", f"{encounter}/discharge-letter",
                sections={"reasons": "Décompensation cardiaque"}).status_code == 200
    signed = _api(web, "POST", f"{encounter}/discharge-letter/signature")
    assert signed.status_code == 200, signed.text
    letter = signed.json()["letter"]
    assert letter["status"] == "signed" and letter["signed_by"].startswith("Claire") and letter["signed_at"]

    # Locked: no edit, no second signature, no redraft.
    assert _api(web, "PATCH", f"{encounter}/discharge-letter", sections={"reasons": "autre"}).status_code == 409
    assert _api(web, "POST", f"{encounter}/discharge-letter/signature").status_code == 409
    assert _api(web, "POST", f"{encounter}/discharge-letter").status_code == 409
    assert post(web, f"/sejours/{encounter}/lettre-de-liaison", {"reasons": "autre"}).status_code == 409

    # The PDF is a chart document of the patient, and names them.
    page = web.get(f"/patients/{patient}").text
    assert f'/documents/{letter["document_id"]}' in page.split('id="documents"')[1]
    pdf = web.get(f"/sejours/{encounter}/lettre-de-liaison.pdf").content
    assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
    text = _pdf_text(pdf)
    assert "DEPREZ Lucien" in text and "Décompensation cardiaque" in text and "I50.0" in text
    assert web.get(f"/documents/{letter['document_id']}").content == pdf

    # The structured twin: a FHIR document Bundle whose Composition is a LOINC 11490-0 letter.
    response = web.get(f"/api/encounters/{encounter}/discharge-letter/fhir")
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(json.loads(response.content))
    assert bundle.type == "document" and bundle.identifier is not None and bundle.timestamp is not None
    composition = bundle.entry[0].resource
    assert composition.get_resource_type() == "Composition" and composition.status == "final"
    assert (composition.type.coding[0].system, composition.type.coding[0].code) == ("http://loinc.org", "11490-0")
    assert composition.attester[0].mode == "legal"
    codes = {s.code.coding[0].code: s for s in composition.section}
    assert {"42349-1", "11535-2", "47519-4", "10183-2", "30954-2", "18776-5"} <= set(codes)
    assert "Décompensation cardiaque" in codes["42349-1"].text.div
    conditions = [e.resource for e in bundle.entry if e.resource.get_resource_type() == "Condition"]
    assert [c.code.coding[0].code for c in conditions] == ["I50.0"]
    assert [r.reference for r in codes["11535-2"].entry] == [e.fullUrl for e in bundle.entry
                                                                if e.resource.get_resource_type() == "Condition"]
    assert {e.resource.get_resource_type() for e in bundle.entry} >= {"Patient", "Practitioner", "Encounter"}

    with setup.uow() as uow:
        actions = list(uow.session.scalars(select(AuditEvent.action).where(
            AuditEvent.patient_id == uuid.UUID(patient), AuditEvent.action.like("patient:discharge_letter:%"))))
        row = uow.session.scalars(select(DischargeLetter)).one()
        assert row.signer_account_id is not None
    assert {"patient:discharge_letter:draft", "patient:discharge_letter:edit",
            "patient:discharge_letter:sign"} <= set(actions)


def test_only_physicians_of_the_care_team_draft_and_sign(web: TestClient, setup: Setup,
                                                         stay: tuple[str, str]) -> None:
    _patient, encounter = stay
    for who in (NURSE, PORTER):
        login(web, who)
        assert _api(web, "POST", f"{encounter}/discharge-letter").status_code == 403, who
        assert post(web, f"/sejours/{encounter}/lettre-de-liaison/brouillon", {}).status_code == 403, who
    login(web, PORTER)
    assert web.get(f"/sejours/{encounter}/lettre-de-liaison").status_code == 403
    login(web, NURSE)  # the nurse of the team reads the page, without the forms
    assert 'action="/sejours/' not in web.get(f"/sejours/{encounter}/lettre-de-liaison").text

    with setup.uow() as uow:
        people, _ = staff.list_staff(uow.session, unit_code="LENS-MED-CARDIO")
    login(web, next(p.username for p in people if p.profession == "physician"))  # not in this care team
    assert _api(web, "POST", f"{encounter}/discharge-letter").status_code == 404
    assert web.get(f"/sejours/{encounter}/lettre-de-liaison").status_code == 404
    login(web, PHYSICIAN)
    assert _api(web, "POST", f"{encounter}/discharge-letter").status_code == 200
    login(web, next(p.username for p in people if p.profession == "physician"))
    assert _api(web, "POST", f"{encounter}/discharge-letter/signature").status_code == 404
    assert web.get(f"/sejours/{encounter}/lettre-de-liaison.pdf").status_code == 404
    assert _api(web, "GET", f"{uuid.uuid4()}/discharge-letter").status_code == 404
    with setup.uow() as uow:
        assert uow.session.scalars(select(DischargeLetter.status)).all() == ["draft"]


def test_the_signed_letter_is_sent_to_the_gp_through_the_sending_flow(
        web: TestClient, setup: Setup, stay: tuple[str, str]) -> None:
    patient, encounter = stay
    login(web, PHYSICIAN)
    attach(web, patient, setup.ids[GP])
    _api(web, "POST", f"{encounter}/discharge-letter")
    refused = post(web, f"/sejours/{encounter}/lettre-de-liaison/envoi", {"professional_id": str(setup.ids[GP])})
    assert refused.headers["location"].endswith("?erreur=LetterNotSigned")
    document = _api(web, "POST", f"{encounter}/discharge-letter/signature").json()["letter"]["document_id"]
    page = web.get(f"/sejours/{encounter}/lettre-de-liaison").text
    assert f'value="{setup.ids[GP]}" checked' in page.split('id="letter-send"')[1]

    sent = post(web, f"/sejours/{encounter}/lettre-de-liaison/envoi", {"professional_id": str(setup.ids[GP])})
    assert sent.headers["location"] == f"/patients/{patient}/correspondants?envoye=1", sent.headers["location"]
    (letter,) = letters(setup.uow)
    assert str(letter.document_id) == document and letter.status == "queued"
    opened = smime.open_message(letter.raw, recipient=setup.pki.professionals[GP],
                                trust_anchors=[setup.pki.authority.certificate], now=setup.clock.now())
    (submission,) = xdm.unpack(next(a.data for a in opened.attachments() if a.filename == "IHE_XDM.ZIP"))
    (sent_document,) = submission.documents
    assert sent_document.mime_type == "application/pdf" and sent_document.type_code == "11490-0"
    assert sent_document.data == web.get(f"/sejours/{encounter}/lettre-de-liaison.pdf").content
    # The JSON API of the sending flow picks it as well.
    again = web.post(f"/api/patients/{patient}/letters", headers={"x-csrf-token": form_token(web)},
                     json={"document_id": document, "professional_ids": [str(setup.ids[GP])]})
    assert again.status_code == 202, again.text


def test_the_draft_lists_results_still_pending_and_the_follow_up_appointments(
        web: TestClient, setup: Setup, stay: tuple[str, str]) -> None:
    patient, encounter = stay
    container = setup.app.state.container
    with container.uow() as uow:
        ipp = identity.summaries(uow.session, [uuid.UUID(patient)])[uuid.UUID(patient)].ipp
    for control, status in (("C1", "P"), ("C2", "F")):  # one report still preliminary, one final
        message = results_hl7.parse_oru(oru(control, [obx(1, "2160-0", "Créatinine", "92", "umol/L", status=status)],
                                            ipp=ipp, placer=f"CMD-{control}", filler=f"LAB-{control}",
                                            report_status=status), zone=setup.clock.now().tzinfo)
        with container.uow() as uow:
            results.receive_results(uow.session, results_hl7.laboratory_actor("SIL^LABO"), message,
                                    now=setup.clock.now(), settings=container.ports["results_settings"],
                                    port=container.ports["care"])
            uow.commit()
    clerk = staff_actor(container, "admission")
    cardiology(container, clerk)
    with container.uow() as uow:
        slot = scheduling.search_slots(uow.session, now=setup.clock.now(), specialty="cardiology", limit=1)[0]
    scheduling.book(container.uow(), clerk, slot.id, uuid.UUID(patient), container.ports["care"])

    login(web, PHYSICIAN)
    content = _api(web, "POST", f"{encounter}/discharge-letter").json()["letter"]["content"]
    assert [(r["label"], r["status"]) for r in content["pending_results"]] == [("Biochimie sanguine", "P")]
    assert [(a["starts_at"][:16], a["what"]) for a in content["appointments"]] == [
        (slot.starts_at.isoformat()[:16], "Consultation de cardiologie (first_visit)")]
    page = web.get(f"/sejours/{encounter}/lettre-de-liaison").text
    assert "Biochimie sanguine" in page.split('id="section-pending_results"')[1]
    assert "Consultation de cardiologie" in page.split('id="section-follow_up"')[1]
