"""Laboratory orders from the chart (pages): a physician orders, the labels print with their
barcode, the nurse records the collection by scanning, the order is cancelled only before;
results matched by the placer number move the order on; who is refused, and that it is traced."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from naho.platform import i18n
from naho.platform.audit import AuditEvent, AuditTag
from naho.platform.deps import Container
from naho.platform.outbox import OutboxMessage
from naho.results import orders
from naho.results.models import LabOrder, LabReport
from tests.interop.test_mllp import ServerThread
from tests.personas import NURSE, PHARMACIST, PHYSICIAN, form_token, login
from tests.results.conftest import Inpatient, admit_inpatient, answer, obx, oru


def page_of(patient: Inpatient) -> str:
    return f"/patients/{patient.id}/examens-biologiques"


def place(client: TestClient, patient: Inpatient, tests: list[str], urgency: str = "routine",
          info: str = "") -> object:
    return client.post(page_of(patient), data={
        "examens": tests, "urgence": urgency, "renseignements": info,
        "csrf_token": form_token(client, page_of(patient))}, follow_redirects=False)


def post(client: TestClient, path: str, patient: Inpatient, **data: str):  # type: ignore[no-untyped-def]
    return client.post(path, data={**data, "csrf_token": form_token(client)}, follow_redirects=False)


def rows(container: Container, patient: Inpatient) -> list[LabOrder]:
    with container.uow() as uow:
        found = list(uow.session.scalars(select(LabOrder).where(LabOrder.patient_id == patient.id)
                                         .order_by(LabOrder.placer_number)))
        uow.session.expunge_all()
        return found


def events(container: Container, action: str) -> list[AuditEvent]:
    with container.uow() as uow:
        found = list(uow.session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                         .order_by(AuditEvent.seq)))
        uow.session.expunge_all()
        return found


def test_a_physician_orders_tests_and_gets_one_label_per_tube(client: TestClient, container: Container) -> None:
    patient = admit_inpatient(container)
    login(client, PHYSICIAN)
    response = place(client, patient, ["IONO", "CRP", "NFS"], "stat", "Douleur thoracique")
    assert response.status_code == 303
    assert re.search(r"/examens-biologiques/etiquettes\?groupe=G\d{10}$", response.headers["location"])

    placed = rows(container, patient)
    assert [o.test_code for o in placed] == ["IONO", "CRP", "NFS"]
    assert {o.status for o in placed} == {"ordered"} and {o.urgency for o in placed} == {"stat"}
    assert len({o.group_number for o in placed}) == 1
    iono, crp, nfs = placed
    assert iono.specimen_number == crp.specimen_number != nfs.specimen_number  # green tube shared
    assert (iono.colour, nfs.colour, nfs.specimen_type) == ("green", "lavender", "BLD")
    assert iono.clinical_info == "Douleur thoracique" and iono.encounter_id is not None
    assert {o.transmission for o in placed} == {"not_sent"}  # no laboratory configured: nothing queued
    with container.uow() as uow:
        assert uow.session.scalars(select(OutboxMessage)).all() == []

    labels = client.get(response.headers["location"])
    assert labels.status_code == 200
    assert labels.text.count('class="label"') == 2
    assert labels.text.count("data:image/svg+xml;base64,") == 2
    assert f'data-specimen="{iono.specimen_number}"' in labels.text and "DURAND MARIE" in labels.text
    assert "Ionogramme sanguin, Protéine C réactive" in labels.text

    listing = client.get(page_of(patient)).text
    assert f'id="order-{nfs.placer_number}" data-status="ordered"' in listing
    assert i18n._("not sent (no laboratory interface)") in listing
    [event] = events(container, orders.PLACED)
    assert event.patient_id == patient.id and event.details["tests"] == ["IONO", "NFS", "CRP"]
    assert f'href="{page_of(patient)}"' in client.get(f"/patients/{patient.id}").text


def test_the_nurse_scans_the_label_once_and_cannot_collect_twice(client: TestClient, container: Container) -> None:
    patient = admit_inpatient(container)
    login(client, PHYSICIAN)
    place(client, patient, ["IONO", "NFS"])
    iono, nfs = rows(container, patient)
    login(client, NURSE)
    done = post(client, f"{page_of(patient)}/prelevement", patient, etiquette=f" {iono.specimen_number}\n")
    assert done.status_code == 303 and done.headers["location"].endswith(f"?preleve={iono.specimen_number}")
    iono, nfs = rows(container, patient)
    assert (iono.status, nfs.status) == ("collected", "ordered")
    assert iono.collected_at is not None and iono.collected_by and "infirm" in iono.collected_by.lower()
    shown = client.get(done.headers["location"]).text
    assert i18n._("Specimen %(number)s collected.") % {"number": iono.specimen_number} in shown

    again = post(client, f"{page_of(patient)}/prelevement", patient, etiquette=iono.specimen_number)
    assert again.headers["location"].endswith("?erreur=AlreadyCollected")
    assert i18n._("This specimen was already collected.") in client.get(again.headers["location"]).text
    wrong = post(client, f"{page_of(patient)}/prelevement", patient, etiquette="P12345678")
    assert wrong.headers["location"].endswith("?erreur=NotASpecimenLabel")
    other = post(client, f"{page_of(patient)}/prelevement", patient, etiquette="S9999999999")
    assert other.headers["location"].endswith("?erreur=SpecimenNotFound")
    assert [e.target for e in events(container, orders.COLLECTED)][-1] == iono.specimen_number


def test_an_order_is_cancelled_before_collection_only(client: TestClient, container: Container) -> None:
    patient = admit_inpatient(container)
    login(client, PHYSICIAN)
    place(client, patient, ["CRP", "NFS"])
    crp, nfs = rows(container, patient)
    cancelled = post(client, f"{page_of(patient)}/{crp.id}/annulation", patient, motif="Doublon")
    assert cancelled.status_code == 303
    login(client, NURSE)
    refused = post(client, f"{page_of(patient)}/prelevement", patient, etiquette=crp.specimen_number)
    assert refused.headers["location"].endswith("?erreur=OrderCancelled")  # cannot collect a cancelled order
    assert post(client, f"{page_of(patient)}/prelevement", patient, etiquette=nfs.specimen_number).status_code == 303
    login(client, PHYSICIAN)
    late = post(client, f"{page_of(patient)}/{nfs.id}/annulation", patient)
    assert late.headers["location"].endswith("?erreur=CollectedOrderNotCancellable")
    crp, nfs = rows(container, patient)
    assert (crp.status, crp.cancel_reason, nfs.status) == ("cancelled", "Doublon", "collected")
    labels = client.get(f"{page_of(patient)}/etiquettes").text
    assert i18n._("No specimen waits to be collected.") in labels


def test_a_nurse_cannot_order_and_the_refusal_is_traced(client: TestClient, container: Container) -> None:
    patient = admit_inpatient(container)
    login(client, NURSE)
    assert place(client, patient, ["CRP"]).status_code == 403
    assert rows(container, patient) == []
    [refusal] = events(container, orders.REFUSED)
    assert refusal.patient_id == patient.id and refusal.details == {"action": orders.ORDERED,
                                                                     "rule": "OrdererRequired"}
    assert i18n._("Order tests") not in client.get(page_of(patient)).text  # no form for a nurse
    login(client, PHYSICIAN)
    place(client, patient, ["CRP"])
    [crp] = rows(container, patient)
    login(client, NURSE)
    assert post(client, f"{page_of(patient)}/{crp.id}/annulation", patient).status_code == 403
    assert rows(container, patient)[0].status == "ordered"
    login(client, PHARMACIST)
    assert place(client, patient, ["CRP"]).status_code == 403  # not even let in by the route


def test_a_physician_outside_the_care_team_is_refused_and_traced(client: TestClient, container: Container) -> None:
    outside = admit_inpatient(container, "HENNEBELLE", unit="LENS-MED-CARDIO")
    login(client, PHYSICIAN)
    assert place(client, outside, ["CRP"]).status_code == 404  # the one door: absent and forbidden alike
    assert client.get(page_of(outside)).status_code == 404
    assert rows(container, outside) == []
    denied = events(container, AuditTag.ACCESS_DENIED)
    assert {e.details["action"] for e in denied if e.patient_id == outside.id} >= {orders.ORDERED, orders.VIEWED}


def test_unknown_tests_and_empty_forms_are_refused(client: TestClient, container: Container) -> None:
    patient = admit_inpatient(container)
    login(client, PHYSICIAN)
    unknown = place(client, patient, ["GLYC"])
    assert unknown.headers["location"].endswith("?erreur=UnknownTest")
    assert i18n._("This test is not in the catalogue.") in client.get(unknown.headers["location"]).text
    empty = place(client, patient, [])
    assert empty.headers["location"].endswith("?erreur=NoTestOrdered")
    assert rows(container, patient) == []


def test_results_matched_by_the_placer_number_move_the_order_to_preliminary_then_final(
        client: TestClient, container: Container, lab: ServerThread) -> None:
    patient = admit_inpatient(container)
    login(client, PHYSICIAN)
    place(client, patient, ["IONO"])
    [iono] = rows(container, patient)
    login(client, NURSE)
    post(client, f"{page_of(patient)}/prelevement", patient, etiquette=iono.specimen_number)
    preliminary = oru("R1", [obx(1, "2823-3", "Potassium", "4.1", "mmol/L", status="P"),
                             obx(2, "2951-2", "Sodium", "139", "mmol/L", status="F")],
                      ipp=patient.ipp, placer=iono.placer_number, filler="L77")
    assert answer(lab.send(preliminary))[0] == "AA"
    [iono] = rows(container, patient)
    assert iono.status == "preliminary" and iono.report_id is not None
    final = oru("R2", [obx(1, "2823-3", "Potassium", "4.2", "mmol/L", status="F")],
                ipp=patient.ipp, placer=iono.placer_number, filler="L77")
    assert answer(lab.send(final))[0] == "AA"
    [iono] = rows(container, patient)
    assert iono.status == "final"
    assert i18n._("final results") in client.get(page_of(patient)).text

    # Results of a test ordered elsewhere (unknown or absent placer number) are filed all the same.
    assert answer(lab.send(oru("R3", [obx(1, "1988-5", "CRP", "3", "mg/L")], ipp=patient.ipp,
                               placer="", filler="L78")))[0] == "AA"
    assert answer(lab.send(oru("R4", [obx(1, "1988-5", "CRP", "4", "mg/L")], ipp=patient.ipp,
                               placer="O9999999999", filler="L79")))[0] == "AA"
    with container.uow() as uow:
        assert len(uow.session.scalars(select(LabReport)).all()) == 3
    assert [o.status for o in rows(container, patient)] == ["final"]


def test_orc_2_names_the_order_when_obr_2_leaves_it_out(client: TestClient, container: Container,
                                                        lab: ServerThread) -> None:
    patient = admit_inpatient(container)
    login(client, PHYSICIAN)
    place(client, patient, ["CRP", "NFS"])
    crp, nfs = rows(container, patient)
    message = oru("R5", [obx(1, "1988-5", "CRP", "12", "mg/L", status="F")], ipp=patient.ipp, placer=crp.placer_number,
                  filler="L90")
    lines = message.rstrip("\r").split("\r")
    obr = lines[4].split("|")
    obr[2] = ""  # the placer number in ORC-2 only
    second = [f"ORC|RE|{nfs.placer_number}|L91", "|".join([*obr[:3], "L91", *obr[4:]]),
              obx(1, "718-7", "Hémoglobine", "131", "g/L", status="P")]
    text = "\r".join([*lines[:4], "|".join(obr), *lines[5:], *second]) + "\r"
    assert answer(lab.send(text))[0] == "AA"
    crp, nfs = rows(container, patient)
    assert (crp.status, nfs.status) == ("final", "preliminary")
    with container.uow() as uow:
        placers = {r.filler_number: r.placer_number for r in uow.session.scalars(select(LabReport))}
    assert placers == {"L90": crp.placer_number, "L91": nfs.placer_number}


def test_orders_follow_a_merged_patient_and_come_back_on_undo(client: TestClient, container: Container) -> None:
    merged = admit_inpatient(container)
    survivor = admit_inpatient(container, "DURANT")
    login(client, PHYSICIAN)
    place(client, merged, ["CRP"])
    [crp] = rows(container, merged)
    assert orders.MOVER in container.ports["patient_movers"]
    with container.uow() as uow:
        moved = orders.MOVER.move(uow.session, merged.id, survivor.id)
        uow.commit()
    assert moved == [f"lab_order:{crp.id}"]
    assert [o.id for o in rows(container, survivor)] == [crp.id] and rows(container, merged) == []
    with container.uow() as uow:
        orders.MOVER.move_back(uow.session, moved, merged.id)
        uow.commit()
    assert [o.id for o in rows(container, merged)] == [crp.id] and rows(container, survivor) == []
