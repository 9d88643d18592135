"""Laboratory results over a real MLLP socket into the test's real database: ACK after commit,
preliminary then final, corrections with their history, cancellation, refusals kept as dead
letters, dedupe by MSH-10, several clients, the chart's creatinine."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from naho.interop.mllp import frame
from naho.platform.deps import Container
from naho.platform.inbox import ACCEPTED, REFUSED, InboundMessage
from naho.record import chart, crossref
from naho.record import service as record
from naho.record.models import ClinicalDocument
from naho.results import hl7
from naho.results.models import LabReport, LabResult
from tests.interop.test_mllp import ServerThread, receive_frames
from tests.results.conftest import PDF, admit_inpatient, answer, obx, oru, pdf_obx

POTASSIUM = "2823-3"
CREATININE = "14682-9"


def results(container: Container, patient_id) -> list[LabResult]:  # type: ignore[no-untyped-def]
    with container.uow() as uow:
        rows = list(uow.session.scalars(select(LabResult).where(LabResult.patient_id == patient_id)
                                        .order_by(LabResult.received_at, LabResult.loinc, LabResult.version)))
        uow.session.expunge_all()
        return rows


def inbound(container: Container) -> list[InboundMessage]:
    with container.uow() as uow:
        rows = list(uow.session.scalars(select(InboundMessage).where(InboundMessage.channel == hl7.CHANNEL)
                                        .order_by(InboundMessage.received_at, InboundMessage.control_id)))
        uow.session.expunge_all()
        return rows


def creatinine(container: Container, patient_id) -> tuple[float, datetime] | None:  # type: ignore[no-untyped-def]
    with container.uow() as uow:
        return chart.latest_lab_result(uow.session, patient_id, "creatinine")


def test_a_report_sent_by_the_laboratory_is_filed_and_acknowledged(container: Container, lab: ServerThread) -> None:
    patient = admit_inpatient(container)
    message = oru("L1", [
        obx(1, POTASSIUM, "Potassium", "4,2", "mmol/l", "3.5-5.1"),
        "NTE|1|L|Hémolyse légère",
        obx(2, "2951-2", "Sodium", "128", "mmol/L", "136-145", "L"),
        obx(3, CREATININE, "Créatinine", "88", "µmol/l", "45-90", at="20261125081500"),
        obx(4, "5778-6", "Aspect", "Trouble", value_type="ST"),
        pdf_obx(5),
    ], ipp=patient.ipp, visit=f"{patient.nda}^^^NAHO^VN", notes=["Prélèvement au lit"])
    assert answer(lab.send(message)) == ("AA", "L1", "")

    rows = results(container, patient.id)
    shown = {r.loinc: (r.number, r.text, r.unit, r.reference, r.flags, r.status, r.comment) for r in rows}
    assert shown == {
        POTASSIUM: (4.2, None, "mmol/L", "3.5-5.1", "", "F", "Hémolyse légère"),
        "2951-2": (128.0, None, "mmol/L", "136-145", "L", "F", None),
        CREATININE: (88.0, None, "umol/L", "45-90", "", "F", None),
        "5778-6": (None, "Trouble", "", "", "", "F", None),
    }
    assert {r.observed_at for r in rows if r.loinc != CREATININE} == {datetime(2026, 11, 25, 7, 0, tzinfo=UTC)}
    # The chart's creatinine, read by the medication orders' renal checks, is the laboratory's.
    assert creatinine(container, patient.id) == (88.0, datetime(2026, 11, 25, 7, 15, tzinfo=UTC))
    with container.uow() as uow:
        report = uow.session.execute(select(LabReport)).scalar_one()
        assert (report.placer_number, report.filler_number, report.comment) == ("CMD-1", "LAB-1", "Prélèvement au lit")
        assert report.encounter_id is not None and report.document_id is not None
        document = uow.session.get(ClinicalDocument, report.document_id)
        assert document is not None and document.content == PDF and document.media_type == "application/pdf"
    [row] = inbound(container)
    assert (row.status, row.sender, row.message_type) == (ACCEPTED, "SIL/LABO", "ORU^R01^ORU_R01")


def test_creatinine_in_mg_per_decilitre_reaches_the_chart_in_micromoles(container: Container,
                                                                        lab: ServerThread) -> None:
    patient = admit_inpatient(container)
    assert answer(lab.send(oru("MG1", [obx(1, "2160-0", "Créatinine", "1.2", "mg/dL")],
                               foreign=patient.foreign)))[0] == "AA"
    value, _at = creatinine(container, patient.id) or (None, None)
    assert value == 106.1  # 1.2 mg/dL × 88.42


def test_a_preliminary_result_then_the_final_one_keep_both_versions(container: Container, lab: ServerThread) -> None:
    patient = admit_inpatient(container)
    assert answer(lab.send(oru("P1", [obx(1, CREATININE, "Créatinine", "150", "umol/L", status="P")],
                               ipp=patient.ipp, report_status="P")))[0] == "AA"
    assert creatinine(container, patient.id) is None  # a preliminary value is not for dose checks
    assert answer(lab.send(oru("P2", [obx(1, CREATININE, "Créatinine", "152", "umol/L")], ipp=patient.ipp)))[0] == "AA"
    rows = results(container, patient.id)
    assert [(r.number, r.status, r.version, r.current) for r in rows] == [(150, "P", 1, False), (152, "F", 2, True)]
    assert creatinine(container, patient.id) is not None and creatinine(container, patient.id)[0] == 152
    # Back to preliminary after a final: refused, the message waits in the dead letters.
    ack = lab.send(oru("P3", [obx(1, CREATININE, "Créatinine", "160", "umol/L", status="P")], ipp=patient.ipp))
    assert answer(ack) == ("AE", "P3", "FinalResultNotPreliminary")
    assert len(results(container, patient.id)) == 2


def test_a_correction_replaces_the_value_shown_and_the_history_keeps_every_version(container: Container,
                                                                                    lab: ServerThread) -> None:
    patient = admit_inpatient(container)
    lab.send(oru("C1", [obx(1, CREATININE, "Créatinine", "300", "umol/L", "45-90", "H")], ipp=patient.ipp))
    assert answer(lab.send(oru("C2", [obx(1, CREATININE, "Créatinine", "95", "umol/L", "45-90", "H", status="C")],
                               ipp=patient.ipp)))[0] == "AA"
    rows = results(container, patient.id)
    assert [(r.number, r.status, r.current) for r in rows] == [(300, "F", False), (95, "C", True)]
    assert creatinine(container, patient.id)[0] == 95  # type: ignore[index]


def test_a_cancelled_result_is_withdrawn_from_the_chart(container: Container, lab: ServerThread) -> None:
    patient = admit_inpatient(container)
    lab.send(oru("X1", [obx(1, CREATININE, "Créatinine", "120", "umol/L")], ipp=patient.ipp))
    assert answer(lab.send(oru("X2", [obx(1, CREATININE, "Créatinine", "", "umol/L", status="X", value_type="ST")],
                               ipp=patient.ipp)))[0] == "AA"
    assert [(r.status, r.current) for r in results(container, patient.id)] == [("F", False), ("X", True)]
    assert creatinine(container, patient.id) is None


def test_garbage_and_malformed_results_are_refused_with_a_reason_and_kept(container: Container,
                                                                          lab: ServerThread) -> None:
    patient = admit_inpatient(container)
    assert answer(lab.send(oru("G1", [obx(1, POTASSIUM, "Potassium", "quatre", "mmol/L")], ipp=patient.ipp))) == (
        "AE", "G1", "NotANumber")
    assert answer(lab.send(oru("G2", ["OBX|1|NM|K^Potassium^L||4.1|mmol/L||||F"], ipp=patient.ipp))) == (
        "AE", "G2", "NotLoinc")
    assert answer(lab.send(oru("G3", [obx(1, POTASSIUM, "Potassium", "4.1", "mmol/L", status="Z")],
                               ipp=patient.ipp))) == ("AE", "G3", "UnknownResultStatus")
    ack = lab.send("MSH|^~\\&|SIL|LABO|NAHO|GHT|20261125||ORU^R01|G4|P|2.5\rPID|1||x^^^NAHO^PI\rOBX|1|NM|")
    assert answer(ack)[0] in ("AE", "AR")
    ack = lab.send(b"MSH|^~\\&|SIL|LABO|||||ORU^R01|G5|P|2.5\r\xff\xfe not hl7 at all")
    assert answer(ack)[0] in ("AE", "AR")
    assert answer(lab.send(oru("G6", [pdf_obx(1, b"\x00\xffnot a document")], ipp=patient.ipp))) == (
        "AE", "G6", "DocumentRefused")
    bad = pdf_obx(1).replace("Base64^", "Base64^%%")
    assert answer(lab.send(oru("G7", [bad], ipp=patient.ipp))) == ("AE", "G7", "BadBase64")
    rows = inbound(container)
    assert len(rows) == 7 and {r.status for r in rows} == {REFUSED} and all(r.error and r.raw for r in rows)
    assert results(container, patient.id) == []


def test_a_message_sent_again_is_applied_once_and_gets_the_same_ack(container: Container, lab: ServerThread) -> None:
    patient = admit_inpatient(container)
    message = oru("D1", [obx(1, POTASSIUM, "Potassium", "4.0", "mmol/L")], ipp=patient.ipp)
    first = lab.send(message)
    again = lab.send(message)
    assert answer(first) == ("AA", "D1", "") and again == first
    assert len(results(container, patient.id)) == 1 and len(inbound(container)) == 1


def test_frames_cut_or_glued_and_two_clients_at_once(container: Container, lab: ServerThread) -> None:
    patient = admit_inpatient(container)
    with socket.create_connection(("127.0.0.1", lab.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wire = frame(oru("F1", [obx(1, POTASSIUM, "Potassium", "4.1", "mmol/L")], ipp=patient.ipp,
                         filler="LAB-F1").encode())
        for start in range(0, len(wire), 37):
            sock.sendall(wire[start:start + 37])
            time.sleep(0.005)
        glued = b"".join(frame(oru(f"F{n}", [obx(1, POTASSIUM, "Potassium", f"4.{n}", "mmol/L")], ipp=patient.ipp,
                                   filler=f"LAB-F{n}").encode()) for n in (2, 3))
        sock.sendall(glued)
        assert [answer(a)[:2] for a in receive_frames(sock, 3)] == [("AA", "F1"), ("AA", "F2"), ("AA", "F3")]

    acks: dict[str, list[str]] = {}

    def client(name: str) -> None:
        with socket.create_connection(("127.0.0.1", lab.port)) as sock:
            got = []
            for n in range(10):
                value = "n/a" if (name, n) == ("B", 5) else "4.4"  # refused within its group commit
                sock.sendall(frame(oru(f"{name}{n}", [obx(1, POTASSIUM, "Potassium", value, "mmol/L")],
                                       ipp=patient.ipp, filler=f"{name}-{n}").encode()))
                got.append(answer(receive_frames(sock, 1)[0])[0])
            acks[name] = got

    threads = [threading.Thread(target=client, args=(name,)) for name in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert acks == {"A": ["AA"] * 10, "B": ["AA"] * 5 + ["AE"] + ["AA"] * 4}
    assert len(results(container, patient.id)) == 22 and len(inbound(container)) == 23


def test_a_patient_known_only_by_the_admission_systems_ipp_or_a_qualified_ins_is_found(container: Container,
                                                                                      lab: ServerThread) -> None:
    patient = admit_inpatient(container)
    assert answer(lab.send(oru("I1", [obx(1, POTASSIUM, "Potassium", "4.0", "mmol/L")],
                               foreign=patient.foreign)))[0] == "AA"
    assert len(results(container, patient.id)) == 1
    # An INS names a qualified identity only; otherwise nobody: unknown patient.
    qualified = admit_inpatient(container, "QUALIF", ins="262036202312345")
    assert answer(lab.send(oru("I2", [obx(1, POTASSIUM, "Potassium", "4.1", "mmol/L")],
                               ins="262036202312345", filler="LAB-I2")))[0] == "AA"
    assert [r.number for r in results(container, qualified.id)] == [4.1]
    ack = lab.send(oru("I3", [obx(1, POTASSIUM, "Potassium", "4.0", "mmol/L")], ins="185057800608436"))
    assert answer(ack) == ("AR", "I3", "UnknownPatient")


def test_the_stay_named_in_pv1_19_is_the_reports_even_when_another_is_current(container: Container,
                                                                              lab: ServerThread) -> None:
    patient = admit_inpatient(container)
    with container.uow() as uow:
        now = uow.clock.now()
        earlier = record.import_stay(uow.session, patient.id, establishment_code="LENS", encounter_class="inpatient",
                                     unit_code="LENS-MED-MIN", bed_code=None, admitted_at=now - timedelta(days=40),
                                     discharged_at=now - timedelta(days=30), now=now, actor_label="test")
        crossref.remember_encounter(uow.session, "GAM", crossref.VISIT, "V-OLD", earlier, now=now, source="test")
        uow.commit()
    assert answer(lab.send(oru("V1", [obx(1, POTASSIUM, "Potassium", "4.0", "mmol/L")], ipp=patient.ipp,
                               visit="V-OLD^^^GAM^VN", filler="LAB-V1")))[0] == "AA"
    assert answer(lab.send(oru("V2", [obx(1, POTASSIUM, "Potassium", "4.2", "mmol/L")], ipp=patient.ipp,
                               filler="LAB-V2")))[0] == "AA"
    with container.uow() as uow:
        stays = dict(uow.session.execute(select(LabReport.filler_number, LabReport.encounter_id)).all())
        current = chart.current_encounter(uow.session, patient.id)
    assert stays == {"LAB-V1": earlier, "LAB-V2": current} and current != earlier
